// The rename tables of our towers and their upstream libraries (see export_names.h). Each table
// below is the one place its renames are written; tests/models/export_names_test.cpp checks them
// against names and values made by the upstream libraries themselves.
#include "models/export_names.h"

#include <cctype>
#include <optional>
#include <tuple>

#include "core/error.h"
#include "core/ops.h"

namespace cw::models {

const NameTable& torchaudio_conformer_names() {
  // torchaudio 0.13 models/conformer.py: _FeedForwardModule.sequential = [LayerNorm, Linear, SiLU,
  // Dropout, Linear, Dropout]; _ConvolutionModule.sequential = [Conv1d, GLU, Conv1d (depthwise),
  // BatchNorm1d, SiLU, Conv1d, Dropout] after its own layer_norm.
  static const NameTable t = {
      "torchaudio.models.Conformer",
      {
          {{"layers.*.ffn1.layer_norm."}, {"conformer_layers.*.ffn1.sequential.0."}},
          {{"layers.*.ffn1.linear1."}, {"conformer_layers.*.ffn1.sequential.1."}},
          {{"layers.*.ffn1.linear2."}, {"conformer_layers.*.ffn1.sequential.4."}},
          {{"layers.*.self_attn_layer_norm."}, {"conformer_layers.*.self_attn_layer_norm."}},
          {{"layers.*.self_attn.query.", "layers.*.self_attn.key.", "layers.*.self_attn.value."},
           {"conformer_layers.*.self_attn.in_proj_"}},
          {{"layers.*.self_attn.out_proj."}, {"conformer_layers.*.self_attn.out_proj."}},
          {{"layers.*.conv_module.layer_norm."}, {"conformer_layers.*.conv_module.layer_norm."}},
          {{"layers.*.conv_module.pointwise_conv1."}, {"conformer_layers.*.conv_module.sequential.0."}},
          {{"layers.*.conv_module.depthwise_conv."}, {"conformer_layers.*.conv_module.sequential.2."}},
          {{"layers.*.conv_module.batch_norm."}, {"conformer_layers.*.conv_module.sequential.3."}},
          {{"layers.*.conv_module.pointwise_conv2."}, {"conformer_layers.*.conv_module.sequential.5."}},
          {{"layers.*.ffn2.layer_norm."}, {"conformer_layers.*.ffn2.sequential.0."}},
          {{"layers.*.ffn2.linear1."}, {"conformer_layers.*.ffn2.sequential.1."}},
          {{"layers.*.ffn2.linear2."}, {"conformer_layers.*.ffn2.sequential.4."}},
          {{"layers.*.final_layer_norm."}, {"conformer_layers.*.final_layer_norm."}},
      },
      {"subsampling.", "proj."},  // the front end (espnet_subsampling_names) and the projection head
      {},
  };
  return t;
}

const NameTable& espnet_subsampling_names() {
  // ESPnet's Conv2dSubsampling: conv = Sequential(Conv2d, ReLU, Conv2d, ReLU),
  // out = Sequential(Linear, PositionalEncoding).
  static const NameTable t = {
      "espnet.nets.pytorch_backend.transformer.subsampling.Conv2dSubsampling",
      {
          {{"subsampling.conv1."}, {"conv.0."}},
          {{"subsampling.conv2."}, {"conv.2."}},
          {{"subsampling.out."}, {"out.0."}},
      },
      {"layers.", "proj."},
      {},
  };
  return t;
}

const NameTable& hf_whisper_encoder_names() {
  static const NameTable t = {
      "transformers.WhisperModel (encoder)", {{{""}, {"encoder."}}}, {}, {"decoder."}};
  return t;
}

const NameTable& hf_bert_names() {
  static const NameTable t = {"transformers.BertModel", {{{""}, {""}}}, {"embeddings.position_ids"}, {}};
  return t;
}

const NameTable& hf_vit_names() {
  static const NameTable t = {
      "transformers.ViTModel",
      {
          {{"class_token"}, {"embeddings.cls_token"}},                      // (1, 1, D) both
          {{"encoder.pos_embedding"}, {"embeddings.position_embeddings"}},  // (1, S, D) both
          {{"conv_proj."}, {"embeddings.patch_embeddings.projection."}},
          {{"encoder.layers.encoder_layer_*.ln_1."}, {"encoder.layer.*.layernorm_before."}},
          {{"encoder.layers.encoder_layer_*.self_attention.in_proj_"},
           {"encoder.layer.*.attention.attention.query.", "encoder.layer.*.attention.attention.key.",
            "encoder.layer.*.attention.attention.value."}},
          {{"encoder.layers.encoder_layer_*.self_attention.out_proj."},
           {"encoder.layer.*.attention.output.dense."}},
          {{"encoder.layers.encoder_layer_*.ln_2."}, {"encoder.layer.*.layernorm_after."}},
          {{"encoder.layers.encoder_layer_*.mlp.0."}, {"encoder.layer.*.intermediate.dense."}},
          {{"encoder.layers.encoder_layer_*.mlp.3."}, {"encoder.layer.*.output.dense."}},
          {{"encoder.ln."}, {"layernorm."}},
      },
      {"heads."},
      {"pooler."},
  };
  return t;
}

namespace {

// A name matched against a prefix pattern: the layer numbers '*' stood for, and the rest.
struct Match {
  std::vector<std::string> numbers;
  std::string rest;
};

std::optional<Match> match(const std::string& name, const std::string& pattern) {
  Match m;
  size_t at = 0;
  for (size_t p = 0; p < pattern.size(); ++p) {
    if (pattern[p] != '*') {
      if (at >= name.size() || name[at] != pattern[p]) return std::nullopt;
      ++at;
      continue;
    }
    const size_t start = at;
    while (at < name.size() && std::isdigit(static_cast<unsigned char>(name[at]))) ++at;
    if (at == start) return std::nullopt;
    m.numbers.push_back(name.substr(start, at - start));
  }
  m.rest = name.substr(at);
  return m;
}

std::string fill(const std::string& pattern, const Match& m) {
  std::string out;
  size_t k = 0;
  for (char c : pattern) {
    if (c == '*')
      out += m.numbers.at(k++);
    else
      out += c;
  }
  return out + m.rest;
}

bool any_match(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (match(name, p)) return true;
  return false;
}

// The one conversion both directions share: `from` side patterns -> `to` side patterns.
std::map<std::string, Tensor> convert(const NameTable& table, const std::map<std::string, Tensor>& in,
                                      bool export_) {
  const auto& skip = export_ ? table.our_only : table.their_only;
  const char* side = export_ ? "our" : "upstream";
  // (rule, layer numbers, rest) -> the group's tensors by their place in the rule.
  std::map<std::tuple<size_t, std::vector<std::string>, std::string>, std::map<size_t, std::string>> groups;
  for (const auto& [name, t] : in) {
    if (any_match(name, skip)) continue;
    bool found = false;
    for (size_t r = 0; r < table.rules.size() && !found; ++r) {
      const auto& from = export_ ? table.rules[r].ours : table.rules[r].theirs;
      for (size_t k = 0; k < from.size() && !found; ++k) {
        if (const auto m = match(name, from[k])) {
          groups[{r, m->numbers, m->rest}][k] = name;
          found = true;
        }
      }
    }
    CW_CHECK(found, ValueError, table.upstream, ": no rename rule for ", side, " tensor '", name, "' ",
             shape_str(t.shape()));
  }
  std::map<std::string, Tensor> out;
  for (const auto& [key, members] : groups) {
    const NameRule& rule = table.rules[std::get<0>(key)];
    const auto& from = export_ ? rule.ours : rule.theirs;
    const auto& to = export_ ? rule.theirs : rule.ours;
    const Match m{std::get<1>(key), std::get<2>(key)};
    std::vector<Tensor> parts;
    for (size_t k = 0; k < from.size(); ++k) {
      CW_CHECK(members.count(k), ValueError, table.upstream, ": ", side, " tensor '", fill(from[k], m),
               "' is missing (it is packed with '", members.begin()->second, "')");
      const Tensor& t = in.at(members.at(k));
      CW_CHECK(t.dim() >= 1 || (from.size() == 1 && to.size() == 1), ValueError, table.upstream, ": ", side,
               " tensor '", members.at(k), "' is 0-d and cannot be packed");
      parts.push_back(t);
    }
    const Tensor whole = parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
    if (to.size() == 1) {
      CW_CHECK(!out.count(fill(to[0], m)), ValueError, table.upstream, ": two tensors map to '",
               fill(to[0], m), "'");
      out[fill(to[0], m)] = whole;
      continue;
    }
    const int64_t n = static_cast<int64_t>(to.size());
    CW_CHECK(whole.dim() >= 1 && whole.size(0) % n == 0, ValueError, table.upstream, ": ", side, " tensor '",
             members.begin()->second, "' ", shape_str(whole.shape()), " does not split into ", n,
             " equal parts along dim 0");
    const int64_t rows = whole.size(0) / n;
    for (int64_t i = 0; i < n; ++i)
      out[fill(to[static_cast<size_t>(i)], m)] = whole.narrow(0, i * rows, rows).contiguous();
  }
  return out;
}

}  // namespace

std::map<std::string, Tensor> to_upstream(const NameTable& table, const std::map<std::string, Tensor>& ours) {
  return convert(table, ours, true);
}

std::map<std::string, Tensor> from_upstream(const NameTable& table,
                                            const std::map<std::string, Tensor>& theirs) {
  return convert(table, theirs, false);
}

std::map<std::string, Tensor> with_prefix_removed(const std::map<std::string, Tensor>& state,
                                                  const std::string& prefix, const std::string& what) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : state)
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t;
  CW_CHECK(!out.empty(), ValueError, what, ": no tensor named '", prefix, "*'");
  return out;
}

}  // namespace cw::models
