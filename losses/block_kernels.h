// The O(N^2) inner loops of the fused contrastive losses, on one row block of the logit matrix
// S (rows [row0, row0 + rows) of an N x N matrix that is never formed whole): row log-sum-exp
// and argmax, the column-wise online log-sum-exp, and the gradient block. CPU kernels on raw
// rows (vectorized exp via Eigen arrays); the GEMMs around them go through the Backend, so only
// these loops would need a CUDA twin. Part of losses/; the math is in contrastive_fused.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace cw::losses::blocks {

// Rows per block: about kBlockElements elements per (rows, N) buffer, at least 32 rows so the
// GEMMs stay efficient, and never more than N / buffers rows, so that all the buffers together
// hold at most one N x N matrix. `requested` > 0 overrides the heuristic (clamped to [1, N]).
constexpr int64_t kBlockElements = int64_t{1} << 23;
int64_t choose_block_rows(int64_t n, int64_t buffers, int64_t requested);

// out = a @ b into a preallocated contiguous `out` (no allocation per block). Shapes are the
// caller's responsibility; operands may be transposed views.
void gemm_into(const Tensor& a, const Tensor& b, Tensor& out);
// dst += src, both contiguous with the same shape and dtype (CPU).
void add_into(Tensor& dst, const Tensor& src);

// ---- forward, rows: per row i of the block, lse[i] = log sum_j exp(s_ij); whether the first
// argmax of the row is the pair (i); the sums of the pairs' and of all logits; and with a weight block w (may
// be null): r[i] = sum_j w_ij and, when weighted_rows, the row's target term sum_j w_ij s_ij / r_i.
struct RowTotals {
  int64_t correct = 0;       // rows whose first argmax is the diagonal
  double diag = 0.0;         // sum of the pairs' logits s_ii
  double total = 0.0;        // sum of all logits s_ij
  double target_term = 0.0;  // sum over rows of sum_j w_ij s_ij / r_i (weighted_rows only)
};
template <class T>
RowTotals row_pass(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0, bool weighted_rows,
                   double* lse, double* r);

// ---- forward, columns: running state over the row blocks seen so far, per column j.
struct ColumnState {
  explicit ColumnState(int64_t n);
  std::vector<double> max;      // running max of s_.j
  std::vector<int64_t> argmax;  // first row attaining it
  std::vector<double> sum;      // sum_i exp(s_ij - max_j), rescaled as max_j grows
  std::vector<double> wdot;     // sum_i w_ij s_ij (weighted columns only)
  std::vector<double> wsum;     // sum_i w_ij, the column sums of W (weighted columns only)
};
template <class T>
void column_pass(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0, bool need_sum,
                 bool weighted_cols, ColumnState& st);

// ---- gradient: overwrites the logit block s with the gradient block
//   g_ij = alpha e^{s_ij - lse_i} + beta e^{s_ij - clse_j}
//          - (weighted_rows ? alpha w_ij / r_i : 0) - (weighted_cols ? beta w_ij / c_j : 0)
//          - (i == j ? diag : 0)
// (r: W's row sums, cinv: 1 / its column sums; beta = 0 skips the column softmax; diag: the
// binary targets of the InfoNCE directions, alpha and/or beta).
struct GradCoeffs {
  double alpha = 0, beta = 0, diag = 0;
  bool weighted_rows = false, weighted_cols = false;
  bool target_terms = false;  // also sum the targets' terms of the loss (before s is overwritten)
};
struct GradTotals {
  double gs = 0;        // sum_ij g_ij s_ij, for the scale's gradient
  double row_term = 0;  // sum_ij w_ij s_ij / r_i  (target_terms and weighted_rows)
  double col_term = 0;  // sum_ij w_ij s_ij / c_j  (target_terms and weighted_cols)
};
template <class T>
GradTotals gradient_pass(T* s, const T* w, int64_t rows, int64_t n, int64_t row0, const GradCoeffs& c,
                         const double* lse, const std::vector<T>& clse, const double* r,
                         const std::vector<T>& cinv);

}  // namespace cw::losses::blocks
