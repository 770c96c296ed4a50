// SpeechTower: what the speech-text experiment asks of a speech tower, whatever its kind (the
// Conformer trained from scratch, the pretrained Whisper encoder): frames and their lengths in,
// one unnormalized embedding per utterance out. The trainer, the evaluator and the checkpoints
// see only this. Part of models/.
#pragma once

#include "nn/module.h"

namespace cw::models {

class SpeechTower : public nn::Module {
 public:
  // features (B, T, F) (what the tower's input is: log-mel frames, or hidden states of a frozen
  // lower part cached once), lengths (B) i64 real frames per row -> (B, embed_dim), not normalized.
  virtual Variable embed(const Variable& features, const Tensor& lengths) = 0;
  // The most input frames an utterance may have (0: no limit). Whisper's positions end at 30 s,
  // so evaluation keeps an utterance's first max_input_frames() frames.
  virtual int64_t max_input_frames() const { return 0; }
};

}  // namespace cw::models
