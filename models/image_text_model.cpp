// ImageTextModel (see image_text_model.h).
#include "models/image_text_model.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"

namespace cw::models {

ImageTextModel::ImageTextModel(const SentenceEncoder& encoder, int64_t embed_dim, int64_t train_layers_,
                               double init_log_scale, bool learn_scale)
    : tokenizer(encoder.tokenizer),
      max_seq_length(encoder.max_seq_length),
      train_layers(train_layers_),
      pooling(encoder.pooling),
      normalize(encoder.normalize) {
  const int64_t layers = static_cast<int64_t>(encoder.model->encoder->layer->size());
  CW_CHECK(train_layers >= -1 && train_layers <= layers, ValueError, "--model.text_train_layers (",
           train_layers, ") must be in [-1, ", layers, "]: the text tower has ", layers, " layers");
  text = register_module("text", encoder.model);
  proj = register_module("proj", std::make_shared<nn::Linear>(encoder.embedding_dim(), embed_dim));
  logit_scale = register_parameter("logit_scale", ops::full({}, init_log_scale), learn_scale);
  // The BERT pooler (absent from some checkpoints) is unused by sentence pooling.
  if (text->pooler) text->pooler->requires_grad_(false);
  if (train_layers >= 0) {
    text->embeddings->requires_grad_(false);
    for (int64_t i = 0; i < layers - train_layers; ++i)
      (*text->encoder->layer)[static_cast<size_t>(i)].requires_grad_(false);
  }
  train(true);
}

void ImageTextModel::train(bool on) {
  nn::Module::train(on);
  if (train_layers < 0 || !on) return;
  // Frozen parts run deterministically: dropout there would only add noise to fixed features.
  const int64_t layers = static_cast<int64_t>(text->encoder->layer->size());
  text->embeddings->eval();
  for (int64_t i = 0; i < layers - train_layers; ++i) (*text->encoder->layer)[static_cast<size_t>(i)].eval();
}

Variable ImageTextModel::embed_text(const std::vector<std::string>& sentences) const {
  data::EncodeOptions eo;
  eo.max_length = max_seq_length;
  const data::BatchEncoding b = tokenizer->encode_batch(sentences, eo);
  // Tokens are made on the host and sent to where the model is.
  const Device dev = device();
  const Tensor mask = b.attention_mask.to(dev);
  const Variable hidden = text->forward(b.input_ids.to(dev), mask, b.token_type_ids.to(dev));  // (B, T, H)
  // MiniLM's own sentence embedding (mean pool + L2), then the projection to the image width.
  const Variable pooled = nn::pool(hidden, mask, pooling);              // (B, H x modes)
  return proj->forward(normalize ? nn::l2_normalize(pooled) : pooled);  // (B, D)
}

Tensor ImageTextModel::encode(const std::vector<std::string>& sentences, int64_t batch_size) const {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (size_t at = 0; at < sentences.size(); at += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(sentences.size(), at + static_cast<size_t>(batch_size));
    parts.push_back(embed_text({sentences.begin() + static_cast<std::ptrdiff_t>(at),
                                sentences.begin() + static_cast<std::ptrdiff_t>(end)})
                        .data()
                        .to(Device::cpu()));  // the metrics run on the host
  }
  CW_CHECK(!parts.empty(), ValueError, "ImageTextModel::encode: no sentences");
  return parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
}

}  // namespace cw::models
