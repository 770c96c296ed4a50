// Forward + backward of the contrastive losses (losses/) at batch N in {256 .. 32768}, width 384,
// in the LiT / CWCL setting: p (trained tower) and the log scale require grad, q is frozen.
// Besides time, two memory counters: the peak of live tensor bytes above the inputs during one
// fwd+bwd (a counting allocator wrapped around the CPU one), and the growth of the process's
// max RSS (meaningful when one N runs per process, as tools/bench_losses_torch.py does). bench/.
#include <sys/resource.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "bench_util.h"
#include "core/ops.h"
#include "core/storage.h"
#include "losses/contrastive_loss.h"

namespace cw::bench {
namespace {

// Live and peak bytes of CPU tensor storage. The wrapper allocates exactly as the built-in CPU
// allocator does (64-byte aligned), so installing it changes what is counted, not what runs.
std::atomic<int64_t> g_live{0}, g_peak{0};

std::shared_ptr<Storage> counting_allocate(size_t nbytes, Device device) {
  const size_t padded = std::max(kCpuAlignment, (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment);
  void* p = std::aligned_alloc(kCpuAlignment, padded);
  if (!p) throw std::bad_alloc();
  const int64_t live = g_live.fetch_add(static_cast<int64_t>(padded)) + static_cast<int64_t>(padded);
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
  return std::make_shared<Storage>(p, nbytes, device, [padded](void* q) {
    g_live.fetch_sub(static_cast<int64_t>(padded));
    std::free(q);
  });
}

double max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

constexpr int64_t kWidth = 384;

void run(benchmark::State& state, losses::LossKind kind) {
  register_allocator(DeviceType::CPU, counting_allocate);
  const int64_t n = state.range(0);
  Generator gen(42);
  // Pairs correlated as in training: q_i = p_i + noise.
  const Tensor p0 = ops::randn({n, kWidth}, DType::F32, gen);
  const Tensor q0 = ops::add(p0, ops::randn({n, kWidth}, DType::F32, gen));
  losses::ContrastiveConfig cfg;
  cfg.loss = kind;
  Variable p(p0, true), q(q0, false);
  Variable t = losses::make_log_scale(cfg);
  // Baseline of the first call in this process (inputs made, nothing run): Google Benchmark may
  // call this function again (a trial run, repetitions) after the peak was already reached.
  static const double rss_before = max_rss_mb();
  int64_t peak_extra = 0;
  // One untimed step first: thread pools, first-touch page faults and the RSS peak.
  losses::contrastive_loss(p, q, t, cfg).loss.backward();
  for (auto _ : state) {
    p.zero_grad();
    t.zero_grad();
    const int64_t base = g_live.load();
    g_peak.store(base);
    const losses::ContrastiveOutput out = losses::contrastive_loss(p, q, t, cfg);
    out.loss.backward();
    keep(p.grad());
    peak_extra = std::max(peak_extra, g_peak.load() - base);
  }
  const double mb = 1.0 / (1024.0 * 1024.0);
  state.counters["peak_tensor_MB"] = static_cast<double>(peak_extra) * mb;
  state.counters["rss_growth_MB"] = max_rss_mb() - rss_before;
  state.counters["NxN_f32_MB"] = static_cast<double>(n) * static_cast<double>(n) * 4.0 * mb;
}

void BM_infonce_fwd_bwd(benchmark::State& state) { run(state, losses::LossKind::InfoNCE); }
void BM_cwcl_fwd_bwd(benchmark::State& state) { run(state, losses::LossKind::CWCL); }

}  // namespace

BENCHMARK(BM_infonce_fwd_bwd)
    ->RangeMultiplier(4)
    ->Range(256, 16384)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// 32768 is the largest batch the loss is meant for (PyTorch's composition would need ~28 GB).
BENCHMARK(BM_cwcl_fwd_bwd)
    ->RangeMultiplier(4)
    ->Range(256, 16384)
    ->Arg(32768)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace cw::bench
