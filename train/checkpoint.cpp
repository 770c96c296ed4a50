// Checkpoint writing and loading (layout and guarantees in checkpoint.h). Part of train/.
// Atomicity rests on POSIX rename: a file or directory appears under its final name only once
// complete, and fsync of the file and of its directory makes that survive a crash too.
#include "train/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

namespace cw::train {
namespace fs = std::filesystem;
namespace {

constexpr int kFormat = 1;
const std::regex kStepName("step-([0-9]{8,})");
// Leftovers of an interrupted writer: "<name>.tmp-<pid>" or "<name>.old-<pid>".
const std::regex kLeftoverName(".*\\.(tmp|old)-([0-9]+)");

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::string pid_suffix() { return std::to_string(static_cast<long long>(::getpid())); }

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;  // durability only; the data is already in place
  ::fsync(fd);
  ::close(fd);
}

// Writes `text` to `path` through a temporary file beside it (flushed, then renamed).
void write_text_atomic(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp-" + pid_suffix();
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CW_CHECK(fd >= 0, Error, "save_checkpoint: cannot create ", temp.string(), ": ", std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      throw Error(detail::cat("save_checkpoint: cannot write ", temp.string(), ": ", reason));
    }
    done += static_cast<size_t>(n);
  }
  const bool ok = ::fsync(fd) == 0 && ::close(fd) == 0;
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    throw Error(detail::cat("save_checkpoint: cannot write ", path.string(), ": ", reason));
  }
  fsync_path(path.parent_path(), true);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  CW_CHECK(in, ValueError, "load_checkpoint: cannot read ", path.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::map<std::string, Tensor> on_cpu(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out.emplace(name, t.device().is_cpu() ? t : t.to(Device::cpu()));
  return out;
}

// Step directories directly under `dir`, by step number (leftovers and other files skipped).
std::vector<std::pair<int64_t, fs::path>> step_dirs(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || !std::regex_match(name, m, kStepName)) continue;
    out.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Removes what a killed writer left behind (its process gone), so that they do not pile up.
void remove_leftovers(const fs::path& dir) {
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, kLeftoverName)) continue;
    const long long pid = std::stoll(m[2].str());
    const bool alive = pid == ::getpid() || (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH);
    if (!alive) {
      std::error_code ec;
      fs::remove_all(e.path(), ec);  // best effort: the loaders ignore these names anyway
    }
  }
}

nlohmann::json state_to_json(const TrainerState& s, int64_t optimizer_step) {
  return nlohmann::json{{"format", kFormat},
                        {"step", s.step},
                        {"epoch", s.epoch},
                        {"batch_in_epoch", s.batch_in_epoch},
                        {"seed", s.seed},
                        {"rng_offset", s.rng_offset},
                        {"optimizer_step", optimizer_step},
                        {"config_text", s.config_text},
                        {"extra", s.extra}};
}

