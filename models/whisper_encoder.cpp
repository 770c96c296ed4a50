// The Whisper encoder and speech tower (see whisper_encoder.h). The forward pass follows Hugging
// Face's WhisperEncoder (transformers 4.x modeling_whisper.py) line by line; the CTranslate2 name
// map follows ct2's TransformerEncoderSpec as its Whisper converter fills it. Checked against
// CTranslate2's Whisper.encode and HF on fixtures (tests/models/whisper_encoder_test.cpp).
#include "models/whisper_encoder.h"

#include <cmath>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ctranslate2.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "models/conformer.h"
#include "models/text_transformer.h"
#include "nn/attention.h"

namespace cw::models {

WhisperEncoderConfig WhisperEncoderConfig::tiny() { return WhisperEncoderConfig{}; }

Tensor whisper_sinusoids(int64_t length, int64_t channels, DType dtype) {
  CW_CHECK(channels % 2 == 0 && channels >= 4, ValueError, "whisper_sinusoids: channels ", channels,
           " must be even and >= 4");
  const int64_t half = channels / 2;
  const double step = std::log(10000.0) / static_cast<double>(half - 1);
  std::vector<double> pe(static_cast<size_t>(length * channels));
  for (int64_t t = 0; t < length; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(t) * std::exp(-step * static_cast<double>(i));
      pe[t * channels + i] = std::sin(angle);
      pe[t * channels + half + i] = std::cos(angle);
    }
  return ops::from_vector(pe, {length, channels}).to(dtype);
}

// ---------------------------------------------------------------- attention and block
WhisperAttention::WhisperAttention(int64_t d, int64_t h, DType dtype) : num_heads(h) {
  CW_CHECK(h > 0 && d % h == 0, ValueError, "WhisperAttention: d_model ", d,
           " is not divisible by num_heads ", h);
  q_proj = register_module("q_proj", std::make_shared<nn::Linear>(d, d, true, dtype));
  k_proj = register_module("k_proj", std::make_shared<nn::Linear>(d, d, false, dtype));
  v_proj = register_module("v_proj", std::make_shared<nn::Linear>(d, d, true, dtype));
  out_proj = register_module("out_proj", std::make_shared<nn::Linear>(d, d, true, dtype));
}

Variable WhisperAttention::forward(const Variable& x, const Tensor& key_padding_mask) const {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), Dh = D / num_heads;
  auto heads = [&](const Variable& y) {  // (B, T, D) -> (B, H, T, Dh)
    return ag::transpose(ag::reshape(y, {B, T, num_heads, Dh}), 1, 2);
  };
  const Variable ctx = nn::scaled_dot_product_attention(heads(q_proj->forward(x)), heads(k_proj->forward(x)),
                                                        heads(v_proj->forward(x)), key_padding_mask);
  return out_proj->forward(ag::reshape(ag::transpose(ctx, 1, 2), {B, T, D}));
}

WhisperEncoderLayer::WhisperEncoderLayer(const WhisperEncoderConfig& c, DType dtype) {
  auto layer_norm = [&] {
    return std::make_shared<nn::LayerNorm>(Shape{c.d_model}, c.layer_norm_eps, true, dtype);
  };
  self_attn = register_module("self_attn", std::make_shared<WhisperAttention>(c.d_model, c.num_heads, dtype));
  self_attn_layer_norm = register_module("self_attn_layer_norm", layer_norm());
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.d_model, c.ffn_dim, true, dtype));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(c.ffn_dim, c.d_model, true, dtype));
  final_layer_norm = register_module("final_layer_norm", layer_norm());
}

Variable WhisperEncoderLayer::forward(const Variable& x_in, const Tensor& key_padding_mask) const {
  const Variable x = self_attn->forward(self_attn_layer_norm->forward(x_in), key_padding_mask) + x_in;
  return fc2->forward(ag::gelu(fc1->forward(final_layer_norm->forward(x)))) + x;
}

