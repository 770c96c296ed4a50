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
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_read.h"
#include "core/safetensors.h"

namespace cw::train {
namespace fs = std::filesystem;
namespace {

constexpr int kFormat = 1;
// At most 18 digits: any such number fits an int64 (a crafted longer name is not a checkpoint).
const std::regex kStepName("step-([0-9]{8,18})");
// Leftovers of an interrupted writer: "<name>.tmp-<pid>" or "<name>.old-<pid>" (pids fit 9 digits).
const std::regex kLeftoverName(".*\\.(tmp|old)-([0-9]{1,9})");
// The largest trainer_state.json read (it holds the run's configuration text and `extra`).
constexpr uintmax_t kMaxStateBytes = 64 << 20;

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::string pid_suffix() { return std::to_string(static_cast<long long>(::getpid())); }

// The whole file, which must be at most max_bytes long (a pointer or a state file, never data).
std::string read_text(const fs::path& path, uintmax_t max_bytes) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  CW_CHECK(!ec, ValueError, "load_checkpoint: cannot read ", path.string(), ": ", ec.message());
  CW_CHECK(size <= max_bytes, ValueError, "load_checkpoint: ", path.string(), " is ", size,
           " bytes, more than the ", max_bytes, " such a file can hold");
  std::ifstream in(path, std::ios::binary);
  CW_CHECK(in, ValueError, "load_checkpoint: cannot read ", path.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// Whether every value is finite: a state holding a NaN or an infinity resumes into an immediate
// stop, so it is never written as a checkpoint.
bool all_finite(const std::map<std::string, Tensor>& tensors) {
  const auto finite = [](const auto* p, int64_t n) {
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= std::isfinite(p[i]);
    return ok;
  };
  for (const auto& [name, t] : tensors) {
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64) continue;
    const Tensor c = t.contiguous();
    if (!(c.dtype() == DType::F32 ? finite(c.data<float>(), c.numel()) : finite(c.data<double>(), c.numel())))
      return false;
  }
  return true;
}

std::map<std::string, Tensor> on_cpu(const std::map<std::string, Tensor>& tensors) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors)
    out.emplace(name, t.to(Device::cpu()));  // the same handle when already there
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
// ours_too: names with this process's pid are leftovers too (before it has written anything: a
// restarted container's run often gets the pid of the run that was killed).
void remove_leftovers(const fs::path& dir, bool ours_too) {
  std::error_code unreadable;  // best effort, as the removals below
  for (const fs::directory_entry& e : fs::directory_iterator(dir, unreadable)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, kLeftoverName)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(m[2].str()));
    const bool alive = pid == ::getpid() ? !ours_too : pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH);
    if (!alive) {
      std::error_code ec;
      fs::remove_all(e.path(), ec);  // best effort: the loaders ignore these names anyway
    }
  }
}

Json state_to_json(const TrainerState& s, int64_t optimizer_step) {
  return Json{{"format", kFormat},
              {"step", s.step},
              {"epoch", s.epoch},
              {"batch_in_epoch", s.batch_in_epoch},
              {"seed", s.seed},
              {"rng_offset", s.rng_offset},
              {"optimizer_step", optimizer_step},
              {"config_text", s.config_text},
              {"extra", s.extra}};
}

TrainerState state_from_json(const JsonReader& j, int64_t& optimizer_step) {
  j.expect(j.json().is_object(), "a JSON object");
  const int64_t format = j.get<int64_t>("format");
  if (format != kFormat) j.at("format").fail("this build reads format ", kFormat, ", found ", format);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  TrainerState s;
  s.step = j.get_in("step", 0, kMax);
  s.epoch = j.get_in("epoch", 0, kMax);
  s.batch_in_epoch = j.get_in("batch_in_epoch", 0, kMax);
  s.seed = j.get<uint64_t>("seed");
  s.rng_offset = j.get<uint64_t>("rng_offset");
  optimizer_step = j.get_in("optimizer_step", 0, kMax);
  s.config_text = j.get<std::string>("config_text");
  // Copying `extra` is safe: parse_json bounded its nesting.
  s.extra = j.has("extra") ? j.at("extra").json() : Json();
  return s;
}

SafetensorsFile open_checkpoint_file(const fs::path& path) {
  CW_CHECK(fs::is_regular_file(path), ValueError, "load_checkpoint: missing file ", path.string());
  return SafetensorsFile::open(path.string());  // its errors name the file
}

}  // namespace

