// ImageTrainOptions: the settings of the image tasks of `train` (--task image_ssl: self-supervised
// pretraining of the image tower; --task image_text: the text tower trained against that frozen
// tower with CWCL or InfoNCE, then zero-shot image classification). Read from the command line and
// INI files with Boost.Program_options under the same dotted names and precedence as the speech
// task's TrainOptions (train_options.h); a separate table, because the two tasks share the
// [loss]/[optim]/[run] conventions but not their data and model options. Part of train/.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "losses/contrastive_config.h"
#include "train/loop_options.h"

namespace cw::train {

struct ImageTrainOptions : LoopOptions {
  std::string task = "image_text";  // image_ssl | image_text

  // ---- [data]
  std::string dataset = "fashion_mnist";  // fashion_mnist | digits | shapes | an imported corpus
  // image_text: the data set whose test split the zero-shot evaluation uses; empty = dataset. An
  // imported caption-only corpus (import webdataset) trains, an imported class-folder corpus
  // (import imagenet) evaluates.
  std::string eval_dataset;
  std::string image_root;  // folder of the data sets; empty = default_image_root()
  int64_t loader_workers = 1;

  // ---- [model]
  // Image tower: a preset (image_tower.h) with optional overrides; image_text reads the whole
  // configuration from the tower file instead.
  std::string image_preset = "micro28";  // micro28 | small28
  int64_t image_patch = 0, image_dim = 0, image_layers = 0, image_heads = 0, image_mlp = 0;  // 0 = preset's
  int64_t ssl_proj_dim = 128;  // SimCLR projection head output (discarded after pretraining)
  std::string image_tower;     // image_text: the tower written by image_ssl (.safetensors)
  std::string text_model;      // all-MiniLM-L6-v2 folder; empty = the installed package
  // Top MiniLM layers trained (the rest, embeddings included, frozen: no graph is kept for them);
  // -1 = every layer and the embeddings. The projection and logit scale are always trained.
  int64_t text_train_layers = 2;

  // ---- [ssl]: SimCLR augmentation of each view and its loss
  double crop_min_scale = 0.4;              // random resized crop: area fraction in [crop_min_scale, 1]
  double brightness = 0.4, contrast = 0.4;  // multiplicative jitter ranges (0 = off)
  double noise_std = 0.05;                  // Gaussian pixel noise, in [0, 1] pixel units
  double ssl_temperature = 0.2;             // fixed NT-Xent temperature
  int64_t knn_k = 20;                       // k of the k-NN sanity check
  int64_t knn_memory = 10000;               // training images used as k-NN memory (0 = all)

  // ---- [loss] (image_text)
  losses::ContrastiveConfig loss;

  // [optim], [run], [dist] and [eval] are the loop's (loop_options.h), with these defaults.
  ImageTrainOptions() {
    batch_size = 128;
    lr = 1e-4;
    out = "runs/image_text";
    eval_batch_size = 256;
    eval_max_items = 0;  // test images per mid-run evaluation, 0 = all
  }

  std::string to_ini() const;
  // Every path made absolute (image root, towers): what config.ini records (train_options.h).
  ImageTrainOptions with_absolute_paths() const;
};

struct ParsedImageTrainOptions {
  ImageTrainOptions options;
  bool exit_now = false;  // --help or --print-config handled
};

// Parses argv and its --config files (with their includes) like parse_train_options; unknown or
// abbreviated options, bad or out-of-range values and contradictions throw cw::OptionError naming
// the option (and the file).
ParsedImageTrainOptions parse_image_train_options(int argc, const char* const* argv, std::ostream& out);

// The --task named on the command line or at the top of a --config file ("task = image_text"
// before any section); "speech_text" when none is named. Lets `train` pick the option table
// before parsing strictly.
std::string requested_task(int argc, const char* const* argv);

}  // namespace cw::train