// ---------------------------------------------------------------- encoder
WhisperEncoder::WhisperEncoder(const WhisperEncoderConfig& c, DType dtype) : config(c) {
  CW_CHECK(c.n_mels > 0 && c.d_model > 0 && c.num_layers >= 1 && c.ffn_dim > 0 && c.max_positions > 0,
           ValueError, "WhisperEncoder: every size must be positive (n_mels ", c.n_mels, ", d_model ",
           c.d_model, ", layers ", c.num_layers, ", ffn ", c.ffn_dim, ", positions ", c.max_positions, ")");
  conv1 = register_module("conv1", std::make_shared<nn::Conv1d>(c.n_mels, c.d_model, 3,
                                                                ops::Conv1dOptions{1, 1, 1, 1}, true, dtype));
  conv2 = register_module("conv2", std::make_shared<nn::Conv1d>(c.d_model, c.d_model, 3,
                                                                ops::Conv1dOptions{2, 1, 1, 1}, true, dtype));
  embed_positions =
      register_module("embed_positions", std::make_shared<nn::Embedding>(c.max_positions, c.d_model, dtype));
  // Whisper's positions are a fixed sinusoid table (HF freezes embed_positions); they load from
  // the checkpoint and never train.
  Tensor table = embed_positions->weight.data();  // a handle sharing the parameter's storage
  table.copy_(whisper_sinusoids(c.max_positions, c.d_model, dtype));
  embed_positions->requires_grad_(false);
  layers = register_module("layers", std::make_shared<nn::ModuleList<WhisperEncoderLayer>>());
  for (int64_t i = 0; i < c.num_layers; ++i)
    layers->push_back(std::make_shared<WhisperEncoderLayer>(c, dtype));
  layer_norm = register_module(
      "layer_norm", std::make_shared<nn::LayerNorm>(Shape{c.d_model}, c.layer_norm_eps, true, dtype));
}

Variable WhisperEncoder::embed_frames(const Variable& mel, const Tensor& lengths) const {
  CW_CHECK(mel.dim() == 3 && mel.size(2) == config.n_mels, ShapeError, "WhisperEncoder: features ",
           shape_str(mel.shape()), " should be (batch, frames, ", config.n_mels, ")");
  const int64_t B = mel.size(0), T = mel.size(1);
  CW_CHECK(B >= 1 && T >= 1, ShapeError, "WhisperEncoder: empty input ", shape_str(mel.shape()));
  CW_CHECK(lengths.dim() == 1 && lengths.size(0) == B && lengths.dtype() == DType::I64, ShapeError,
           "WhisperEncoder: lengths ", describe(lengths), " should be (", B, ",) i64");
  const int64_t P = whisper_positions(T);
  CW_CHECK(P <= config.max_positions, ValueError, "WhisperEncoder: ", T, " frames make ", P,
           " positions, more than the model's ", config.max_positions, " (", config.max_positions / 50,
           " s); crop or split the audio");
  for (int64_t v : lengths.to_vector<int64_t>())
    CW_CHECK(v >= 1 && v <= T, ValueError, "WhisperEncoder: a length of ", v, " frames is outside [1, ", T,
             "]");
  // Zero what lies past each row's length, before each conv: the zeros conv1 and conv2 pad an
  // utterance alone with, so a row's real outputs do not depend on its batch.
  const Tensor mel_pad = lengths_to_padding_mask(lengths, T).to(mel.device());         // (B, T)
  Variable x = ag::transpose(ag::masked_fill(mel, mel_pad.unsqueeze(-1), 0.0), 1, 2);  // (B, n_mels, T)
  x = ag::gelu(conv1->forward(x));                                                     // (B, D, T)
  x = ag::masked_fill(x, mel_pad.unsqueeze(1), 0.0);
  x = ag::transpose(ag::gelu(conv2->forward(x)), 1, 2);  // (B, P, D)
  return x + ag::narrow(embed_positions->weight, 0, 0, P);
}

Variable WhisperEncoder::run_layers(Variable h, const Tensor& padding_mask, int64_t first,
                                    int64_t last) const {
  CW_CHECK(0 <= first && first <= last && last <= config.num_layers, ValueError, "WhisperEncoder: blocks [",
           first, ", ", last, ") outside the model's ", config.num_layers);
  const Tensor pad = nn::padding_or_none(padding_mask);  // once for all the blocks
  for (int64_t i = first; i < last; ++i) h = (*layers)[static_cast<size_t>(i)].forward(h, pad);
  return h;
}

