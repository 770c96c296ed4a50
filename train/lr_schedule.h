// Learning-rate schedule: linear warmup, then cosine decay to a floor (the schedule of BERT-style
// and CLIP-style training; the CWCL paper fine-tunes with AdamW under warmup + cosine). Part of
// train/; the training loop asks for the lr of each optimizer step.
#pragma once

#include <cstdint>

namespace cw::train {

// `step` is the 0-based index of the optimizer update about to be made (AdamW::step_count()
// before the call). With W = warmup_steps, T = total_steps, min = base_lr * min_lr_ratio:
//   step <  W:       base_lr * (step + 1) / W             the first update already moves
//                                                         (base_lr / W), update W-1 uses base_lr
//   W <= step < T:   min + (base_lr - min) * (1 + cos(pi * (step - W) / (T - W))) / 2
//                                                         base_lr at step W, falling towards min
//   step >= T:       min
// W = 0 means no warmup. at() throws ValueError for negative step, W < 0, T < W or a ratio
// outside [0, 1].
struct LrSchedule {
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.0;

  double at(int64_t step) const;
};

}  // namespace cw::train
