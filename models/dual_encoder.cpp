// SpeechTextModel (see dual_encoder.h).
#include "models/dual_encoder.h"

#include "core/ops.h"

namespace cw::models {

SpeechTextModel::SpeechTextModel(const ConformerConfig& speech_config, double init_log_scale,
                                 bool learn_scale, DType dtype) {
  speech = register_module("speech", std::make_shared<Conformer>(speech_config, dtype));
  logit_scale = register_parameter("logit_scale", ops::full({}, init_log_scale, dtype), learn_scale);
}

}  // namespace cw::models
