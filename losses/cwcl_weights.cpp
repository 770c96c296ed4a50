// CWCL weights (see cwcl_weights.h): the kernels, the masks, the top-k graph and the low-rank
// linear form.
#include "losses/cwcl_weights.h"

#include <Eigen/Core>
#include <algorithm>
#include <functional>
#include <limits>

#include "core/backend.h"
#include "core/ops.h"
#include "losses/block_kernels.h"
#include "losses/l2_normalize.h"

namespace cw::losses {
namespace weights {
namespace {

constexpr int64_t kChunk = 256;
constexpr int64_t kParallelMin = int64_t{1} << 18;  // elements; fewer stay on one thread
template <class T>
using ChunkVec = Eigen::Array<T, Eigen::Dynamic, 1, 0, kChunk, 1>;

void check_cpu(const Tensor& t, const char* what) {
  CW_CHECK(t.device().is_cpu(), NotImplementedError, "cwcl weights: no kernel for ", what, " on ",
           t.device().str(), " (", dtype_name(t.dtype()), "); the blockwise loops are CPU only");
}

}  // namespace

WeightSpec spec_of(const ContrastiveConfig& cfg) {
  return {cfg.kernel, cfg.kernel_temperature, cfg.mask, cfg.top_k, cfg.threshold};
}

template <class T>
void cosines_to_weights(T* c, int64_t rows, int64_t n, int64_t row0, const WeightSpec& s,
                        const Neighbours* nb) {
  const T inv_t = static_cast<T>(1.0 / s.temperature);
  auto kernel = [&](const auto& cos) {
    if (s.kernel == WeightKernel::Linear) return ChunkVec<T>(cos * T(0.5) + T(0.5));
    return ChunkVec<T>(((cos - T(1)) * inv_t).exp());
  };
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t i = row0 + k;
    T* row = c + k * n;
    if (s.mask == WeightMask::TopK) {
      // Only the listed columns survive: gather their cosines, zero the row, scatter weights.
      const int64_t* cols = nb->index.data() + nb->offsets[i];
      const int64_t count = nb->offsets[i + 1] - nb->offsets[i];
      std::vector<T> kept(count);
      for (int64_t a = 0; a < count; a += kChunk) {
        const int64_t width = std::min(kChunk, count - a);
        ChunkVec<T> cos(width);
        for (int64_t j = 0; j < width; ++j) cos[j] = row[cols[a + j]];
        Eigen::Map<ChunkVec<T>>(kept.data() + a, width) = kernel(cos);
      }
      std::fill(row, row + n, T(0));
      for (int64_t a = 0; a < count; ++a) row[cols[a]] = kept[a];
      continue;
    }
    for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
      const int64_t width = std::min(kChunk, n - j0);
      Eigen::Map<ChunkVec<T>> x(row + j0, width);
      const ChunkVec<T> cos = x;  // the threshold reads the cosines after the kernel wrote x
      x = kernel(cos);
      if (s.mask == WeightMask::Threshold)
        for (int64_t j = 0; j < width; ++j)
          if (j0 + j != i && !(static_cast<double>(cos[j]) >= s.threshold)) x[j] = T(0);
    }
  }
}

Neighbours topk_neighbours(const Tensor& e_unit, int64_t k, int64_t block_rows) {
  check_cpu(e_unit, "top-k neighbours");
  const int64_t n = e_unit.size(0), kk = std::min(k, n);
  std::vector<int64_t> top(n * kk);  // row i's top k, unsorted
  const int64_t b = blocks::choose_block_rows(n, 1, block_rows);
  Tensor buf = Tensor::empty({b, n}, e_unit.dtype(), e_unit.device());
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor c = buf.narrow(0, 0, rows);
    blocks::gemm_into(e_unit.narrow(0, i0, rows), e_unit.t(), c);
    dispatch_float(c.dtype(), "cwcl top-k", [&]<class T>() {
      const T* p = c.data<T>();
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = p + r * n;
        std::vector<int64_t> idx(n);
        for (int64_t j = 0; j < n; ++j) idx[j] = j;
        // Larger cosine first; equal cosines by index, so the choice is deterministic.
        auto before = [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
        std::nth_element(idx.begin(), idx.begin() + (kk - 1), idx.end(), before);
        std::copy(idx.begin(), idx.begin() + kk, top.begin() + (i0 + r) * kk);
      }
    });
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
  return nb;
}

WeightSums weight_sums(const Tensor& e_unit, const WeightSpec& s, const Neighbours* nb, int64_t block_rows) {
  WeightSums out;
  if (is_low_rank(s)) {
    out.rows = linear_weights_row_sums(e_unit).to(DType::F64).to_vector<double>();
    out.cols = out.rows;
    return out;
  }
  check_cpu(e_unit, "weight sums");
  const int64_t n = e_unit.size(0);
  const int64_t b = blocks::choose_block_rows(n, 1, block_rows);
  out.rows.assign(n, 0.0);
  out.cols.assign(n, 0.0);
  Tensor buf = Tensor::empty({b, n}, e_unit.dtype(), e_unit.device());
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor c = buf.narrow(0, 0, rows);
    blocks::gemm_into(e_unit.narrow(0, i0, rows), e_unit.t(), c);
    dispatch_float(c.dtype(), "cwcl weight sums", [&]<class T>() {
      T* w = c.data<T>();
      cosines_to_weights<T>(w, rows, n, i0, s, nb);
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
      for (int64_t k = 0; k < rows; ++k)
        out.rows[i0 + k] =
            static_cast<double>(Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(w + k * n, n).sum());
      // Column sums over chunks of columns, each thread summing its chunks down the rows.
      const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t j0 = ch * kChunk, width = std::min(kChunk, n - j0);
        ChunkVec<T> acc = ChunkVec<T>::Zero(width);
        for (int64_t k = 0; k < rows; ++k) acc += Eigen::Map<const ChunkVec<T>>(w + k * n + j0, width);
        for (int64_t j = 0; j < width; ++j) out.cols[j0 + j] += static_cast<double>(acc[j]);
      }
    });
  }
  return out;
}

