// profile_bench: where the time of a tower's training step (or frozen forward) goes, by phase
// (forward, backward, optimizer) and op family (GEMM, attention, convolution, normalization,
// elementwise, reductions, random numbers, copies/indexing, fills/allocation, optimizer, host),
// with each family's model FLOPs (core/flop_counter.h) and rate. The rows come from
// core/op_profiler.h: every primitive's wall time from its start to the next primitive's start,
// so the families add up to the phase. tools/profile_torch.py prints the same table from
// PyTorch's profiler for the same towers and shapes. The header gives the CPU model and the
// measured fp32 FMA limit (bench/machine_info.h), and the step's fraction of it.
//   conformer  small Conformer step, batch 32 x 400 frames, dropout 0.1   (conformer_bench --phase step)
//   vit        ViT small28 step, batch 256 28x28 images, dropout 0           (vit_bench --phase step)
//   minilm     MiniLM-L6 (BERT 6 x 384) forward, no grad, 64 x 32 tokens     (minilm_bench; random weights)
//   whisper    Whisper tiny encoder step, all 4 blocks, batch 32 x 300 frames (random weights)
// The steps' loss is mean(embedding^2), the optimizer AdamW (weight decay 0.01 on >= 2-d weights)
// through ops::adamw_step_, the kernel of train::AdamW (bench/ may use train/, but this binary
// stays on models/ so that it builds while train/ does not).
// Usage: profile_bench --model conformer|vit|minilm|whisper [--batch B] [--frames T | --tokens T]
//                      [--warmup 1] [--iters 1] [--top 8]
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/cpu/denormals.h"
#include "core/op_profiler.h"
#include "core/ops.h"
#include "machine_info.h"
#include "models/conformer.h"
#include "models/text_transformer.h"
#include "models/vit.h"
#include "models/whisper_encoder.h"

using namespace cw;

