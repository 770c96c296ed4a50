// The Whisper decoder and its KV cache (see whisper_decoder.h). The block follows Hugging Face's
// WhisperDecoderLayer (transformers 4.x modeling_whisper.py); the CTranslate2 name map follows
// ct2's TransformerDecoderSpec as its Whisper converter fills it. Checked against CTranslate2's
// Whisper.generate on real speech and against transformers on a tiny random checkpoint
// (tests/models/whisper_decoder_test.cpp).
#include "models/whisper_decoder.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/ctranslate2.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "core/safetensors.h"

namespace cw::models {

WhisperDecoderConfig WhisperDecoderConfig::tiny_en() { return WhisperDecoderConfig{}; }

WhisperDecoderLayer::WhisperDecoderLayer(const WhisperDecoderConfig& c, DType dtype) {
  auto layer_norm = [&] {
    return std::make_shared<nn::LayerNorm>(Shape{c.d_model}, c.layer_norm_eps, true, dtype);
  };
  self_attn = register_module("self_attn", std::make_shared<WhisperAttention>(c.d_model, c.num_heads, dtype));
  self_attn_layer_norm = register_module("self_attn_layer_norm", layer_norm());
  encoder_attn =
      register_module("encoder_attn", std::make_shared<WhisperAttention>(c.d_model, c.num_heads, dtype));
  encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", layer_norm());
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.d_model, c.ffn_dim, true, dtype));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(c.ffn_dim, c.d_model, true, dtype));
  final_layer_norm = register_module("final_layer_norm", layer_norm());
}

WhisperDecoder::WhisperDecoder(const WhisperDecoderConfig& c, DType dtype) : config(c) {
  CW_CHECK(c.vocab_size > 0 && c.d_model > 0 && c.num_layers >= 1 && c.ffn_dim > 0 && c.max_positions > 0,
           ValueError, "WhisperDecoder: every size must be positive (vocab ", c.vocab_size, ", d_model ",
           c.d_model, ", layers ", c.num_layers, ", ffn ", c.ffn_dim, ", positions ", c.max_positions, ")");
  embed_tokens =
      register_module("embed_tokens", std::make_shared<nn::Embedding>(c.vocab_size, c.d_model, dtype));
  embed_positions =
      register_module("embed_positions", std::make_shared<nn::Embedding>(c.max_positions, c.d_model, dtype));
  layers = register_module("layers", std::make_shared<nn::ModuleList<WhisperDecoderLayer>>());
  for (int64_t i = 0; i < c.num_layers; ++i)
    layers->push_back(std::make_shared<WhisperDecoderLayer>(c, dtype));
  layer_norm = register_module(
      "layer_norm", std::make_shared<nn::LayerNorm>(Shape{c.d_model}, c.layer_norm_eps, true, dtype));
}

// ---------------------------------------------------------------- forward
namespace {

Tensor apply(const nn::Linear& f, const Tensor& x) { return f.forward(Variable(x)).data(); }
Tensor apply(const nn::LayerNorm& f, const Tensor& x) { return f.forward(Variable(x)).data(); }

// (M, T, D) -> (M, H, T, Dh), a view.
Tensor split_heads(const Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

// softmax(q k^T / sqrt(Dh) + mask) v over any leading batch dims, broadcast (the cross-attention
// keys of an utterance serve its G hypotheses through a size-1 dim). q (..., T, Dh), k and v
// (..., S, Dh), mask (T, S) additive or undefined -> (..., T, Dh).
Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = ops::matmul(ops::mul(q, scale), k.transpose(-1, -2));
  if (mask.defined()) scores = ops::add(scores, mask);
  return ops::matmul(ops::softmax(scores, -1), v);
}

// The causal mask of T new tokens at positions [past, past + T) over all past + T keys: 0 where
// key j <= the query's position, the lowest finite value elsewhere (exp gives exactly 0, and no
// -inf - -inf NaN can appear). (T, past + T).
Tensor causal_mask(int64_t past, int64_t t, DType dtype) {
  const int64_t s = past + t;
  std::vector<float> m(static_cast<size_t>(t * s), 0.0f);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = past + i + 1; j < s; ++j) m[i * s + j] = std::numeric_limits<float>::lowest();
  return ops::from_vector(m, {t, s}).to(dtype);
}

}  // namespace

