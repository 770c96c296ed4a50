// VisionTransformer (see vit.h). Follows torchvision 0.14's vision_transformer.py step by step;
// tests/models/vit_test.cpp compares output and every gradient with it on the fixture made by
// tools/make_vit_fixture.py.
#include "models/vit.h"

#include <cmath>

#include "autograd/functions.h"
#include "core/safetensors.h"
#include "nn/init.h"

namespace cw::models {

// ---------------------------------------------------------------- config

int64_t ViTConfig::num_parameters() const {
  const int64_t D = hidden_dim, P = patch_size;
  const int64_t patch_embed = D * in_channels * P * P + D;
  const int64_t block = 2 * (2 * D)                                     // ln_1, ln_2
                        + (3 * D * D + 3 * D)                           // in_proj
                        + (D * D + D)                                   // out_proj
                        + (D * mlp_dim + mlp_dim) + (mlp_dim * D + D);  // mlp
  const int64_t head_in = representation_size > 0 ? representation_size : D;
  const int64_t heads = (representation_size > 0 ? D * representation_size + representation_size : 0) +
                        head_in * embed_dim + embed_dim;
  return patch_embed + D /* class token */ + seq_length() * D + num_layers * block + 2 * D /* ln */ + heads;
}

void ViTConfig::validate() const {
  CW_CHECK(image_size > 0 && patch_size > 0 && image_size % patch_size == 0, ValueError,
           "ViTConfig: image_size ", image_size, " is not divisible by patch_size ", patch_size);
  CW_CHECK(in_channels > 0 && num_layers > 0 && mlp_dim > 0 && embed_dim > 0 && representation_size >= 0,
           ValueError, "ViTConfig: in_channels, num_layers, mlp_dim and embed_dim must be positive (got ",
           in_channels, ", ", num_layers, ", ", mlp_dim, ", ", embed_dim, ")");
  CW_CHECK(hidden_dim > 0 && num_heads > 0 && hidden_dim % num_heads == 0, ValueError,
           "ViTConfig: hidden_dim ", hidden_dim, " is not divisible by num_heads ", num_heads);
  CW_CHECK(dropout >= 0 && dropout < 1 && attention_dropout >= 0 && attention_dropout < 1, ValueError,
           "ViTConfig: dropout ", dropout, " and attention_dropout ", attention_dropout,
           " must be in [0, 1)");
}

ViTConfig ViTConfig::tiny() {
  ViTConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.in_channels = 2;
  c.hidden_dim = 8;
  c.num_layers = 2;
  c.num_heads = 2;
  c.mlp_dim = 16;
  c.embed_dim = 6;
  return c;
}

ViTConfig ViTConfig::small28(int64_t embed_dim) {
  ViTConfig c;
  c.image_size = 28;
  c.patch_size = 4;
  c.in_channels = 1;
  c.hidden_dim = 192;
  c.num_layers = 6;
  c.num_heads = 3;
  c.mlp_dim = 768;
  c.embed_dim = embed_dim;
  return c;
}

ViTConfig ViTConfig::b16(int64_t embed_dim) {
  ViTConfig c;  // the defaults are ViT-B/16's
  c.embed_dim = embed_dim;
  return c;
}

ViTConfig ViTConfig::l16(int64_t embed_dim) {
  ViTConfig c;
  c.hidden_dim = 1024;
  c.num_layers = 24;
  c.num_heads = 16;
  c.mlp_dim = 4096;
  c.embed_dim = embed_dim;
  return c;
}

// ---------------------------------------------------------------- blocks

ViTMLP::ViTMLP(int64_t dim, int64_t mlp_dim, double p, DType dtype) {
  fc1 = register_module("0", std::make_shared<nn::Linear>(dim, mlp_dim, true, dtype));
  fc2 = register_module("3", std::make_shared<nn::Linear>(mlp_dim, dim, true, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  for (const auto& fc : {fc1, fc2}) {
    Tensor w = fc->weight.data(), b = fc->bias.data();  // handles sharing the parameters' storage
    w.copy_(nn::init::xavier_uniform(w.shape(), dtype));
    b.copy_(nn::init::normal(b.shape(), 1e-6, dtype));
  }
}

Variable ViTMLP::forward(const Variable& x) const {
  const Variable h = dropout->forward(ag::gelu(fc1->forward(x)));  // (..., mlp_dim)
  return dropout->forward(fc2->forward(h));
}

ViTEncoderBlock::ViTEncoderBlock(const ViTConfig& c, DType dtype) {
  const int64_t D = c.hidden_dim;
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(Shape{D}, c.layer_norm_eps, true, dtype));
  self_attention = register_module("self_attention", std::make_shared<nn::PackedMultiHeadAttention>(
                                                         D, c.num_heads, c.attention_dropout, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(Shape{D}, c.layer_norm_eps, true, dtype));
  mlp = register_module("mlp", std::make_shared<ViTMLP>(D, c.mlp_dim, c.dropout, dtype));
}

Variable ViTEncoderBlock::forward(const Variable& input) const {
  const Variable x = dropout->forward(self_attention->forward(ln_1->forward(input))) + input;
  return x + mlp->forward(ln_2->forward(x));
}

void ViTLayers::push_back(std::shared_ptr<ViTEncoderBlock> block) {
  blocks_.push_back(register_module("encoder_layer_" + std::to_string(blocks_.size()), std::move(block)));
}

ViTEncoder::ViTEncoder(const ViTConfig& c, DType dtype) {
  pos_embedding =
      register_parameter("pos_embedding", nn::init::normal({1, c.seq_length(), c.hidden_dim}, 0.02, dtype));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
  layers = register_module("layers", std::make_shared<ViTLayers>());
  for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(std::make_shared<ViTEncoderBlock>(c, dtype));
  ln = register_module("ln",
                       std::make_shared<nn::LayerNorm>(Shape{c.hidden_dim}, c.layer_norm_eps, true, dtype));
}

Variable ViTEncoder::forward(const Variable& tokens) const {
  Variable x = dropout->forward(tokens + pos_embedding);  // (B, S, D) + (1, S, D)
  for (const auto& block : *layers) x = block->forward(x);
  return ln->forward(x);
}

ViTHeads::ViTHeads(const ViTConfig& c, DType dtype) {
  int64_t in = c.hidden_dim;
  if (c.representation_size > 0) {
    pre_logits =
        register_module("pre_logits", std::make_shared<nn::Linear>(in, c.representation_size, true, dtype));
    // torchvision: trunc_normal(std = sqrt(1 / fan_in)), zero bias (truncation at +-2 is > 8 sigma
    // for any fan_in >= 16, so a plain normal has the same distribution in practice).
    Tensor w = pre_logits->weight.data(), b = pre_logits->bias.data();
    w.copy_(nn::init::normal(w.shape(), std::sqrt(1.0 / static_cast<double>(in)), dtype));
    b.zero_();
    in = c.representation_size;
  }
  // torchvision zeroes the head (a classifier starting from uniform logits). Here the head is a
  // contrastive projection, where an all-zero output has no direction to normalize, so it keeps
  // nn.Linear's default initialization; a loaded checkpoint overwrites it either way.
  head = register_module("head", std::make_shared<nn::Linear>(in, c.embed_dim, true, dtype));
}

Variable ViTHeads::forward(const Variable& pooled) const {
  return head->forward(pre_logits ? ag::tanh(pre_logits->forward(pooled)) : pooled);
}

// ---------------------------------------------------------------- tower

VisionTransformer::VisionTransformer(const ViTConfig& c, DType dtype) : config(c) {
  c.validate();
  const int64_t D = c.hidden_dim, P = c.patch_size;
  const ops::Conv2dOptions patchwise{{P, P}, {0, 0}, {1, 1}, 1};
  conv_proj = register_module(
      "conv_proj",
      std::make_shared<nn::Conv2d>(c.in_channels, D, std::array<int64_t, 2>{P, P}, patchwise, true, dtype));
  {
    // torchvision: trunc_normal(std = sqrt(1 / fan_in)) (see ViTHeads on the truncation), zero bias.
    Tensor w = conv_proj->weight.data(), b = conv_proj->bias.data();
    w.copy_(nn::init::normal(w.shape(), std::sqrt(1.0 / static_cast<double>(c.in_channels * P * P)), dtype));
    b.zero_();
  }
  class_token = register_parameter("class_token", ops::zeros({1, 1, D}, dtype));
  encoder = register_module("encoder", std::make_shared<ViTEncoder>(c, dtype));
  heads = register_module("heads", std::make_shared<ViTHeads>(c, dtype));
}

Variable VisionTransformer::patchify(const Variable& images) const {
  const int64_t C = config.in_channels, S = config.image_size;
  CW_CHECK(images.dim() == 4 && images.size(1) == C && images.size(2) == S && images.size(3) == S, ShapeError,
           "VisionTransformer: images ", shape_str(images.shape()), " should be (batch, ", C, ", ", S, ", ",
           S, ") for image_size ", S, " and in_channels ", C);
  CW_CHECK(images.size(0) >= 1, ShapeError, "VisionTransformer: empty batch, images ",
           shape_str(images.shape()));
  const int64_t B = images.size(0), D = config.hidden_dim;
  const Variable grid = conv_proj->forward(images);  // (B, D, S/P, S/P)
  // (B, D, N) -> (B, N, D): patch n = row * grid + column, as torchvision's reshape + permute.
  return ag::transpose(ag::reshape(grid, {B, D, config.num_patches()}), 1, 2);
}

Variable VisionTransformer::forward_tokens(const Variable& images) const {
  const Variable patches = patchify(images);  // (B, N, D)
  const int64_t B = patches.size(0);
  const Variable cls = ag::expand(class_token, {B, 1, config.hidden_dim});  // (B, 1, D)
  return encoder->forward(ag::concat({cls, patches}, 1));                   // (B, 1 + N, D)
}

Variable VisionTransformer::forward_features(const Variable& images) const {
  const Variable tokens = forward_tokens(images);  // (B, 1 + N, D)
  if (config.pooling == ViTPooling::Mean)
    return ag::mean(ag::narrow(tokens, 1, 1, config.num_patches()), {1});
  return ag::select(tokens, 1, 0);  // (B, D)
}

Variable VisionTransformer::forward(const Variable& images) const {
  return heads->forward(forward_features(images));
}

// ---------------------------------------------------------------- checkpoints

std::map<std::string, Tensor> upgrade_torchvision_vit_names(std::map<std::string, Tensor> state) {
  // The one rename table: torchvision < 0.14 MLPBlock names -> nn.Sequential indices.
  static const std::pair<const char*, const char*> kRenames[] = {{".mlp.linear_1.", ".mlp.0."},
                                                                 {".mlp.linear_2.", ".mlp.3."}};
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : state) {
    std::string key = name;
    for (const auto& [old_part, new_part] : kRenames) {
      const size_t at = key.find(old_part);
      if (at != std::string::npos) key.replace(at, std::string(old_part).size(), new_part);
    }
    CW_CHECK(out.count(key) == 0, ValueError, "upgrade_torchvision_vit_names: '", name,
             "' and another key both map to '", key, "'");
    out.emplace(std::move(key), std::move(t));
  }
  return out;
}

nn::LoadReport load_vit_safetensors(VisionTransformer& model, const std::filesystem::path& path, bool strict,
                                    bool skip_heads) {
  std::map<std::string, Tensor> state =
      upgrade_torchvision_vit_names(SafetensorsFile::open(path.string()).load_all());
  if (skip_heads) {
    // Neither side's head takes part: drop the checkpoint's and stand the model's own in its place.
    std::erase_if(state, [](const auto& kv) { return kv.first.rfind("heads.", 0) == 0; });
    for (const auto& [name, t] : model.heads->state_dict()) state["heads." + name] = t.clone();
  }
  try {
    return model.load_state_dict(state, strict);
  } catch (const ValueError& e) {
    throw ValueError(detail::cat("load_vit_safetensors: ", path.string(), ": ", e.what()));
  }
}

}  // namespace cw::models
