// TextTransformer (BERT family), see text_transformer.h. The layer follows Hugging Face's
// BertLayer step by step:
//   a = LayerNorm(x + dropout(dense(SelfAttention(x))))        attention.output
//   y = LayerNorm(a + dropout(dense(gelu(dense(a)))))          intermediate, output
#include "models/text_transformer.h"

#include "autograd/functions.h"
#include "core/json_read.h"
#include "nn/attention.h"

namespace cw::models {

BertConfig BertConfig::from_json_file(const std::filesystem::path& path) {
  CW_CHECK(std::filesystem::is_regular_file(path), ValueError, "BertConfig: cannot open ", path.string());
  const std::string where = "BertConfig: " + path.string();
  const Json doc = read_json_file(path, where);
  const JsonReader j(doc, where);
  j.expect(doc.is_object(), "a JSON object");
  BertConfig c;
  // Bounds no BERT comes near, so that products of sizes cannot overflow; the weights file is
  // what bounds memory (SentenceEncoder::load checks the sizes against its tensors).
  auto size = [&](const char* key, int64_t& field, int64_t max) {
    if (j.has(key)) field = j.get_in(key, 1, max);
  };
  size("vocab_size", c.vocab_size, 1 << 24);
  size("hidden_size", c.hidden_size, 1 << 16);
  size("num_hidden_layers", c.num_hidden_layers, 1024);
  size("num_attention_heads", c.num_attention_heads, 1 << 16);
  size("intermediate_size", c.intermediate_size, 1 << 18);
  size("max_position_embeddings", c.max_position_embeddings, 1 << 20);
  size("type_vocab_size", c.type_vocab_size, 1 << 16);
  auto real = [&](const char* key, double& field, double lo, double hi) {
    if (!j.has(key)) return;
    field = j.get<double>(key);
    if (!(field >= lo && field < hi))
      j.at(key).fail("expected a number in [", lo, ", ", hi, "), found ", field);
  };
  real("layer_norm_eps", c.layer_norm_eps, 0, 1);
  real("hidden_dropout_prob", c.hidden_dropout_prob, 0, 1);
  real("attention_probs_dropout_prob", c.attention_probs_dropout_prob, 0, 1);
  c.hidden_act = j.get_or("hidden_act", c.hidden_act);
  if (j.has("hidden_act"))
    j.at("hidden_act")
        .expect(c.hidden_act == "gelu" || c.hidden_act == "gelu_new" || c.hidden_act == "gelu_pytorch_tanh",
                "\"gelu\", \"gelu_new\" or \"gelu_pytorch_tanh\" (the activations supported)");
  if (j.has("position_embedding_type"))
    j.at("position_embedding_type")
        .expect(j.get<std::string>("position_embedding_type") == "absolute",
                "\"absolute\" (the only one supported)");
  CW_CHECK(c.hidden_size % c.num_attention_heads == 0, ValueError, where, ": hidden_size ", c.hidden_size,
           " is not divisible by num_attention_heads ", c.num_attention_heads);
  return c;
}

BertEmbeddings::BertEmbeddings(const BertConfig& c, DType dtype) {
  word_embeddings =
      register_module("word_embeddings", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size, dtype));
  position_embeddings =
      register_module("position_embeddings",
                      std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size, dtype));
  token_type_embeddings = register_module(
      "token_type_embeddings", std::make_shared<nn::Embedding>(c.type_vocab_size, c.hidden_size, dtype));
  LayerNorm = register_module(
      "LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps, true, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.hidden_dropout_prob));
  // HF stores the position ids as a (1, max_positions) buffer; keeping it makes strict loading
  // of HF checkpoints work.
  register_buffer(
      "position_ids",
      ops::arange(0, static_cast<double>(c.max_position_embeddings), 1, DType::I64).view({1, -1}));
}

Variable BertEmbeddings::forward(const Tensor& ids, const Tensor& token_type_ids) const {
  const int64_t T = ids.size(1);
  CW_CHECK(T <= position_embeddings->weight.size(0), ShapeError, "TextTransformer: ", T,
           " tokens exceed max_position_embeddings ", position_embeddings->weight.size(0),
           "; truncate the input");
  // Position and token-type ids live where the token ids do (the embedding tables' device).
  const Tensor pos = ops::arange(0, static_cast<double>(T), 1, DType::I64, ids.device());
  Variable h = word_embeddings->forward(ids) + position_embeddings->forward(pos);  // (B, T, H) + (T, H)
  const Tensor tt =
      token_type_ids.defined() ? token_type_ids : ops::zeros(ids.shape(), DType::I64, ids.device());
  h = h + token_type_embeddings->forward(tt);
  return dropout->forward(LayerNorm->forward(h));
}

BertSelfAttention::BertSelfAttention(const BertConfig& c, DType dtype)
    : num_heads(c.num_attention_heads), dropout_p(c.attention_probs_dropout_prob) {
  query = register_module("query", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, dtype));
  key = register_module("key", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, dtype));
  value = register_module("value", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, dtype));
}

