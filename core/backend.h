// The Backend interface: one virtual method per primitive kernel, implemented once per device
// type (CPU on Eigen in core/cpu/, CUDA in cuda/). core/ops_*.cpp check arguments, allocate
// outputs and pick the backend from the inputs' device; a backend only computes. Kernels write
// into preallocated outputs, which are contiguous unless a comment says otherwise. Part of core/.
#pragma once

#include <cstdint>

#include "core/kernel_math.h"
#include "core/tensor.h"

namespace cw {

enum class UnaryOp : uint8_t {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Tanh,
  Sigmoid,
  Relu,
  GeluErf,
  GeluTanh,
  Silu,
  Abs,
  Pow,
};
const char* unary_op_name(UnaryOp op);
// True when op's derivative is a function of its output alone (exp, sqrt, rsqrt, tanh, sigmoid,
// relu, neg), so autograd can save y instead of x.
bool unary_grad_uses_output(UnaryOp op);

enum class BinaryOp : uint8_t {
  Add,
  Sub,
  Mul,
  Div,
  Maximum,
  Minimum,
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
};
const char* binary_op_name(BinaryOp op);

enum class ReduceOp : uint8_t { Sum, Mean, Max, Min, ArgMax };

// Geometry of a 2-d convolution; conv1d is the case kh = 1.
struct ConvGeometry {
  int64_t channels, height, width;  // input per image (C, H, W)
  int64_t kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int64_t out_h() const { return (height + 2 * pad_h - dil_h * (kh - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (width + 2 * pad_w - dil_w * (kw - 1) - 1) / stride_w + 1; }
};

// How a backend runs a convolution (Backend::conv_method): lowered to im2col + GEMM, by the
// direct depthwise kernels (groups = Cin = Cout only), or whole by the backend's convolution
// library (cuDNN on CUDA; Backend::conv_forward and its two backward passes).
enum class ConvMethod : uint8_t { Lowered, Depthwise, Library };

// ---- fused softmax cross-entropy over a logit matrix (the contrastive losses' O(N^2) passes) ----
// A block s (R, N) of an (M, N) logit matrix: its row k is global row row0 + k, and the pair
// (the positive) of global row i is column i. w is the same block of a weight matrix, or
// undefined. Per-row vectors hold all M rows, per-column ones all N columns. The math is
// derived in losses/contrastive_fused.h.
struct XentRowTotals {
  int64_t correct = 0;       // rows whose first argmax is their pair
  double diag = 0.0;         // sum of the pairs' logits
  double total = 0.0;        // sum of all logits
  double target_term = 0.0;  // sum over rows of sum_j w_ij s_ij / r_i (weighted rows only)
};
// Running per-column state over the row blocks seen so far (the online log-sum-exp): max and
// sum are f64, argmax i64 (the first row attaining the max); wdot = sum_i w_ij s_ij and
// wsum = sum_i w_ij (f64, defined only for weighted columns). All (N), on the logits' device.
struct XentColumnState {
  Tensor max, argmax, sum, wdot, wsum;
};
// The gradient block's coefficients:
//   g_ij = alpha e^{s_ij - lse_i} + beta e^{s_ij - clse_j}
//          - (weighted_rows ? alpha w_ij / r_i : 0) - (weighted_cols ? beta w_ij cinv_j : 0)
//          - (i == j ? diag : 0)
struct XentGradCoeffs {
  double alpha = 0, beta = 0, diag = 0;  // beta = 0 skips the column softmax
  bool weighted_rows = false, weighted_cols = false;
  bool target_terms = false;  // also sum the targets' terms of the loss (before s is overwritten)
};
struct XentGradTotals {
  double gs = 0;        // sum_ij g_ij s_ij, for the logit scale's gradient
  double row_term = 0;  // sum_ij w_ij s_ij / r_i  (target_terms and weighted_rows)
  double col_term = 0;  // sum_ij w_ij s_ij cinv_j (target_terms and weighted_cols)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory and creation ----
  // dst[i] = src[i] elementwise over dst's shape; src is already expanded to that shape (any
  // strides, stride 0 for broadcast); dtypes may differ (converted); dst may be strided.
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  virtual void fill(Tensor& dst, double value) = 0;  // dst may be strided
  virtual void arange(Tensor& out, double start, double step) = 0;
  // Counter-based (Philox4x32-10) draws: element i depends only on (seed, offset, i), so any
  // backend reproduces the same numbers. See core/generator.h.
  virtual void uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) = 0;
  virtual void normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) = 0;
  // Inverted dropout of contiguous x: y = x / (1 - p) where kept, else 0, the keep decisions being
  // core/philox.h's dropout stream at (seed, offset); mask (ceil(n / 64) i64 words) receives the
  // keep bits, bit k of word g for element 64 g + k. dropout_backward: gx = g / (1 - p) where
  // mask keeps, else 0 (g contiguous).
  virtual void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, Tensor& y,
                       Tensor& mask) = 0;
  virtual void dropout_backward(const Tensor& g, const Tensor& mask, double p, Tensor& gx) = 0;

