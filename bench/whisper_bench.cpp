// whisper_bench: speed and peak memory of the Whisper tiny.en encoder (models/whisper_encoder.h)
// with its real weights (a CTranslate2 model.bin), f32, in three phases:
//   encode   WhisperEncoder::forward under NoGradGuard on a batch of B utterances of T log-mel
//            frames each, unpadded (positions sliced to T / 2, as the speech tower runs it)
//   step     one training step of WhisperSpeechTower with the top K blocks trained: zero_grad ->
//            embed -> contrastive loss (InfoNCE or CWCL) against random frozen text embeddings
//            (B, 384) with a learned log scale -> backward -> AdamW step. K = num_layers reads
//            log-mel frames (WhisperInput::Mel: the frozen stem runs every step); K < num_layers
//            reads the hidden states after the frozen lower blocks (WhisperInput::Hidden), computed
//            once before the timer as the training cache does, so the step runs only the top K
//            blocks, the final layer norm, the masked mean and the projection.
//   profile  the encode phase's forward rewritten op by op on tensors (the same ops in the same
//            order as WhisperEncoder::forward, checked equal to it), each op's time added to its
//            family (conv, linear GEMM, bias add, attention GEMMs, softmax, layer norm, GELU,
//            masks, residual adds, layout copies): where the forward's time goes.
//   bwd-profile  the step's backward by piece, at the step's shapes (B x T/2 positions): each
//            piece (a Linear of each size, the attention core, a layer norm, a GELU, one whole
//            block, the head: final layer norm + masked mean + proj + loss) recorded on leaves that
//            require grad, its backward alone timed (median of --iters): where the step's time goes.
// Each phase reports the median of --iters timed iterations after --warmup untimed ones, the
// process's peak RSS (VmHWM: weights, inputs and the phase; run one phase per process) and the
// model FLOPs (core/flop_counter.h) of one iteration with their rate at the median.
// tools/bench_whisper_torch.py (Hugging Face's WhisperEncoder) and tools/bench_whisper_ct2.py
// (CTranslate2) measure the other sides; --dump DIR writes the encode phase's input and output
// (raw little-endian f32) so that bench_whisper_torch.py --check DIR compares the computations.
// Usage: whisper_bench [--phase encode|step|profile|bwd-profile] [--batch 8] [--frames 1000] [--iters 5]
//                      [--warmup 1] [--train-layers 4] [--loss cwcl|infonce] [--model model.bin]
//                      [--dump DIR] [--ftz 0|1]
// --ftz 1 (the default, as train and eval run) sets the CPU's flush-to-zero and denormals-are-zero
// modes on every OpenMP thread first; --ftz 0 shows what the step's backward pays for denormal
// floats without them (BENCHMARKS.md).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/cpu/denormals.h"
#include "core/flop_counter.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "losses/contrastive_loss.h"
#include "machine_info.h"
#include "models/conformer.h"
#include "models/text_transformer.h"
#include "models/whisper_encoder.h"
#include "nn/attention.h"
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
  std::string phase = "encode", loss = "cwcl", model, dump;
  int64_t batch = 8, frames = 1000, iters = 5, warmup = 1, train_layers = 4;
  bool ftz = true;
};

// Runs `body` warmup + iters times; body returns the timed seconds of its parts (the first is the
// one the phase is named for, the others a breakdown). `per_item` > 0 adds items per second.
void run_phase(const char* name, const Bench& b, const std::vector<const char*>& parts, int64_t per_item,
               const std::function<std::vector<double>()>& body) {
  const double rss0 = proc_status_mib("VmRSS");
  int64_t flops = -1;
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
  const double med = median(t[0]);
  std::printf("ours  %-7s median %8.1f ms", name, med * 1e3);
  if (per_item > 0) std::printf(" (%.1f utterances/s)", static_cast<double>(per_item) / med);
  for (size_t k = 1; k < parts.size(); ++k) std::printf("  %s %.1f ms", parts[k], median(t[k]) * 1e3);
  std::printf("  (all %s: ", parts[0]);
  for (double s : t[0]) std::printf("%.0f ", s * 1e3);
  std::printf("ms)\n");
  std::printf("ours  %-7s peak RSS %.0f MiB (process VmHWM), RSS at phase start %.0f MiB\n", name,
              proc_status_mib("VmHWM"), rss0);
  std::printf("ours  %-7s model FLOPs %.2f GFLOP per iteration, %.1f GFLOP/s at the median\n", name,
              static_cast<double>(flops) / 1e9, static_cast<double>(flops) / 1e9 / med);
  std::fflush(stdout);
}

