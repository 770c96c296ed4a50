// The Whisper decoder (Radford et al. 2022, sec. 2.3; Hugging Face's WhisperDecoder with its
// parameter names), for transcription: tokens (N, T) -> token embedding + learned positions ->
// pre-LN blocks [causal self-attention, cross-attention over the encoder output, GELU MLP] ->
// final layer norm -> logits through the token embedding (the output projection is tied to it).
// Inference only: step() runs under NoGradGuard and keeps a KV cache, so that each new token costs
// one position, not the whole prefix. Searches over it are in whisper_decode.h. Part of models/.
//
// The cache holds N = B x G sequences: B utterances (encoder outputs) with G hypotheses each
// (greedy G = 1, beam search G = beam). Self-attention keys and values grow by one position per
// step, per sequence; cross-attention keys and values are computed once per utterance and shared
// by its G hypotheses through a broadcast batch dimension, never copied G times.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "models/whisper_encoder.h"

namespace cw::models {

struct WhisperDecoderConfig {
  int64_t vocab_size = 51864;  // tiny.en: 50257 GPT-2 tokens + 106 special + 1501 timestamps
  int64_t d_model = 384, num_heads = 6, num_layers = 4, ffn_dim = 1536;
  int64_t max_positions = 448;  // the longest token sequence, prompt included
  double layer_norm_eps = 1e-5;

  static WhisperDecoderConfig tiny_en();  // the sizes above
  bool operator==(const WhisperDecoderConfig&) const = default;
};

// One pre-LN block: x += self_attn(LN(x)) (causal); x += encoder_attn(LN(x), memory);
// x += fc2(GELU(fc1(LN(x)))). The attentions are WhisperAttention's parameters (q/k/v/out, no key
// bias); the decoder runs them itself, with the cache.
class WhisperDecoderLayer : public nn::Module {
 public:
  WhisperDecoderLayer(const WhisperDecoderConfig& c, DType dtype);
  std::shared_ptr<WhisperAttention> self_attn, encoder_attn;
  std::shared_ptr<nn::LayerNorm> self_attn_layer_norm, encoder_attn_layer_norm, final_layer_norm;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

// The state of incremental decoding (see the file comment).
struct WhisperDecoderCache {
  struct Layer {
    Tensor self_k, self_v;    // (N, H, length, Dh), undefined before the first step
    Tensor cross_k, cross_v;  // (B, 1, H, S, Dh)
  };
  std::vector<Layer> layers;
  int64_t batch = 0;   // B, utterances
  int64_t group = 1;   // G, sequences per utterance
  int64_t length = 0;  // tokens fed so far: the next token's position

  int64_t sequences() const { return batch * group; }
  // The new sequences are the old sequences rows[0], rows[1], ... (repeats allowed), in groups of
  // new_group: beam search reorders (rows from the same utterance), expands after its first step
  // (G 1 -> beam) and drops finished utterances. All rows of a new group must come from one
  // utterance (ValueError otherwise), whose cross-attention keys and values it then shares.
  void keep(const std::vector<int64_t>& rows, int64_t new_group);
};

class WhisperDecoder : public nn::Module {
 public:
  explicit WhisperDecoder(const WhisperDecoderConfig& c, DType dtype = DType::F32);

  // A cache for the encoder output memory (B, S, d_model): every layer's cross-attention keys and
  // values; G = 1, length 0.
  WhisperDecoderCache start(const Tensor& memory) const;
  // Feeds tokens (N, T) i64, N = cache.sequences(), at positions [length, length + T): appends
  // their keys and values and returns the logits (N, T, vocab_size). With T > 1 the new tokens
  // attend causally among themselves (a prompt, or a whole prefix at once).
  Tensor step(const Tensor& tokens, WhisperDecoderCache& cache) const;
  // Without a cache: tokens (B, T), memory (B, S, D) -> logits (B, T, vocab_size).
  Tensor forward(const Tensor& tokens, const Tensor& memory) const;

  WhisperDecoderConfig config;
  std::shared_ptr<nn::Embedding> embed_tokens;     // (vocab, D), also the output projection
  std::shared_ptr<nn::Embedding> embed_positions;  // (max_positions, D), learned
  std::shared_ptr<nn::ModuleList<WhisperDecoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> layer_norm;
};

// ---- weights

// The decoder's state (HF names relative to the decoder: "embed_tokens.weight",
// "layers.0.encoder_attn.q_proj.weight", ...) and configuration.
struct WhisperDecoderWeights {
  WhisperDecoderConfig config;
  std::map<std::string, Tensor> decoder;  // f32
  std::string source;                     // the file read, for messages
};
// From a CTranslate2 Whisper model.bin: decoder/* (float16/32 or int8 weights). The fused
// self-attention q/k/v and cross-attention k/v projections are split (their key bias must be zero);
// the model must be what this decoder computes (pre-norm, GELU, unscaled embeddings, output
// projection tied to the embedding), else ValueError naming the variable.
WhisperDecoderWeights read_whisper_decoder_ctranslate2(const std::filesystem::path& model_bin);
// From a Hugging Face folder (config.json + model.safetensors), names "model.decoder.*"
// (WhisperForConditionalGeneration) or "decoder.*" (WhisperModel).
WhisperDecoderWeights read_whisper_decoder_hf(const std::filesystem::path& dir);
// model.bin when the folder holds one, else model.safetensors.
WhisperDecoderWeights read_whisper_decoder_weights(const std::filesystem::path& dir);

}  // namespace cw::models
