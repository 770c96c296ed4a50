// Frozen text-tower embedding cache (see frozen_text_cache.h).
#include "train/frozen_text_cache.h"

#include <fstream>
#include <iterator>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/speech_manifest.h"
#include "train/progress.h"
#include "train/stopwatch.h"

namespace cw::train {

namespace {

uint64_t fnv1a64(const std::string& s, uint64_t h = 0xcbf29ce484222325ull) {
  return data::fnv1a64(s.data(), s.size(), h);
}

}  // namespace

uint64_t file_fingerprint(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  CW_CHECK(in.good(), Error, "cannot read '", path.string(), "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return fnv1a64(bytes);
}

std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = digits[v & 15];
  return s;
}

FrozenTextTower FrozenTextTower::load(const std::filesystem::path& dir) {
  FrozenTextTower t{models::SentenceEncoder::load(dir), 0, dir};
  t.encoder.model->requires_grad_(false);  // frozen: no gradients, no saved activations
  t.encoder.model->eval();
  // The weights file is large; its size plus the config identify the model well enough for a
  // cache key (a different checkpoint of the same architecture differs in config or size in
  // practice, and --model.text_model names the folder in the run record anyway).
  const uint64_t size = std::filesystem::file_size(dir / "model.safetensors");
  uint64_t h = file_fingerprint(dir / "config.json");
  h = data::fnv1a64(&size, sizeof size, h);
  h = data::fnv1a64(&t.encoder.max_seq_length, sizeof t.encoder.max_seq_length, h);
  t.fingerprint = h;
  return t;
}

CachedEmbeddings embed_with_cache(const FrozenTextTower& tower, const std::vector<std::string>& sentences,
                                  const std::filesystem::path& cache_dir, const std::string& name,
                                  int64_t batch_size) {
  CW_CHECK(!sentences.empty(), ValueError, "embed_with_cache('", name, "'): no sentences");
  const auto t0 = Clock::now();
  uint64_t key = tower.fingerprint;
  for (const auto& s : sentences) key = fnv1a64(s + '\n', key);
  CachedEmbeddings out;
  out.file = cache_dir / (name + "-" + hex64(key) + ".safetensors");
  const int64_t n = static_cast<int64_t>(sentences.size());
  if (std::filesystem::exists(out.file)) {
    try {
      Tensor e = SafetensorsFile::open(out.file.string()).load("embeddings", DType::F32);
      if (e.dim() == 2 && e.shape()[0] == n) {
        out.embeddings = e.contiguous();
        out.from_cache = true;
      }
    } catch (const Error&) {
      // unreadable: recompute and overwrite below
    }
  }
  if (!out.from_cache) {
    NoGradGuard no_grad;
    // A few batches at a time, for the progress line; encode() runs batch after batch, so the
    // embeddings are those of one call.
    ProgressMeter meter("text embeddings: " + name, "sentences", n);
    std::vector<Tensor> parts;
    const int64_t chunk = 8 * batch_size;
    for (int64_t at = 0; at < n; at += chunk) {
      const auto first = sentences.begin() + at;
      const std::vector<std::string> part(first, first + std::min(chunk, n - at));
      parts.push_back(tower.encoder.encode(part, batch_size));
      meter.add(static_cast<int64_t>(part.size()));
    }
    out.embeddings = parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
    std::filesystem::create_directories(cache_dir);
    save_safetensors(out.file.string(), {{"embeddings", out.embeddings}},
                     {{"model", tower.dir.filename().string()}, {"key", hex64(key)}});
  }
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace cw::train
