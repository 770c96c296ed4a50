// matmul with torch.matmul semantics: 1-d promotion, broadcast batch dims, and folding of
// (..., M, K) @ (K, N) into one large GEMM so that a Linear layer on (B, T, C) is one call.
#include "core/flop_counter.h"
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
  FlopCounter::add("matmul", 2 * numel_of(batch) * M * N * K);
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
    backend_for(a.device(), "matmul").matmul(a.expand(ea), b.expand(eb), out);
  }
  if (a_vec) out = out.squeeze(-2);
  if (b_vec) out = out.squeeze(-1);
  return out;
}

}  // namespace cw::ops
