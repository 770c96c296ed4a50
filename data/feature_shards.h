// Sharded storage of per-row feature frames (log-mel frames of a manifest's utterances, or a frozen
// tower's hidden states): a sequence of fixed-size safetensors files, written one at a time and
// atomically, read row by row with pread, so that neither building nor reading holds the corpus in
// memory. The storage under data/feature_cache.h (which computes the rows and names the key).
// Part of data/.
//
// Files: <prefix>-00000.safetensors, <prefix>-00001.safetensors, ... Shard j holds the rows
// [first_row_j, first_row_j + R_j) of the corpus, in row order, with
//   "features" f32 (sum of T_i over its rows, F)
//   "offsets"  i64 (R_j + 1)   its row r is frames [offsets[r], offsets[r + 1])
// and metadata {"format": "cw-feature-shards-1", "key": <the cache key>, "shard": "j",
// "first_row": "first_row_j", "rows": "R_j"}. A shard holds at most shard_bytes of frames, or one
// row when that row alone is larger. The files load in Python with safetensors.numpy.load_file.
//
// Why shards: a corpus of 1,000 hours has ~115 GB of 80-bin f32 frames. One file would have to be
// built in memory (save_safetensors writes a whole tensor) and a killed build would restart from
// zero; here a build holds one shard (shard_bytes) and resumes at the first missing shard. A
// shard's extent is decided by the rows' frame counts only, so a rebuilt shard equals the lost one
// and every later shard stays valid.
//
// Why pread and not a mapping: rows are copied into the batch anyway, and a mapped file's touched
// pages count in the process's RSS until the kernel needs them back, so after one epoch a mapped
// 100 GB corpus shows 100 GB resident (reclaimable, but not what "flat memory" means, and a
// truncated file would be SIGBUS instead of an error). pread leaves the pages in the kernel's
// page cache. One open descriptor per shard is held, so a file replaced on disk cannot change
// under a reader (at the default 256 MB, 1,024 descriptors cover ~250 GB of frames).
//
// Checks (a shard that fails any is "not valid", with the reason, naming the file): the
// safetensors header and layout (core/safetensors.h: the data buffer covers the file exactly, so
// a truncated or padded file fails), the format tag, the full key text, the shard number, the
// first row (it must continue the previous shard), dtypes and shapes ((R, F) f32 and (R + 1) i64,
// F the expected bins, R >= 1 and not past the corpus' last row), and offsets that start at 0,
// never decrease and end at the frame count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw {
struct FileBytes;
}

namespace cw::data {

// What every shard of one corpus shares (the key is compared in full on open).
struct ShardSpec {
  std::filesystem::path prefix;  // <cache_dir>/<manifest stem>-<hash of key>
  std::string key;               // the cache key text (feature_cache.h)
  int64_t num_rows = 0;          // rows of the corpus (manifest rows)
  int64_t num_bins = 0;          // F, columns per frame
};

// Default bytes of frames per shard: the memory a build holds, and 1/4 GB file sizes that move
// and checksum easily.
constexpr int64_t kDefaultShardBytes = int64_t{256} << 20;

std::filesystem::path shard_path(const std::filesystem::path& prefix, int64_t shard);

// The complete or partial set of shards of one corpus, opened for reading.
class FeatureShards {
 public:
  // Opens shards 0, 1, ... of spec.prefix while each exists, is valid and continues the rows of
  // the one before; stops at the first that does not. complete() says whether they cover every
  // row; `why` is set ("<file>: <reason>") when a shard exists but is not valid.
  static FeatureShards open(const ShardSpec& spec, std::string* why = nullptr);

  bool complete() const { return rows_covered() == spec_.num_rows; }
  int64_t rows_covered() const { return static_cast<int64_t>(offsets_.size()) - 1; }
  int64_t num_shards() const { return static_cast<int64_t>(files_.size()); }
  std::filesystem::path file(int64_t shard) const { return shard_path(spec_.prefix, shard); }
  const ShardSpec& spec() const { return spec_; }

  int64_t num_frames(int64_t row) const;  // IndexError outside [0, rows_covered())
  int64_t total_frames() const { return offsets_.back(); }
  // Row `row`: f32 (T, F), its first min(T, max_frames) frames when max_frames > 0, read from its
  // shard into a fresh tensor (thread-safe). A shard that shrank since it was opened is a
  // cw::Error naming it.
  Tensor read(int64_t row, int64_t max_frames = 0) const;

 private:
  struct Shard {
    std::shared_ptr<FileBytes> bytes;  // the open descriptor
    uint64_t features_at = 0;          // file offset of the first frame
    int64_t first_row = 0;
  };
  ShardSpec spec_;
  std::vector<Shard> files_;
  std::vector<int64_t> offsets_{0};  // rows_covered() + 1: row i is frames [offsets_[i], offsets_[i + 1])
                                     // of the whole corpus (8 bytes a row: the index kept in memory)
  std::vector<int64_t> shard_of_;    // rows_covered(): the shard holding row i (as an index into files_)
};

// Appends rows, in row order from first_row, to shards first_shard, first_shard + 1, ...: a shard
// is written (save_safetensors: temporary file, fsync, rename) as soon as the next row would
// overflow shard_bytes, and the last one by finish(). Memory: one shard of frames, reused.
class ShardWriter {
 public:
  ShardWriter(ShardSpec spec, int64_t first_shard, int64_t first_row,
              int64_t shard_bytes = kDefaultShardBytes);
  // frames: f32 (T, F) of row next_row(). ShapeError for another shape; past the last row a
  // ValueError.
  void append(const Tensor& frames);
  // Writes the last shard; then next_row() must be spec.num_rows (ValueError otherwise).
  void finish();
  int64_t next_row() const { return row_; }
  int64_t shards_written() const { return shard_ - first_shard_; }

 private:
  void write_shard();

  ShardSpec spec_;
  int64_t first_shard_, shard_, row_, shard_first_row_;
  int64_t capacity_frames_;
  Tensor buffer_;  // f32 (capacity_frames, F), allocated on the first row
  std::vector<int64_t> offsets_{0};
};

}  // namespace cw::data