void write_f32(const std::filesystem::path& path, const Tensor& t) {
  const std::vector<float> v = t.contiguous().to_vector<float>();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  CW_CHECK(f.good(), Error, "whisper_bench: cannot write ", path.string());
}

// ---------------------------------------------------------------- profile
// WhisperEncoder::forward (eval, no graph) on tensors, op by op, each op timed into its family.
class Profile {
 public:
  std::map<std::string, double> seconds;
  std::map<std::string, int64_t> calls;

  template <typename F>
  Tensor time(const char* family, F&& f) {
    const auto t0 = Clock::now();
    Tensor y = f();
    seconds[family] += seconds_since(t0);
    ++calls[family];
    return y;
  }
};

Tensor profiled_forward(const models::WhisperEncoder& enc, const Tensor& mel, const Tensor& lengths,
                        Profile& p) {
  const int64_t B = mel.size(0), T = mel.size(1);
  const int64_t P = models::whisper_positions(T), D = enc.config.d_model, H = enc.config.num_heads;
  const double eps = enc.config.layer_norm_eps;
  const Tensor mel_pad = p.time("masks", [&] { return models::lengths_to_padding_mask(lengths, T); });
  Tensor x =
      p.time("masks", [&] { return ops::masked_fill(mel, mel_pad.unsqueeze(-1), 0.0); }).transpose(1, 2);
  const auto conv = [&](const nn::Conv1d& c, const Tensor& in, int64_t stride) {
    return p.time("conv", [&] {
      return ops::conv1d(in, c.weight.data(), c.bias.data(), ops::Conv1dOptions{stride, 1, 1, 1});
    });
  };
  x = conv(*enc.conv1, x, 1);
  x = p.time("gelu", [&] { return ops::gelu(x); });
  x = p.time("masks", [&] { return ops::masked_fill(x, mel_pad.unsqueeze(1), 0.0); });
  x = conv(*enc.conv2, x, 2);
  x = p.time("gelu", [&] { return ops::gelu(x); }).transpose(1, 2);
  Tensor h = p.time("residual/scale adds",
                    [&] { return ops::add(x, enc.embed_positions->weight.data().narrow(0, 0, P)); });
  const Tensor pad = p.time("masks", [&] {
    return models::lengths_to_padding_mask(models::WhisperSpeechTower::position_lengths(lengths), P);
  });
  const auto ln = [&](const nn::LayerNorm& n, const Tensor& in) {
    return p.time("layer norm",
                  [&] { return ops::layer_norm(in, 1, n.weight.data(), n.bias.data(), eps).y; });
  };
  const auto linear = [&](const nn::Linear& l, const Tensor& in) {
    const Tensor y = p.time("linear GEMM", [&] { return ops::matmul(in, l.weight.data().transpose(0, 1)); });
    return l.bias.defined() ? p.time("bias add", [&] { return ops::add(y, l.bias.data()); }) : y;
  };
  const auto heads = [&](const Tensor& y) { return y.reshape({B, P, H, D / H}).transpose(1, 2); };
  const double scale = 1.0 / std::sqrt(static_cast<double>(D / H));
  const double lowest = std::numeric_limits<float>::lowest();
  for (size_t i = 0; i < enc.layers->size(); ++i) {
    const models::WhisperEncoderLayer& layer = (*enc.layers)[i];
    const models::WhisperAttention& a = *layer.self_attn;
    const Tensor xn = ln(*layer.self_attn_layer_norm, h);
    const Tensor q = heads(linear(*a.q_proj, xn)), k = heads(linear(*a.k_proj, xn)),
                 v = heads(linear(*a.v_proj, xn));
    const Tensor qs = p.time("residual/scale adds", [&] { return ops::mul(q, scale); });
    Tensor s = p.time("attention GEMMs", [&] { return ops::matmul(qs, k.transpose(-1, -2)); });
    s = p.time("masks", [&] { return ops::masked_fill(s, pad.view({B, 1, 1, P}), lowest); });
    s = p.time("softmax", [&] { return ops::softmax(s, -1); });
    const Tensor ctx = p.time("attention GEMMs", [&] { return ops::matmul(s, v); });
    const Tensor merged = p.time("layout copies", [&] { return ctx.transpose(1, 2).reshape({B, P, D}); });
    h = p.time("residual/scale adds", [&] { return ops::add(linear(*a.out_proj, merged), h); });
    const Tensor f1 = linear(*layer.fc1, ln(*layer.final_layer_norm, h));
    const Tensor g = p.time("gelu", [&] { return ops::gelu(f1); });
    const Tensor f2 = linear(*layer.fc2, g);
    h = p.time("residual/scale adds", [&] { return ops::add(f2, h); });
  }
  h = ln(*enc.layer_norm, h);
  return p.time("masks", [&] { return ops::masked_fill(h, pad.unsqueeze(-1), 0.0); });
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--phase")
      b.phase = v;
    else if (a == "--batch")
      b.batch = std::atoll(v);
    else if (a == "--frames")
      b.frames = std::atoll(v);
    else if (a == "--iters")
      b.iters = std::atoll(v);
    else if (a == "--warmup")
      b.warmup = std::atoll(v);
    else if (a == "--train-layers")
      b.train_layers = std::atoll(v);
    else if (a == "--loss")
      b.loss = v;
    else if (a == "--model")
      b.model = v;
    else if (a == "--dump")
      b.dump = v;
    else if (a == "--ftz")
      b.ftz = std::atoi(v) != 0;
    else {
      std::fprintf(stderr, "whisper_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || b.batch < 1 || b.frames < 2 || b.iters < 1 || b.warmup < 0 ||
      (b.phase != "encode" && b.phase != "step" && b.phase != "profile" && b.phase != "bwd-profile") ||
      (b.loss != "cwcl" && b.loss != "infonce")) {
    std::fprintf(stderr,
                 "usage: whisper_bench [--phase encode|step|profile|bwd-profile] [--batch 8] [--frames 1000] "
                 "[--iters 5] "
                 "[--warmup 1] [--train-layers 4] [--loss cwcl|infonce] [--model model.bin] [--dump DIR] "
                 "[--ftz 0|1]\n");
    return 2;
  }
  // Flush denormal results and inputs to zero (MXCSR FTZ | DAZ) on every OpenMP thread, as train
  // and eval do (core/cpu/denormals.h); --ftz 0 shows the cost of not doing it.
  cw::set_flush_denormals(b.ftz);
  bench::print_machine_header();  // CPU model and measured fp32 FMA limit
  const std::filesystem::path model_bin =
      b.model.empty() ? data::find_whisper_dir() / "model.bin" : std::filesystem::path(b.model);
  const models::WhisperWeights w = models::read_whisper_ctranslate2(model_bin);
  const models::WhisperEncoderConfig& c = w.config;
  CW_CHECK(b.train_layers >= 1 && b.train_layers <= c.num_layers, ValueError, "--train-layers ",
           b.train_layers, " must be in [1, ", c.num_layers, "]");

  // Random log-mel frames (Whisper's normalized log-mel lies in about [-1, 1.5]), full lengths.
  Generator g(1);
  const Tensor mel = ops::mul(ops::randn({b.batch, b.frames, c.n_mels}, DType::F32, g), 0.5);
  const Tensor lengths =
      ops::from_vector(std::vector<int64_t>(static_cast<size_t>(b.batch), b.frames), {b.batch});
  std::printf(
      "ours  Whisper encoder from %s: d %lld, %lld blocks, %lld heads, ffn %lld; batch %lld x %lld frames x "
      "%lld "
      "mels (%lld positions, unpadded), f32, %d OpenMP threads, %lld warm-up + %lld timed iterations, phase "
      "%s%s\n",
      w.source.c_str(), static_cast<long long>(c.d_model), static_cast<long long>(c.num_layers),
      static_cast<long long>(c.num_heads), static_cast<long long>(c.ffn_dim), static_cast<long long>(b.batch),
      static_cast<long long>(b.frames), static_cast<long long>(c.n_mels),
      static_cast<long long>(models::whisper_positions(b.frames)), omp_get_max_threads(),
      static_cast<long long>(b.warmup), static_cast<long long>(b.iters), b.phase.c_str(),
      b.ftz ? ", FTZ/DAZ on" : "");
  std::fflush(stdout);

  if (b.phase == "encode" || b.phase == "profile") {
    models::WhisperEncoder enc(c, DType::F32);
    enc.load_state_dict(w.encoder);
    enc.eval();
    NoGradGuard no_grad;
    if (b.phase == "encode") {
      Tensor out;
      run_phase("encode", b, {"forward"}, 0, [&] {
        const auto t0 = Clock::now();
        out = enc.forward(Variable(mel), lengths).data();
        return std::vector<double>{seconds_since(t0)};
      });
      if (!b.dump.empty()) {
        std::filesystem::create_directories(b.dump);
        write_f32(std::filesystem::path(b.dump) / "mel_f32.bin", mel);
        write_f32(std::filesystem::path(b.dump) / "out_f32.bin", out);
        std::printf("ours  wrote %s/{mel,out}_f32.bin: mel (%lld, %lld, %lld), out (%lld, %lld, %lld)\n",
                    b.dump.c_str(), static_cast<long long>(b.batch), static_cast<long long>(b.frames),
                    static_cast<long long>(c.n_mels), static_cast<long long>(out.size(0)),
                    static_cast<long long>(out.size(1)), static_cast<long long>(out.size(2)));
      }
      return 0;
    }
    // profile: per-family sums over the timed iterations (medians of each family are not
    // additive; the mean per iteration is).
    const Tensor ref = enc.forward(Variable(mel), lengths).data();
    Profile warm;
    const double diff = ops::amax(ops::abs(ops::sub(profiled_forward(enc, mel, lengths, warm), ref))).item();
    std::printf("ours  profile: max |op-by-op - WhisperEncoder::forward| = %.3g\n", diff);
    for (int64_t i = 1; i < b.warmup; ++i) {
      Profile p;
      profiled_forward(enc, mel, lengths, p);
    }
    Profile p;
    std::vector<double> fwd;
    for (int64_t i = 0; i < b.iters; ++i) {
      auto t0 = Clock::now();
      enc.forward(Variable(mel), lengths);
      fwd.push_back(seconds_since(t0));
      profiled_forward(enc, mel, lengths, p);
    }
    double total = 0;
    for (const auto& [k, s] : p.seconds) total += s;
    const double n = static_cast<double>(b.iters);
    std::printf(
        "ours  profile: WhisperEncoder::forward median %.1f ms; op-by-op total %.1f ms per iteration\n",
        median(fwd) * 1e3, total / n * 1e3);
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [k, s] : p.seconds) rows.emplace_back(s, k);
    std::sort(rows.rbegin(), rows.rend());
    for (const auto& [s, k] : rows)
      std::printf("ours  profile: %-20s %8.1f ms per iteration %5.1f%%  (%lld calls)\n", k.c_str(),
                  s / n * 1e3, 100.0 * s / total, static_cast<long long>(p.calls[k] / b.iters));
    {
      FlopCounter fc;
      enc.forward(Variable(mel), lengths);
      std::printf("ours  profile: model FLOPs %.2f GFLOP per forward\n",
                  static_cast<double>(fc.total()) / 1e9);
    }
    std::printf("ours  profile: peak RSS %.0f MiB (process VmHWM)\n", proc_status_mib("VmHWM"));
    return 0;
  }

  if (b.phase == "bwd-profile") {
    models::WhisperEncoder enc(c, DType::F32);
    enc.load_state_dict(w.encoder);
    enc.train();
    const int64_t P = models::whisper_positions(b.frames), D = c.d_model, H = c.num_heads;
    const Tensor plen = models::WhisperSpeechTower::position_lengths(lengths);
    const Tensor pad = models::lengths_to_padding_mask(plen, P);
    Tensor hidden;
    {
      NoGradGuard no_grad;
      hidden = enc.run_layers(enc.embed_frames(Variable(mel), lengths), pad, 0, c.num_layers - 1).data();
    }
    const models::WhisperEncoderLayer& layer = (*enc.layers)[static_cast<size_t>(c.num_layers - 1)];
    const auto leaf = [&](const Shape& shape) {
      return Variable(ops::mul(ops::randn(shape, DType::F32, g), 0.5), true);
    };
    // Times y.backward(random gradient) of the graph `make` records, median over the iterations.
    const auto time_bwd = [&](const char* piece, int64_t per_block, const std::function<Variable()>& make) {
      std::vector<double> t;
      for (int64_t i = 0; i < b.warmup + b.iters; ++i) {
        const Variable y = make();
        const Tensor gy = ops::randn(y.shape(), DType::F32, g);
        const auto t0 = Clock::now();
        y.backward(gy);
        if (i >= b.warmup) t.push_back(seconds_since(t0));
      }
      std::printf("ours  bwd-profile: %-44s backward %8.1f ms  (x%lld per block)\n", piece, median(t) * 1e3,
                  static_cast<long long>(per_block));
      std::fflush(stdout);
    };
    std::printf("ours  bwd-profile: shapes of the step: hidden (%lld, %lld, %lld)\n",
                static_cast<long long>(b.batch), static_cast<long long>(P), static_cast<long long>(D));
    time_bwd("whole block (input and weights need grad)", 1,
             [&] { return layer.forward(Variable(hidden, true), pad); });
    time_bwd("Linear 384->384 (q/k/v/out_proj)", 4, [&] {
      return layer.self_attn->q_proj->forward(leaf({b.batch, P, D}));
    });
    time_bwd("Linear 384->1536 (fc1)", 1, [&] { return layer.fc1->forward(leaf({b.batch, P, D})); });
    time_bwd("Linear 1536->384 (fc2)", 1, [&] { return layer.fc2->forward(leaf({b.batch, P, c.ffn_dim})); });
    time_bwd("attention core (QK^T, mask, softmax, PV)", 1, [&] {
      const auto heads = [&] { return ag::transpose(leaf({b.batch, P, H, D / H}), 1, 2); };
      return nn::scaled_dot_product_attention(heads(), heads(), heads(), pad);
    });
    time_bwd("QK^T matmul alone (B, H, P, Dh) @ (B, H, Dh, P)", 1, [&] {
      return ag::matmul(ag::transpose(leaf({b.batch, P, H, D / H}), 1, 2),
                        ag::transpose(ag::transpose(leaf({b.batch, P, H, D / H}), 1, 2), -1, -2));
    });
    time_bwd("softmax alone (B, H, P, P)", 1, [&] { return ag::softmax(leaf({b.batch, H, P, P}), -1); });
    time_bwd("layer norm (B, P, 384)", 2, [&] {
      return layer.final_layer_norm->forward(leaf({b.batch, P, D}));
    });
    time_bwd("GELU (B, P, 1536)", 1, [&] { return ag::gelu(leaf({b.batch, P, c.ffn_dim})); });
    time_bwd("residual add (B, P, 384)", 2, [&] {
      return ag::add(leaf({b.batch, P, D}), leaf({b.batch, P, D}));
    });
    time_bwd("head: final LN + masked mean + proj (-> B x 384)", 0, [&] {
      const Variable h = enc.layer_norm->forward(Variable(hidden, true));
      return models::masked_mean_pool(h, ops::eq(pad, 0.0));
    });
    // The step's pieces above the block: the tower with K = 1 on the cached hidden states
    // (block input not requiring grad, as in the step), and the contrastive loss alone.
    models::WhisperSpeechTower tower(c, 384, 1, models::WhisperInput::Hidden, DType::F32);
    tower.train();
    time_bwd("tower embed, K = 1, hidden input (no loss)", 0,
             [&] { return tower.embed(Variable(hidden), plen); });
    losses::ContrastiveConfig cfg;
    const Variable q(ops::randn({b.batch, 384}, DType::F32, g)), log_scale = losses::make_log_scale(cfg);
    time_bwd("CWCL loss alone (p leaf (B, 384))", 0, [&] {
      return losses::contrastive_loss(leaf({b.batch, 384}), q, log_scale, cfg).loss;
    });
    return 0;
  }

  // ---- step
  const int64_t K = b.train_layers;
  const models::WhisperInput input =
      K == c.num_layers ? models::WhisperInput::Mel : models::WhisperInput::Hidden;
  const int64_t embed_dim = 384;  // all-MiniLM-L6-v2's width
  models::WhisperSpeechTower tower(c, embed_dim, K, input, DType::F32);
  {
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : w.encoder) state["encoder." + name] = t;
    for (const auto& [name, t] : tower.proj->named_parameters()) state["proj." + name] = t.data();
    tower.load_state_dict(state);
  }
  tower.train();
  Tensor features = mel, feature_lengths = lengths;
  if (input == models::WhisperInput::Hidden) {  // the cache: hidden states after the frozen blocks
    features = tower.frozen_prefix(mel, lengths);
    feature_lengths = models::WhisperSpeechTower::position_lengths(lengths);
  }
  losses::ContrastiveConfig cfg;
  cfg.loss = b.loss == "cwcl" ? losses::LossKind::CWCL : losses::LossKind::InfoNCE;
  const Variable q(ops::randn({b.batch, embed_dim}, DType::F32, g));  // frozen text embeddings
  const Variable log_scale = losses::make_log_scale(cfg);
  std::vector<std::pair<std::string, Variable>> named = tower.named_parameters();
  int64_t trained = 0;
  for (const auto& [name, v] : named)
    if (v.requires_grad()) trained += v.numel();
  named.emplace_back("logit_scale", log_scale);
  train::AdamW opt(train::make_param_groups(named, 0.01, {"logit_scale"}), train::AdamWOptions{});
  std::printf("ours  step: K = %lld trained blocks, input %s %s, %s loss, %lld trained parameters\n",
              static_cast<long long>(K),
              input == models::WhisperInput::Mel ? "log-mel" : "cached hidden states",
              shape_str(features.shape()).c_str(), b.loss.c_str(), static_cast<long long>(trained));
  std::fflush(stdout);
  run_phase("step", b, {"step", "forward", "backward", "adamw"}, b.batch, [&] {
    const auto t0 = Clock::now();
    opt.zero_grad();
    const Variable p = tower.embed(Variable(features), feature_lengths);
    const Variable loss = losses::contrastive_loss(p, q, log_scale, cfg).loss;
    const double fwd = seconds_since(t0);
    const auto t1 = Clock::now();
    loss.backward();
    const double bwd = seconds_since(t1);
    const auto t2 = Clock::now();
    opt.step(1e-5);
    const double upd = seconds_since(t2);
    return std::vector<double>{seconds_since(t0), fwd, bwd, upd};
  });
  return 0;
}
