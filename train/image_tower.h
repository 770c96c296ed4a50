// The frozen image tower of the image-text experiment as a file, and what is computed from it:
// ViT presets sized for this CPU, the tower saved as safetensors with its configuration and input
// normalization in the metadata (so a file alone rebuilds the model), batched no-grad image
// embeddings, and their on-disk cache (the image side's counterpart of frozen_text_cache.h: the
// tower never changes during image-text training, so every image is embedded once). Part of train/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/image_dataset.h"
#include "data/image_loader.h"
#include "models/vit.h"

namespace cw::train {

struct ImageTrainOptions;

// ViT presets for 28x28 single-channel images. micro28 (patch 7: 16 patches + class token, dim
// 128, 4 layers, 4 heads, MLP 256) exists because small28's SimCLR step (two views) takes tens of
// seconds at batch 128 on this 2-core machine (docs/notes/imgtext.md); small28 is
// models/vit.h's. The --model.image_* overrides apply on top; embed_dim is the SSL projection width.
models::ViTConfig image_tower_config(const ImageTrainOptions& o, int64_t in_channels);

// A tower file: the VisionTransformer's state_dict plus metadata "format" = "cw-image-tower-1",
// "vit_config" (JSON), "mean"/"std" (the per-channel input normalization, JSON arrays),
// "dataset", "steps". The tower's representation is forward_features (the pooled token in front
// of the SSL projection head, as SimCLR uses it downstream).
struct ImageTower {
  std::shared_ptr<models::VisionTransformer> model;
  std::vector<float> mean, std;
  std::filesystem::path path;
  uint64_t fingerprint = 0;  // of the file's bytes

  int64_t dim() const { return model->config.hidden_dim; }
};

// Written atomically (core/safetensors.h writes to a temporary file and renames it).
void save_image_tower(const std::filesystem::path& path, const models::VisionTransformer& model,
                      const std::vector<float>& mean, const std::vector<float>& std,
                      const std::string& dataset, int64_t steps);
// Strict: a missing or malformed metadata entry, or a tensor the configuration does not explain,
// is a ValueError naming the file. The model comes back in eval mode with requires_grad off.
ImageTower load_image_tower(const std::filesystem::path& path);

// Loader options showing the data set's images to the tower: no augmentation, the tower's
// normalization, and a bilinear resize when the data set's size is not the tower's (digits 8x8 ->
// 28x28). A channel-count mismatch is a ShapeError naming both.
data::ImageLoaderOptions tower_loader_options(const models::ViTConfig& cfg, const data::ImageDataset& dataset,
                                              const std::vector<float>& mean, const std::vector<float>& std,
                                              int64_t batch_size);

// forward_features of the first max_rows rows of `dataset` (0: every row), in row order, without
// a graph: (N, D).
Tensor embed_images(const ImageTower& tower, std::shared_ptr<const data::ImageDataset> dataset,
                    int64_t batch_size, int64_t max_rows = 0);

struct CachedImageEmbeddings {
  Tensor embeddings;  // f32 (N, D), row i = dataset row i (not normalized)
  bool from_cache = false;
  double seconds = 0;
  std::filesystem::path file;
};

// embed_images, cached in <tower file>.cache/<dataset>-<split>-<key>.safetensors with key = the
// tower file's and the split manifest's fingerprints. A file of the wrong shape is recomputed.
CachedImageEmbeddings embed_images_cached(const ImageTower& tower,
                                          std::shared_ptr<const data::ImageDataset> dataset,
                                          int64_t batch_size);

}  // namespace cw::train
