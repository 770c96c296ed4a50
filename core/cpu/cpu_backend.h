// The CPU backend: Eigen for GEMM and vectorized math, OpenMP for loops Eigen does not thread.
// One .cpp per kernel family (copy/random, elementwise, reduce, matmul, norm, index, conv, the fused
// softmax cross-entropy passes, the fused row and optimizer kernels).
// Part of core/.
#pragma once

#include "core/backend.h"

namespace cw::cpu {

// Not final: tests derive a backend with a convolution library from it
// (tests/core/conv_library_path_test.cpp).
class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void copy(const Tensor& src, Tensor& dst) override;
  void fill(Tensor& dst, double value) override;
  void arange(Tensor& out, double start, double step) override;
  void uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) override;
  void normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) override;
  void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, Tensor& y, Tensor& mask) override;
  void dropout_backward(const Tensor& g, const Tensor& mask, double p, Tensor& gx) override;

  void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      double scalar) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) override;

  void reduce(ReduceOp op, const Tensor& x, Tensor& out, int64_t outer, int64_t r, int64_t inner) override;
  void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool accumulate = false) override;

  void softmax(const Tensor& x, Tensor& out, bool log) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd) override;
  void layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                           const Tensor& weight, Tensor& gx, Tensor& gweight, Tensor& gbias) override;

  void index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) override;
  void index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;
  void gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) override;
  void scatter_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) override;

  void im2col(const Tensor& x, const ConvGeometry& g, Tensor& cols) override;
  void col2im(const Tensor& cols, const ConvGeometry& g, Tensor& x) override;
  void depthwise_conv(const Tensor& x, const Tensor& w, const ConvGeometry& g, Tensor& out) override;
  void depthwise_conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                                     Tensor& gx) override;
  void depthwise_conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g,
                                      Tensor& gw) override;

  XentRowTotals xent_row_pass(const Tensor& s, const Tensor& w, int64_t row0, bool weighted_rows, Tensor& lse,
                              Tensor& r) override;
  void xent_column_pass(const Tensor& s, const Tensor& w, int64_t row0, bool need_sum, bool weighted_cols,
                        XentColumnState& st) override;
  XentGradTotals xent_gradient(Tensor& s, const Tensor& w, int64_t row0, const XentGradCoeffs& c,
                               const Tensor& lse, const Tensor& clse, const Tensor& r,
                               const Tensor& cinv) override;

  // cpu_xent_weights.cpp
  void xent_weights(Tensor& c, int64_t row0, const XentWeightSpec& s, const Tensor& offsets,
                    const Tensor& index) override;
  void xent_weight_sums(const Tensor& w, Tensor& rows, Tensor& cols) override;
  void row_topk(const Tensor& c, int64_t k, Tensor& idx) override;

  // cpu_fused.cpp
  int64_t first_nonfinite(const Tensor& x) override;
  void l2_normalize_rows(const Tensor& x, double eps, Tensor& unit, Tensor& norm) override;
  void l2_normalize_rows_backward(const Tensor& g, const Tensor& unit, const Tensor& norm, double eps,
                                  Tensor& gx) override;
  void adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamWStep& s) override;
  double sum_of_squares(const Tensor& x) override;
};

// The one CPU backend instance.
Backend& cpu_backend();

}  // namespace cw::cpu
