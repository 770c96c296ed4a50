// Parallel, resumable audio checks of the importers (see import_audio_check.h).
#include "data/import_audio_check.h"

#include <sndfile.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "data/import_text.h"

namespace cw::data {
namespace fs = std::filesystem;
namespace {

// What a file is identified by between runs: a replaced or rewritten file has another size or
// modification time, and is checked again.
struct FileStamp {
  uintmax_t size = 0;
  int64_t mtime = 0;
};

bool stamp_of(const fs::path& p, FileStamp* s) {
  std::error_code ec;
  s->size = fs::file_size(p, ec);
  if (ec) return false;
  const auto t = fs::last_write_time(p, ec);
  if (ec) return false;
  s->mtime = static_cast<int64_t>(t.time_since_epoch().count());
  return true;
}

// The state's first line: results hold only for the same checking mode and limits.
std::string state_header(const ImportOptions& o) {
  char b[160];
  std::snprintf(b, sizeof b, "# audio_check v1 decode=%d min_rate=%lld max_rate=%lld max_seconds=%.17g",
                o.decode_audio ? 1 : 0, static_cast<long long>(o.limits.min_rate),
                static_cast<long long>(o.limits.max_rate), o.limits.max_seconds);
  return b;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string state_line(const fs::path& p, const FileStamp& s, const AudioCheck& c) {
  char sec[32];
  std::snprintf(sec, sizeof sec, "%.6f", c.seconds);
  return p.string() + "\t" + std::to_string(s.size) + "\t" + std::to_string(s.mtime) + "\t" + sec + "\t" +
         one_line(c.error) + "\n";
}

struct Remembered {
  FileStamp stamp;
  AudioCheck check;
};

// The state file's entries; a torn last line (a killed run) or any malformed line is skipped.
std::unordered_map<std::string, Remembered> read_state(const fs::path& state, const std::string& header) {
  std::unordered_map<std::string, Remembered> m;
  std::ifstream in(state, std::ios::binary);
  if (!in.good()) return m;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.erase(text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1);  // a torn line
  std::istringstream lines(text);
  std::string line;
  if (!std::getline(lines, line) || line != header) return m;  // other mode or limits: check again
  while (std::getline(lines, line)) {
    const std::vector<std::string> f = split_tab_fields(line);
    if (f.size() != 5) continue;
    char* end = nullptr;
    Remembered r;
    r.stamp.size = std::strtoull(f[1].c_str(), &end, 10);
    if (*end) continue;
    r.stamp.mtime = std::strtoll(f[2].c_str(), &end, 10);
    if (*end) continue;
    r.check.seconds = std::strtod(f[3].c_str(), &end);
    if (*end) continue;
    r.check.error = f[4];
    m[f[0]] = r;
  }
  return m;
}

// The header alone: rate, channels and frame count, against the limits.
AudioCheck probe_header(const fs::path& p, const AudioLimits& limits) {
  AudioCheck c;
  SF_INFO info{};
  SNDFILE* f = sf_open(p.c_str(), SFM_READ, &info);
  if (f == nullptr) {
    c.error = "cannot read '" + p.string() + "' as audio: " + sf_strerror(nullptr);
    return c;
  }
  sf_close(f);
  if (info.frames <= 0 || info.channels <= 0)
    c.error = "'" + p.string() + "' holds no audio samples";
  else if (info.samplerate < limits.min_rate || info.samplerate > limits.max_rate)
    c.error =
        "'" + p.string() + "': sample rate " + std::to_string(info.samplerate) + " Hz is outside the limits";
  else
    c.seconds = static_cast<double>(info.frames) / info.samplerate;
  if (c.ok() && c.seconds > limits.max_seconds)
    c.error = "'" + p.string() + "' lasts " + std::to_string(c.seconds) + " s, over the limit of " +
              std::to_string(limits.max_seconds) + " s";
  return c;
}

AudioCheck check_one(const fs::path& p, const ImportOptions& o) {
  if (!o.decode_audio) return probe_header(p, o.limits);
  AudioCheck c;
  try {
    const Audio a = read_audio(p, o.limits);
    c.seconds = static_cast<double>(a.samples.size()) / static_cast<double>(a.sample_rate);
  } catch (const std::exception& e) {
    c.error = e.what();
  }
  return c;
}

}  // namespace

std::vector<AudioCheck> check_audio_files(const std::vector<fs::path>& files, const fs::path& state_file,
                                          const ImportOptions& o, const std::string& what) {
  const std::string header = state_header(o);
  const auto remembered = read_state(state_file, header);
  std::vector<AudioCheck> out(files.size());
  std::vector<FileStamp> stamps(files.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!stamp_of(files[i], &stamps[i])) {
      out[i].error = "audio file missing: " + files[i].string();
      continue;
    }
    const auto it = remembered.find(files[i].string());
    if (it != remembered.end() && it->second.stamp.size == stamps[i].size &&
        it->second.stamp.mtime == stamps[i].mtime)
      out[i] = it->second.check;
    else
      todo.push_back(i);
  }
  // What is known so far goes first, so that a run killed during the checks loses nothing of it.
  std::string known = header + "\n";
  std::vector<bool> pending(files.size(), false);
  for (size_t i : todo) pending[i] = true;
  for (size_t i = 0; i < files.size(); ++i)
    if (!pending[i] && !out[i].error.starts_with("audio file missing"))
      known += state_line(files[i], stamps[i], out[i]);
  write_text_if_changed(state_file, known);
  if (todo.empty()) return out;

