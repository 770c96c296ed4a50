// The end of one optimizer step, as the single-process loops share it (ssl_trainer.cpp,
// image_text_trainer.cpp, asr_trainer.cpp): backward through a finite loss, the gradient's global
// norm (clipped when grad_clip > 0), the stop on a non-finite loss or norm, and the AdamW update
// at the schedule's rate. trainer.cpp keeps its own (data parallelism averages the gradients
// between backward and clip, and its stop names the last good checkpoint). Part of train/.
#pragma once

#include <cstdint>
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
                     std::ostream& log);

}  // namespace cw::train
