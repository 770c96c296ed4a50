// loader_throughput: the speech data path on a corpus made by tools/make_speech_corpus.py. Prints
// each manifest's size and one training batch; with --bench, measures the feature-cache build
// (utterances/s, into a scratch folder so it always computes), its reload, and batch iteration
// with SpecAugment on for 0 and N worker threads (utterances/s, MB/s of features read from the
// shards, the consumer's wait) and the process's peak RSS. Usage:
//   loader_throughput CORPUS_DIR [--manifest train] [--cache-dir .cache/speech/features]
//                     [--threads 2] [--batch-size 32] [--workers 2] [--batches 0 (= one epoch)]
//                     [--consumer-ms 0] [--bench [--skip-build]]
// --consumer-ms simulates a trainer that spends that long per batch, to show whether the
// prefetching workers keep up (the wait per batch then drops towards zero).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "core/error.h"
#include "data/feature_cache.h"
#include "data/speech_loader.h"
#include "data/speech_manifest.h"

using namespace cw;
namespace fs = std::filesystem;

namespace {

// Bytes of all the cache's shard files.
int64_t shard_bytes(const data::FeatureCache& c) {
  int64_t total = 0;
  for (int64_t j = 0; j < c.shards().num_shards(); ++j)
    total += static_cast<int64_t>(fs::file_size(c.shards().file(j)));
  return total;
}

// The process's peak resident set (VmHWM of /proc/self/status) in MB; -1 where there is none.
double peak_rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  double kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %lf kB", &kb) == 1) break;
  std::fclose(f);
  return kb / 1024.0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Args {
  fs::path corpus;
  std::string manifest = "train";
  fs::path cache_dir = ".cache/speech/features";
  int threads = 2, workers = 2, consumer_ms = 0;
  int64_t batch_size = 32, batches = 0;
  bool bench = false, skip_build = false;
};

// Iterates `batches` batches with SpecAugment on and prints the throughput.
void iterate(const std::shared_ptr<const data::FeatureCache>& cache, const Args& a, int workers) {
  data::SpeechLoaderOptions o;
  o.batch_size = a.batch_size;
  o.seed = 1;
  o.spec_augment = true;
  o.num_workers = workers;
  data::SpeechLoader loader(cache, o);
  const int64_t n = a.batches > 0 ? a.batches : loader.batches_per_epoch();
  int64_t utterances = 0, frames = 0, padded = 0, bytes = 0;  // bytes: features read from the shards
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    const data::SpeechBatch b = loader.next();
    utterances += b.features.size(0);
    for (const int64_t row : b.indices) bytes += cache->num_frames(row) * cache->num_bins() * 4;
    padded += b.features.size(0) * b.features.size(1);
    for (const int64_t len : b.lengths.to_vector<int64_t>()) frames += len;
    if (a.consumer_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.consumer_ms));
  }
  const double total = seconds_since(t0);
  const data::SpeechLoaderStats s = loader.stats();
  std::printf(
      "iterate  workers=%d batch=%lld consumer=%d ms: %lld batches, %lld utterances in %.3f s = %.0f utt/s, "
      "%.1f MB/s of features; consumer waited %.3f s (%.2f ms/batch); padding %.1f%% of frames\n",
      workers, static_cast<long long>(a.batch_size), a.consumer_ms, static_cast<long long>(s.batches),
      static_cast<long long>(utterances), total, static_cast<double>(utterances) / total,
      static_cast<double>(bytes) / 1e6 / total, s.wait_seconds,
      1e3 * s.wait_seconds / static_cast<double>(s.batches),
      100.0 * static_cast<double>(padded - frames) / static_cast<double>(padded));
}

