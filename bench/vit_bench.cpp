// vit_bench: speed and peak memory of the ViT image tower, preset small28 (28x28x1 images, patch
// 4, dim 192, 6 layers, 3 heads, MLP 768, 384-d head: 2.76M parameters) on a batch of B random
// images, f32, in three phases:
//   eval   forward in eval mode under NoGradGuard (no graph)
//   fwd    forward in training mode with the autograd graph recorded, the graph dropped after
//          the timer stops
//   step   zero_grad -> forward -> loss = mean(embedding^2) -> backward -> AdamW step
// Each phase reports the median of --iters timed iterations after --warmup untimed ones, and the
// phase's peak resident memory (VmHWM reset through /proc/self/clear_refs just before the phase).
// Run one phase per process (--phase) for peaks free of earlier phases' allocator slack.
// tools/bench_vit_torch.py measures torchvision's VisionTransformer the same way.
// Usage: vit_bench [--phase eval|fwd|step|all] [--batch 256] [--iters 5] [--warmup 1] [--dropout 0]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/cpu/denormals.h"
#include "core/ops.h"
#include "machine_info.h"
#include "models/vit.h"
#include "tower_bench_util.h"
#include "train/adamw.h"

using namespace cw;

namespace {

using bench::median;
using bench::proc_status_mib;
using bench::reset_peak_rss;
using bench::seconds_since;
using Clock = std::chrono::steady_clock;

struct Bench {
  int64_t batch = 256, iters = 5, warmup = 1;
  double dropout = 0.0;
};

// Runs `body` warmup + iters times with peak-RSS tracking; body returns the timed seconds of its
// parts (the first is the one the phase is named for, the others a breakdown).
void run_phase(const char* name, const Bench& b, const std::vector<const char*>& parts,
               const std::function<std::vector<double>()>& body) {
  const bool reset = reset_peak_rss();
  const double rss0 = proc_status_mib("VmRSS");
  for (int64_t i = 0; i < b.warmup; ++i) body();
  std::vector<std::vector<double>> t(parts.size());
  for (int64_t i = 0; i < b.iters; ++i) {
    const std::vector<double> s = body();
    for (size_t k = 0; k < parts.size(); ++k) t[k].push_back(s[k]);
  }
  const double peak = proc_status_mib("VmHWM");
  std::printf("ours  %-5s median %8.1f ms", name, median(t[0]) * 1e3);
  for (size_t k = 1; k < parts.size(); ++k) std::printf("  %s %.1f ms", parts[k], median(t[k]) * 1e3);
  std::printf("  (all %s: ", parts[0]);
  for (double s : t[0]) std::printf("%.0f ", s * 1e3);
  std::printf("ms)\n");
  std::printf("ours  %-5s peak RSS %.0f MiB (%s), RSS at phase start %.0f MiB, growth %.0f MiB\n", name, peak,
              reset ? "VmHWM reset before the phase" : "clear_refs failed: process peak", rss0, peak - rss0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  std::string phase = "all";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--phase")
      phase = v;
    else if (a == "--batch")
      b.batch = std::atoll(v);
    else if (a == "--iters")
      b.iters = std::atoll(v);
    else if (a == "--warmup")
      b.warmup = std::atoll(v);
    else if (a == "--dropout")
      b.dropout = std::atof(v);
    else {
      std::fprintf(stderr, "vit_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || b.batch < 1 || b.iters < 1 || b.warmup < 0 || b.dropout < 0 || b.dropout >= 1 ||
      (phase != "eval" && phase != "fwd" && phase != "step" && phase != "all")) {
    std::fprintf(stderr,
                 "usage: vit_bench [--phase eval|fwd|step|all] [--batch 256] [--iters 5] [--warmup 1] "
                 "[--dropout 0]\n");
    return 2;
  }

  cw::set_flush_denormals(true);  // as train and eval run (core/cpu/denormals.h)
  bench::print_machine_header();  // CPU model and measured fp32 FMA limit
  models::ViTConfig config = models::ViTConfig::small28();
  config.dropout = b.dropout;
  config.attention_dropout = b.dropout;
  models::VisionTransformer model(config, DType::F32);
  Generator g(1);
  const Variable images(
      ops::randn({b.batch, config.in_channels, config.image_size, config.image_size}, DType::F32, g));
  std::printf(
      "ours  ViT small28: %lld parameters; batch %lld x %lld x %lld x %lld, dropout %.2f, f32, %d OpenMP "
      "threads "
      "(omp_get_max_threads), %lld warm-up + %lld timed iterations\n",
      static_cast<long long>(model.num_parameters()), static_cast<long long>(b.batch),
      static_cast<long long>(config.in_channels), static_cast<long long>(config.image_size),
      static_cast<long long>(config.image_size), b.dropout, omp_get_max_threads(),
      static_cast<long long>(b.warmup), static_cast<long long>(b.iters));
  std::fflush(stdout);

  if (phase == "eval" || phase == "all") {
    model.eval();
    NoGradGuard no_grad;
    run_phase("eval", b, {"forward"}, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor e = model.forward(images).data();
      return std::vector<double>{seconds_since(t0)};
    });
  }
  if (phase == "fwd" || phase == "all") {
    model.train();
    run_phase("fwd", b, {"forward"}, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      Variable e = model.forward(images);
      const double s = seconds_since(t0);
      e = Variable();  // the graph goes here, outside the timer (as `del` on the torch side)
      return std::vector<double>{s};
    });
  }
  if (phase == "step" || phase == "all") {
    model.train();
    train::AdamW opt(train::make_param_groups(model.named_parameters(), 0.01), train::AdamWOptions{});
    run_phase("step", b, {"step", "forward", "backward", "adamw"}, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      opt.zero_grad();
      const Variable loss = ag::mean(ag::pow(model.forward(images), 2.0));
      const double fwd = seconds_since(t0);
      const auto t1 = std::chrono::steady_clock::now();
      loss.backward();
      const double bwd = seconds_since(t1);
      const auto t2 = std::chrono::steady_clock::now();
      opt.step(1e-4);
      const double upd = seconds_since(t2);
      return std::vector<double>{seconds_since(t0), fwd, bwd, upd};
    });
  }
  return 0;
}
