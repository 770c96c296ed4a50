// CWCL weights (see cwcl_weights.h): the spec, the top-k graph, W's blocks and sums, and the
// low-rank linear form; the per-element work is core's (ops::xent_weights_, xent_weight_sums,
// row_topk).
#include "losses/cwcl_weights.h"

#include <algorithm>

#include "core/ops.h"
#include "losses/l2_normalize.h"

namespace cw::losses {
namespace weights {
namespace {

// The spec in core's terms.
XentWeightSpec core_spec(const WeightSpec& s) {
  XentWeightSpec c;
  c.kernel = s.kernel == WeightKernel::Linear ? XentWeightKernel::Linear : XentWeightKernel::Exp;
  c.temperature = s.temperature;
  c.mask = s.mask == WeightMask::TopK        ? XentWeightMask::TopK
           : s.mask == WeightMask::Threshold ? XentWeightMask::Threshold
                                             : XentWeightMask::None;
  c.threshold = s.threshold;
  return c;
}

// Cosines -> W in place on a block c (rows [row0, row0 + c.size(0))).
void to_weights(Tensor& c, int64_t row0, const WeightSpec& s, const Neighbours* nb) {
  const bool topk = s.mask == WeightMask::TopK;
  CW_CHECK(!topk || nb != nullptr, NotImplementedError,
           "cwcl weights: the top-k mask needs its neighbour graph (topk_neighbours)");
  ops::xent_weights_(c, row0, core_spec(s), topk ? nb->offsets_on_device : Tensor(),
                     topk ? nb->index_on_device : Tensor());
}

}  // namespace

WeightSpec spec_of(const ContrastiveConfig& cfg) {
  return {cfg.kernel, cfg.kernel_temperature, cfg.mask, cfg.top_k, cfg.threshold};
}

Neighbours topk_neighbours(const Tensor& e_unit, int64_t k, int64_t block_rows) {
  const int64_t n = e_unit.size(0), kk = std::min(k, n);
  std::vector<int64_t> top(n * kk);  // row i's top k, unsorted
  const int64_t b = choose_block_rows(n, 1, block_rows);
  Tensor buf = Tensor::empty({b, n}, e_unit.dtype(), e_unit.device());
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor c = buf.narrow(0, 0, rows);
    ops::matmul_out(e_unit.narrow(0, i0, rows), e_unit.t(), c);
    const std::vector<int64_t> block_top = ops::row_topk(c, kk).to(Device::cpu()).to_vector<int64_t>();
    std::copy(block_top.begin(), block_top.end(), top.begin() + i0 * kk);
  }
  // Symmetrise: j in i's list or i in j's, plus the pair itself; then sort and deduplicate.
  std::vector<std::vector<int64_t>> adj(n);
  for (int64_t i = 0; i < n; ++i) {
    adj[i].push_back(i);
    for (int64_t a = 0; a < kk; ++a) {
      const int64_t j = top[i * kk + a];
      adj[i].push_back(j);
      adj[j].push_back(i);
    }
  }
  Neighbours nb;
  nb.offsets.assign(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    std::sort(adj[i].begin(), adj[i].end());
    adj[i].erase(std::unique(adj[i].begin(), adj[i].end()), adj[i].end());
    nb.offsets[i + 1] = nb.offsets[i] + static_cast<int64_t>(adj[i].size());
    nb.index.insert(nb.index.end(), adj[i].begin(), adj[i].end());
  }
  nb.offsets_on_device = ops::from_vector(nb.offsets, {n + 1}).to(e_unit.device());
  nb.index_on_device =
      ops::from_vector(nb.index, {static_cast<int64_t>(nb.index.size())}).to(e_unit.device());
  return nb;
}

Tensor weight_rows(const Tensor& e_unit, const WeightSpec& s, int64_t row0, int64_t rows,
                   const Neighbours* nb) {
  Tensor c = Tensor::empty({rows, e_unit.size(0)}, e_unit.dtype(), e_unit.device());  // (rows, N)
  ops::matmul_out(e_unit.narrow(0, row0, rows), e_unit.t(), c);                       // cosines
  to_weights(c, row0, s, nb);
  return c;
}

Tensor linear_weights_times(const Tensor& e_unit, const Tensor& y) {
  // (E (E^T Y) + 1 (1^T Y)) / 2: two thin GEMMs and a column sum broadcast over the rows.
  const Tensor ey = ops::matmul(e_unit, ops::matmul(e_unit.t(), y));
  return ops::mul(ops::add(ey, ops::sum(y, {0}, /*keepdim=*/true)), 0.5);
}

Tensor linear_weights_row_sums(const Tensor& e_unit) {
  // W 1 = (E (E^T 1) + N) / 2.
  const Tensor e_sum = ops::sum(e_unit, {0});  // (D)
  return ops::mul(ops::add(ops::matmul(e_unit, e_sum), static_cast<double>(e_unit.size(0))), 0.5);
}

WeightBlocks weight_blocks(const Tensor& e_unit, const WeightSpec& spec, const Neighbours* nb) {
  WeightBlocks wb;
  wb.e = e_unit;
  wb.spec = &spec;
  wb.nb = nb;
  return wb;
}

Tensor WeightBlocks::block(int64_t row0, Tensor& buf) const {
  ops::matmul_out(e.narrow(0, row0, buf.size(0)), e.t(), buf);  // (rows, N) cosines
  to_weights(buf, row0, *spec, nb);
  return buf;
}

std::pair<Tensor, Tensor> WeightBlocks::sums(int64_t block_rows) const {
  if (is_low_rank(*spec)) {
    const Tensor r = linear_weights_row_sums(e).to(DType::F64);
    return {r, r.clone()};
  }
  const int64_t n = e.size(0);
  const int64_t b = choose_block_rows(n, 1, block_rows);
  Tensor r = ops::zeros({n}, DType::F64, e.device()), c = ops::zeros({n}, DType::F64, e.device());
  Tensor buf = Tensor::empty({b, n}, e.dtype(), e.device());
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    Tensor w = buf.narrow(0, 0, std::min(b, n - i0));
    block(i0, w);
    Tensor r_rows = r.narrow(0, i0, w.size(0));
    ops::xent_weight_sums(w, r_rows, c);
  }
  return {r, c};
}

}  // namespace weights

Tensor cwcl_weights(const Tensor& e, const ContrastiveConfig& cfg) {
  cfg.validate();
  CW_CHECK(e.dim() == 2 && e.size(0) >= 1, ShapeError, "cwcl_weights: e must be (N, D) with N >= 1, got ",
           describe(e));
  const weights::WeightSpec spec = weights::spec_of(cfg);
  const Tensor unit = l2_normalize_rows(e, cfg.normalize_eps).unit;
  weights::Neighbours nb;
  if (spec.mask == WeightMask::TopK) nb = weights::topk_neighbours(unit, spec.top_k, cfg.block_rows);
  return weights::weight_rows(unit, spec, 0, unit.size(0), &nb);
}

Tensor cwcl_targets(const Tensor& e, const ContrastiveConfig& cfg) {
  const Tensor w = cwcl_weights(e, cfg);
  return ops::div(w, ops::sum(w, {1}, /*keepdim=*/true));
}

}  // namespace cw::losses
