// The ops API: every primitive of the framework, declared once. Each function checks its
// arguments (shape, dtype, device: a mismatch throws naming the op and the operands), allocates
// the output, and dispatches to the Backend of the inputs' device. No autograd here: the
// differentiable versions in autograd/ call these, forward and backward. Part of core/.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/backend.h"
#include "core/generator.h"
#include "core/tensor.h"

namespace cw::ops {

// ---------------------------------------------------------------- creation
Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());
// [start, end) in steps of step, as torch.arange.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::F32,
              Device device = Device::cpu());
// Copies the values into a new tensor of the given shape (numel must match).
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
// Draws from the generator (default: the global one, see generator.h), on `device`. The
// numbers depend only on the generator's state, not on the device: every backend runs the same
// counter-based Philox stream.
Tensor uniform(const Shape& shape, double lo = 0.0, double hi = 1.0, DType dtype = DType::F32,
               Generator& gen = default_generator(), Device device = Device::cpu());
Tensor normal(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = DType::F32,
              Generator& gen = default_generator(), Device device = Device::cpu());
inline Tensor rand(const Shape& shape, DType dtype = DType::F32, Generator& gen = default_generator()) {
  return uniform(shape, 0.0, 1.0, dtype, gen);
}
inline Tensor randn(const Shape& shape, DType dtype = DType::F32, Generator& gen = default_generator()) {
  return normal(shape, 0.0, 1.0, dtype, gen);
}

// ---------------------------------------------------------------- elementwise unary
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApprox { None, Tanh };  // exact erf form (BERT) or the tanh approximation (GPT-2)
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::None);
Tensor silu(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor unary(UnaryOp op, const Tensor& x, double scalar = 0.0);
// gx = gy * op'(x); y = op(x) is passed so that exp/tanh/sigmoid reuse it.
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, double scalar = 0.0);

// ---------------------------------------------------------------- elementwise binary
// Full NumPy broadcasting; both operands must have the same dtype and device.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// Comparisons give 1 or 0 in the operands' dtype (masks multiply directly into floats).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// Scalar variants: the scalar takes the tensor's dtype.
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor sub(double s, const Tensor& a);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor div(double s, const Tensor& a);
Tensor maximum(const Tensor& a, double s);
Tensor minimum(const Tensor& a, double s);
Tensor gt(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);
Tensor eq(const Tensor& a, double s);

// out = cond != 0 ? a : b, all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with value wherever mask != 0 (mask broadcasts to x).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---------------------------------------------------------------- reductions
// dims empty = all dims. keepdim keeps reduced dims as size 1.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
// Index (i64) of the first maximum along dim.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums x down to `shape`, undoing NumPy broadcasting: the gradient of an expand.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---------------------------------------------------------------- linear algebra
// torch.matmul semantics for >= 1-d operands: batch dims broadcast, 1-d operands are promoted
// and the added dim removed. Transposed operands are read in place.
Tensor matmul(const Tensor& a, const Tensor& b);
// A Linear layer's product: x (..., K) @ w^T + bias, w (N, K), bias (N) or undefined -> (..., N).
// The bias is written into the output and the GEMM adds to it (torch's addmm): one pass over the
// output fewer than matmul then add. FLOP-counted like matmul.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);

// ---------------------------------------------------------------- normalization
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Given y = softmax(x) (or log_softmax when log), the gradient w.r.t. x.
Tensor softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log);

struct LayerNormOutput {
  Tensor y;     // same shape as x
  Tensor mean;  // (rows): per normalized row, kept for backward
  Tensor rstd;  // (rows): 1 / sqrt(var + eps)
};
// Normalizes over the last `normalized_ndim` dims; weight and bias (normalized shape) are
// optional (undefined Tensor).
LayerNormOutput layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight, const Tensor& bias,
                           double eps = 1e-5);
struct LayerNormGrads {
  Tensor x, weight, bias;
};
LayerNormGrads layer_norm_backward(const Tensor& gy, const Tensor& x, int64_t normalized_ndim,
                                   const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                   bool need_weight_grad, bool need_bias_grad);

// ---------------------------------------------------------------- indexing
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// Returns x with src added at rows `index` along dim (x is not modified).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// Rows of weight (V, D) picked by ids of any shape -> (*ids.shape, D).
Tensor embedding(const Tensor& weight, const Tensor& ids);

// ---------------------------------------------------------------- joining and splitting
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// Views of consecutive pieces of `size` along dim (the last may be shorter).
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

// ---------------------------------------------------------------- regularization
// Inverted dropout: y = x * keep / (1 - p) with P(keep) = 1 - p, drawn from gen (core/philox.h's
// dropout stream); mask keeps the decisions as bits (ceil(numel / 64) i64 words, 1/32 of an f32
// x) for dropout_backward, which needs no new draw: dx = g * keep / (1 - p).
struct DropoutResult {
  Tensor y, mask;
};
DropoutResult dropout(const Tensor& x, double p, Generator& gen = default_generator());
Tensor dropout_backward(const Tensor& g, const Tensor& mask, double p);
// Inverted-dropout mask: 0 with probability p, else 1/(1-p); y = x * mask. The same draws as
// dropout (it is dropout(ones(shape), p).y).
Tensor dropout_mask(const Shape& shape, double p, DType dtype = DType::F32,
                    Generator& gen = default_generator(), Device device = Device::cpu());

