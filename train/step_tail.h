// The end of one optimizer step, as the training loop (run_loop.cpp) takes it: backward through a
// finite loss, the gradient averaging over ranks (after_backward; none in a world of one), the
// gradient's global norm (clipped when grad_clip > 0), the stop on a non-finite loss or norm, and
// the AdamW update at the schedule's rate. Part of train/.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <vector>

#include "autograd/variable.h"
#include "train/adamw.h"
#include "train/lr_schedule.h"

namespace cw::train {

struct StepTail {
  bool stopped = false;  // the loss or the gradient norm was not finite: nothing was updated
  double norm = 0;       // the gradient's global L2 norm before clipping (NaN without a backward)
  double lr = 0;         // the rate the update used
};

// step: the optimizer updates done so far (0-based index of this one). On a stop, logs the step,
// the loss and the norm with a hint, and leaves the parameters and the optimizer as they were.
StepTail finish_step(const Variable& loss, double loss_value, const std::vector<Variable>& params,
                     double grad_clip, AdamW& opt, const LrSchedule& schedule, int64_t step,
                     std::ostream& log, const std::function<void()>& after_backward = nullptr);

}  // namespace cw::train