  // ---- elementwise ----
  // out = op(x) (x any strides, same shape as out). `scalar` is the exponent of Pow.
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& out, double scalar) = 0;
  // gx = gy * op'(x), using the saved output y where that is cheaper. For the ops where
  // unary_grad_uses_output(op) is true, callers may pass y itself as x (the derivative must read
  // only y, or x only through its sign, which y shares: relu); for the others y may be undefined.
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                              double scalar) = 0;
  // out = a op b; a and b are expanded to out's shape (stride 0 where broadcast).
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // out = cond != 0 ? a : b; all three expanded to out's shape.
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) = 0;

  // ---- reductions ----
  // x is contiguous and read as (outer, r, inner); out is (outer, inner) and is reduced over r.
  // ArgMax writes i64 indices into [0, r).
  virtual void reduce(ReduceOp op, const Tensor& x, Tensor& out, int64_t outer, int64_t r, int64_t inner) = 0;

  // ---- linear algebra ----
  // out[b] = a[b] @ b[b]: a (..., M, K), b (..., K, N) expanded to the same batch shape with
  // any strides (a transposed operand is read in place, not copied); out (..., M, N).
  // accumulate: out += a @ b (out holds, e.g., a Linear's bias broadcast over the rows), with no
  // separate pass over out.
  virtual void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool accumulate = false) = 0;

  // ---- fused normalization kernels (last dim, contiguous rows) ----
  virtual void softmax(const Tensor& x, Tensor& out, bool log) = 0;
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) = 0;
  // x (M, N); weight and bias (N) or undefined; writes y (M, N), mean (M), rstd (M).
  virtual void layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                          Tensor& mean, Tensor& rstd) = 0;
  // gx (M, N) always; gweight/gbias (N) when defined.
  virtual void layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& weight, Tensor& gx, Tensor& gweight, Tensor& gbias) = 0;

  // ---- indexing (index tensors are i64, contiguous, bounds-checked by ops_index.cpp) ----
  // out = x.index_select(dim, index), x contiguous.
  virtual void index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) = 0;
  // out.index_add_(dim, index, src): out[.., index[i], ..] += src[.., i, ..], src contiguous.
  virtual void index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;
  // out = x.gather(dim, index), x contiguous, index the shape of out.
  virtual void gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) = 0;
  // out.scatter_add_(dim, index, src), src and index the same shape.
  virtual void scatter_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = 0;

  // ---- convolution lowering ----
  // x (N, C, H, W) contiguous -> cols (N, C*kh*kw, OH*OW): each column is one receptive field.
  virtual void im2col(const Tensor& x, const ConvGeometry& g, Tensor& cols) = 0;
  // The adjoint of im2col: x (N, C, H, W) is overwritten with, at each pixel, the sum of the
  // column entries read from it (0 where none is).
  virtual void col2im(const Tensor& cols, const ConvGeometry& g, Tensor& x) = 0;

  // ---- depthwise convolution (one filter per channel: groups = Cin = Cout), computed directly ----
  // im2col would write a (C*kh*kw, OH*OW) column matrix per image only to multiply each channel's
  // kh*kw rows by kh*kw weights; a direct loop reads x in place and needs no buffer.
  // x (N, C, H, W) and w (C, kh, kw) contiguous; out (N, C, OH, OW), overwritten.
  virtual void depthwise_conv(const Tensor& x, const Tensor& w, const ConvGeometry& g, Tensor& out) = 0;
  // gx (N, C, H, W), overwritten: the adjoint of depthwise_conv in x. gy contiguous.
  virtual void depthwise_conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                                             Tensor& gx) = 0;
  // gw (C, kh, kw), overwritten: sum over images and output pixels of gy * the input it saw.
  virtual void depthwise_conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g,
                                              Tensor& gw) = 0;

  // ---- whole convolutions from a library (optional) ----
  // Which way a convolution on `device` of this dtype, geometry, group count and output channels
  // runs here. The default, which the CPU keeps, is the depthwise kernels where groups = Cin =
  // Cout and the lowering otherwise; a backend with a convolution library (CUDA with cuDNN)
  // overrides it and the three passes below, which the default backend does not have (they throw).
  virtual ConvMethod conv_method(Device device, DType dt, const ConvGeometry& g, int64_t groups,
                                 int64_t out_channels);
  // x (N, Cin, H, W) and w (Cout, Cin/groups, kh, kw) contiguous, N >= 1; y (N, Cout, OH, OW)
  // overwritten.
  virtual void conv_forward(const Tensor& x, const Tensor& w, const ConvGeometry& g, int64_t groups,
                            Tensor& y);
  // gx (N, Cin, H, W) overwritten: the adjoint of conv_forward in x. gy contiguous.
  virtual void conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g, int64_t groups,
                                   Tensor& gx);
  // gw (Cout, Cin/groups, kh, kw) overwritten: the adjoint in w, summed over the images.
  virtual void conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g, int64_t groups,
                                    Tensor& gw);
  // ---- fused softmax cross-entropy (see XentRowTotals above; s and w contiguous) ----
  // lse[row0 + k] = log sum_j exp(s_kj) (f64, M); with w, r[row0 + k] = sum_j w_kj (f64, M).
  virtual XentRowTotals xent_row_pass(const Tensor& s, const Tensor& w, int64_t row0, bool weighted_rows,
                                      Tensor& lse, Tensor& r) = 0;
  // Folds the block into the column state: max/argmax always, sum when need_sum, wdot/wsum when
  // weighted_cols.
  virtual void xent_column_pass(const Tensor& s, const Tensor& w, int64_t row0, bool need_sum,
                                bool weighted_cols, XentColumnState& st) = 0;
  // Overwrites s with the gradient block. lse and r f64 (M); clse and cinv (N) in s's dtype,
  // undefined when beta = 0 / without weighted columns.
  virtual XentGradTotals xent_gradient(Tensor& s, const Tensor& w, int64_t row0, const XentGradCoeffs& c,
                                       const Tensor& lse, const Tensor& clse, const Tensor& r,
                                       const Tensor& cinv) = 0;

  // ---- CWCL's weights over a block of cosines (formula: kernel_math.h, xent_weight_of) ----
  // c (R, N) contiguous holds rows [row0, row0 + R) of E E^T; overwritten by W's rows. For the
  // TopK mask, offsets (M + 1) and index are the neighbour lists (CSR, each row's sorted, i64
  // on c's device); undefined otherwise.
  virtual void xent_weights(Tensor& c, int64_t row0, const XentWeightSpec& s, const Tensor& offsets,
                            const Tensor& index) = 0;
  // rows (R) f64 = each row's sum of w (R, N) (summed in w's dtype on the CPU); cols (N) f64 +=
  // each column's sum over the block.
  virtual void xent_weight_sums(const Tensor& w, Tensor& rows, Tensor& cols) = 0;
  // idx (R, k) i64: the columns of each row's k largest entries of c (R, N), equal entries by the
  // lower column; in no particular order within a row.
  virtual void row_topk(const Tensor& c, int64_t k, Tensor& idx) = 0;

  // ---- value checks ----
  // The flat index (row-major) of the first NaN or Inf of x (floating, contiguous), or -1.
  virtual int64_t first_nonfinite(const Tensor& x) = 0;

  // ---- row L2 normalization (F.normalize over the last dim; formulas in kernel_math.h) ----
  // x (M, N) contiguous: unit (M, N) = x / max(||x_i||, eps), norm (M, 1) = ||x_i||, each row's
  // sum of squares accumulated in f64.
  virtual void l2_normalize_rows(const Tensor& x, double eps, Tensor& unit, Tensor& norm) = 0;
  // gx (M, N), overwritten, from g = dL/dunit (M, N) and the forward's unit and norm.
  virtual void l2_normalize_rows_backward(const Tensor& g, const Tensor& unit, const Tensor& norm, double eps,
                                          Tensor& gx) = 0;

  // ---- optimizer kernels (all operands contiguous, one dtype, one shape) ----
  // One AdamW update in place on p, m, v from g (kernel_math.h), element math in f64.
  virtual void adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamWStep& s) = 0;
  // sum_i x_i^2 accumulated in f64 (the global gradient norm of clip_grad_norm).
  virtual double sum_of_squares(const Tensor& x) = 0;
};

