// Conformer speech tower (Gulati et al. 2020, "Conformer: Convolution-augmented Transformer for
// Speech Recognition"): log-mel frames (B, T, n_mels) -> Conv2d subsampling (4x in time, as
// ESPnet's Conv2dSubsampling) -> sinusoidal positions -> Conformer blocks (as torchaudio's
// ConformerLayer) -> masked mean pooling -> a projection to the text tower's dimension. Padding
// is masked everywhere, so an utterance's output does not depend on its batch. Part of models/.
//
// Positions: absolute sinusoids added once after subsampling (ESPnet's abs_pos), not the paper's
// Transformer-XL relative encoding. The depthwise conv already gives every block learned
// relative-position mixing (Gulati et al. sec. 2.2), utterances here are short (intents, keywords:
// a few hundred frames), and the blocks stay exactly torchaudio's ConformerLayer, so they are
// checked against it as they are; relative attention would add a (T, 2T-1) score term per layer
// and a module with no reference installed to check it against.
#pragma once

#include "models/speech_tower.h"
#include "nn/attention.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/module_list.h"

namespace cw::models {

struct ConformerConfig {
  int64_t n_mels = 80;  // input features per frame
  int64_t d_model = 144, num_heads = 4, ffn_dim = 576, num_layers = 16;
  int64_t conv_kernel_size = 31;  // depthwise conv, odd for symmetric 'same' padding
  int64_t embed_dim = 384;        // the projection head: all-MiniLM-L6-v2's sentence dimension
  double dropout = 0.1;           // every dropout of the tower, as torchaudio's single rate
  double layer_norm_eps = 1e-5;   // PyTorch's LayerNorm default (torchaudio's)

