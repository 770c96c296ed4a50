// SpeechTextModel (see speech_text_model.h).
#include "models/speech_text_model.h"

#include "core/ops.h"

namespace cw::models {

SpeechTextModel::SpeechTextModel(std::shared_ptr<SpeechTower> speech_tower, double init_log_scale,
                                 bool learn_scale, DType dtype) {
  CW_CHECK(speech_tower != nullptr, ValueError, "SpeechTextModel: no speech tower");
  speech = register_module("speech", std::move(speech_tower));
  logit_scale = register_parameter("logit_scale", ops::full({}, init_log_scale, dtype), learn_scale);
}

SpeechTextModel::SpeechTextModel(const ConformerConfig& speech_config, double init_log_scale,
                                 bool learn_scale, DType dtype)
    : SpeechTextModel(std::make_shared<Conformer>(speech_config, dtype), init_log_scale, learn_scale, dtype) {
}

Conformer& SpeechTextModel::conformer() {
  auto* c = dynamic_cast<Conformer*>(speech.get());
  CW_CHECK(c != nullptr, Error, "the speech tower is not a Conformer (--model.speech_tower conformer)");
  return *c;
}

}  // namespace cw::models
