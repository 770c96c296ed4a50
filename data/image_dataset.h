// A named image data set of the image-text experiment, one split of it: the images (IDX, kept as
// bytes), labels, class names, zero-shot prompt templates and the training captions, as written by
// tools/make_image_corpus.py (dataset.json + <split>.tsv + IDX files; format: data/README.md).
// Second stage of the image data path (idx_reader.h -> here -> image_loader.h). Part of data/.
//
// Manifest (UTF-8, tab separated, this exact header):
//   id  index  label  captions  attributes
//   train-000000  0  9  a buskin | a low-resolution scan of a Wellington | ...  color=red;count=2
// index is the row in the split's IDX files, label must equal the IDX label there, captions are
// joined by " | " (at least one), attributes are key=value pairs joined by ';' (may be empty).
// A split without a "labels" file in dataset.json (the importers' corpora, import_image_corpus.h:
// ImageNet's 1000 classes do not fit IDX's byte labels; WebDataset pairs have no class) takes the
// label from the manifest, where an empty label means "no class" (label -1).
// Malformed input throws cw::ValueError naming the file (and the 1-based line for a manifest).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/idx_reader.h"

namespace cw::data {

// One manifest row.
struct ImageRow {
  std::string id;
  int64_t index = 0;  // row in the split's IDX image and label files
  int64_t label = 0;  // -1: no class (a caption-only corpus)
  std::vector<std::string> captions;
  std::string attributes;  // "key=value;..." (compositional set), empty elsewhere
  int64_t line = 0;        // 1-based manifest line, for messages
};

// Per-channel statistics of pixel values in [0, 1], for normalization.
struct ChannelStats {
  std::vector<float> mean, std;
};

class ImageDataset {
 public:
  // Split `split` of the data set in `dir` (the folder holding dataset.json).
  static ImageDataset load(const std::filesystem::path& dir, const std::string& split);
  // The data set `name` ("fashion_mnist", "digits", "shapes") under `root`, by default
  // default_image_root(). ValueError naming the folder and how to make it when it is absent.
  static ImageDataset load_named(const std::string& name, const std::string& split,
                                 const std::filesystem::path& root = {});

  const std::string& name() const { return name_; }
  const std::string& split() const { return split_; }
  const std::filesystem::path& dir() const { return dir_; }
  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  int64_t channels() const { return channels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  // Class names as the zero-shot prompts say them (index = label), and the prompt templates
  // ("a photo of a {}."), >= 10 per data set.
  const std::vector<std::string>& classes() const { return classes_; }
  int64_t num_classes() const { return static_cast<int64_t>(classes_.size()); }
  const std::vector<std::string>& prompt_templates() const { return templates_; }
  // Each template filled with class c ("{}" replaced by the class name).
  std::vector<std::string> prompts(int64_t c) const;
  // Whether a horizontal flip keeps an image's meaning (false for digits and for the
  // compositional set, whose captions say left and right).
  bool horizontal_flip() const { return horizontal_flip_; }
  // Labels of the classes held out of training (compositional set), empty elsewhere.
  const std::vector<int64_t>& heldout_classes() const { return heldout_; }

  const std::vector<ImageRow>& rows() const { return rows_; }
  const ImageRow& row(int64_t i) const;  // IndexError when out of range
  // Pixels of row i as bytes, (H, W, C) row-major (a pointer into the IDX data).
  const uint8_t* pixels(int64_t i) const;
  // Row i as f32 (C, H, W) in [0, 1].
  Tensor image(int64_t i) const;
  // Labels of every row, i64 (N).
  Tensor labels() const;
  // Whether every row has a class (zero-shot evaluation and the k-NN check need one).
  bool labeled() const;
  // Mean and standard deviation of each channel over every pixel of every row.
  ChannelStats channel_stats() const;

 private:
  std::string name_, split_;
  std::filesystem::path dir_;
  int64_t channels_ = 1, height_ = 0, width_ = 0;
  std::vector<std::string> classes_, templates_;
  bool horizontal_flip_ = false;
  std::vector<int64_t> heldout_;
  std::vector<ImageRow> rows_;
  IdxArray images_;  // (N, H, W) or (N, H, W, C) bytes
};

// <project>/.cache/images/default, where tools/make_image_corpus.py writes by default; the
// environment variable CW_IMAGE_DATA overrides it.
std::filesystem::path default_image_root();

}  // namespace cw::data