bool save_checkpoint(const fs::path& dir, const std::map<std::string, Tensor>& model_state, const AdamW& opt,
                     const TrainerState& state, int keep_last_k) {
  CW_CHECK(state.step >= 0, ValueError, "save_checkpoint: step must be >= 0, got ", state.step);
  const std::map<std::string, Tensor> model = on_cpu(model_state), optimizer = on_cpu(opt.state_tensors());
  if (!all_finite(model) || !all_finite(optimizer)) return false;
  const std::string name = step_name(state.step);
  const fs::path final_dir = dir / name;
  const fs::path temp_dir = dir / (name + ".tmp-" + pid_suffix());
  try {
    fs::create_directories(dir);
    fs::remove_all(temp_dir);
    fs::create_directory(temp_dir);

    // 1. Everything into the temporary directory (each file temp + rename + fsync on its own).
    save_safetensors((temp_dir / "model.safetensors").string(), model);
    save_safetensors((temp_dir / "optimizer.safetensors").string(), optimizer,
                     {{"step", std::to_string(opt.step_count())}});
    write_file_atomic(temp_dir / "trainer_state.json", state_to_json(state, opt.step_count()).dump(2) + "\n");
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
    write_file_atomic(dir / "latest", name + "\n");

    // 4. Pruning: the newest keep_last_k by step number, always including the one just written.
    if (keep_last_k > 0) {
      const auto dirs = step_dirs(dir);
      const size_t keep = static_cast<size_t>(keep_last_k);
      for (size_t i = 0; i + keep < dirs.size(); ++i) {
        if (dirs[i].second.filename() == name) continue;
        fs::remove_all(dirs[i].second);
      }
    }
    remove_leftovers(dir, false);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(temp_dir, ignored);
    throw Error(detail::cat("save_checkpoint: ", e.what()));
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp_dir, ignored);
    throw;
  }
  return true;
}

void remove_checkpoint_leftovers(const fs::path& dir) {
  if (fs::is_directory(dir)) remove_leftovers(dir, true);
}

LoadedCheckpoint load_checkpoint(const fs::path& step_dir) {
  CW_CHECK(fs::is_directory(step_dir), ValueError, "load_checkpoint: ", step_dir.string(),
           " is not a checkpoint directory");
  LoadedCheckpoint out;
  out.path = step_dir;
  // The small state file first: a damaged checkpoint fails before its tensors are read.
  const fs::path state_path = step_dir / "trainer_state.json";
  CW_CHECK(fs::is_regular_file(state_path), ValueError, "load_checkpoint: missing file ",
           state_path.string());
  const std::string where = "load_checkpoint: " + state_path.string();
  const Json state_doc = parse_json(read_text(state_path, kMaxStateBytes), where);
  int64_t json_opt_step = 0;
  out.state = state_from_json(JsonReader(state_doc, where), json_opt_step);

  const fs::path opt_path = step_dir / "optimizer.safetensors";
  const SafetensorsFile opt_file = open_checkpoint_file(opt_path);
  const auto& meta = opt_file.metadata();
  auto it = meta.find("step");
  CW_CHECK(it != meta.end(), ValueError, "load_checkpoint: ", opt_path.string(), " has no 'step' metadata");
  const std::string& step_text = it->second;
  const bool digits =
      !step_text.empty() && step_text.size() <= 18 &&
      std::all_of(step_text.begin(), step_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  CW_CHECK(digits, ValueError, "load_checkpoint: ", opt_path.string(), ": metadata 'step' is '",
           step_text.substr(0, 80), step_text.size() > 80 ? "..." : "", "', expected a non-negative integer");
  out.optimizer_step = std::stoll(step_text);
  CW_CHECK(json_opt_step == out.optimizer_step, ValueError, "load_checkpoint: ", state_path.string(),
           " says optimizer_step ", json_opt_step, " but ", opt_path.string(), " says ", out.optimizer_step);
  out.model = open_checkpoint_file(step_dir / "model.safetensors").load_all();
  out.optimizer = opt_file.load_all();
  return out;
}

std::optional<LoadedCheckpoint> load_latest_checkpoint(const fs::path& dir) {
  if (!fs::exists(dir)) return std::nullopt;
  CW_CHECK(fs::is_directory(dir), ValueError, "load_latest_checkpoint: ", dir.string(),
           " is not a directory");
  const fs::path pointer = dir / "latest";
  if (fs::exists(pointer)) {
    std::string text = read_text(pointer, 4096);
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
