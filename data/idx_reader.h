// Reader of IDX files, the format of MNIST and Fashion-MNIST (LeCun's "idx3-ubyte"), gzip'd or
// not: images and labels as tensors. First stage of the image data path (data/image_dataset.h
// builds named data sets on it; tools/make_image_corpus.py writes IDX files too). Part of data/.
//
// Format: a 4-byte magic 0x00 0x00 <type> <ndims>, then ndims big-endian int32 sizes, then the
// items in row-major order. Only type 0x08 (unsigned byte) is read, the only type the data sets
// here use; other types throw NotImplementedError naming the file and the type. Files are read
// through zlib's gzread, which passes a plain file through unchanged, so one code path serves the
// Debian package's .gz files and our own uncompressed ones, and a truncated gzip stream is
// reported like a truncated file. Every malformed input throws cw::ValueError naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/tensor.h"

namespace cw::data {

// The decoded content of one IDX file of unsigned bytes.
struct IdxArray {
  std::filesystem::path path;
  std::vector<int64_t> dims;  // dims[0] = number of items (images or labels)
  std::vector<uint8_t> data;  // prod(dims) bytes, row-major

  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
  // Bytes per item: the product of dims[1:] (1 for a label file).
  int64_t item_size() const;
};

// Reads and checks one IDX file. ValueError (naming the file) for: a missing or unreadable file,
// an empty file, a wrong magic (the first two bytes not zero, or ndims 0), a negative size, zero
// items, a file shorter than its header says (truncated, or a cut gzip stream) and a file longer
// than it (trailing bytes: the header and the data disagree), sizes whose product overflows;
// NotImplementedError for an element type other than unsigned byte. Memory follows the bytes the
// file holds, never the sizes its header declares: a plain file's size is checked against them
// before the data is allocated, a gzip stream's data grows with what inflates.
IdxArray read_idx(const std::filesystem::path& path);

// Images: an IDX file of 3 dims (N, H, W) (grayscale, MNIST) or 4 dims (N, H, W, C) (channels
// last, as image libraries store pixels) -> f32 (N, C, H, W) in [0, 1] (byte / 255), the layout
// the models take. ValueError naming the file for any other number of dims.
Tensor idx_images_to_tensor(const IdxArray& images);
Tensor read_idx_images(const std::filesystem::path& path);

// Labels: an IDX file of 1 dim (N) -> i64 (N). ValueError naming the file for other dims, or for
// a label >= num_classes when num_classes > 0.
Tensor idx_labels_to_tensor(const IdxArray& labels, int64_t num_classes = 0);
Tensor read_idx_labels(const std::filesystem::path& path, int64_t num_classes = 0);

// An image file and its label file must list the same number of items; ValueError naming both
// files and both counts otherwise.
void check_idx_pair(const IdxArray& images, const IdxArray& labels);

}  // namespace cw::data
