// TextTransformer: the BERT family encoder (Devlin et al. 2019) with module names equal to the
// Hugging Face checkpoint's ("embeddings.word_embeddings.weight",
// "encoder.layer.0.attention.self.query.weight", ...), so a BertModel safetensors file loads by
// name with no rename table. Configured from the model's config.json. Post-LN layers, GELU.
// Part of models/.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "nn/basic_layers.h"
#include "nn/module_list.h"
#include "nn/pooling.h"

namespace cw::models {

// The fields of a Hugging Face BertConfig that change the computation.
struct BertConfig {
  int64_t vocab_size = 30522, hidden_size = 384, num_hidden_layers = 6, num_attention_heads = 12;
  int64_t intermediate_size = 1536, max_position_embeddings = 512, type_vocab_size = 2;
  double layer_norm_eps = 1e-12, hidden_dropout_prob = 0.1, attention_probs_dropout_prob = 0.1;
  std::string hidden_act = "gelu";  // "gelu" (erf form, as HF) or "gelu_new"/"gelu_pytorch_tanh"
  // Reads config.json; a missing file, bad JSON, or an unsupported value (e.g. another
  // position_embedding_type) is a ValueError naming the file and the key.
  static BertConfig from_json_file(const std::filesystem::path& path);
};

// word + position + token-type embeddings, then LayerNorm and dropout.
class BertEmbeddings : public nn::Module {
 public:
  BertEmbeddings(const BertConfig& c, DType dtype);
  // ids (B, T) i64; token_type_ids (B, T) or undefined (all zeros). -> (B, T, H)
  Variable forward(const Tensor& input_ids, const Tensor& token_type_ids) const;
  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<nn::LayerNorm> LayerNorm;  // NOLINT: the checkpoint's name
  std::shared_ptr<nn::Dropout> dropout;
};

// One post-LN encoder layer, split into the checkpoint's sub-modules.
class BertSelfAttention : public nn::Module {
 public:
  BertSelfAttention(const BertConfig& c, DType dtype);
  Variable forward(const Variable& x, const Tensor& key_padding_mask) const;  // (B, T, H) -> (B, T, H)
  int64_t num_heads;
  double dropout_p;
  std::shared_ptr<nn::Linear> query, key, value;
};
// dense -> dropout -> residual add -> LayerNorm (used after attention and after the FFN).
class BertResidualOutput : public nn::Module {
 public:
  BertResidualOutput(int64_t in, int64_t out, double eps, double dropout, DType dtype);
  Variable forward(const Variable& h, const Variable& residual) const;
  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;  // NOLINT: the checkpoint's name
  std::shared_ptr<nn::Dropout> dropout;
};
class BertAttention : public nn::Module {
 public:
  BertAttention(const BertConfig& c, DType dtype);
  Variable forward(const Variable& x, const Tensor& key_padding_mask) const;
  std::shared_ptr<BertSelfAttention> self;
  std::shared_ptr<BertResidualOutput> output;
};
class BertIntermediate : public nn::Module {
 public:
  BertIntermediate(const BertConfig& c, DType dtype);
  Variable forward(const Variable& x) const;
  bool tanh_gelu;
  std::shared_ptr<nn::Linear> dense;
};
class BertLayer : public nn::Module {
 public:
  BertLayer(const BertConfig& c, DType dtype);
  Variable forward(const Variable& x, const Tensor& key_padding_mask) const;
  std::shared_ptr<BertAttention> attention;
  std::shared_ptr<BertIntermediate> intermediate;
  std::shared_ptr<BertResidualOutput> output;
};
class BertEncoder : public nn::Module {
 public:
  BertEncoder(const BertConfig& c, DType dtype);
  std::shared_ptr<nn::ModuleList<BertLayer>> layer;
};
// tanh(dense(h[:, 0])): BertModel's pooler. Kept so that checkpoints that have one load strictly;
// sentence embeddings use the sentence-transformers pooling instead (nn/pooling.h).
class BertPooler : public nn::Module {
 public:
  BertPooler(const BertConfig& c, DType dtype);
  Variable forward(const Variable& hidden) const;
  std::shared_ptr<nn::Linear> dense;
};

class TextTransformer : public nn::Module {
 public:
  // add_pooling_layer (Hugging Face's BertModel argument): whether the model has `pooler`;
  // checkpoints saved without one (BertModel(add_pooling_layer=False), many sentence-transformers
  // models) load strictly only into a model without one.
  explicit TextTransformer(const BertConfig& c, DType dtype = DType::F32, bool add_pooling_layer = true);
  // input_ids, attention_mask (1 = token, 0 = padding) and token_type_ids: (B, T) i64; the last
  // two may be undefined (all ones / all zeros). Returns the last hidden state (B, T, H); if
  // all_hidden_states is given it receives the embedding output and every layer's output
  // (num_layers + 1 entries, as HF's output_hidden_states).
  Variable forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(),
                   const Tensor& token_type_ids = Tensor(),
                   std::vector<Variable>* all_hidden_states = nullptr) const;

  BertConfig config;
  std::shared_ptr<BertEmbeddings> embeddings;
  std::shared_ptr<BertEncoder> encoder;
  std::shared_ptr<BertPooler> pooler;  // null without add_pooling_layer
};

// The poolings moved to nn/pooling.h; these names keep the towers' and trainers' calls as they were.
using nn::l2_normalize;
using nn::masked_mean_pool;

}  // namespace cw::models