Variable BertSelfAttention::forward(const Variable& x, const Tensor& key_padding_mask) const {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2);
  auto heads = [&](const Variable& t) {
    return ag::transpose(ag::reshape(t, {B, T, num_heads, H / num_heads}), 1, 2);
  };
  Variable ctx =
      nn::scaled_dot_product_attention(heads(query->forward(x)), heads(key->forward(x)),
                                       heads(value->forward(x)), key_padding_mask, Variable(), dropout_p,
                                       is_training());  // (B, heads, T, Dh)
  return ag::reshape(ag::transpose(ctx, 1, 2), {B, T, H});
}

BertResidualOutput::BertResidualOutput(int64_t in, int64_t out, double eps, double p, DType dtype) {
  dense = register_module("dense", std::make_shared<nn::Linear>(in, out, true, dtype));
  LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{out}, eps, true, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
}

Variable BertResidualOutput::forward(const Variable& h, const Variable& residual) const {
  return LayerNorm->forward(dropout->forward(dense->forward(h)) + residual);
}

BertAttention::BertAttention(const BertConfig& c, DType dtype) {
  self = register_module("self", std::make_shared<BertSelfAttention>(c, dtype));
  output = register_module(
      "output", std::make_shared<BertResidualOutput>(c.hidden_size, c.hidden_size, c.layer_norm_eps,
                                                     c.hidden_dropout_prob, dtype));
}

Variable BertAttention::forward(const Variable& x, const Tensor& key_padding_mask) const {
  return output->forward(self->forward(x, key_padding_mask), x);
}

BertIntermediate::BertIntermediate(const BertConfig& c, DType dtype) : tanh_gelu(c.hidden_act != "gelu") {
  dense =
      register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.intermediate_size, true, dtype));
}

Variable BertIntermediate::forward(const Variable& x) const {
  return ag::gelu(dense->forward(x), tanh_gelu ? ops::GeluApprox::Tanh : ops::GeluApprox::None);
}

BertLayer::BertLayer(const BertConfig& c, DType dtype) {
  attention = register_module("attention", std::make_shared<BertAttention>(c, dtype));
  intermediate = register_module("intermediate", std::make_shared<BertIntermediate>(c, dtype));
  output = register_module(
      "output", std::make_shared<BertResidualOutput>(c.intermediate_size, c.hidden_size, c.layer_norm_eps,
                                                     c.hidden_dropout_prob, dtype));
}

Variable BertLayer::forward(const Variable& x, const Tensor& key_padding_mask) const {
  const Variable a = attention->forward(x, key_padding_mask);
  return output->forward(intermediate->forward(a), a);
}

BertEncoder::BertEncoder(const BertConfig& c, DType dtype) {
  layer = register_module("layer", std::make_shared<nn::ModuleList<BertLayer>>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(std::make_shared<BertLayer>(c, dtype));
}

BertPooler::BertPooler(const BertConfig& c, DType dtype) {
  dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, dtype));
}

Variable BertPooler::forward(const Variable& hidden) const {
  return ag::tanh(dense->forward(ag::select(hidden, 1, 0)));
}

TextTransformer::TextTransformer(const BertConfig& c, DType dtype, bool add_pooling_layer) : config(c) {
  embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(c, dtype));
  encoder = register_module("encoder", std::make_shared<BertEncoder>(c, dtype));
  if (add_pooling_layer) pooler = register_module("pooler", std::make_shared<BertPooler>(c, dtype));
}

Variable TextTransformer::forward(const Tensor& input_ids, const Tensor& attention_mask,
                                  const Tensor& token_type_ids,
                                  std::vector<Variable>* all_hidden_states) const {
  CW_CHECK(input_ids.defined() && input_ids.dim() == 2 && input_ids.dtype() == DType::I64, ShapeError,
           "TextTransformer: input_ids must be i64 (batch, tokens), got ", describe(input_ids));
  for (const Tensor* t : {&attention_mask, &token_type_ids})
    CW_CHECK(!t->defined() || t->shape() == input_ids.shape(), ShapeError,
             "TextTransformer: ", t == &attention_mask ? "attention_mask " : "token_type_ids ",
             shape_str(t->shape()), " does not match input_ids ", shape_str(input_ids.shape()));
  // HF's attention_mask marks tokens (1); attention wants the padding (nonzero = ignore).
  const Tensor padding =
      attention_mask.defined() ? nn::padding_or_none(ops::eq(attention_mask, 0.0)) : Tensor();
  Variable h = embeddings->forward(input_ids, token_type_ids);
  if (all_hidden_states) all_hidden_states->assign(1, h);
  for (const auto& layer : *encoder->layer) {
    h = layer->forward(h, padding);
    if (all_hidden_states) all_hidden_states->push_back(h);
  }
  return h;
}

}  // namespace cw::models