// The backend that serves a device type; throws DeviceError naming the op if none is
// registered (e.g. a CUDA tensor in a build without the CUDA backend).
Backend& backend_for(Device device, const char* op);
void register_backend(DeviceType type, Backend* backend);

// True when a backend serves the device type (the CPU always; CUDA after cw::cuda::init()).
bool has_backend(DeviceType type);
// How many devices of a type are visible, as the type's backend counts them (registered with
// its backend; the CPU counts 1, a type without a registered counter 0). train/ asks this
// rather than the CUDA runtime, so that it stays above core.
using DeviceCountFn = int (*)();
void register_device_count(DeviceType type, DeviceCountFn fn);
int device_count(DeviceType type);

// Copies between devices belong to the device's backend (it owns the copy engine and streams),
// so a non-CPU backend registers one function for them. src and dst have the same shape and
// dtype and are both contiguous; they are on different devices (host<->device, or two devices of
// the type). Tensor::to(Device) is its one caller.
using CrossDeviceCopyFn = void (*)(const Tensor& src, Tensor& dst);
void register_cross_device_copy(DeviceType type, CrossDeviceCopyFn fn);
// Runs the registered copy of the non-CPU side; throws DeviceError naming op if there is none.
void cross_device_copy(const Tensor& src, Tensor& dst, const char* op);

}  // namespace cw