int run(const Args& a) {
  // The corpus at a glance: rows and hours of every manifest present.
  for (const char* split : {"train", "valid", "retrieval_test", "intent_test", "kws_test"}) {
    const fs::path p = a.corpus / (std::string(split) + ".tsv");
    if (!fs::exists(p)) continue;
    const data::SpeechManifest m = data::SpeechManifest::read(p);
    std::printf("%-15s %6lld utterances %7.3f h\n", split, static_cast<long long>(m.size()), m.hours());
  }
  const data::SpeechManifest m = data::SpeechManifest::read(a.corpus / (a.manifest + ".tsv"));
  const data::FbankOptions fbank;

  if (a.bench && !a.skip_build) {
    // A scratch cache folder, so the build always computes; removed afterwards.
    const fs::path scratch = a.cache_dir / ("bench-" + std::to_string(::getpid()));
    auto t0 = std::chrono::steady_clock::now();
    const data::FeatureCache built = data::FeatureCache::build_or_load(m, fbank, scratch, a.threads);
    const double build = seconds_since(t0);
    const double hours = m.hours();
    std::printf(
        "build    %lld utterances (%.3f h of audio, %lld frames) with %d threads in %.2f s = %.1f utt/s "
        "(%.0fx real time); %lld shards, %.1f MB\n",
        static_cast<long long>(m.size()), hours, static_cast<long long>(built.total_frames()), a.threads,
        build, static_cast<double>(m.size()) / build, hours * 3600.0 / build,
        static_cast<long long>(built.shards().num_shards()), static_cast<double>(shard_bytes(built)) / 1e6);
    t0 = std::chrono::steady_clock::now();
    const data::FeatureCache loaded = data::FeatureCache::build_or_load(m, fbank, scratch, a.threads);
    std::printf("reload   %s in %.3f s\n", loaded.was_built() ? "REBUILT (unexpected)" : "opened",
                seconds_since(t0));
    fs::remove_all(scratch);
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto cache = std::make_shared<const data::FeatureCache>(
      data::FeatureCache::build_or_load(m, fbank, a.cache_dir, a.threads, true));
  std::printf("cache    %s (%lld shards, %.1f MB): %s in %.2f s\n", cache->file().string().c_str(),
              static_cast<long long>(cache->shards().num_shards()),
              static_cast<double>(shard_bytes(*cache)) / 1e6, cache->was_built() ? "built" : "loaded",
              seconds_since(t0));

  if (a.bench) {
    iterate(cache, a, 0);
    iterate(cache, a, a.workers);
  } else {
    data::SpeechLoaderOptions o;
    o.batch_size = a.batch_size;
    o.spec_augment = true;
    data::SpeechLoader loader(cache, o);
    const data::SpeechBatch b = loader.next();
    std::printf("batch    features (%lld, %lld, %lld), %lld batches per epoch; first rows:\n",
                static_cast<long long>(b.features.size(0)), static_cast<long long>(b.features.size(1)),
                static_cast<long long>(b.features.size(2)),
                static_cast<long long>(loader.batches_per_epoch()));
    const auto lengths = b.lengths.to_vector<int64_t>();
    for (size_t i = 0; i < std::min<size_t>(4, b.indices.size()); ++i)
      std::printf("  %5lld frames  %s\n", static_cast<long long>(lengths[i]), b.transcripts[i].c_str());
  }
  std::printf("peak RSS %.0f MB (VmHWM)\n", peak_rss_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "loader_throughput: %s needs a value\n", s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--manifest")
      a.manifest = value();
    else if (s == "--cache-dir")
      a.cache_dir = value();
    else if (s == "--threads")
      a.threads = std::stoi(value());
    else if (s == "--workers")
      a.workers = std::stoi(value());
    else if (s == "--batch-size")
      a.batch_size = std::stoll(value());
    else if (s == "--batches")
      a.batches = std::stoll(value());
    else if (s == "--consumer-ms")
      a.consumer_ms = std::stoi(value());
    else if (s == "--bench")
      a.bench = true;
    else if (s == "--skip-build")  // --bench without the scratch build (a large corpus' cache exists)
      a.skip_build = true;
    else if (s == "--help" || s == "-h") {
      std::printf(
          "usage: loader_throughput CORPUS_DIR [--manifest NAME] [--cache-dir DIR] [--threads N] "
          "[--batch-size B] [--workers N] [--batches N] [--consumer-ms MS] [--bench [--skip-build]]\n");
      return 0;
    } else if (a.corpus.empty())
      a.corpus = s;
    else {
      std::fprintf(stderr, "loader_throughput: unexpected argument %s\n", s.c_str());
      return 2;
    }
  }
  if (a.corpus.empty()) {
    std::fprintf(stderr, "usage: loader_throughput CORPUS_DIR [options] (--help)\n");
    return 2;
  }
  try {
    return run(a);
  } catch (const std::exception& e) {  // cw::Error, or std::stoi on a bad number
    std::fprintf(stderr, "loader_throughput: %s\n", e.what());
    return 1;
  }
}
