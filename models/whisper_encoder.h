// The Whisper encoder (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak
// Supervision", sec. 2.3), as Hugging Face's WhisperEncoder with its parameter names:
// log-mel (B, T, n_mels) -> conv1 (k 3) + GELU -> conv2 (k 3, stride 2) + GELU -> + sinusoidal
// positions (a stored table) -> pre-LN transformer blocks -> final layer norm -> (B, T', d).
// And WhisperSpeechTower: the encoder with masked mean pooling and a projection to the text
// tower's dimension, the pretrained speech tower of the speech-text experiment. Part of models/.
//
// Lengths. Whisper is trained on 30 s windows (3000 frames, 1500 positions). Here it also runs on
// an utterance's own frames (positions sliced to T'), and on padded batches: the mel frames past
// a row's length and the conv1 outputs past it are zeroed (exactly the zero padding conv1/conv2
// see for the utterance alone), attention ignores padded keys, pooling counts real frames only.
// So an utterance gives the same embedding alone as inside any padded batch (tested).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "core/json_read.h"
#include "core/safetensors.h"
#include "models/speech_tower.h"
#include "nn/basic_layers.h"
#include "nn/conv.h"
#include "nn/module_list.h"

namespace cw::models {

struct WhisperEncoderConfig {
  int64_t n_mels = 80;
  int64_t d_model = 384, num_heads = 6, num_layers = 4, ffn_dim = 1536;
  int64_t max_positions = 1500;  // 30 s at 50 positions per second
  double layer_norm_eps = 1e-5;

  static WhisperEncoderConfig tiny();  // tiny / tiny.en: the sizes above
  bool operator==(const WhisperEncoderConfig&) const = default;
};

// Whisper's position table (whisper/model.py sinusoids): [sin(t w_i) | cos(t w_i)], halves not
// interleaved, w_i = 10000^(-i / (C/2 - 1)). (length, channels). The initial value of
// embed_positions; checkpoints store the same table.
Tensor whisper_sinusoids(int64_t length, int64_t channels, DType dtype);

// Positions after the stem for T mel frames: conv2 (k 3, stride 2, padding 1) gives ceil(T / 2).
inline int64_t whisper_positions(int64_t mel_frames) { return (mel_frames + 1) / 2; }

// HF's WhisperAttention for self-attention: q/k/v/out projections, no bias on k_proj (Whisper's
// key projection has none), 1/sqrt(d_head) scaling.
class WhisperAttention : public nn::Module {
 public:
  WhisperAttention(int64_t d_model, int64_t num_heads, DType dtype);
  // x (B, T, D), key_padding_mask (B, T) nonzero at padding or undefined -> (B, T, D)
  Variable forward(const Variable& x, const Tensor& key_padding_mask) const;
  int64_t num_heads;
  std::shared_ptr<nn::Linear> q_proj, k_proj, v_proj, out_proj;
};

// One pre-LN block: x = x + attn(LN(x)); x = x + fc2(GELU(fc1(LN(x)))).
class WhisperEncoderLayer : public nn::Module {
 public:
  WhisperEncoderLayer(const WhisperEncoderConfig& c, DType dtype);
  Variable forward(const Variable& x, const Tensor& key_padding_mask) const;  // (B, T, D) -> (B, T, D)
  std::shared_ptr<WhisperAttention> self_attn;
  std::shared_ptr<nn::LayerNorm> self_attn_layer_norm, final_layer_norm;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

class WhisperEncoder : public nn::Module {
 public:
  explicit WhisperEncoder(const WhisperEncoderConfig& c, DType dtype = DType::F32);

  // The stem: mel (B, T, n_mels), lengths (B) i64 in [1, T] mel frames -> (B, T', D) with
  // positions added, T' = whisper_positions(T) <= max_positions.
  Variable embed_frames(const Variable& mel, const Tensor& lengths) const;
  // Blocks [first, last) on hidden states (B, T', D) with their key padding mask (B, T').
  Variable run_layers(Variable h, const Tensor& padding_mask, int64_t first, int64_t last) const;
  // Everything: stem, all blocks, final layer norm. (B, T', D), padded frames zeroed.
  Variable forward(const Variable& mel, const Tensor& lengths) const;

