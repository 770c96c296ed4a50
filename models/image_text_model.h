// ImageTextModel: what the image-text experiment trains, as one Module (one checkpoint): the text
// tower, started from MiniLM ("text.*", Hugging Face BERT names), the folder's sentence-transformers
// pooling (MiniLM: mean) and L2 normalization, a linear projection to the frozen image tower's width
// ("proj"), and the learnable logit scale ("logit_scale", 0-d, CLIP/LiT). The frozen image tower is not part
// of it: its embeddings are cached (train/image_tower.h). Part of models/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/sentence_encoder.h"
#include "nn/basic_layers.h"
#include "nn/pooling.h"

namespace cw::models {

class ImageTextModel : public nn::Module {
 public:
  // encoder: the loaded MiniLM (its weights become "text.*"). embed_dim: the image tower's width.
  // train_layers: the top layers that train (-1: all, embeddings included; 0: none); the others,
  // and the embeddings, get requires_grad = false and stay in eval mode (no dropout), so no graph
  // is recorded for them.
  ImageTextModel(const SentenceEncoder& encoder, int64_t embed_dim, int64_t train_layers,
                 double init_log_scale, bool learn_scale);

  // Sentences -> text embeddings (B, embed_dim), not normalized (the loss normalizes).
  Variable embed_text(const std::vector<std::string>& sentences) const;
  // The same without a graph, in batches: (N, embed_dim).
  Tensor encode(const std::vector<std::string>& sentences, int64_t batch_size = 128) const;

  void train(bool on = true) override;

  std::shared_ptr<models::TextTransformer> text;
  std::shared_ptr<nn::Linear> proj;
  Variable logit_scale;  // 0-d
  std::shared_ptr<data::WordPieceTokenizer> tokenizer;
  int64_t max_seq_length = 256;
  int64_t train_layers = -1;
  nn::PoolingModes pooling;  // the sentence-transformers folder's (1_Pooling/config.json)
  bool normalize = true;     // its Normalize module
};

}  // namespace cw::models
