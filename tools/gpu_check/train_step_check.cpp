// The training step on the GPU, for tools/gpu_check.sh (issue 8): what the trainer does each
// step (Conformer tower -> CWCL loss -> backward -> global-norm clip -> AdamW), without the
// data layer, so it builds on the GPU machine from core/ .. train/adamw with no other packages.
//   1. parity: a tiny tower trained 20 steps on the CPU and on CUDA from the same seed, on the
//      same random batches (dropout on: both devices draw the same Philox numbers); the losses
//      must agree to 1e-3 (the bar). Exit status 1 if not.
//   2. throughput: the small tower (8.4M parameters) at --batch x --frames, f32, median step
//      time, utterances/s, the caching allocator's peak, and model FLOP utilization: the step's
//      model FLOPs (counted by core/flop_counter.h on the first step, forward + backward) per
//      second over the GPU's peak (--peak-tflops; default H200 SXM dense: 67 f32, 495 TF32).
//      torch_conformer_step.py is the PyTorch counterpart on the same shapes, counted the same way.
//   3. the frozen text tower's forward: all-MiniLM-L6-v2's shapes (random weights: the same
//      FLOPs) at --batch sentences x --tokens, no grad, median time, sentences/s, achieved
//      TFLOP/s and MFU, from the counted FLOPs (printed beside the analytic count: per token and
//      layer 4H^2 + 2HF + 2TH multiply-adds, 2 FLOPs each).
// Usage: train_step_check [--batch 256] [--frames 400] [--tokens 32] [--iters 10] [--tf32 0|1]
//                         [--peak-tflops X] [--conv auto|cudnn|native]
// With CW_GPU_CHECK_ON_CPU=1 the "device" side runs on the CPU too (a rehearsal of the program
// on a machine without a GPU; use a small --batch and --frames there).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/flop_counter.h"
#include "core/generator.h"
#include "core/ops.h"
#include "cuda/cuda.h"
#include "losses/contrastive_loss.h"
#include "models/speech_text_model.h"
#include "models/text_transformer.h"
#include "train/adamw.h"
#include "train/grad_clip.h"

using namespace cw;

namespace {

struct Batch {
  Tensor features, lengths, targets;  // (B, T, n_mels) f32, (B) i64, (B, embed_dim) f32
};

// Random batches made once on the host, so both devices see the same numbers.
std::vector<Batch> make_batches(const models::ConformerConfig& cfg, int n, int64_t B, int64_t T,
                                uint64_t seed) {
  Generator g(seed);
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) {
    std::vector<int64_t> len(B);
    for (int64_t b = 0; b < B; ++b) len[b] = T - (b * (T / 2)) / std::max<int64_t>(B - 1, 1);  // T .. T/2
    out.push_back({ops::normal({B, T, cfg.n_mels}, 0, 1, DType::F32, g), ops::from_vector(len, {B}),
                   ops::normal({B, cfg.embed_dim}, 0, 1, DType::F32, g)});
  }
  return out;
}

struct Run {
  std::vector<double> losses;
  std::vector<double> step_ms;
  int64_t step_flops = 0;  // model FLOPs of the first step (forward, loss, backward)
};

