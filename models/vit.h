// Vision Transformer image tower (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"):
// images (B, C, H, W) -> patch embedding (a Conv2d with kernel = stride = patch) -> class token
// + learned positions -> pre-LN encoder layers (MHSA, MLP with GELU) -> final LayerNorm ->
// pooled token (class token, or the mean of the patch tokens) -> projection head.
// Module names are torchvision's VisionTransformer state_dict names (conv_proj, class_token,
// encoder.pos_embedding, encoder.layers.encoder_layer_{i}.{ln_1,self_attention,ln_2,mlp},
// encoder.ln, heads.head), so a torchvision checkpoint saved as safetensors loads by name.
// Part of models/.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "nn/basic_layers.h"
#include "nn/conv.h"
#include "nn/packed_attention.h"

namespace cw::models {

enum class ViTPooling {
  ClassToken,  // the final-LN class token, as ViT and torchvision (x[:, 0])
  Mean,        // the mean of the final-LN patch tokens (class token excluded), as MAE's global_pool
};

struct ViTConfig {
  int64_t image_size = 224, patch_size = 16, in_channels = 3;
  int64_t hidden_dim = 768, num_layers = 12, num_heads = 12, mlp_dim = 3072;
  // Output width of heads.head: torchvision's num_classes, or the text tower's width (384 for
  // all-MiniLM-L6-v2) when the ViT is one tower of a dual encoder.
  int64_t embed_dim = 1000;
  // torchvision's representation_size: > 0 puts heads.pre_logits (Linear) + tanh before the head.
  int64_t representation_size = 0;
  double dropout = 0.0;            // after the position embedding, after attention, inside the MLP
  double attention_dropout = 0.0;  // on the attention probabilities
  double layer_norm_eps = 1e-6;    // torchvision's partial(nn.LayerNorm, eps=1e-6)
  ViTPooling pooling = ViTPooling::ClassToken;

  int64_t grid_size() const { return image_size / patch_size; }      // patches per side
  int64_t num_patches() const { return grid_size() * grid_size(); }  // (image / patch)^2
  int64_t seq_length() const { return num_patches() + 1; }           // + the class token
  // The parameter count the module will have, from the shapes alone (no allocation), so that
  // large presets can be sized without building them.
  int64_t num_parameters() const;
  // Throws ValueError naming the field at fault (e.g. an image size not divisible by the patch).
  void validate() const;

  // A few thousand parameters (image 8, patch 4, dim 8, 2 layers): gradient checks.
  static ViTConfig tiny();
  // 28x28x1 images (Fashion-MNIST, digits scaled up), patch 4 (7x7 = 49 patches + class token),
  // dim 192, 6 layers, 3 heads, MLP 768 (ViT-Tiny's widths at half its depth), 384-d head:
  // 2,756,736 parameters.
  static ViTConfig small28(int64_t embed_dim = 384);
  // ViT-B/16 at 224 (torchvision vit_b_16): 86,567,656 parameters with the 1000-class head.
  static ViTConfig b16(int64_t embed_dim = 1000);
  // ViT-L/16 at 224 (torchvision vit_l_16): 304,326,632 parameters with the 1000-class head.
  static ViTConfig l16(int64_t embed_dim = 1000);
};

// torchvision's MLPBlock: Linear (name "0") -> GELU (erf) -> Dropout -> Linear ("3") -> Dropout;
// the names are its nn.Sequential indices. Initialized as torchvision: Xavier-uniform weights,
// N(0, 1e-6^2) biases.
class ViTMLP : public nn::Module {
 public:
  ViTMLP(int64_t dim, int64_t mlp_dim, double dropout, DType dtype);
  Variable forward(const Variable& x) const;  // (..., dim) -> (..., dim)
  std::shared_ptr<nn::Linear> fc1, fc2;       // "0", "3"
  std::shared_ptr<nn::Dropout> dropout;
};

// One pre-LN encoder block, torchvision's EncoderBlock:
//   x = x + Dropout(MHSA(ln_1(x)));  y = x + MLP(ln_2(x))
class ViTEncoderBlock : public nn::Module {
 public:
  ViTEncoderBlock(const ViTConfig& c, DType dtype);
  Variable forward(const Variable& x) const;  // (B, S, D) -> (B, S, D)
  std::shared_ptr<nn::LayerNorm> ln_1, ln_2;
  std::shared_ptr<nn::PackedMultiHeadAttention> self_attention;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<ViTMLP> mlp;
};

// The blocks, named encoder_layer_0, encoder_layer_1, ... (torchvision's OrderedDict keys).
class ViTLayers : public nn::Module {
 public:
  void push_back(std::shared_ptr<ViTEncoderBlock> block);
  size_t size() const { return blocks_.size(); }
  ViTEncoderBlock& operator[](size_t i) const { return *blocks_.at(i); }
  auto begin() const { return blocks_.begin(); }
  auto end() const { return blocks_.end(); }

