// Linear warmup + cosine decay; the closed form is documented in lr_schedule.h. Part of train/.
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace cw::train {

double LrSchedule::at(int64_t step) const {
  CW_CHECK(step >= 0, ValueError, "LrSchedule::at: step must be >= 0, got ", step);
  CW_CHECK(warmup_steps >= 0 && total_steps >= warmup_steps, ValueError,
           "LrSchedule: need 0 <= warmup_steps <= total_steps, got warmup_steps ", warmup_steps,
           ", total_steps ", total_steps);
  CW_CHECK(min_lr_ratio >= 0.0 && min_lr_ratio <= 1.0, ValueError,
           "LrSchedule: min_lr_ratio must be in [0, 1], got ", min_lr_ratio);
  const double min_lr = base_lr * min_lr_ratio;
  if (step < warmup_steps) {
    // (step + 1) so that the first update is not wasted on lr = 0 and update W-1 reaches base_lr.
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
  if (step >= total_steps) return min_lr;
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace cw::train
