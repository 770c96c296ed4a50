// Connectionist temporal classification loss (Graves et al. 2006), as torch.nn.functional.ctc_loss:
// -log p(target | input), summed over every alignment of the target to the input frames, with
// a blank symbol between (and around) the labels and repeated labels separated by a blank. It
// trains the speech tower as the encoder of a character recognizer (train --task speech_asr),
// the "pretrained speech tower" of the paper's speech-text setup. One autograd node; the
// forward-backward recursions run on the host in double precision, in log space, one batch row
// per thread; log_probs on another device are copied over and the gradient copied back (the
// recursions are O(T S) per row, small beside the encoder). Part of losses/.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/variable.h"

namespace cw::losses {

enum class CtcReduction {
  Mean,  // PyTorch's "mean": each row's loss over its target length (at least 1), then the batch mean
  Sum,   // sum over the batch
};

struct CtcOptions {
  int64_t blank = 0;
  CtcReduction reduction = CtcReduction::Mean;
  // A target that no alignment fits (more labels plus needed blanks than frames) has infinite
  // loss; with zero_infinity its loss and gradient are 0 instead (PyTorch's flag).
  bool zero_infinity = false;
};

struct CtcOutput {
  Variable loss;                   // 0-d, log_probs' dtype
  std::vector<double> row_losses;  // -log p(target_b | input_b) per row (inf when infeasible)
};

// log_probs (T, B, C) f32/f64: log-softmax over C of each frame (T >= every input length).
// targets: per row the label ids in [0, C), none equal to the blank; input_lengths (B) in [0, T].
// Throws ShapeError / ValueError / IndexError naming the argument and row at fault.
CtcOutput ctc_loss(const Variable& log_probs, const std::vector<std::vector<int64_t>>& targets,
                   const std::vector<int64_t>& input_lengths, const CtcOptions& options = {});

}  // namespace cw::losses