 private:
  std::vector<std::shared_ptr<ViTEncoderBlock>> blocks_;
};

// torchvision's Encoder: + pos_embedding (1, S, D), dropout, the blocks, the final LayerNorm.
class ViTEncoder : public nn::Module {
 public:
  ViTEncoder(const ViTConfig& c, DType dtype);
  Variable forward(const Variable& tokens) const;  // (B, S, D) -> (B, S, D)
  Variable pos_embedding;                          // (1, S, D), N(0, 0.02^2) as torchvision (from BERT)
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<ViTLayers> layers;
  std::shared_ptr<nn::LayerNorm> ln;
};

// torchvision's heads: [pre_logits (Linear) -> tanh ->] head (Linear).
class ViTHeads : public nn::Module {
 public:
  ViTHeads(const ViTConfig& c, DType dtype);
  Variable forward(const Variable& pooled) const;  // (B, D) -> (B, embed_dim)
  std::shared_ptr<nn::Linear> pre_logits;          // null unless representation_size > 0
  std::shared_ptr<nn::Linear> head;
};

class VisionTransformer : public nn::Module {
 public:
  explicit VisionTransformer(const ViTConfig& c, DType dtype = DType::F32);

  // images (B, in_channels, image_size, image_size) -> patch tokens (B, N, D), N = (image/patch)^2,
  // in row-major patch order (torchvision's _process_input). A wrong rank, channel count or size
  // is a ShapeError naming the shape given and the shape expected.
  Variable patchify(const Variable& images) const;
  // Every token after the final LayerNorm: (B, 1 + N, D), the class token first.
  Variable forward_tokens(const Variable& images) const;
  // The pooled representation in front of the head (config.pooling): (B, D).
  Variable forward_features(const Variable& images) const;
  // heads(forward_features(images)): (B, embed_dim), not normalized (the contrastive losses
  // normalize both towers).
  Variable forward(const Variable& images) const;

  ViTConfig config;
  std::shared_ptr<nn::Conv2d> conv_proj;  // (D, C, p, p), kernel = stride = patch
  Variable class_token;                   // (1, 1, D), zeros as torchvision
  std::shared_ptr<ViTEncoder> encoder;
  std::shared_ptr<ViTHeads> heads;
};

// Renames the keys of a torchvision ViT state dict written before torchvision 0.14's MLPBlock
// change (mlp.linear_1 / mlp.linear_2, as in the released .pth files) to the current names
// (mlp.0 / mlp.3), as MLPBlock._load_from_state_dict does; other keys pass through unchanged.
std::map<std::string, Tensor> upgrade_torchvision_vit_names(std::map<std::string, Tensor> state);

// Loads a torchvision VisionTransformer checkpoint saved as safetensors (state_dict names, old or
// new MLP names) into `model` by name, converting dtype. strict = false skips tensors the model
// lacks and leaves missing ones at their initial values (e.g. a checkpoint's 1000-class head into
// a model with a 384-d head: pass skip_heads = true to ignore heads.* on both sides). Any
// shape mismatch, and with strict any missing or unexpected tensor, throws a ValueError that
// names the file and every tensor at fault with both shapes.
nn::LoadReport load_vit_safetensors(VisionTransformer& model, const std::filesystem::path& path,
                                    bool strict = true, bool skip_heads = false);

}  // namespace cw::models
