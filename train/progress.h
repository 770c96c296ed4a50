// Progress lines of the long silent phases (corpus generation, the feature and embedding caches,
// evaluation): "features: 1200/2997 utterances, ETA 0:45" every few seconds on the run's log, so
// a background run's log shows it is alive and how long it has left. One log for the process
// (set by start_run, or by eval); nothing is printed before it is set. Part of train/.
#pragma once

#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>

#include "train/stopwatch.h"

namespace cw::train {

// The stream progress lines go to (nullptr: none). The caller keeps it alive while it is set.
void set_progress_log(std::ostream* log);

// "m:ss" (or "?" for an unknown time).
std::string eta_string(double seconds);

// Counts the items of one phase done; at most one line per `every` seconds, and none when the
// phase ends before the first interval (a short phase stays quiet). Thread-safe (feature workers
// count from several threads).
class ProgressMeter {
 public:
  ProgressMeter(std::string what, std::string unit, int64_t total, double every = 5.0);
  void add(int64_t n = 1);

 private:
  std::mutex mutex_;
  const std::string what_, unit_;
  const int64_t total_;
  const double every_;
  int64_t done_ = 0;
  const Clock::time_point t0_ = Clock::now();
  Clock::time_point last_ = t0_;
};

}  // namespace cw::train