Tensor weight_rows(const Tensor& e_unit, const WeightSpec& s, int64_t row0, int64_t rows) {
  CW_CHECK(s.mask != WeightMask::TopK, NotImplementedError,
           "cwcl weight_rows: the top-k mask is made on the host (cosines_to_weights)");
  const int64_t n = e_unit.size(0);
  const Tensor c = ops::matmul(e_unit.narrow(0, row0, rows), e_unit.t());  // (rows, N) cosines
  Tensor w = s.kernel == WeightKernel::Linear ? ops::add(ops::mul(c, 0.5), 0.5)
                                              : ops::exp(ops::mul(ops::sub(c, 1.0), 1.0 / s.temperature));
  if (s.mask == WeightMask::Threshold) {  // keep c_ij >= threshold, and the pair
    const Device d = e_unit.device();
    const Tensor pair = ops::eq(ops::arange(row0, row0 + rows, 1, DType::I64, d).reshape({rows, 1}),
                                ops::arange(0, n, 1, DType::I64, d).reshape({1, n}));
    w = ops::where(pair, w, ops::masked_fill(w, ops::lt(c, s.threshold), 0.0));
  }
  return w;
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
  if (wb.on_host()) wb.e_host = e_unit.to(Device::cpu());
  return wb;
}

Tensor WeightBlocks::block(int64_t row0, Tensor& buf) const {
  const int64_t rows = buf.size(0), n = buf.size(1);
  if (!on_host()) return weight_rows(e, *spec, row0, rows);
  Tensor c = buf.device().is_cpu() ? buf : Tensor::empty({rows, n}, buf.dtype(), Device::cpu());
  blocks::gemm_into(e_host.narrow(0, row0, rows), e_host.t(), c);
  dispatch_float(c.dtype(), "cwcl weights",
                 [&]<class T>() { cosines_to_weights<T>(c.data<T>(), rows, n, row0, *spec, nb); });
  if (!buf.device().is_cpu()) cross_device_copy(c, buf, "cwcl weights");
  return buf;
}

std::pair<Tensor, Tensor> WeightBlocks::sums(int64_t block_rows) const {
  const Device device = e.device();
  const int64_t n = e.size(0);
  if (on_host()) {
    const WeightSums s = weight_sums(e_host, *spec, nb, block_rows);
    return {ops::from_vector(s.rows, {n}).to(device), ops::from_vector(s.cols, {n}).to(device)};
  }
  const int64_t b = blocks::choose_block_rows(n, 1, block_rows);
  Tensor r = ops::zeros({n}, DType::F64, device), c = ops::zeros({n}, DType::F64, device);
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const Tensor w = weight_rows(e, *spec, i0, std::min(b, n - i0)).to(DType::F64);
    r.narrow(0, i0, w.size(0)).copy_(ops::sum(w, {1}));
    c = ops::add(c, ops::sum(w, {0}));
  }
  return {r, c};
}

template void cosines_to_weights<float>(float*, int64_t, int64_t, int64_t, const WeightSpec&,
                                        const Neighbours*);
template void cosines_to_weights<double>(double*, int64_t, int64_t, int64_t, const WeightSpec&,
                                         const Neighbours*);

}  // namespace weights

Tensor cwcl_weights(const Tensor& e, const ContrastiveConfig& cfg) {
  cfg.validate();
  CW_CHECK(e.dim() == 2 && e.size(0) >= 1, ShapeError, "cwcl_weights: e must be (N, D) with N >= 1, got ",
           describe(e));
  const weights::WeightSpec spec = weights::spec_of(cfg);
  const Tensor unit = l2_normalize_rows(e, cfg.normalize_eps).unit;
  weights::check_cpu(unit, "cwcl_weights");
  weights::Neighbours nb;
  if (spec.mask == WeightMask::TopK) nb = weights::topk_neighbours(unit, spec.top_k, cfg.block_rows);
  Tensor w = ops::matmul(unit, unit.t()).contiguous();
  dispatch_float(w.dtype(), "cwcl_weights", [&]<class T>() {
    weights::cosines_to_weights<T>(w.data<T>(), w.size(0), w.size(1), 0, spec, &nb);
  });
  return w;
}

Tensor cwcl_targets(const Tensor& e, const ContrastiveConfig& cfg) {
  const Tensor w = cwcl_weights(e, cfg);
  return ops::div(w, ops::sum(w, {1}, /*keepdim=*/true));
}

}  // namespace cw::losses
