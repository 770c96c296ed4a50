// The frozen tower's embeddings, computed once per data set and kept on disk. The text tower of
// the speech-text experiment never changes during training, so embedding every transcript once
// (no-grad, no activations kept) and reading the (N, 384) table afterwards means a training step
// pays only for the trained tower. Part of train/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
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

}  // namespace cw::train
