// conformer_bench: speed and peak memory of the small Conformer speech tower (8.4M parameters,
// projection to 384) on a batch of B utterances of T log-mel frames, f32, in three phases:
//   eval   forward in eval mode under NoGradGuard (no graph)
//   fwd    forward in training mode with the autograd graph recorded (dropout on, BatchNorm batch
//          statistics), the graph dropped after the timer stops
//   step   zero_grad -> forward -> loss = mean(embedding^2) -> backward -> AdamW step
// Each phase reports the median of --iters timed iterations after --warmup untimed ones, and the
// phase's peak resident memory: VmHWM from /proc/self/status, reset to the current RSS (write "5"
// to /proc/self/clear_refs) just before the phase, so it is the peak within the phase, not the
// process's. Run one phase per process (--phase) for peaks free of earlier phases' allocator
// slack. Each phase also reports its model FLOPs (core/flop_counter.h, counted on the first
// iteration) and their rate at the median time. tools/bench_conformer_torch.py measures
// torchaudio's Conformer the same way.
// Usage: conformer_bench [--phase eval|fwd|step|all] [--batch 32] [--frames 400] [--iters 5]
//                        [--warmup 1] [--mixed 0|1]
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
#include "core/flop_counter.h"
#include "core/ops.h"
#include "machine_info.h"
#include "models/conformer.h"
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
  int64_t batch = 32, frames = 400, iters = 5, warmup = 1;
  bool mixed = false;
};

// Runs `body` warmup + iters times with peak-RSS tracking; body returns the timed seconds of its
// parts (the first is the one the phase is named for, the others a breakdown).
void run_phase(const char* name, const Bench& b, const std::vector<const char*>& parts,
               const std::function<std::vector<double>()>& body) {
  const bool reset = reset_peak_rss();
  const double rss0 = proc_status_mib("VmRSS");
  int64_t flops = -1;  // of the first iteration, warm-up or timed (counting costs nothing)
  const auto counted = [&] {
    FlopCounter fc;
    std::vector<double> s = body();
    if (flops < 0) flops = fc.total();
    return s;
  };
  for (int64_t i = 0; i < b.warmup; ++i) counted();
  std::vector<std::vector<double>> t(parts.size());
  for (int64_t i = 0; i < b.iters; ++i) {
    const std::vector<double> s = counted();
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
  std::printf("ours  %-5s model FLOPs %.2f GFLOP per iteration, %.1f GFLOP/s at the median\n", name,
              static_cast<double>(flops) / 1e9, static_cast<double>(flops) / 1e9 / median(t[0]));
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
    else if (a == "--frames")
      b.frames = std::atoll(v);
    else if (a == "--iters")
      b.iters = std::atoll(v);
    else if (a == "--warmup")
      b.warmup = std::atoll(v);
    else if (a == "--mixed")
      b.mixed = std::atoi(v) != 0;
    else {
      std::fprintf(stderr, "conformer_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || b.batch < 1 || b.frames < 7 || b.iters < 1 || b.warmup < 0 ||
      (phase != "eval" && phase != "fwd" && phase != "step" && phase != "all")) {
    std::fprintf(stderr,
                 "usage: conformer_bench [--phase eval|fwd|step|all] [--batch 32] [--frames 400] [--iters 5] "
                 "[--warmup 1] [--mixed 0|1]\n");
    return 2;
  }

  cw::set_flush_denormals(true);  // as train and eval run (core/cpu/denormals.h)
  bench::print_machine_header();  // CPU model and measured fp32 FMA limit
  models::Conformer model(models::ConformerConfig::small(), DType::F32);
  // Random features (as a normalized log-mel would be: zero mean, unit variance). Full lengths,
  // or with --mixed lengths spread evenly from T down to T/4 (the same formula as the torch side).
  Generator g(1);
  const Variable features(ops::randn({b.batch, b.frames, model.config.n_mels}, DType::F32, g));
  std::vector<int64_t> len(static_cast<size_t>(b.batch), b.frames);
  if (b.mixed) {
    for (int64_t i = 0; i < b.batch; ++i) {
      len[i] = b.frames - (b.batch > 1 ? i * (b.frames - b.frames / 4) / (b.batch - 1) : 0);
    }
  }
  const Tensor lengths = ops::from_vector(len, {b.batch});
  std::printf(
      "ours  Conformer small: %lld parameters; batch %lld x %lld frames x %lld mels (%s lengths), f32, "
      "%d OpenMP threads (omp_get_max_threads), %lld warm-up + %lld timed iterations\n",
      static_cast<long long>(model.num_parameters()), static_cast<long long>(b.batch),
      static_cast<long long>(b.frames), static_cast<long long>(model.config.n_mels),
      b.mixed ? "mixed" : "full", omp_get_max_threads(), static_cast<long long>(b.warmup),
      static_cast<long long>(b.iters));
  std::fflush(stdout);

  if (phase == "eval" || phase == "all") {
    model.eval();
    NoGradGuard no_grad;
    run_phase("eval", b, {"forward"}, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor e = model.forward(features, lengths).data();
      return std::vector<double>{seconds_since(t0)};
    });
  }
  if (phase == "fwd" || phase == "all") {
    model.train();
    run_phase("fwd", b, {"forward"}, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      Variable e = model.forward(features, lengths);
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
      const Variable loss = ag::mean(ag::pow(model.forward(features, lengths), 2.0));
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
