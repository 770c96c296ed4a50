// The one clock of train/: wall time of phases, steps and evaluations, from a monotonic clock (a
// clock change during a run does not make a step take negative time). Part of train/.
#pragma once

#include <chrono>

namespace cw::train {

using Clock = std::chrono::steady_clock;

// Seconds since t0.
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace cw::train
