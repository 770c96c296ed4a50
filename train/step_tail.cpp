// finish_step (see step_tail.h).
#include "train/step_tail.h"

#include <cmath>

#include "train/grad_clip.h"

namespace cw::train {

StepTail finish_step(const Variable& loss, double loss_value, const std::vector<Variable>& params,
                     double grad_clip, AdamW& opt, const LrSchedule& schedule, int64_t step,
                     std::ostream& log, const std::function<void()>& after_backward) {
  StepTail out;
  out.norm = NAN;
  if (std::isfinite(loss_value)) {  // a non-finite loss would only spread NaN through every gradient
    loss.backward();
    if (after_backward) after_backward();
    out.norm = grad_clip > 0 ? clip_grad_norm(params, grad_clip) : grad_norm(params);
  }
  if (!std::isfinite(loss_value) || !std::isfinite(out.norm)) {
    log << "train: stopped at step " << step + 1 << ": loss " << loss_value << ", gradient norm " << out.norm
        << "; try a lower --optim.lr\n";
    out.stopped = true;
    return out;
  }
  out.lr = schedule.at(step);
  opt.step(out.lr);
  opt.zero_grad();
  return out;
}

}  // namespace cw::train