  // Conformer (S) of Gulati et al. 2020, Table 1 (d 144, 16 layers, 4 heads, kernel 32 -> 31
  // here so that 'same' padding is symmetric): 8,409,408 parameters with the 384-d head (blocks
  // 7.77M, subsampling 0.58M, head 0.06M); the paper's 10.3M also counts its LSTM decoder.
  static ConformerConfig small();
  // The small model's widths with 4 blocks and a kernel of 15: the default job's tower, sized so
  // that the miniature experiment trains in minutes on 2 cores (about 2.6M parameters).
  static ConformerConfig mini();
  // A few thousand parameters, for gradient checks and reference fixtures.
  static ConformerConfig tiny();
};

// Frame count after the subsampling for an input of `length` frames: two 3x3 convs of stride 2
// without padding, floor((L - 3) / 2) + 1 each, i.e. ((L - 1) // 2 - 1) // 2.
int64_t subsampled_length(int64_t length);
// (B) i64 lengths -> (B, T) i64, 1 at padded frames (t >= length): PyTorch's key_padding_mask.
Tensor lengths_to_padding_mask(const Tensor& lengths, int64_t max_length);
// The sinusoidal table of Vaswani et al. 2017, sec. 3.5: pe[t, 2i] = sin(t / 10000^(2i/d)),
// pe[t, 2i+1] = cos(...). (T, d).
Tensor sinusoidal_positions(int64_t length, int64_t d_model, DType dtype);

// ESPnet's Conv2dSubsampling: (B, T, F) as a one-channel image -> Conv2d(1, C, 3, stride 2) ->
// ReLU -> Conv2d(C, C, 3, stride 2) -> ReLU -> (B, T', C * F') -> Linear -> (B, T', d_model),
// then x * sqrt(d_model) + positions and dropout (ESPnet's PositionalEncoding). C = d_model.
// A real output frame t' sees input frames 4t' .. 4t' + 6 only, all real for t' < T'(length),
// so padding never reaches real frames here and no mask is needed.
class Conv2dSubsampling : public nn::Module {
 public:
  Conv2dSubsampling(int64_t n_mels, int64_t d_model, double dropout, DType dtype);
  Variable forward(const Variable& features) const;  // (B, T, F) -> (B, T', d_model)
  int64_t d_model;
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::Linear> out;
  std::shared_ptr<nn::Dropout> dropout;
};

// torchaudio's _FeedForwardModule: LayerNorm -> Linear -> SiLU -> Dropout -> Linear -> Dropout.
class ConformerFeedForward : public nn::Module {
 public:
  ConformerFeedForward(const ConformerConfig& c, DType dtype);
  Variable forward(const Variable& x) const;  // (B, T, D) -> (B, T, D)
  std::shared_ptr<nn::LayerNorm> layer_norm;
  std::shared_ptr<nn::Linear> linear1, linear2;
  std::shared_ptr<nn::Dropout> dropout;
};

// The convolution module (Gulati et al. sec. 2.2, Fig. 2), as torchaudio's _ConvolutionModule
// (biases on all three convs, BatchNorm1d): LayerNorm -> pointwise conv (D -> 2D) -> GLU over
// channels -> depthwise conv (kernel k, 'same') -> BatchNorm -> Swish -> pointwise conv ->
// dropout. Two additions for padding, which torchaudio lacks: padded frames are zeroed in front
// of the depthwise conv (so they reach no real frame within k/2 of the end, exactly as the conv's
// own zero padding does for an utterance alone), and BatchNorm's statistics count real frames only.
class ConformerConvModule : public nn::Module {
 public:
  ConformerConvModule(const ConformerConfig& c, DType dtype);
  // x (B, T, D), padding_mask (B, T) nonzero at padding or undefined -> (B, T, D)
  Variable forward(const Variable& x, const Tensor& padding_mask);
  std::shared_ptr<nn::LayerNorm> layer_norm;
  std::shared_ptr<nn::Conv1d> pointwise_conv1, depthwise_conv, pointwise_conv2;
  std::shared_ptr<nn::BatchNorm1d> batch_norm;
  std::shared_ptr<nn::Dropout> dropout;
};

// One Conformer block (Gulati et al. eq. 1), as torchaudio's ConformerLayer:
//   x = x + 1/2 FFN1(x);  x = x + Dropout(MHSA(LN(x)));  x = x + Conv(x);  x = x + 1/2 FFN2(x);
//   y = LN(x)
// Names are torchaudio's where they are words (ffn1, self_attn_layer_norm, conv_module,
// final_layer_norm) and ours where torchaudio has nn.Sequential indices.
class ConformerBlock : public nn::Module {
 public:
  ConformerBlock(const ConformerConfig& c, DType dtype);
  // x (B, T, D); padding_mask (B, T) nonzero at padding, or undefined for none. -> (B, T, D)
  Variable forward(const Variable& x, const Tensor& padding_mask = Tensor());
  std::shared_ptr<ConformerFeedForward> ffn1, ffn2;
  std::shared_ptr<nn::LayerNorm> self_attn_layer_norm, final_layer_norm;
  std::shared_ptr<nn::MultiHeadAttention> self_attn;
  std::shared_ptr<nn::Dropout> self_attn_dropout;
  std::shared_ptr<ConformerConvModule> conv_module;
};

// The frame-level output of the tower.
struct ConformerFrames {
  Variable hidden;      // (B, T', D), zero at padded frames
  Tensor lengths;       // (B) i64, real frames per utterance after subsampling
  Tensor padding_mask;  // (B, T') i64, 1 at padded frames
};

class Conformer : public SpeechTower {
 public:
  explicit Conformer(const ConformerConfig& c, DType dtype = DType::F32);
  // features (B, T, n_mels) (log-mel frames; values past an utterance's length are ignored),
  // lengths (B) i64 in [7, T] (7 input frames make one output frame). Not const: BatchNorm
  // updates its running statistics in training mode.
  ConformerFrames forward_frames(const Variable& features, const Tensor& lengths);
  // The utterance embedding: proj(masked mean of the frames) (B, embed_dim), not normalized
  // (the contrastive loss normalizes both towers).
  Variable forward(const Variable& features, const Tensor& lengths);
  Variable embed(const Variable& features, const Tensor& lengths) override {
    return forward(features, lengths);
  }

  ConformerConfig config;
  std::shared_ptr<Conv2dSubsampling> subsampling;
  std::shared_ptr<nn::ModuleList<ConformerBlock>> layers;
  std::shared_ptr<nn::Linear> proj;
};

}  // namespace cw::models
