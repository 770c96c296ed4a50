// Frozen text-tower embedding cache (see frozen_text_cache.h).
#include "train/frozen_text_cache.h"

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string_view>
#include <unordered_map>

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

// The cache key of a sentence list under a tower: fnv(model fingerprint, every sentence).
uint64_t cache_key(const FrozenTextTower& tower, const std::vector<std::string>& sentences) {
  uint64_t key = tower.fingerprint;
  for (const auto& s : sentences) key = fnv1a64(s + '\n', key);
  return key;
}

// Embeds texts[from:] in chunks of 8 batches (a progress line per few chunks; encode() runs
// batch after batch, so the embeddings are those of one call) and hands each chunk's f32 (n, D)
// embeddings to `sink`, in order.
void embed_in_chunks(const FrozenTextTower& tower, const std::vector<std::string>& texts, int64_t from,
                     int64_t batch_size, const std::string& what,
                     const std::function<void(const Tensor&)>& sink) {
  NoGradGuard no_grad;
  const int64_t k = static_cast<int64_t>(texts.size());
  ProgressMeter meter(what, "sentences", k - from);
  const int64_t chunk = 8 * batch_size;
  for (int64_t at = from; at < k; at += chunk) {
    const auto first = texts.begin() + at;
    const std::vector<std::string> part(first, first + std::min(chunk, k - at));
    sink(tower.encoder.encode(part, batch_size));  // (n, D)
    meter.add(static_cast<int64_t>(part.size()));
  }
}

// Embeds the distinct texts texts[first_row:] into the shards of `spec`, from shard first_shard on.
void write_rows(const FrozenTextTower& tower, const std::vector<std::string>& texts,
                const data::ShardSpec& spec, int64_t first_shard, int64_t first_row, int64_t batch_size,
                int64_t shard_bytes, const std::string& what) {
  std::filesystem::create_directories(spec.prefix.parent_path());
  data::ShardWriter writer(spec, first_shard, first_row, shard_bytes);
  embed_in_chunks(tower, texts, first_row, batch_size, what, [&](const Tensor& e) {
    for (int64_t i = 0; i < e.size(0); ++i) writer.append(e.narrow(0, i, 1));  // one "frame" (1, D)
  });
  writer.finish();
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

DistinctSentences distinct_sentences(const std::vector<std::string>& sentences) {
  DistinctSentences d;
  d.index_of.reserve(sentences.size());
  // Views into `sentences`, which outlives the map: no copy of the texts while counting.
  std::unordered_map<std::string_view, int64_t> index;
  for (const auto& s : sentences) {
    const auto [it, added] = index.emplace(s, static_cast<int64_t>(d.texts.size()));
    if (added) d.texts.push_back(s);
    d.index_of.push_back(it->second);
  }
  return d;
}

Tensor embed_sentences(const FrozenTextTower& tower, const std::vector<std::string>& sentences,
                       int64_t batch_size, const std::string& what) {
  const DistinctSentences d = distinct_sentences(sentences);
  std::vector<Tensor> parts;
  embed_in_chunks(tower, d.texts, 0, batch_size, what, [&](const Tensor& e) { parts.push_back(e); });
  const Tensor distinct = parts.size() == 1 ? parts[0] : ops::concat(parts, 0);  // (K, D)
  const int64_t n = static_cast<int64_t>(d.index_of.size());
  return ops::index_select(distinct, 0, ops::from_vector(d.index_of, {n})).contiguous();  // (N, D)
}

CachedEmbeddings embed_with_cache(const FrozenTextTower& tower, const std::vector<std::string>& sentences,
                                  const std::filesystem::path& cache_dir, const std::string& name,
                                  int64_t batch_size) {
  CW_CHECK(!sentences.empty(), ValueError, "embed_with_cache('", name, "'): no sentences");
  const auto t0 = Clock::now();
  const uint64_t key = cache_key(tower, sentences);
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
    out.embeddings = embed_sentences(tower, sentences, batch_size, "text embeddings: " + name);
    std::filesystem::create_directories(cache_dir);
    save_safetensors(out.file.string(), {{"embeddings", out.embeddings}},
                     {{"model", tower.dir.filename().string()}, {"key", hex64(key)}});
  }
  out.seconds = seconds_since(t0);
  return out;
}

TextEmbeddingRows::TextEmbeddingRows(data::FeatureShards shards, std::vector<int64_t> index_of)
    : shards_(std::move(shards)), index_of_(std::move(index_of)) {}

Tensor TextEmbeddingRows::rows(const std::vector<int64_t>& rows) const {
  const int64_t d = dim();
  Tensor out = Tensor::empty({static_cast<int64_t>(rows.size()), d}, DType::F32);  // (B, D)
  float* dst = out.data<float>();
  for (const int64_t r : rows) {
    CW_CHECK(r >= 0 && r < size(), IndexError, "text embeddings: row ", r, " out of range for ", size(),
             " rows of ", shards_.spec().prefix.string());
    const Tensor e = shards_.read(index_of_[static_cast<size_t>(r)]);  // (1, D), its distinct text
    std::memcpy(dst, e.data<float>(), static_cast<size_t>(d) * sizeof(float));
    dst += d;
  }
  return out;
}

Tensor TextEmbeddingRows::all() const {
  std::vector<int64_t> every(index_of_.size());
  for (size_t i = 0; i < every.size(); ++i) every[i] = static_cast<int64_t>(i);
  return rows(every);
}

CachedEmbeddingRows embed_rows_with_cache(const FrozenTextTower& tower,
                                          const std::vector<std::string>& sentences,
                                          const std::filesystem::path& cache_dir, const std::string& name,
                                          int64_t batch_size, int64_t shard_bytes) {
  CW_CHECK(!sentences.empty(), ValueError, "embed_rows_with_cache('", name, "'): no sentences");
  const auto t0 = Clock::now();
  const uint64_t key = cache_key(tower, sentences);
  DistinctSentences d = distinct_sentences(sentences);
  data::ShardSpec spec;
  spec.prefix = cache_dir / (name + "-rows-" + hex64(key));
  spec.num_rows = static_cast<int64_t>(d.texts.size());  // one shard row per distinct text
  spec.num_bins = tower.encoder.embedding_dim();
  // The full key text, compared on open: the model, the sentence list and the row counts.
  spec.key = "frozen text embeddings, distinct texts in first-seen order; model " +
             tower.dir.filename().string() + " " + hex64(tower.fingerprint) + "; sentences " + hex64(key) +
             " (" + std::to_string(sentences.size()) + " rows, " + std::to_string(spec.num_rows) +
             " distinct)";
  CachedEmbeddingRows out;
  data::FeatureShards shards = data::FeatureShards::open(spec, &out.repaired);
  out.from_cache = shards.complete();
  if (!out.from_cache) {
    // Resumes at the first missing or invalid shard: the shards before it stay as they are.
    write_rows(tower, d.texts, spec, shards.num_shards(), shards.rows_covered(), batch_size, shard_bytes,
               "text embeddings: " + name);
    std::string why;
    shards = data::FeatureShards::open(spec, &why);
    CW_CHECK(shards.complete(), Error, "text embeddings of '", name, "': the shards just written under ",
             spec.prefix.string(), " do not open: ", why);
  }
  out.table = TextEmbeddingRows(std::move(shards), std::move(d.index_of));
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace cw::train
