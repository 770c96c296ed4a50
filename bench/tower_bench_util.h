// Helpers of the standalone tower benchmarks (conformer_bench, vit_bench, whisper_bench), which
// time whole steps themselves rather than through Google Benchmark: peak memory from /proc, wall
// time, the median of repetitions. Part of bench/.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace cw::bench {

// A "VmXXX:   1234 kB" line of /proc/self/status, in MiB (-1 if absent).
inline double proc_status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atof(line.c_str() + key.size() + 1) / 1024.0;
  }
  return -1.0;
}

// Resets VmHWM (the peak RSS) to the current RSS, so that the next read is the peak since now.
inline bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace cw::bench
