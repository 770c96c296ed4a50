// matmul with torch.matmul semantics: 1-d promotion, broadcast batch dims, and folding of
// (..., M, K) @ (K, N) into one large GEMM so that a Linear layer on (B, T, C) is one call; and
// linear, the Linear layer's x @ w^T + bias with the bias added by the GEMM itself.
#include "core/flop_counter.h"
#include "core/op_profiler.h"
#include "core/ops.h"

namespace cw::ops {

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  CW_CHECK(a_in.defined() && b_in.defined(), ValueError, "matmul: undefined operand");
  CW_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, ShapeError, "matmul: operands must be at least 1-d, got ",
           shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
  check_same_device(a_in, b_in, "matmul");
  check_same_dtype(a_in, b_in, "matmul");
  check_floating(a_in, "matmul");
  // 1-d operands: a vector on the left is a row (1, K), on the right a column (K, 1).
  const bool a_vec = a_in.dim() == 1, b_vec = b_in.dim() == 1;
  Tensor a = a_vec ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_vec ? b_in.unsqueeze(1) : b_in;
  const int64_t M = a.size(-2), K = a.size(-1), K2 = b.size(-2), N = b.size(-1);
  CW_CHECK(K == K2, ShapeError, "matmul: inner dims differ: ", shape_str(a_in.shape()), " @ ",
           shape_str(b_in.shape()), " (", K, " vs ", K2, ")");

  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out;

  if (b.dim() == 2 && a.dim() > 2 && a.stride(-1) == 1 && a.stride(-2) == K) {
    // (..., M, K) with row-major rows @ (K, N): one GEMM of (numel/K, K) @ (K, N).
    Tensor a2 = a.reshape({-1, K});
    if (a2.shares_storage(a)) {
      Tensor o = Tensor::empty({a2.size(0), N}, a.dtype(), a.device());
      backend_for(a.device(), "matmul").matmul(a2, b, o);
      out = o.view(out_shape);
    }
  }
  if (!out.defined()) {
    Shape ea = batch, eb = batch;
    ea.insert(ea.end(), {M, K});
    eb.insert(eb.end(), {K, N});
    out = Tensor::empty(out_shape, a.dtype(), a.device());
    // Both operands batched (attention's q k^T and p v) is named apart from the weight products,
    // so that a profile (core/op_profiler.h) can tell the two GEMM families apart.
    const char* name = !a_batch.empty() && !b_batch.empty() ? "bmm" : "matmul";
    backend_for(a.device(), name).matmul(a.expand(ea), b.expand(eb), out);
  }
  // Counted after the kernel, so that core/op_profiler.h charges the FLOPs to this op's interval.
  FlopCounter::add("matmul", 2 * numel_of(batch) * M * N * K);
  if (a_vec) out = out.squeeze(-2);
  if (b_vec) out = out.squeeze(-1);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  CW_CHECK(w.defined() && w.dim() == 2, ShapeError, "linear: weight must be 2-d (out, in)");
  if (!bias.defined()) return matmul(x, w.t());
  CW_CHECK(bias.shape() == Shape{w.size(0)}, ShapeError, "linear: bias ", shape_str(bias.shape()),
           " should be (", w.size(0), ",)");
  check_same_device(x, bias, "linear");
  check_same_dtype(x, bias, "linear");
  // Rows that fold into one (R, K) matrix without a copy take the fused path; others (a 1-d x, a
  // strided batch) the two-op one, which gives the same numbers up to rounding.
  if (x.dim() < 2 || x.size(-1) != w.size(1) || x.stride(-1) != 1) return add(matmul(x, w.t()), bias);
  const int64_t K = w.size(1), N = w.size(0);
  const Tensor x2 = x.reshape({-1, K});
  if (!x2.shares_storage(x)) return add(matmul(x, w.t()), bias);
  check_same_device(x, w, "linear");
  check_same_dtype(x, w, "linear");
  check_floating(x, "linear");
  const OpProfiler::Region region("linear");  // the bias copy and the GEMM are one op's time
  Tensor out = Tensor::empty({x2.size(0), N}, x.dtype(), x.device());
  out.copy_(bias);  // broadcast over the rows; the GEMM accumulates onto it
  backend_for(x.device(), "matmul").matmul(x2, w.t(), out, true);
  FlopCounter::add("matmul", 2 * x2.size(0) * N * K);
  Shape out_shape = x.shape();
  out_shape.back() = N;
  return out.view(out_shape);
}

}  // namespace cw::ops
