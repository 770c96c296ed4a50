// The frozen tower's embeddings, computed once per data set and kept on disk. The text tower of
// the speech-text experiment never changes during training, so embedding every transcript once
// (no-grad, no activations kept) and reading the (N, 384) table afterwards means a training step
// pays only for the trained tower. Part of train/.
//
// Two forms of the same cache:
//  - embed_with_cache: a small split's (N, D) table, one safetensors file, held in memory (the
//    held-out splits and the class prompts: a few thousand rows at most);
//  - embed_rows_with_cache: the training split's table, which grows with the corpus (1.5 KB a
//    row: ~1.5 GB at 1,000 h), kept on disk in feature shards (data/feature_shards.h) and read a
//    batch's rows at a time, so a run's memory does not grow with it.
// Both embed each distinct sentence once: corpora repeat transcripts (the same prompt read by
// many speakers), and the frozen tower maps equal text to equal vectors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/feature_shards.h"
#include "models/sentence_encoder.h"

namespace cw::train {

// Fingerprints use data/speech_manifest.h's fnv1a64 (64-bit FNV-1a, stable across runs).
// The fingerprint of a file's bytes; throws cw::Error naming the file when it cannot be read.
uint64_t file_fingerprint(const std::filesystem::path& path);
std::string hex64(uint64_t v);

// A frozen sentence encoder with an identity for cache keys (its folder's config and weights).
struct FrozenTextTower {
  models::SentenceEncoder encoder;
  uint64_t fingerprint = 0;  // config.json bytes, model.safetensors size, max_seq_length
  std::filesystem::path dir;

  static FrozenTextTower load(const std::filesystem::path& dir);
};

// The distinct texts of a sentence list, in the order first seen, and where each sentence went.
struct DistinctSentences {
  std::vector<std::string> texts;  // K distinct texts
  std::vector<int64_t> index_of;   // N: sentence i is texts[index_of[i]]
};
DistinctSentences distinct_sentences(const std::vector<std::string>& sentences);

// Embeddings of each distinct sentence, f32 (N, D) with row i for sentence i: every distinct text
// is embedded once (no-grad, batches of batch_size) and copied to the rows that repeat it. Equal to
// embedding every sentence up to float rounding (a batch's padding length changes the sums' order).
Tensor embed_sentences(const FrozenTextTower& tower, const std::vector<std::string>& sentences,
                       int64_t batch_size = 64, const std::string& what = "text embeddings");

struct CachedEmbeddings {
  Tensor embeddings;  // f32 (N, H), unit rows, row i for sentence i
  bool from_cache = false;
  double seconds = 0;  // time to load or compute
  std::filesystem::path file;
};

// Embeddings of `sentences` under `cache_dir`/<name>-<key>.safetensors, key = fnv(model
// fingerprint, every sentence): read when present and well-formed, else computed in batches and
// written atomically. A file of the wrong shape (a collision or a hand edit) is recomputed.
CachedEmbeddings embed_with_cache(const FrozenTextTower& tower, const std::vector<std::string>& sentences,
                                  const std::filesystem::path& cache_dir, const std::string& name,
                                  int64_t batch_size = 64);

// A split's frozen embeddings on disk, read by rows: the distinct texts' (K, D) embeddings as
// feature shards with one "frame" of D floats per distinct text, and in memory only the index of
// each row's text (8 bytes a row, plus the shards' 16-byte index per distinct text).
class TextEmbeddingRows {
 public:
  TextEmbeddingRows() = default;
  TextEmbeddingRows(data::FeatureShards shards, std::vector<int64_t> index_of);

  int64_t size() const { return static_cast<int64_t>(index_of_.size()); }  // N
  int64_t dim() const { return shards_.spec().num_bins; }                  // D
  int64_t distinct() const { return shards_.rows_covered(); }              // K
  // f32 (B, D): row b is the embedding of sentence rows[b] (pread from the shards; thread-safe).
  // IndexError for a row outside [0, size()).
  Tensor rows(const std::vector<int64_t>& rows) const;
  // f32 (N, D), the whole table: for the few users that need it at once (eval --baseline lstsq).
  Tensor all() const;
  const data::FeatureShards& shards() const { return shards_; }

 private:
  data::FeatureShards shards_;
  std::vector<int64_t> index_of_;
};

struct CachedEmbeddingRows {
  TextEmbeddingRows table;
  bool from_cache = false;  // every shard was read, none computed
  double seconds = 0;       // time to open or compute
  std::string repaired;     // "<file>: <reason>" when a shard on disk was not valid and was rewritten
};

// The embeddings of `sentences` as a TextEmbeddingRows under `cache_dir`/<name>-rows-<key>-NNNNN
// .safetensors, with the key of embed_with_cache (model fingerprint, every sentence; the shards'
// metadata holds the full key text, compared on open). Valid shards are read; from the first
// missing or invalid one (truncated, corrupt, another key) on, the rows are computed and the
// shards written atomically, one at a time (rows recomputed after a damaged shard are batched
// from there, so they equal the first build's up to float rounding). Memory: one shard
// (shard_bytes) while building.
CachedEmbeddingRows embed_rows_with_cache(const FrozenTextTower& tower,
                                          const std::vector<std::string>& sentences,
                                          const std::filesystem::path& cache_dir, const std::string& name,
                                          int64_t batch_size = 64,
                                          int64_t shard_bytes = data::kDefaultShardBytes);

}  // namespace cw::train