WhisperDecoderCache WhisperDecoder::start(const Tensor& memory) const {
  CW_CHECK(
      memory.dim() == 3 && memory.size(2) == config.d_model && memory.size(0) >= 1 && memory.size(1) >= 1,
      ShapeError, "WhisperDecoder: encoder output ", shape_str(memory.shape()),
      " should be (batch, positions, ", config.d_model, ")");
  NoGradGuard no_grad;
  WhisperDecoderCache cache;
  cache.batch = memory.size(0);
  for (const auto& layer : *layers) {
    const WhisperAttention& a = *layer->encoder_attn;
    auto heads = [&](const nn::Linear& f) { return split_heads(apply(f, memory), a.num_heads).unsqueeze(1); };
    cache.layers.push_back({Tensor(), Tensor(), heads(*a.k_proj), heads(*a.v_proj)});  // (B, 1, H, S, Dh)
  }
  return cache;
}

Tensor WhisperDecoder::step(const Tensor& tokens, WhisperDecoderCache& cache) const {
  CW_CHECK(static_cast<int64_t>(cache.layers.size()) == config.num_layers, ValueError,
           "WhisperDecoder: the cache has ", cache.layers.size(), " layers, the model ", config.num_layers,
           " (make it with this decoder's start())");
  CW_CHECK(tokens.dim() == 2 && tokens.dtype() == DType::I64 && tokens.size(0) == cache.sequences() &&
               tokens.size(1) >= 1,
           ShapeError, "WhisperDecoder: tokens ", describe(tokens), " should be (", cache.sequences(),
           ", T >= 1) i64, one row per cached sequence");
  const int64_t N = tokens.size(0), T = tokens.size(1), past = cache.length, D = config.d_model;
  CW_CHECK(past + T <= config.max_positions, ValueError, "WhisperDecoder: positions up to ", past + T,
           " exceed the model's ", config.max_positions, " (shorten the prompt or max_new_tokens)");
  for (int64_t id : tokens.to_vector<int64_t>())
    CW_CHECK(id >= 0 && id < config.vocab_size, IndexError, "WhisperDecoder: token id ", id,
             " outside the vocabulary [0, ", config.vocab_size, ")");
  NoGradGuard no_grad;
  const int64_t B = cache.batch, G = cache.group;
  Tensor x = ops::add(embed_tokens->forward(tokens).data(),
                      embed_positions->weight.data().narrow(0, past, T));  // (N, T, D)
  const Tensor mask = T > 1 ? causal_mask(past, T, x.dtype()) : Tensor();
  for (size_t l = 0; l < layers->size(); ++l) {
    const WhisperDecoderLayer& layer = (*layers)[l];
    WhisperDecoderCache::Layer& c = cache.layers[l];
    const int64_t H = layer.self_attn->num_heads;
    // (N, H, T, Dh) -> (N, T, D)
    auto merge = [&](const Tensor& ctx) { return ctx.transpose(1, 2).reshape({N, T, D}); };

    // Causal self-attention over the cached positions and the new ones.
    const WhisperAttention& sa = *layer.self_attn;
    Tensor h = apply(*layer.self_attn_layer_norm, x);
    const Tensor k = split_heads(apply(*sa.k_proj, h), H), v = split_heads(apply(*sa.v_proj, h), H);
    c.self_k = past == 0 ? k.contiguous() : ops::concat({c.self_k, k}, 2);  // (N, H, past + T, Dh)
    c.self_v = past == 0 ? v.contiguous() : ops::concat({c.self_v, v}, 2);
    Tensor ctx = attend(split_heads(apply(*sa.q_proj, h), H), c.self_k, c.self_v, mask);
    x = ops::add(x, apply(*sa.out_proj, merge(ctx)));

    // Cross-attention: the queries of an utterance's G sequences against its one memory.
    const WhisperAttention& ca = *layer.encoder_attn;
    h = apply(*layer.encoder_attn_layer_norm, x);
    const Tensor q = split_heads(apply(*ca.q_proj, h), H).contiguous().view({B, G, H, T, D / H});
    ctx = attend(q, c.cross_k, c.cross_v, Tensor()).view({N, H, T, D / H});
    x = ops::add(x, apply(*ca.out_proj, merge(ctx)));

    h = apply(*layer.final_layer_norm, x);
    x = ops::add(x, apply(*layer.fc2, ops::gelu(apply(*layer.fc1, h))));
  }
  cache.length += T;
  // The output projection is the token embedding, transposed (read in place by the GEMM).
  return ops::matmul(apply(*layer_norm, x), embed_tokens->weight.data().t());  // (N, T, V)
}