Variable WhisperEncoder::forward(const Variable& mel, const Tensor& lengths) const {
  Variable h = embed_frames(mel, lengths);
  const Tensor pad =
      lengths_to_padding_mask(WhisperSpeechTower::position_lengths(lengths), h.size(1)).to(h.device());
  h = layer_norm->forward(run_layers(h, pad, 0, config.num_layers));
  return ag::masked_fill(h, pad.unsqueeze(-1), 0.0);
}

// ---------------------------------------------------------------- speech tower
WhisperSpeechTower::WhisperSpeechTower(const WhisperEncoderConfig& c, int64_t embed_dim, int64_t k,
                                       WhisperInput in, DType dtype)
    : train_layers(k), input(in) {
  CW_CHECK(k >= 0 && k <= c.num_layers, ValueError, "--model.speech_train_layers ", k, " must be in [0, ",
           c.num_layers, "] (the encoder's blocks)");
  encoder = register_module("encoder", std::make_shared<WhisperEncoder>(c, dtype));
  proj = register_module("proj", std::make_shared<nn::Linear>(c.d_model, embed_dim, true, dtype));
  // Frozen: the stem and the blocks below the top k. The final layer norm always trains (it
  // rescales what the projection reads).
  encoder->conv1->requires_grad_(false);
  encoder->conv2->requires_grad_(false);
  for (int64_t i = 0; i < first_trained_layer(); ++i)
    (*encoder->layers)[static_cast<size_t>(i)].requires_grad_(false);
}

Tensor WhisperSpeechTower::position_lengths(const Tensor& mel_lengths) {
  std::vector<int64_t> v = mel_lengths.to_vector<int64_t>();
  for (int64_t& x : v) x = whisper_positions(x);
  return ops::from_vector(v, {static_cast<int64_t>(v.size())});
}

Tensor WhisperSpeechTower::frozen_prefix(const Tensor& mel, const Tensor& lengths) const {
  NoGradGuard no_grad;
  const Variable h = encoder->embed_frames(Variable(mel), lengths);
  const Tensor pad = lengths_to_padding_mask(position_lengths(lengths), h.size(1)).to(h.device());
  const Variable out = encoder->run_layers(h, pad, 0, first_trained_layer());
  return ops::masked_fill(out.data(), pad.unsqueeze(-1), 0.0);
}

Variable WhisperSpeechTower::embed(const Variable& features, const Tensor& lengths) {
  Variable h;
  Tensor pos_lengths;
  int64_t first = 0;
  if (input == WhisperInput::Mel) {
    pos_lengths = position_lengths(lengths);
    h = encoder->embed_frames(features, lengths);
  } else {
    CW_CHECK(features.dim() == 3 && features.size(2) == encoder->config.d_model, ShapeError,
             "WhisperSpeechTower: cached hidden states ", shape_str(features.shape()),
             " should be (batch, positions, ", encoder->config.d_model, ")");
    pos_lengths = lengths;
    h = features;
    first = first_trained_layer();
  }
  const Tensor pad = lengths_to_padding_mask(pos_lengths, h.size(1)).to(h.device());
  h = encoder->layer_norm->forward(encoder->run_layers(h, pad, first, encoder->config.num_layers));
  const Variable pooled = masked_mean_pool(h, ops::eq(pad, 0.0));  // (B, D)
  return project ? proj->forward(pooled) : pooled;                 // (B, embed_dim)
}

// ---------------------------------------------------------------- weights
namespace {

// CTranslate2's encoder names -> HF's, per block (the one rename table of this tower).
const std::vector<std::pair<std::string, std::string>>& ct2_block_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"self_attention/layer_norm/gamma", "self_attn_layer_norm.weight"},
      {"self_attention/layer_norm/beta", "self_attn_layer_norm.bias"},
      {"self_attention/linear_1/weight", "self_attn.out_proj.weight"},
      {"self_attention/linear_1/bias", "self_attn.out_proj.bias"},
      {"ffn/layer_norm/gamma", "final_layer_norm.weight"},
      {"ffn/layer_norm/beta", "final_layer_norm.bias"},
      {"ffn/linear_0/weight", "fc1.weight"},
      {"ffn/linear_0/bias", "fc1.bias"},
      {"ffn/linear_1/weight", "fc2.weight"},
      {"ffn/linear_1/bias", "fc2.bias"},
  };
  return names;
}

}  // namespace

