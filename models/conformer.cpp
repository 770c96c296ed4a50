// Conformer speech tower (see conformer.h). The block follows torchaudio 0.13's ConformerLayer
// line by line (tests/models/conformer_test.cpp compares it with torchaudio on
// tests/fixtures/conformer_block.txt); the subsampling and positions follow ESPnet's
// Conv2dSubsampling and PositionalEncoding.
#include "models/conformer.h"

#include <cmath>

#include "autograd/functions.h"
#include "models/text_transformer.h"
#include "nn/activations.h"

namespace cw::models {

ConformerConfig ConformerConfig::small() { return ConformerConfig{}; }

ConformerConfig ConformerConfig::mini() {
  ConformerConfig c;
  c.num_layers = 4;
  c.conv_kernel_size = 15;
  return c;
}

ConformerConfig ConformerConfig::tiny() {
  ConformerConfig c;
  c.n_mels = 10;
  c.d_model = 8;
  c.num_heads = 2;
  c.ffn_dim = 16;
  c.num_layers = 2;
  c.conv_kernel_size = 7;
  c.embed_dim = 6;
  c.dropout = 0.0;
  return c;
}

int64_t subsampled_length(int64_t length) {
  return nn::conv_output_size(nn::conv_output_size(length, 3, 2, 0, 1), 3, 2, 0, 1);
}

Tensor lengths_to_padding_mask(const Tensor& lengths, int64_t max_length) {
  CW_CHECK(lengths.dim() == 1 && lengths.dtype() == DType::I64, ShapeError, "lengths ", describe(lengths),
           " should be (batch,) i64");
  const Tensor t = ops::arange(0, static_cast<double>(max_length), 1, DType::I64, lengths.device());
  return ops::ge(t.view({1, max_length}), lengths.view({-1, 1}));  // (B, T)
}

Tensor sinusoidal_positions(int64_t length, int64_t d_model, DType dtype) {
  CW_CHECK(d_model % 2 == 0, ValueError, "sinusoidal_positions: d_model ", d_model, " must be even");
  std::vector<double> pe(static_cast<size_t>(length * d_model));
  for (int64_t t = 0; t < length; ++t) {
    for (int64_t i = 0; i < d_model; i += 2) {
      // ESPnet's div_term: exp(i * -(log(10000) / d)), the same rounding as the reference.
      const double angle =
          static_cast<double>(t) * std::exp(static_cast<double>(i) * -(std::log(10000.0) / d_model));
      pe[t * d_model + i] = std::sin(angle);
      pe[t * d_model + i + 1] = std::cos(angle);
    }
  }
  return ops::from_vector(pe, {length, d_model}).to(dtype);
}

// ---------------------------------------------------------------- subsampling

Conv2dSubsampling::Conv2dSubsampling(int64_t n_mels, int64_t d, double p, DType dtype) : d_model(d) {
  const ops::Conv2dOptions stride2{{2, 2}, {0, 0}, {1, 1}, 1};
  const int64_t f_out = subsampled_length(n_mels);  // the frequency axis shrinks as time does
  CW_CHECK(f_out >= 1, ValueError, "Conv2dSubsampling: n_mels ", n_mels, " < 7 leaves no frequency bins");
  conv1 = register_module(
      "conv1", std::make_shared<nn::Conv2d>(1, d, std::array<int64_t, 2>{3, 3}, stride2, true, dtype));
  conv2 = register_module(
      "conv2", std::make_shared<nn::Conv2d>(d, d, std::array<int64_t, 2>{3, 3}, stride2, true, dtype));
  out = register_module("out", std::make_shared<nn::Linear>(d * f_out, d, true, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
}

Variable Conv2dSubsampling::forward(const Variable& features) const {
  const int64_t B = features.size(0);
  Variable h = ag::relu(conv1->forward(ag::unsqueeze(features, 1)));  // (B, C, T/2, F/2)
  h = ag::relu(conv2->forward(h));                                    // (B, C, T', F')
  const int64_t T = h.size(2), CF = h.size(1) * h.size(3);
  // Channels outermost, then frequency, per frame (ESPnet: x.transpose(1, 2).view(b, t, c * f)).
  h = out->forward(ag::reshape(ag::transpose(h, 1, 2), {B, T, CF}));  // (B, T', D)
  // ESPnet's PositionalEncoding: x * sqrt(d) + pe (the embedding scale of Vaswani et al.).
  h = h * std::sqrt(static_cast<double>(d_model)) +
      Variable(sinusoidal_positions(T, d_model, h.dtype()).to(h.device()));
  return dropout->forward(h);
}

// ---------------------------------------------------------------- feed-forward and conv module

ConformerFeedForward::ConformerFeedForward(const ConformerConfig& c, DType dtype) {
  layer_norm = register_module(
      "layer_norm", std::make_shared<nn::LayerNorm>(Shape{c.d_model}, c.layer_norm_eps, true, dtype));
  linear1 = register_module("linear1", std::make_shared<nn::Linear>(c.d_model, c.ffn_dim, true, dtype));
  linear2 = register_module("linear2", std::make_shared<nn::Linear>(c.ffn_dim, c.d_model, true, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

Variable ConformerFeedForward::forward(const Variable& x) const {
  const Variable h = dropout->forward(ag::silu(linear1->forward(layer_norm->forward(x))));
  return dropout->forward(linear2->forward(h));
}

ConformerConvModule::ConformerConvModule(const ConformerConfig& c, DType dtype) {
  const int64_t D = c.d_model, k = c.conv_kernel_size;
  layer_norm =
      register_module("layer_norm", std::make_shared<nn::LayerNorm>(Shape{D}, c.layer_norm_eps, true, dtype));
  pointwise_conv1 = register_module(
      "pointwise_conv1", std::make_shared<nn::Conv1d>(D, 2 * D, 1, ops::Conv1dOptions{}, true, dtype));
  depthwise_conv = register_module(
      "depthwise_conv",
      std::make_shared<nn::Conv1d>(D, D, k, ops::Conv1dOptions{1, nn::same_padding(k), 1, D}, true, dtype));
  batch_norm = register_module("batch_norm", std::make_shared<nn::BatchNorm1d>(D, 1e-5, 0.1, true, dtype));
  pointwise_conv2 = register_module("pointwise_conv2",
                                    std::make_shared<nn::Conv1d>(D, D, 1, ops::Conv1dOptions{}, true, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

Variable ConformerConvModule::forward(const Variable& x, const Tensor& padding_mask) {
  // Convolutions run channels-first: (B, T, D) -> (B, D, T).
  Variable h = ag::transpose(layer_norm->forward(x), 1, 2);
  h = nn::glu(pointwise_conv1->forward(h), 1);  // (B, 2D, T) -> (B, D, T)
  if (padding_mask.defined()) {
    h = ag::masked_fill(h, padding_mask.unsqueeze(1), 0.0);  // (B, 1, T) broadcasts over channels
  }
  h = ag::silu(batch_norm->forward(depthwise_conv->forward(h), padding_mask));
  h = dropout->forward(pointwise_conv2->forward(h));
  return ag::transpose(h, 1, 2);  // (B, T, D)
}

// ---------------------------------------------------------------- block

ConformerBlock::ConformerBlock(const ConformerConfig& c, DType dtype) {
  auto layer_norm = [&] {
    return std::make_shared<nn::LayerNorm>(Shape{c.d_model}, c.layer_norm_eps, true, dtype);
  };
  ffn1 = register_module("ffn1", std::make_shared<ConformerFeedForward>(c, dtype));
  self_attn_layer_norm = register_module("self_attn_layer_norm", layer_norm());
  self_attn = register_module(
      "self_attn", std::make_shared<nn::MultiHeadAttention>(c.d_model, c.num_heads, c.dropout, true, dtype));
  self_attn_dropout = register_module("self_attn_dropout", std::make_shared<nn::Dropout>(c.dropout));
  conv_module = register_module("conv_module", std::make_shared<ConformerConvModule>(c, dtype));
  ffn2 = register_module("ffn2", std::make_shared<ConformerFeedForward>(c, dtype));
  final_layer_norm = register_module("final_layer_norm", layer_norm());
}

Variable ConformerBlock::forward(const Variable& x_in, const Tensor& padding_mask) {
  // Macaron: two half-step feed-forwards around attention and convolution (Gulati et al. eq. 1).
  Variable x = ffn1->forward(x_in) * 0.5 + x_in;
  x = self_attn_dropout->forward(self_attn->forward(self_attn_layer_norm->forward(x), padding_mask)) + x;
  x = conv_module->forward(x, padding_mask) + x;
  x = ffn2->forward(x) * 0.5 + x;
  return final_layer_norm->forward(x);
}

// ---------------------------------------------------------------- tower

Conformer::Conformer(const ConformerConfig& c, DType dtype) : config(c) {
  CW_CHECK(c.d_model > 0 && c.num_heads > 0 && c.d_model % c.num_heads == 0 && c.d_model % 2 == 0, ValueError,
           "Conformer: d_model ", c.d_model, " must be even and divisible by num_heads ", c.num_heads);
  CW_CHECK(c.num_layers >= 1 && c.ffn_dim >= 1 && c.embed_dim >= 1, ValueError,
           "Conformer: num_layers, ffn_dim and embed_dim must be positive");
  subsampling = register_module("subsampling",
                                std::make_shared<Conv2dSubsampling>(c.n_mels, c.d_model, c.dropout, dtype));
  layers = register_module("layers", std::make_shared<nn::ModuleList<ConformerBlock>>());
  for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(std::make_shared<ConformerBlock>(c, dtype));
  proj = register_module("proj", std::make_shared<nn::Linear>(c.d_model, c.embed_dim, true, dtype));
}

ConformerFrames Conformer::forward_frames(const Variable& features, const Tensor& lengths) {
  CW_CHECK(features.dim() == 3 && features.size(2) == config.n_mels, ShapeError, "Conformer: features ",
           shape_str(features.shape()), " should be (batch, frames, ", config.n_mels, ")");
  const int64_t B = features.size(0), T = features.size(1);
  CW_CHECK(B >= 1, ShapeError, "Conformer: empty batch");
  CW_CHECK(lengths.dim() == 1 && lengths.size(0) == B && lengths.dtype() == DType::I64, ShapeError,
           "Conformer: lengths ", describe(lengths), " should be (", B, ",) i64");
  const std::vector<int64_t> len = lengths.to_vector<int64_t>();
  std::vector<int64_t> out_len(len.size());
  for (size_t b = 0; b < len.size(); ++b) {
    CW_CHECK(len[b] <= T && subsampled_length(len[b]) >= 1, ValueError, "Conformer: utterance ", b,
             " has length ", len[b], "; lengths must be in [7, ", T, "] (7 frames make one output frame)");
    out_len[b] = subsampled_length(len[b]);
  }
  ConformerFrames out;
  out.lengths = ops::from_vector(out_len, {B});
  Variable h = subsampling->forward(features);  // (B, T', D)
  out.padding_mask = lengths_to_padding_mask(out.lengths, h.size(1)).to(h.device());
  for (auto& layer : *layers) h = layer->forward(h, out.padding_mask);
  // Padded frames hold values computed from real ones; zero them so no consumer mistakes them.
  out.hidden = ag::masked_fill(h, out.padding_mask.unsqueeze(-1), 0.0);
  return out;
}

Variable Conformer::forward(const Variable& features, const Tensor& lengths) {
  const ConformerFrames f = forward_frames(features, lengths);
  return proj->forward(masked_mean_pool(f.hidden, ops::eq(f.padding_mask, 0.0)));  // (B, embed_dim)
}

}  // namespace cw::models