Tensor WhisperDecoder::forward(const Tensor& tokens, const Tensor& memory) const {
  WhisperDecoderCache cache = start(memory);
  return step(tokens, cache);
}

void WhisperDecoderCache::keep(const std::vector<int64_t>& rows, int64_t new_group) {
  const int64_t n = static_cast<int64_t>(rows.size());
  CW_CHECK(new_group >= 1 && n >= new_group && n % new_group == 0, ValueError,
           "WhisperDecoderCache::keep: ", n, " rows do not make groups of ", new_group);
  std::vector<int64_t> utterances(static_cast<size_t>(n / new_group), -1);
  bool same_utterances = n / new_group == batch;
  for (int64_t r = 0; r < n; ++r) {
    CW_CHECK(rows[r] >= 0 && rows[r] < sequences(), IndexError, "WhisperDecoderCache::keep: row ", rows[r],
             " outside the ", sequences(), " cached sequences");
    int64_t& u = utterances[static_cast<size_t>(r / new_group)];
    CW_CHECK(u < 0 || u == rows[r] / group, ValueError, "WhisperDecoderCache::keep: new group ",
             r / new_group, " mixes sequences of utterances ", u, " and ", rows[r] / group);
    u = rows[r] / group;
    same_utterances = same_utterances && u == r / new_group;
  }
  const Tensor row_index = ops::from_vector(rows, {n});
  const Tensor utterance_index = ops::from_vector(utterances, {n / new_group});
  for (Layer& l : layers) {
    if (length > 0) {
      l.self_k = ops::index_select(l.self_k, 0, row_index.to(l.self_k.device()));
      l.self_v = ops::index_select(l.self_v, 0, row_index.to(l.self_v.device()));
    }
    if (!same_utterances) {
      l.cross_k = ops::index_select(l.cross_k, 0, utterance_index.to(l.cross_k.device()));
      l.cross_v = ops::index_select(l.cross_v, 0, utterance_index.to(l.cross_v.device()));
    }
  }
  batch = n / new_group;
  group = new_group;
}

// ---------------------------------------------------------------- weights
namespace {

// The rows [p * n, (p + 1) * n) of a fused projection, p = 0 .. parts - 1.
std::vector<Tensor> split_rows(const Tensor& t, int64_t parts) {
  std::vector<Tensor> out;
  const int64_t n = t.size(0) / parts;
  for (int64_t p = 0; p < parts; ++p) out.push_back(t.narrow(0, p * n, n).contiguous());
  return out;
}

}  // namespace