// ---------------------------------------------------------------- convolution
struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};
// x (N, Cin, H, W), weight (Cout, Cin/groups, kh, kw), bias (Cout) or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o = {});
struct ConvGrads {
  Tensor x, weight, bias;
};
ConvGrads conv2d_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Conv2dOptions& o,
                          bool need_x, bool need_weight, bool need_bias);
struct Conv1dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};
// x (N, Cin, L), weight (Cout, Cin/groups, k); groups = Cin = Cout is a depthwise conv.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv1dOptions& o = {});
ConvGrads conv1d_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Conv1dOptions& o,
                          bool need_x, bool need_weight, bool need_bias);

// ---------------------------------------------------------------- fused softmax cross-entropy
// The O(N^2) passes of the fused contrastive losses on one row block s (R, N) of a logit matrix
// whose row k is global row row0 + k (Backend::xent_*; the math is in
// losses/contrastive_fused.h). The per-row / per-column vectors live on s's device.
// A fresh column state for n columns: max -inf, argmax 0, sums 0; wdot/wsum only when weighted.
XentColumnState xent_column_state(int64_t n, bool weighted, Device device);
// lse, r: f64 vectors covering the global rows (r may be undefined without w).
XentRowTotals xent_row_pass(const Tensor& s, const Tensor& w, int64_t row0, bool weighted_rows, Tensor& lse,
                            Tensor& r);
void xent_column_pass(const Tensor& s, const Tensor& w, int64_t row0, bool need_sum, bool weighted_cols,
                      XentColumnState& st);
// Overwrites s (contiguous) with the gradient block.
XentGradTotals xent_gradient_(Tensor& s, const Tensor& w, int64_t row0, const XentGradCoeffs& c,
                              const Tensor& lse, const Tensor& clse, const Tensor& r, const Tensor& cinv);

// CWCL's weights in place on a block c (R, N) of cosines (rows [row0, row0 + R) of E E^T); for
// the TopK mask, the neighbour lists as CSR i64 vectors on c's device (offsets (M + 1), index).
void xent_weights_(Tensor& c, int64_t row0, const XentWeightSpec& s, const Tensor& offsets = Tensor(),
                   const Tensor& index = Tensor());
// rows (R) f64 = the row sums of w (R, N); cols (N) f64 += its column sums.
void xent_weight_sums(const Tensor& w, Tensor& rows, Tensor& cols);
// (R, k) i64: the columns of each row's k largest entries (ties to the lower column), unordered.
Tensor row_topk(const Tensor& c, int64_t k);

// ---------------------------------------------------------------- checks of values
// Throws ValueError "<op>: <name> contains NaN or Inf (first at [i, j], <t>)", naming the first
// bad element in row-major order. One kernel on t's device (Backend::first_nonfinite) and one
// integer read back; integer tensors pass.
void check_finite(const Tensor& t, const char* op, const char* name);
// The flat row-major index of t's first NaN or Inf, or -1.
int64_t first_nonfinite(const Tensor& t);

// ---------------------------------------------------------------- row L2 normalization
// unit = z / max(||z_i||, eps) per row of z (N, D), as torch.nn.functional.normalize, and the
// norms (N, 1); the backward, given g = dL/dunit (N, D), is in core/kernel_math.h.
struct L2NormalizedRows {
  Tensor unit;  // (N, D)
  Tensor norm;  // (N, 1) ||z_i||
};
L2NormalizedRows l2_normalize_rows(const Tensor& z, double eps);
// dL/dz (N, D).
Tensor l2_normalize_rows_backward(const Tensor& g, const Tensor& unit, const Tensor& norm, double eps);

// ---------------------------------------------------------------- optimizer kernels
// AdamW's update in place on p and its moments m, v (same shape, dtype and device as p), from
// the gradient g (formula in core/kernel_math.h).
void adamw_step_(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamWStep& s);
// sum_i x_i^2, accumulated in f64 whatever x's dtype, read back to the host.
double sum_of_squares(const Tensor& x);

// ---------------------------------------------------------------- into preallocated outputs
// out = a @ b for 2-d a (M, K) and b (K, N), which may be transposed views, into a contiguous
// out (M, N) that already exists (a loss's row block, reused across blocks). Checked and
// FLOP-counted like matmul.
void matmul_out(const Tensor& a, const Tensor& b, Tensor& out);
// dst += src in place (same shape, dtype and device; src broadcast is not allowed).
void add_(Tensor& dst, const Tensor& src);

// ---------------------------------------------------------------- checks shared with autograd
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_floating(const Tensor& a, const char* op);

}  // namespace cw::ops
