// SpeechTextModel: what the speech-text experiment trains, as one Module so that one state_dict
// (one checkpoint) holds it all: the speech tower ("speech.*": a Conformer, or the pretrained
// Whisper encoder with its projection) and the learnable logit scale t ("logit_scale", 0-d; the
// loss uses min(exp(t), max)), as CLIP keeps its temperature beside the towers. The frozen text
// tower is not part of it: its embeddings are computed once and cached
// (train/frozen_text_cache.h). Part of models/.
#pragma once

#include <memory>

#include "models/conformer.h"
#include "models/speech_tower.h"

namespace cw::models {

class SpeechTextModel : public nn::Module {
 public:
  // The logit scale t starts at init_log_scale (CLIP: log(1 / 0.07)) and requires grad only when
  // learn_scale (a fixed temperature is then a constant saved with the weights).
  SpeechTextModel(std::shared_ptr<SpeechTower> speech_tower, double init_log_scale, bool learn_scale,
                  DType dtype = DType::F32);
  // A Conformer speech tower of this configuration.
  SpeechTextModel(const ConformerConfig& speech_config, double init_log_scale, bool learn_scale,
                  DType dtype = DType::F32);

  // features (B, T, F), lengths (B) i64 -> speech embeddings (B, embed_dim), not normalized.
  Variable embed_speech(const Variable& features, const Tensor& lengths) {
    return speech->embed(features, lengths);
  }
  // The tower as a Conformer; a cw::Error naming what it is otherwise.
  Conformer& conformer();

  std::shared_ptr<SpeechTower> speech;
  Variable logit_scale;  // 0-d
};

}  // namespace cw::models