Run run_steps(const models::ConformerConfig& cfg, const std::vector<Batch>& batches, Device device,
              int warmup) {
  manual_seed(0);
  models::SpeechTextModel model(cfg, std::log(1.0 / 0.07), true);
  model.train();
  model.to(device);
  train::AdamW opt(train::make_param_groups(model.named_parameters(), 0.01, {"logit_scale"}),
                   train::AdamWOptions{1e-3, 0.9, 0.98, 1e-8, 0.01});
  std::vector<Variable> params;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) params.push_back(p);
  default_generator().manual_seed(1);        // dropout draws
  const losses::ContrastiveConfig loss_cfg;  // CWCL, linear kernel, both directions
  Run r;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (device.is_cuda()) cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    const Batch& b = batches[i];
    opt.zero_grad();
    losses::ContrastiveOutput out;
    {
      FlopCounter fc;
      const Variable p = model.embed_speech(Variable(b.features.to(device)), b.lengths);
      out = losses::contrastive_loss(p, Variable(b.targets.to(device)), model.logit_scale, loss_cfg);
      out.loss.backward();
      if (i == 0) r.step_flops = fc.total();
    }
    train::clip_grad_norm(params, 1.0);
    opt.step(1e-3);
    const double loss = out.loss.data().to(Device::cpu()).item();
    if (device.is_cuda()) cuda::synchronize();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    r.losses.push_back(loss);
    if (static_cast<int>(i) >= warmup) r.step_ms.push_back(ms);
  }
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t B = 256, T = 400, tokens = 32;
  int iters = 10;
  bool tf32 = false;
  double peak_tflops = 0;  // 0: the H200's dense peak for the precision used
  std::string conv = "auto";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batch"))
      B = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--frames"))
      T = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tokens"))
      tokens = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--iters"))
      iters = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tf32"))
      tf32 = std::atoi(argv[i + 1]) != 0;
    else if (!std::strcmp(argv[i], "--peak-tflops"))
      peak_tflops = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--conv"))
      conv = argv[i + 1];
  }
  // H200 SXM (the H100's compute): 67 TFLOP/s f32 on the CUDA cores, 495 TF32 on the tensor
  // cores without sparsity. (On the CPU rehearsal the MFU figure is meaningless.)
  if (peak_tflops <= 0) peak_tflops = tf32 ? 495.0 : 67.0;
  cuda::init();
  const char* on_cpu_env = std::getenv("CW_GPU_CHECK_ON_CPU");
  const bool on_cpu = on_cpu_env && std::strcmp(on_cpu_env, "0") != 0;
  const Device device = on_cpu ? Device::cpu() : Device::cuda(0);
  if (on_cpu) std::printf("train_step_check: CW_GPU_CHECK_ON_CPU set, the device side runs on the CPU\n");
  if (!on_cpu && !cuda::is_available()) {
    std::printf("train_step_check: no CUDA device; nothing to check\n");
    return 2;
  }
  cuda::ConvEngine engine = cuda::ConvEngine::Auto;
  if (!cuda::conv_engine_from_name(conv, &engine)) {
    std::printf("train_step_check: --conv must be auto, cudnn or native, got '%s'\n", conv.c_str());
    return 2;
  }
  cuda::set_conv_engine(engine);
  int status = 0;
  {  // 1. parity, TF32 off: f32 on both sides
    if (!on_cpu) cuda::set_allow_tf32(false);
    const std::vector<Batch> batches = make_batches(models::ConformerConfig::tiny(), 20, 8, 120, 7);
    const Run cpu = run_steps(models::ConformerConfig::tiny(), batches, Device::cpu(), 0);
    const Run gpu = run_steps(models::ConformerConfig::tiny(), batches, device, 0);
    double worst = 0;
    for (size_t i = 0; i < cpu.losses.size(); ++i) {
      worst = std::max(worst, std::abs(cpu.losses[i] - gpu.losses[i]));
      std::printf("parity step %2zu  cpu %.6f  cuda %.6f\n", i + 1, cpu.losses[i], gpu.losses[i]);
    }
    const bool ok = worst <= 1e-3;
    std::printf("parity: tiny Conformer, 20 steps, worst |loss cpu - loss cuda| = %.3g (bar 1e-3): %s\n",
                worst, ok ? "PASS" : "FAIL");
    if (!ok) status = 1;
  }
  {  // 2. throughput of the small tower
    if (!on_cpu) {
      cuda::set_allow_tf32(tf32);
      cuda::reset_peak_memory_stats(0);
    }
    const int warmup = 3;
    const std::vector<Batch> batches =
        make_batches(models::ConformerConfig::small(), warmup + iters, B, T, 11);
    const Run gpu = run_steps(models::ConformerConfig::small(), batches, device, warmup);
    const double ms = median(gpu.step_ms);
    const cuda::MemoryStats m = on_cpu ? cuda::MemoryStats{} : cuda::memory_stats(0);
    const double tflops = static_cast<double>(gpu.step_flops) / (ms * 1e-3) / 1e12;
    std::printf(
        "ours  small Conformer step (fwd + bwd + clip + AdamW), batch %lld x %lld frames, f32%s, conv %s "
        "(cuDNN %s): median %.1f ms, %.0f utt/s, peak allocated %.0f MiB, reserved %.0f MiB, %llu "
        "cudaMalloc\n"
        "ours  small Conformer step: %.1f GFLOP per step (model FLOPs), %.2f TFLOP/s, MFU %.1f%% of %.0f "
        "TFLOP/s\n",
        static_cast<long long>(B), static_cast<long long>(T), tf32 ? " (TF32 matmuls)" : "", conv.c_str(),
        cuda::built_with_cudnn() ? "built" : "not built", ms, B / ms * 1e3, m.peak_allocated / 1048576.0,
        m.peak_reserved / 1048576.0, static_cast<unsigned long long>(m.device_mallocs),
        static_cast<double>(gpu.step_flops) / 1e9, tflops, 100.0 * tflops / peak_tflops, peak_tflops);
  }
  {                              // 3. MiniLM-shaped forward, no grad
    const models::BertConfig c;  // all-MiniLM-L6-v2's shapes
    manual_seed(0);
    models::TextTransformer text(c);
    text.eval();
    text.to(device);
    Generator g(5);
    const Tensor ids = ops::uniform({B, tokens}, 0, static_cast<double>(c.vocab_size - 1), DType::F64, g)
                           .to(DType::I64)
                           .to(device);
    NoGradGuard no_grad;
    std::vector<double> ms;
    int64_t counted = 0;
    for (int i = 0; i < 3 + iters; ++i) {
      if (device.is_cuda()) cuda::synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      FlopCounter fc;
      const Tensor h = text.forward(ids).data();
      counted = fc.total();
      if (device.is_cuda()) cuda::synchronize();
      if (i >= 3)
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    const double H = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size);
    const double analytic = (8 * H * H + 4 * H * F + 4 * static_cast<double>(tokens) * H) *
                            static_cast<double>(c.num_hidden_layers) * static_cast<double>(B * tokens);
    const double flops = static_cast<double>(counted);
    const double m = median(ms);
    const double tflops = flops / (m * 1e-3) / 1e12;
    std::printf(
        "ours  MiniLM-L6 shapes forward (no grad), batch %lld x %lld tokens, f32%s: median %.2f ms, %.0f "
        "sentences/s, %.1f TFLOP/s, MFU %.1f%% of %.0f (%.4g GFLOP per batch counted, %.4g analytic)\n",
        static_cast<long long>(B), static_cast<long long>(tokens), tf32 ? " (TF32 matmuls)" : "", m,
        B / m * 1e3, tflops, 100.0 * tflops / peak_tflops, peak_tflops, flops / 1e9, analytic / 1e9);
  }
  return status;
}
