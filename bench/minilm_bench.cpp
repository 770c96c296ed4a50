// minilm_bench: frozen-tower throughput of all-MiniLM-L6-v2, in sentences per second for batches
// of B sentences of T tokens (no padding), forward only under NoGradGuard, plus the process's
// peak resident memory. tools/bench_minilm_torch.py measures Hugging Face's BertModel the same
// way. Usage: minilm_bench [--batch 64] [--tokens 32] [--iters 20] [--model DIR]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/cpu/denormals.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "machine_info.h"
#include "models/sentence_encoder.h"

using namespace cw;

static double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int main(int argc, char** argv) {
  int64_t batch = 64, tokens = 32, iters = 20;
  std::optional<std::filesystem::path> dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--batch")
      batch = std::atoll(argv[i + 1]);
    else if (a == "--tokens")
      tokens = std::atoll(argv[i + 1]);
    else if (a == "--iters")
      iters = std::atoll(argv[i + 1]);
    else if (a == "--model")
      dir = argv[i + 1];
    else {
      std::fprintf(stderr, "minilm_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  cw::set_flush_denormals(true);  // as train and eval run (core/cpu/denormals.h)
  bench::print_machine_header();  // CPU model and measured fp32 FMA limit
  const auto enc = models::SentenceEncoder::load(data::find_minilm_dir(dir));
  const double rss_model = peak_rss_mib();
  // Random word-piece ids (1000..29999 are ordinary tokens), [CLS] first, [SEP] last.
  Generator g(1);
  Tensor ids = ops::uniform({batch, tokens}, 1000, 30000, DType::F64, g).to(DType::I64);
  ids.narrow(1, 0, 1).fill_(static_cast<double>(enc.tokenizer->cls_id()));
  ids.narrow(1, tokens - 1, 1).fill_(static_cast<double>(enc.tokenizer->sep_id()));
  const data::BatchEncoding b{ids, ops::ones({batch, tokens}, DType::I64),
                              ops::zeros({batch, tokens}, DType::I64)};
  NoGradGuard no_grad;
  enc.forward(b);  // warm-up
  std::vector<double> secs;
  for (int64_t i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor e = enc.forward(b).data();
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (e.size(0) != batch) return 1;
  }
  std::sort(secs.begin(), secs.end());
  const double med = secs[secs.size() / 2];
  std::printf(
      "ours  batch %lld x %lld tokens: median %.1f ms/batch, %.1f sentences/s, peak RSS %.0f MiB "
      "(%.0f MiB after loading the model)\n",
      static_cast<long long>(batch), static_cast<long long>(tokens), med * 1e3, batch / med, peak_rss_mib(),
      rss_model);
  return 0;
}
