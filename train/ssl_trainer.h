// Self-supervised pretraining of the image tower (`train --task image_ssl`): SimCLR without
// labels on a data set's training images. Two augmented views of every image (data/ssl_augment.h) go
// through the ViT and its projection head, and the project's InfoNCE loss (losses/, both
// directions, fixed temperature) pulls each image's two views together against the other images
// of the batch. A task of the one training loop (run_loop.h: AdamW, warmup + cosine, clipping,
// checkpoints, --run.resume); at the end the tower is written as <out>/image_tower.safetensors
// (image_tower.h) and checked by weighted k-NN classification of the test images (image_knn.h). Part of
// train/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <vector>

#include "train/image_options.h"
#include "train/run_loop.h"

namespace cw::train {

// The loop's result (losses, steps, timing; run_loop.h) and the task's own.
struct ImageSslResult : LoopResult {
  std::vector<std::pair<int64_t, double>> knn;  // (step, k-NN test accuracy), step 0 = the random init
  std::filesystem::path tower;                  // the tower file written at the end
};

ImageSslResult run_image_ssl(const ImageTrainOptions& o, std::ostream& log);

}  // namespace cw::train