WhisperWeights read_whisper_ctranslate2(const std::filesystem::path& model_bin) {
  const Ct2File f = Ct2File::open(model_bin.string());
  const std::string where = model_bin.string();
  CW_CHECK(f.spec() == "WhisperSpec", ValueError, where, ": spec '", f.spec(),
           "' is not a Whisper model (expected WhisperSpec)");
  WhisperWeights w;
  w.source = where;
  auto load = [&](const std::string& name) {
    CW_CHECK(f.contains(name), ValueError, where, ": variable '", name, "' is missing");
    return f.load_dequantized(name).contiguous();
  };
  const Tensor conv1 = load("encoder/conv1/weight");  // (D, n_mels, 3)
  CW_CHECK(conv1.dim() == 3 && conv1.size(2) == 3, ValueError, where, ": encoder/conv1/weight ",
           shape_str(conv1.shape()), " should be (d_model, n_mels, 3)");
  WhisperEncoderConfig& c = w.config;
  c.d_model = conv1.size(0);
  c.n_mels = conv1.size(1);
  c.num_heads = f.load_scalar_int("encoder/num_heads");
  c.num_layers = 0;
  while (f.contains("encoder/layer_" + std::to_string(c.num_layers) + "/ffn/linear_0/weight")) ++c.num_layers;
  CW_CHECK(c.num_layers >= 1, ValueError, where, ": no encoder/layer_0 found");
  c.ffn_dim = f.info("encoder/layer_0/ffn/linear_0/weight").shape[0];
  c.max_positions = f.info("encoder/position_encodings/encodings").shape[0];
  w.encoder["conv1.weight"] = conv1;
  w.encoder["conv1.bias"] = load("encoder/conv1/bias");
  w.encoder["conv2.weight"] = load("encoder/conv2/weight");
  w.encoder["conv2.bias"] = load("encoder/conv2/bias");
  w.encoder["embed_positions.weight"] = load("encoder/position_encodings/encodings");
  w.encoder["layer_norm.weight"] = load("encoder/layer_norm/gamma");
  w.encoder["layer_norm.bias"] = load("encoder/layer_norm/beta");
  const int64_t D = c.d_model;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string ct = "encoder/layer_" + std::to_string(i) + "/",
                      hf = "layers." + std::to_string(i) + ".";
    for (const auto& [from, to] : ct2_block_names()) w.encoder[hf + to] = load(ct + from);
    // q, k and v fused into one (3D, D) projection; Whisper's key has no bias, so ct2 stores zeros there.
    const Tensor qkv = load(ct + "self_attention/linear_0/weight"),
                 qkv_b = load(ct + "self_attention/linear_0/bias");
    CW_CHECK(qkv.shape() == (Shape{3 * D, D}) && qkv_b.shape() == (Shape{3 * D}), ValueError, where, ": ", ct,
             "self_attention/linear_0 ", shape_str(qkv.shape()), " should be (3 x ", D, ", ", D, ")");
    const double k_bias = ops::amax(ops::abs(qkv_b.narrow(0, D, D))).item();
    CW_CHECK(k_bias == 0.0, ValueError, where, ": ", ct,
             "self_attention/linear_0/bias has a nonzero key part (max |b| ", k_bias,
             "); Whisper's key projection has no bias");
    const char* parts[3] = {"q_proj", "k_proj", "v_proj"};
    for (int64_t p = 0; p < 3; ++p) {
      w.encoder[hf + "self_attn." + parts[p] + ".weight"] = qkv.narrow(0, p * D, D).contiguous();
      if (p != 1) w.encoder[hf + "self_attn." + parts[p] + ".bias"] = qkv_b.narrow(0, p * D, D).contiguous();
    }
  }
  return w;
}