TrainerState state_from_json(const fs::path& file, const nlohmann::json& j, int64_t& optimizer_step) {
  CW_CHECK(j.is_object(), ValueError, "load_checkpoint: ", file.string(), " is not a JSON object");
  auto field = [&](const char* key) -> const nlohmann::json& {
    CW_CHECK(j.contains(key), ValueError, "load_checkpoint: ", file.string(), " has no field '", key, "'");
    return j.at(key);
  };
  auto integer = [&](const char* key) -> int64_t {
    const nlohmann::json& v = field(key);
    CW_CHECK(v.is_number_integer(), ValueError, "load_checkpoint: ", file.string(), ": field '", key,
             "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  };
  auto unsigned_integer = [&](const char* key) -> uint64_t {
    const nlohmann::json& v = field(key);
    CW_CHECK(v.is_number_unsigned(), ValueError, "load_checkpoint: ", file.string(), ": field '", key,
             "' must be a non-negative integer, got ", v.dump());
    return v.get<uint64_t>();
  };
  const int64_t format = integer("format");
  CW_CHECK(format == kFormat, ValueError, "load_checkpoint: ", file.string(), " has format ", format,
           ", this build reads format ", kFormat);
  TrainerState s;
  s.step = integer("step");
  s.epoch = integer("epoch");
  s.batch_in_epoch = integer("batch_in_epoch");
  s.seed = unsigned_integer("seed");
  s.rng_offset = unsigned_integer("rng_offset");
  optimizer_step = integer("optimizer_step");
  const nlohmann::json& config = field("config_text");
  CW_CHECK(config.is_string(), ValueError, "load_checkpoint: ", file.string(),
           ": field 'config_text' must be a string");
  s.config_text = config.get<std::string>();
  s.extra = j.contains("extra") ? j.at("extra") : nlohmann::json();
  return s;
}

SafetensorsFile open_checkpoint_file(const fs::path& path) {
  CW_CHECK(fs::is_regular_file(path), ValueError, "load_checkpoint: missing file ", path.string());
  return SafetensorsFile::open(path.string());  // its errors name the file
}

}  // namespace

void save_checkpoint(const fs::path& dir, const std::map<std::string, Tensor>& model_state, const AdamW& opt,
                     const TrainerState& state, int keep_last_k) {
  CW_CHECK(state.step >= 0, ValueError, "save_checkpoint: step must be >= 0, got ", state.step);
  const std::string name = step_name(state.step);
  const fs::path final_dir = dir / name;
  const fs::path temp_dir = dir / (name + ".tmp-" + pid_suffix());
  try {
    fs::create_directories(dir);
    fs::remove_all(temp_dir);
    fs::create_directory(temp_dir);

    // 1. Everything into the temporary directory (each file temp + rename + fsync on its own).
    save_safetensors((temp_dir / "model.safetensors").string(), on_cpu(model_state));
    save_safetensors((temp_dir / "optimizer.safetensors").string(), on_cpu(opt.state_tensors()),
                     {{"step", std::to_string(opt.step_count())}});
    write_text_atomic(temp_dir / "trainer_state.json", state_to_json(state, opt.step_count()).dump(2) + "\n");
    fsync_path(temp_dir, true);

    // 2. The directory appears complete under its final name. Re-saving a step swaps the two
    // directories in one atomic exchange (Linux renameat2), then drops the old one; where the
    // filesystem cannot exchange, the old one is moved aside first (a short window in which a
    // crash leaves `latest` naming a missing directory, reported as such by the loader).
    if (fs::exists(final_dir)) {
      if (::renameat2(AT_FDCWD, temp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
        fs::remove_all(temp_dir);  // now holds the old checkpoint
      } else {
        const fs::path old_dir = dir / (name + ".old-" + pid_suffix());
        fs::remove_all(old_dir);
        fs::rename(final_dir, old_dir);
        fs::rename(temp_dir, final_dir);
        fs::remove_all(old_dir);
      }
    } else {
      fs::rename(temp_dir, final_dir);
    }
    fsync_path(dir, true);

    // 3. The pointer, last: a reader following it only ever finds complete checkpoints.
    write_text_atomic(dir / "latest", name + "\n");

    // 4. Pruning: the newest keep_last_k by step number, always including the one just written.
    if (keep_last_k > 0) {
      const auto dirs = step_dirs(dir);
      const size_t keep = static_cast<size_t>(keep_last_k);
      for (size_t i = 0; i + keep < dirs.size(); ++i) {
        if (dirs[i].second.filename() == name) continue;
        fs::remove_all(dirs[i].second);
      }
    }
    remove_leftovers(dir);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(temp_dir, ignored);
    throw Error(detail::cat("save_checkpoint: ", e.what()));
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp_dir, ignored);
    throw;
  }
}

LoadedCheckpoint load_checkpoint(const fs::path& step_dir) {
  CW_CHECK(fs::is_directory(step_dir), ValueError, "load_checkpoint: ", step_dir.string(),
           " is not a checkpoint directory");
  LoadedCheckpoint out;
  out.path = step_dir;
  out.model = open_checkpoint_file(step_dir / "model.safetensors").load_all();

  const fs::path opt_path = step_dir / "optimizer.safetensors";
  const SafetensorsFile opt_file = open_checkpoint_file(opt_path);
  out.optimizer = opt_file.load_all();
  const auto& meta = opt_file.metadata();
  auto it = meta.find("step");
  CW_CHECK(it != meta.end(), ValueError, "load_checkpoint: ", opt_path.string(), " has no 'step' metadata");
  try {
    size_t used = 0;
    out.optimizer_step = std::stoll(it->second, &used);
    CW_CHECK(used == it->second.size() && out.optimizer_step >= 0, ValueError, "bad step");
  } catch (const std::exception&) {
    throw ValueError(detail::cat("load_checkpoint: ", opt_path.string(), ": metadata 'step' is '", it->second,
                                 "', expected a non-negative integer"));
  }

  const fs::path state_path = step_dir / "trainer_state.json";
  CW_CHECK(fs::is_regular_file(state_path), ValueError, "load_checkpoint: missing file ",
           state_path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(state_path));
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(detail::cat("load_checkpoint: ", state_path.string(), " is not valid JSON: ", e.what()));
  }
  int64_t json_opt_step = 0;
  out.state = state_from_json(state_path, j, json_opt_step);
  CW_CHECK(json_opt_step == out.optimizer_step, ValueError, "load_checkpoint: ", state_path.string(),
           " says optimizer_step ", json_opt_step, " but ", opt_path.string(), " says ", out.optimizer_step);
  return out;
}

std::optional<LoadedCheckpoint> load_latest_checkpoint(const fs::path& dir) {
  if (!fs::exists(dir)) return std::nullopt;
  CW_CHECK(fs::is_directory(dir), ValueError, "load_latest_checkpoint: ", dir.string(),
           " is not a directory");
  const fs::path pointer = dir / "latest";
  if (fs::exists(pointer)) {
    std::string text = read_text(pointer);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    CW_CHECK(std::regex_match(text, kStepName), ValueError, "load_latest_checkpoint: ", pointer.string(),
             " is corrupt: expected one line 'step-XXXXXXXX', got '", text.substr(0, 80), "'");
    CW_CHECK(fs::is_directory(dir / text), ValueError, "load_latest_checkpoint: ", pointer.string(),
             " names ", text, ", which does not exist in ", dir.string());
    return load_checkpoint(dir / text);
  }
  const auto dirs = step_dirs(dir);
  if (dirs.empty()) return std::nullopt;
  return load_checkpoint(dirs.back().second);
}

}  // namespace cw::train
