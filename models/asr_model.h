// AsrModel: what the CTC pretraining of the speech tower trains (train --task speech_asr), as one
// Module (one checkpoint): the Conformer tower ("speech.*") and a linear head over the characters
// ("head"). The tower's frames (before pooling) become per-frame character scores; the head is
// dropped afterwards and the tower starts a speech-text run. Part of models/.
#pragma once

#include <memory>
#include <utility>

#include "models/conformer.h"
#include "nn/basic_layers.h"

namespace cw::models {

class AsrModel : public nn::Module {
 public:
  AsrModel(const ConformerConfig& c, int64_t vocab_size);
  // Features (B, T, n_mels) with their lengths (B, host) -> log-probabilities (T', B, V) for CTC,
  // and the frame lengths (B) on the host.
  std::pair<Variable, Tensor> log_probs(const Variable& features, const Tensor& lengths);

  std::shared_ptr<Conformer> speech;
  std::shared_ptr<nn::Linear> head;
};

}  // namespace cw::models
