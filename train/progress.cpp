// Progress lines of long phases (see progress.h).
#include "train/progress.h"

#include <atomic>
#include <cmath>
#include <cstdio>

namespace cw::train {

namespace {
std::atomic<std::ostream*> g_log{nullptr};
std::mutex g_write;  // one line at a time from any thread
}  // namespace

void set_progress_log(std::ostream* log) { g_log = log; }

std::string eta_string(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char b[32];
  std::snprintf(b, sizeof b, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return b;
}

ProgressMeter::ProgressMeter(std::string what, std::string unit, int64_t total, double every)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), every_(every) {}

void ProgressMeter::add(int64_t n) {
  std::ostream* log = g_log;
  if (log == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += n;
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_).count() < every_ || done_ >= total_) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - t0_).count();
  const double left =
      done_ > 0 ? elapsed * static_cast<double>(total_ - done_) / static_cast<double>(done_) : std::nan("");
  std::lock_guard<std::mutex> write(g_write);
  *log << what_ << ": " << done_ << "/" << total_ << " " << unit_ << ", ETA " << eta_string(left) << "\n"
       << std::flush;
}

}  // namespace cw::train