namespace {

// The op family of a profiler row (op names as ops.h passes them to backend_for).
std::string family_of(const std::string& op) {
  static const std::map<std::string, std::string> named = {
      {"matmul", "GEMM"},
      {"matmul_out", "GEMM"},
      {"bmm", "attention"},
      {"softmax", "attention"},
      {"softmax_backward", "attention"},
      {"layer_norm", "normalization"},
      {"layer_norm_backward", "normalization"},
      {"l2_normalize_rows", "normalization"},
      {"l2_normalize_rows_backward", "normalization"},
      {"sum", "reductions"},
      {"mean", "reductions"},
      {"amax", "reductions"},
      {"amin", "reductions"},
      {"argmax", "reductions"},
      {"uniform", "random numbers"},
      {"normal", "random numbers"},
      {"dropout", "random numbers"},
      {"dropout_backward", "elementwise"},
      {"copy_", "copies, indexing"},
      {"clone", "copies, indexing"},
      {"to", "copies, indexing"},
      {"concat", "copies, indexing"},
      {"index_select", "copies, indexing"},
      {"index_add", "copies, indexing"},
      {"gather", "copies, indexing"},
      {"scatter_add", "copies, indexing"},
      {"full", "fills, allocation"},
      {"fill_", "fills, allocation"},
      {"arange", "fills, allocation"},
      {"adamw_step", "optimizer"},
      {"sum_of_squares", "optimizer"},
      {"first_nonfinite", "optimizer"},
      {"(no op)", "host, between ops"},
  };
  if (op.rfind("conv2d", 0) == 0) return "convolution";
  if (op.rfind("linear>", 0) == 0) return "GEMM";  // ops::linear: bias written, GEMM adds to it
  const auto it = named.find(op);
  return it == named.end() ? "elementwise" : it->second;
}

struct Options {
  std::string model = "conformer";
  int64_t batch = 0, length = 0, warmup = 1, iters = 1, top = 8;
};

// One profiled run of `body` (which calls prof.phase itself) after `warmup` unprofiled ones;
// with iters > 1 the rows are summed and divided by iters.
void report(const Options& o, const bench::MachineInfo& m, const std::function<void(OpProfiler*)>& body) {
  for (int64_t i = 0; i < o.warmup; ++i) body(nullptr);
  // Process CPU time beside the wall time: on a shared machine the wall time stretches with other
  // jobs' load, the CPU time much less (at 1 thread it is the step's work; at 2 it includes
  // OpenMP's spin-waits).
  timespec c0{}, c1{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  OpProfiler prof;
  for (int64_t i = 0; i < o.iters; ++i) body(&prof);
  prof.stop();
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  const double cpu_s =
      (static_cast<double>(c1.tv_sec - c0.tv_sec) + 1e-9 * static_cast<double>(c1.tv_nsec - c0.tv_nsec)) /
      static_cast<double>(o.iters);
  const double n = static_cast<double>(o.iters);

  std::vector<std::string> phases;                                                  // in the order they ran
  std::map<std::string, std::map<std::string, OpProfiler::Row>> fam;                // phase -> family -> sum
  std::map<std::string, std::vector<std::pair<std::string, OpProfiler::Row>>> ops;  // family -> ops
  double total = 0;
  int64_t total_flops = 0;
  for (const auto& [key, r] : prof.rows()) {
    const auto& [phase, op] = key;
    if (std::find(phases.begin(), phases.end(), phase) == phases.end()) phases.push_back(phase);
    OpProfiler::Row& f = fam[phase][family_of(op)];
    f.seconds += r.seconds / n;
    f.flops += static_cast<int64_t>(static_cast<double>(r.flops) / n);
    f.calls += r.calls;
    ops[family_of(op)].push_back({phase + ": " + op, r});
    total += r.seconds / n;
    total_flops += static_cast<int64_t>(static_cast<double>(r.flops) / n);
  }
  std::sort(phases.begin(), phases.end(), [](const std::string& a, const std::string& b) {
    static const std::vector<std::string> order = {"forward", "backward", "optimizer"};
    return std::find(order.begin(), order.end(), a) < std::find(order.begin(), order.end(), b);
  });
  std::printf(
      "ours  total %.1f ms (process CPU %.1f ms), %.2f GFLOP, %.1f GFLOP/s = %.1f%% of the measured FMA "
      "limit\n",
      total * 1e3, cpu_s * 1e3, static_cast<double>(total_flops) / 1e9,
      static_cast<double>(total_flops) / 1e9 / total,
      100.0 * static_cast<double>(total_flops) / 1e9 / total / m.limit_gflops());
  std::printf("%-10s %-20s %10s %7s %10s %10s %8s\n", "phase", "family", "ms", "%", "GFLOP", "GFLOP/s",
              "calls");
  for (const std::string& ph : phases) {
    double ph_s = 0;
    int64_t ph_f = 0;
    std::vector<std::pair<std::string, OpProfiler::Row>> rows(fam[ph].begin(), fam[ph].end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
    for (const auto& [f, r] : rows) {
      ph_s += r.seconds;
      ph_f += r.flops;
      if (r.flops > 0) {
        std::printf("%-10s %-20s %10.1f %6.1f%% %10.2f %10.1f %8lld\n", ph.c_str(), f.c_str(),
                    r.seconds * 1e3, 100 * r.seconds / total, static_cast<double>(r.flops) / 1e9,
                    static_cast<double>(r.flops) / 1e9 / r.seconds,
                    static_cast<long long>(r.calls / o.iters));
      } else {
        std::printf("%-10s %-20s %10.1f %6.1f%% %10s %10s %8lld\n", ph.c_str(), f.c_str(), r.seconds * 1e3,
                    100 * r.seconds / total, "", "", static_cast<long long>(r.calls / o.iters));
      }
    }
    std::printf("%-10s %-20s %10.1f %6.1f%% %10.2f %10.1f\n", ph.c_str(), "(phase total)", ph_s * 1e3,
                100 * ph_s / total, static_cast<double>(ph_f) / 1e9, static_cast<double>(ph_f) / 1e9 / ph_s);
  }
  std::printf("\ntop ops (phase: op, ms, GFLOP/s, calls)\n");
  std::vector<std::pair<std::string, OpProfiler::Row>> all;
  for (const auto& [f, v] : ops) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  for (size_t i = 0; i < all.size() && static_cast<int64_t>(i) < o.top * 2; ++i) {
    const auto& [name, r] = all[i];
    std::printf("  %-40s %9.1f ms", name.c_str(), r.seconds / n * 1e3);
    if (r.flops > 0) std::printf(" %8.1f GFLOP/s", static_cast<double>(r.flops) / 1e9 / r.seconds);
    std::printf("  %lld calls\n", static_cast<long long>(r.calls / o.iters));
  }
  std::fflush(stdout);
}

// AdamW as train::AdamW runs it (lr 1e-4, betas 0.9 / 0.999, eps 1e-8; weight decay 0.01 on
// parameters of >= 2 dims, none on biases and norms): one fused ops::adamw_step_ per parameter.
class AdamW {
 public:
  explicit AdamW(const std::vector<std::pair<std::string, Variable>>& named) {
    for (const auto& [name, v] : named) {
      if (!v.requires_grad()) continue;
      const bool decay = v.dim() >= 2 && name.find("bias") == std::string::npos;
      slots_.push_back({v, decay ? 0.01 : 0.0, ops::zeros_like(v.data()), ops::zeros_like(v.data())});
    }
  }
  void zero_grad() {
    for (Slot& s : slots_) s.param.zero_grad();
  }
  void step(double lr) {
    ++t_;
    for (Slot& s : slots_) {
      if (!s.param.grad().defined()) continue;
      Tensor p = s.param.data();
      const AdamWStep st{1.0 - lr * s.wd,
                         lr / (1.0 - std::pow(0.9, t_)),
                         std::sqrt(1.0 - std::pow(0.999, t_)),
                         0.9,
                         0.999,
                         1e-8};
      ops::adamw_step_(p, s.param.grad(), s.m, s.v, st);
    }
  }

 private:
  struct Slot {
    Variable param;
    double wd;
    Tensor m, v;
  };
  std::vector<Slot> slots_;
  double t_ = 0;
};

// zero_grad + forward + loss = mean(e^2) + backward + AdamW, phases marked.
template <class Model, class Forward>
void profile_step(const Options& o, const bench::MachineInfo& m, Model& model, Forward forward) {
  model.train();
  AdamW opt(model.named_parameters());
  report(o, m, [&](OpProfiler* p) {
    if (p) p->phase("optimizer");
    opt.zero_grad();
    if (p) p->phase("forward");
    const Variable loss = ag::mean(ag::pow(forward(), 2.0));
    if (p) p->phase("backward");
    loss.backward();
    if (p) p->phase("optimizer");
    opt.step(1e-4);
    if (p) p->stop();
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--model")
      o.model = v;
    else if (a == "--batch")
      o.batch = std::atoll(v);
    else if (a == "--frames" || a == "--tokens")
      o.length = std::atoll(v);
    else if (a == "--warmup")
      o.warmup = std::atoll(v);
    else if (a == "--iters")
      o.iters = std::atoll(v);
    else if (a == "--top")
      o.top = std::atoll(v);
    else {
      std::fprintf(stderr, "profile_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::set<std::string> known = {"conformer", "vit", "minilm", "whisper"};
  if ((argc - 1) % 2 != 0 || !known.count(o.model) || o.iters < 1 || o.warmup < 0 || o.batch < 0 ||
      o.length < 0) {
    std::fprintf(
        stderr,
        "usage: profile_bench --model conformer|vit|minilm|whisper [--batch B] [--frames T | --tokens T] "
        "[--warmup 1] [--iters 1] [--top 8]\n");
    return 2;
  }
  cw::set_flush_denormals(true);  // as train and eval run (core/cpu/denormals.h)
  const bench::MachineInfo m = bench::print_machine_header();
  Generator g(1);
  if (o.model == "conformer") {
    const int64_t B = o.batch ? o.batch : 32, T = o.length ? o.length : 400;
    models::Conformer model(models::ConformerConfig::small(), DType::F32);
    std::printf("ours  profile: Conformer small step, batch %lld x %lld frames, %d threads\n",
                static_cast<long long>(B), static_cast<long long>(T), omp_get_max_threads());
    const Variable x(ops::randn({B, T, model.config.n_mels}, DType::F32, g));
    const Tensor len = ops::full({B}, static_cast<double>(T), DType::I64);
    profile_step(o, m, model, [&] { return model.forward(x, len); });
  } else if (o.model == "vit") {
    const int64_t B = o.batch ? o.batch : 256;
    const models::ViTConfig c = models::ViTConfig::small28();
    models::VisionTransformer model(c, DType::F32);
    std::printf("ours  profile: ViT small28 step, batch %lld, %d threads\n", static_cast<long long>(B),
                omp_get_max_threads());
    const Variable x(ops::randn({B, c.in_channels, c.image_size, c.image_size}, DType::F32, g));
    profile_step(o, m, model, [&] { return model.forward(x); });
  } else if (o.model == "whisper") {
    const int64_t B = o.batch ? o.batch : 32, T = o.length ? o.length : 300;
    models::WhisperEncoder model(models::WhisperEncoderConfig::tiny(), DType::F32);
    std::printf(
        "ours  profile: Whisper tiny encoder step (all blocks), batch %lld x %lld frames, %d threads\n",
        static_cast<long long>(B), static_cast<long long>(T), omp_get_max_threads());
    const Variable x(ops::mul(ops::randn({B, T, model.config.n_mels}, DType::F32, g), 0.5));
    const Tensor len = ops::full({B}, static_cast<double>(T), DType::I64);
    profile_step(o, m, model, [&] { return model.forward(x, len); });
  } else {
    const int64_t B = o.batch ? o.batch : 64, T = o.length ? o.length : 32;
    models::TextTransformer model(models::BertConfig{}, DType::F32, false);
    model.eval();
    std::printf(
        "ours  profile: MiniLM-L6 forward (no grad, random weights), batch %lld x %lld tokens, %d threads\n",
        static_cast<long long>(B), static_cast<long long>(T), omp_get_max_threads());
    const Tensor ids = ops::uniform({B, T}, 1000, 30000, DType::F64, g).to(DType::I64);
    const Tensor mask = ops::ones({B, T}, DType::I64);
    NoGradGuard no_grad;
    report(o, m, [&](OpProfiler* p) {
      if (p) p->phase("forward");
      const Tensor e = model.forward(ids, mask).data();
      if (p) p->stop();
    });
  }
  return 0;
}
