// AsrModel (see asr_model.h).
#include "models/asr_model.h"

#include "autograd/functions.h"

namespace cw::models {

AsrModel::AsrModel(const ConformerConfig& c, int64_t vocab_size) {
  speech = register_module("speech", std::make_shared<Conformer>(c));
  head = register_module("head", std::make_shared<nn::Linear>(c.d_model, vocab_size));
}

std::pair<Variable, Tensor> AsrModel::log_probs(const Variable& features, const Tensor& lengths) {
  const ConformerFrames f = speech->forward_frames(features, lengths);
  const Variable lp = ag::log_softmax(head->forward(f.hidden), -1);  // (B, T', V)
  return {ag::transpose(lp, 0, 1), f.lengths};
}

}  // namespace cw::models