  std::ofstream append(state_file, std::ios::binary | std::ios::app);
  CW_CHECK(append.good(), Error, "cannot append to ", state_file.string());
  std::mutex mutex;
  auto tick =
      o.progress ? o.progress(what, static_cast<int64_t>(todo.size())) : std::function<void(int64_t)>();
  std::atomic<size_t> next{0};
  auto last_flush = std::chrono::steady_clock::now();
  auto work = [&] {
    for (size_t k = next++; k < todo.size(); k = next++) {
      const size_t i = todo[k];
      AudioCheck c = check_one(files[i], o);
      {
        std::lock_guard<std::mutex> lock(mutex);
        out[i] = c;
        append << state_line(files[i], stamps[i], c);
        // Flushed every few seconds: a killed import keeps what it learnt, at little cost.
        const auto now = std::chrono::steady_clock::now();
        if (now - last_flush > std::chrono::seconds(2)) {
          append.flush();
          last_flush = now;
        }
      }
      if (tick) tick(1);
    }
  };
  const int threads = std::max(1, std::min<int>(o.threads, static_cast<int>(todo.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  append.close();
  // Compacted: one line per current file, in a stable order.
  std::string state = header + "\n";
  for (size_t i = 0; i < files.size(); ++i)
    if (!out[i].error.starts_with("audio file missing")) state += state_line(files[i], stamps[i], out[i]);
  write_text_if_changed(state_file, state);
  return out;
}

void keep_checked_rows(ImportPart& part, std::vector<ImportRow> candidates, const ImportOptions& o) {
  std::sort(candidates.begin(), candidates.end(),
            [](const ImportRow& a, const ImportRow& b) { return a.id < b.id; });
  std::vector<ImportRow> unique;
  std::set<std::string> seen;
  auto one_field = [](const std::string& f) { return f.find_first_of("\t\n\r") == std::string::npos; };
  for (ImportRow& r : candidates) {
    // A manifest line holds no tab or line break inside a field (transcripts are cleaned before).
    if (!one_field(r.id) || !one_field(r.audio.string()) || !one_field(r.voice) || !one_field(r.label)) {
      part.summary.drop("a tab or line break in an id, path, speaker or label", r.audio.string());
      continue;
    }
    if (!seen.insert(r.id).second) {
      part.summary.drop("duplicate id", r.id + " (" + r.audio.string() + ")");
      continue;
    }
    unique.push_back(std::move(r));
  }
  std::vector<fs::path> files;
  for (const ImportRow& r : unique) files.push_back(r.audio);
  const std::vector<AudioCheck> checks =
      check_audio_files(files, part_dir(o.out, part.source) / "audio_check.tsv", o, part.source + ": audio");
  for (size_t i = 0; i < unique.size(); ++i) {
    if (!checks[i].ok()) {
      part.summary.drop(
          checks[i].error.starts_with("audio file missing") ? "audio file missing" : "audio unreadable",
          unique[i].id + ": " + checks[i].error);
      continue;
    }
    unique[i].duration = checks[i].seconds;
    part.summary.keep(unique[i]);
    part.rows.push_back(std::move(unique[i]));
  }
}

}  // namespace cw::data