WhisperDecoderWeights read_whisper_decoder_ctranslate2(const std::filesystem::path& model_bin) {
  const Ct2File f = Ct2File::open(model_bin.string());
  const std::string where = model_bin.string();
  CW_CHECK(f.spec() == "WhisperSpec", ValueError, where, ": spec '", f.spec(),
           "' is not a Whisper model (expected WhisperSpec)");
  auto load = [&](const std::string& name) {
    CW_CHECK(f.contains(name), ValueError, where, ": variable '", name, "' is missing");
    return f.load_dequantized(name).contiguous();
  };
  // What this decoder computes; ct2's TransformerDecoderSpec can describe others. Absent optional
  // flags mean 0 (older converters did not write them).
  struct Flag {
    const char* name;
    int64_t want;
    bool required;
  };
  for (const Flag& flag : {Flag{"decoder/pre_norm", 1, true}, Flag{"decoder/activation", 3, true},
                           Flag{"decoder/scale_embeddings", 0, false}, Flag{"decoder/alibi", 0, false},
                           Flag{"decoder/start_from_zero_embedding", 0, false}}) {
    CW_CHECK(f.contains(flag.name) || !flag.required, ValueError, where, ": variable '", flag.name,
             "' is missing");
    const int64_t got = f.contains(flag.name) ? f.load_scalar_int(flag.name) : 0;
    CW_CHECK(got == flag.want, ValueError, where, ": ", flag.name, " is ", got, ", this decoder needs ",
             flag.want,
             " (pre-norm blocks, GELU = activation 3, unscaled embeddings, learned positions from 0)");
  }
  WhisperDecoderWeights w;
  w.source = where;
  WhisperDecoderConfig& c = w.config;
  const Tensor embed = load("decoder/embeddings/weight");  // (V, D)
  CW_CHECK(embed.dim() == 2, ValueError, where, ": decoder/embeddings/weight ", shape_str(embed.shape()),
           " should be (vocab, d_model)");
  c.vocab_size = embed.size(0);
  c.d_model = embed.size(1);
  c.num_heads = f.load_scalar_int("decoder/num_heads");
  c.num_layers = 0;
  while (f.contains("decoder/layer_" + std::to_string(c.num_layers) + "/ffn/linear_0/weight")) ++c.num_layers;
  CW_CHECK(c.num_layers >= 1, ValueError, where, ": no decoder/layer_0 found");
  c.ffn_dim = f.info("decoder/layer_0/ffn/linear_0/weight").shape[0];
  c.max_positions = f.info("decoder/position_encodings/encodings").shape[0];
  // Whisper ties the output projection to the embedding; ct2 stores it as an alias of it.
  if (f.contains("decoder/projection/weight")) {
    const auto alias = f.aliases().find("decoder/projection/weight");
    const bool tied = (alias != f.aliases().end() && alias->second == "decoder/embeddings/weight") ||
                      ops::amax(ops::abs(ops::sub(load("decoder/projection/weight"), embed))).item() == 0.0;
    CW_CHECK(tied, ValueError, where,
             ": decoder/projection/weight differs from decoder/embeddings/weight; this ",
             "decoder ties them");
  }
  CW_CHECK(!f.contains("decoder/projection/bias") ||
               ops::amax(ops::abs(load("decoder/projection/bias"))).item() == 0.0,
           ValueError, where, ": decoder/projection/bias is nonzero; Whisper's projection has no bias");
  w.decoder["embed_tokens.weight"] = embed;
  w.decoder["embed_positions.weight"] = load("decoder/position_encodings/encodings");
  w.decoder["layer_norm.weight"] = load("decoder/layer_norm/gamma");
  w.decoder["layer_norm.bias"] = load("decoder/layer_norm/beta");
  const int64_t D = c.d_model;
  const std::vector<std::pair<std::string, std::string>> plain = {
      {"self_attention/layer_norm/gamma", "self_attn_layer_norm.weight"},
      {"self_attention/layer_norm/beta", "self_attn_layer_norm.bias"},
      {"self_attention/linear_1/weight", "self_attn.out_proj.weight"},
      {"self_attention/linear_1/bias", "self_attn.out_proj.bias"},
      {"attention/layer_norm/gamma", "encoder_attn_layer_norm.weight"},
      {"attention/layer_norm/beta", "encoder_attn_layer_norm.bias"},
      {"attention/linear_0/weight", "encoder_attn.q_proj.weight"},
      {"attention/linear_0/bias", "encoder_attn.q_proj.bias"},
      {"attention/linear_2/weight", "encoder_attn.out_proj.weight"},
      {"attention/linear_2/bias", "encoder_attn.out_proj.bias"},
      {"ffn/layer_norm/gamma", "final_layer_norm.weight"},
      {"ffn/layer_norm/beta", "final_layer_norm.bias"},
      {"ffn/linear_0/weight", "fc1.weight"},
      {"ffn/linear_0/bias", "fc1.bias"},
      {"ffn/linear_1/weight", "fc2.weight"},
      {"ffn/linear_1/bias", "fc2.bias"},
  };
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string ct = "decoder/layer_" + std::to_string(i) + "/",
                      hf = "layers." + std::to_string(i) + ".";
    for (const auto& [from, to] : plain) w.decoder[hf + to] = load(ct + from);
    // Fused projections: self-attention q|k|v (3D, D), cross-attention k|v (2D, D). Whisper's key
    // has no bias, so ct2 stores zeros there.
    const std::pair<std::string, std::vector<std::string>> fused[] = {
        {"self_attention/linear_0", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}},
        {"attention/linear_1", {"encoder_attn.k_proj", "encoder_attn.v_proj"}}};
    for (const auto& [name, parts] : fused) {
      const int64_t p = static_cast<int64_t>(parts.size());
      const Tensor wt = load(ct + name + "/weight"), b = load(ct + name + "/bias");
      CW_CHECK(wt.shape() == (Shape{p * D, D}) && b.shape() == (Shape{p * D}), ValueError, where, ": ", ct,
               name, " ", shape_str(wt.shape()), " should be (", p, " x ", D, ", ", D, ")");
      const std::vector<Tensor> ws = split_rows(wt, p), bs = split_rows(b, p);
      for (int64_t k = 0; k < p; ++k) {
        w.decoder[hf + parts[k] + ".weight"] = ws[k];
        if (parts[k].ends_with("k_proj")) {
          const double kb = ops::amax(ops::abs(bs[k])).item();
          CW_CHECK(kb == 0.0, ValueError, where, ": ", ct, name, "/bias has a nonzero key part (max |b| ", kb,
                   "); Whisper's key projection has no bias");
        } else {
          w.decoder[hf + parts[k] + ".bias"] = bs[k];
        }
      }
    }
  }
  return w;
}