  WhisperEncoderConfig config;
  std::shared_ptr<nn::Conv1d> conv1, conv2;
  std::shared_ptr<nn::Embedding> embed_positions;  // (max_positions, D), frozen in Whisper
  std::shared_ptr<nn::ModuleList<WhisperEncoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> layer_norm;
};

// Where the speech tower's input starts.
enum class WhisperInput {
  Mel,     // log-mel frames: the whole encoder runs every step
  Hidden,  // hidden states after the frozen lower blocks, computed once (see frozen_prefix)
};

// The speech tower: encoder -> masked mean over real positions -> proj (D -> embed_dim).
// train_layers K: the top K blocks, the final layer norm and proj train; the stem and the lower
// blocks are frozen (requires_grad false, so they keep no activations).
class WhisperSpeechTower : public SpeechTower {
 public:
  WhisperSpeechTower(const WhisperEncoderConfig& c, int64_t embed_dim, int64_t train_layers,
                     WhisperInput input, DType dtype = DType::F32);

  // Input per `input`: Mel: (B, T, n_mels) with lengths in mel frames; Hidden: (B, T', D) with
  // lengths in positions. -> (B, embed_dim)
  Variable embed(const Variable& features, const Tensor& lengths) override;
  int64_t max_input_frames() const override {
    return input == WhisperInput::Mel ? 2 * encoder->config.max_positions : encoder->config.max_positions;
  }
  // The frozen part, for the cache: mel (B, T, n_mels) -> hidden states after the lower
  // num_layers - train_layers blocks (B, T', D), padded frames zeroed; no graph is recorded.
  Tensor frozen_prefix(const Tensor& mel, const Tensor& lengths) const;
  // Mel lengths -> position lengths.
  static Tensor position_lengths(const Tensor& mel_lengths);
  int64_t first_trained_layer() const { return encoder->config.num_layers - train_layers; }

  int64_t train_layers;
  WhisperInput input;
  // false: embed returns the pooled encoder features (B, d_model) without proj, for fitting the
  // projection in closed form (eval --baseline lstsq).
  bool project = true;
  std::shared_ptr<WhisperEncoder> encoder;
  std::shared_ptr<nn::Linear> proj;
};

// ---- weights

// The encoder's state (HF names relative to the encoder: "conv1.weight", "layers.0.fc1.bias",
// ...) and configuration from a CTranslate2 Whisper model.bin (float16/32 or int8 weights; the
// fused q/k/v projection is split, its key bias must be zero as Whisper's key has none).
struct WhisperWeights {
  WhisperEncoderConfig config;
  std::map<std::string, Tensor> encoder;  // f32
  std::string source;                     // the file read, for messages and logs
};
WhisperWeights read_whisper_ctranslate2(const std::filesystem::path& model_bin);
// The same from a Hugging Face checkpoint folder (config.json + model.safetensors), names
// "model.encoder.*" (WhisperForConditionalGeneration) or "encoder.*" (WhisperModel).
WhisperWeights read_whisper_hf(const std::filesystem::path& dir);
// The mel bins a Whisper folder's encoder reads (conv1's input channels), without loading it.
int64_t whisper_num_mel_bins(const std::filesystem::path& dir);
// A folder holding model.bin (CTranslate2) or model.safetensors (Hugging Face): whichever is there.
WhisperWeights read_whisper_weights(const std::filesystem::path& dir);

// A Hugging Face Whisper folder opened for one side's tensors, what read_whisper_hf and
// read_whisper_decoder_hf (whisper_decoder.h) share. open_whisper_hf_folder parses
// dir/config.json and hands it to read_config (which reads and checks that side's sizes) before it
// opens dir/model.safetensors, then finds the side's prefix: "model.<side>."
// (WhisperForConditionalGeneration) or "<side>." (WhisperModel), whichever holds <prefix><probe>;
// a ValueError naming both when neither does.
struct WhisperHfFolder {
  std::filesystem::path config_path, weights_path;
  SafetensorsFile file;
  std::string prefix;  // "model.encoder.", "decoder.", ...
  // ValueError unless the file holds tensor <prefix><name> of `shape` (what config.json declares),
  // checked before anything of the declared sizes is built.
  void expect(const std::string& name, const Shape& shape) const;
  // Every tensor under the prefix, named relative to it, as f32.
  std::map<std::string, Tensor> load_side() const;
};
WhisperHfFolder open_whisper_hf_folder(const std::filesystem::path& dir, const std::string& side,
                                       const std::string& probe,
                                       const std::function<void(const JsonReader&)>& read_config);

}  // namespace cw::models