WhisperHfFolder open_whisper_hf_folder(const std::filesystem::path& dir, const std::string& side,
                                       const std::string& probe,
                                       const std::function<void(const JsonReader&)>& read_config) {
  const std::filesystem::path cfg_path = dir / "config.json", st_path = dir / "model.safetensors";
  CW_CHECK(std::filesystem::is_regular_file(cfg_path), Error, "cannot read '", cfg_path.string(),
           "' (a Hugging Face Whisper folder holds config.json)");
  const Json doc = read_json_file(cfg_path);
  read_config(JsonReader(doc, cfg_path.string()));
  WhisperHfFolder h{cfg_path, st_path, SafetensorsFile::open(st_path.string()), ""};
  const std::string long_prefix = "model." + side + ".", short_prefix = side + ".";
  for (const std::string& p : {long_prefix, short_prefix})
    if (h.file.contains(p + probe)) h.prefix = p;
  CW_CHECK(!h.prefix.empty(), ValueError, st_path.string(), ": no '", long_prefix, probe, "' or '",
           short_prefix, probe, "' (not a Whisper checkpoint?)");
  return h;
}

void WhisperHfFolder::expect(const std::string& name, const Shape& shape) const {
  const std::string full = prefix + name;
  CW_CHECK(file.contains(full) && file.info(full).shape == shape, ValueError, config_path.string(),
           " declares tensor '", full, "' of ", shape_str(shape), ", ", weights_path.string(), " has ",
           file.contains(full) ? shape_str(file.info(full).shape) : std::string("none"));
}

std::map<std::string, Tensor> WhisperHfFolder::load_side() const {
  std::map<std::string, Tensor> out;
  for (const std::string& name : file.names())
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = file.load(name, DType::F32);
  return out;
}

WhisperWeights read_whisper_hf(const std::filesystem::path& dir) {
  WhisperWeights w;
  WhisperEncoderConfig& c = w.config;
  const WhisperHfFolder h = open_whisper_hf_folder(dir, "encoder", "conv1.weight", [&](const JsonReader& j) {
    // Bounds no Whisper comes near (large-v3: 128 mels, d_model 1280, 32 layers, 20 heads), so
    // that products of sizes cannot overflow; the tensors below are what bound memory.
    c.n_mels = j.get_in("num_mel_bins", 1, 1 << 12);
    c.d_model = j.get_in("d_model", 1, 1 << 16);
    c.num_heads = j.get_in("encoder_attention_heads", 1, c.d_model);
    c.num_layers = j.get_in("encoder_layers", 1, 1024);
    c.ffn_dim = j.get_in("encoder_ffn_dim", 1, 1 << 18);
    c.max_positions = j.get_in("max_source_positions", 1, 1 << 20);
    CW_CHECK(c.d_model % c.num_heads == 0, ValueError, j.where(), ": d_model ", c.d_model,
             " is not divisible by encoder_attention_heads ", c.num_heads);
  });
  w.source = h.weights_path.string();
  h.expect("conv1.weight", {c.d_model, c.n_mels, 3});
  h.expect("embed_positions.weight", {c.max_positions, c.d_model});
  for (int64_t i = 0; i < c.num_layers; ++i)
    h.expect("layers." + std::to_string(i) + ".fc1.weight", {c.ffn_dim, c.d_model});
  w.encoder = h.load_side();
  return w;
}

int64_t whisper_num_mel_bins(const std::filesystem::path& dir) {
  if (std::filesystem::exists(dir / "model.bin")) {
    const Ct2File f = Ct2File::open((dir / "model.bin").string());
    CW_CHECK(f.contains("encoder/conv1/weight") && f.info("encoder/conv1/weight").shape.size() == 3,
             ValueError, f.path(), ": no 3-d encoder/conv1/weight (not a Whisper model?)");
    return f.info("encoder/conv1/weight").shape[1];
  }
  return read_whisper_hf(dir).config.n_mels;
}

WhisperWeights read_whisper_weights(const std::filesystem::path& dir) {
  if (std::filesystem::exists(dir / "model.bin")) return read_whisper_ctranslate2(dir / "model.bin");
  if (std::filesystem::exists(dir / "model.safetensors")) return read_whisper_hf(dir);
  CW_CHECK(false, Error, "'", dir.string(),
           "' holds neither model.bin (CTranslate2) nor model.safetensors (Hugging Face) of a Whisper model");
  return {};
}

}  // namespace cw::models