WhisperDecoderWeights read_whisper_decoder_hf(const std::filesystem::path& dir) {
  WhisperDecoderWeights w;
  WhisperDecoderConfig& c = w.config;
  const WhisperHfFolder h =
      open_whisper_hf_folder(dir, "decoder", "embed_tokens.weight", [&](const JsonReader& j) {
        // Bounds no Whisper comes near (large-v3: vocabulary 51866, d_model 1280, 32 layers, 20
        // heads, 448 positions), so that products of sizes cannot overflow; the tensors bound memory.
        c.vocab_size = j.get_in("vocab_size", 1, 1 << 24);
        c.d_model = j.get_in("d_model", 1, 1 << 16);
        c.num_heads = j.get_in("decoder_attention_heads", 1, c.d_model);
        c.num_layers = j.get_in("decoder_layers", 1, 1024);
        c.ffn_dim = j.get_in("decoder_ffn_dim", 1, 1 << 18);
        c.max_positions = j.get_in("max_target_positions", 1, 1 << 20);
        CW_CHECK(c.d_model % c.num_heads == 0, ValueError, j.where(), ": d_model ", c.d_model,
                 " is not divisible by decoder_attention_heads ", c.num_heads);
      });
  w.source = h.weights_path.string();
  h.expect("embed_tokens.weight", {c.vocab_size, c.d_model});
  h.expect("embed_positions.weight", {c.max_positions, c.d_model});
  for (int64_t i = 0; i < c.num_layers; ++i)
    h.expect("layers." + std::to_string(i) + ".fc1.weight", {c.ffn_dim, c.d_model});
  w.decoder = h.load_side();
  return w;
}

WhisperDecoderWeights read_whisper_decoder_weights(const std::filesystem::path& dir) {
  if (std::filesystem::exists(dir / "model.bin")) return read_whisper_decoder_ctranslate2(dir / "model.bin");
  if (std::filesystem::exists(dir / "model.safetensors")) return read_whisper_decoder_hf(dir);
  CW_CHECK(false, Error, "'", dir.string(),
           "' holds neither model.bin (CTranslate2) nor model.safetensors (Hugging Face) of a Whisper model");
  return {};
}

}  // namespace cw::models
