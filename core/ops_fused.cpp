// Checks and dispatch of the fused kernels that the losses and the optimizer use (ops.h: value
// checks, row L2 normalization, optimizer kernels) and of the ops that write into preallocated
// outputs. The formulas are in core/kernel_math.h; the kernels in each backend.
#include <string>

#include "core/flop_counter.h"
#include "core/ops.h"

namespace cw::ops {
namespace {

// "i, j, k" of flat row-major index `flat` in shape `shape`.
std::string coordinates(const Shape& shape, int64_t flat) {
  std::string where;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    const int64_t size = shape[static_cast<size_t>(d)];
    where = std::to_string(flat % size) + (where.empty() ? "" : ", ") + where;
    flat /= size;
  }
  return where;
}

void check_rows(const Tensor& t, const char* op, const char* what) {
  CW_CHECK(t.defined() && t.dim() == 2, ShapeError, op, ": ", what, " must be 2-d (N, D), got ",
           t.defined() ? describe(t) : std::string("undefined"));
  check_floating(t, op);
}

void check_like(const Tensor& t, const Tensor& ref, const char* op, const char* what) {
  CW_CHECK(t.defined() && t.shape() == ref.shape(), ShapeError, op, ": ", what, " is ",
           t.defined() ? describe(t) : std::string("undefined"), ", expected the shape of ", describe(ref));
  check_same_dtype(t, ref, op);
  check_same_device(t, ref, op);
}

}  // namespace

int64_t first_nonfinite(const Tensor& t) {
  CW_CHECK(t.defined(), ValueError, "first_nonfinite: undefined tensor");
  if (!is_floating(t.dtype()) || t.numel() == 0) return -1;
  return backend_for(t.device(), "first_nonfinite").first_nonfinite(t.contiguous());
}

void check_finite(const Tensor& t, const char* op, const char* name) {
  const int64_t bad = first_nonfinite(t);
  if (bad < 0) return;
  throw ValueError(detail::cat(op, ": ", name, " contains NaN or Inf (first at [",
                               coordinates(t.shape(), bad), "], ", describe(t), ")"));
}

L2NormalizedRows l2_normalize_rows(const Tensor& z, double eps) {
  check_rows(z, "l2_normalize_rows", "z");
  const Tensor x = z.contiguous();
  L2NormalizedRows out;
  out.unit = Tensor::empty(x.shape(), x.dtype(), x.device());
  out.norm = Tensor::empty({x.size(0), 1}, x.dtype(), x.device());
  backend_for(x.device(), "l2_normalize_rows").l2_normalize_rows(x, eps, out.unit, out.norm);
  return out;
}

Tensor l2_normalize_rows_backward(const Tensor& g, const Tensor& unit, const Tensor& norm, double eps) {
  const char* op = "l2_normalize_rows_backward";
  check_rows(g, op, "g");
  check_like(unit, g, op, "unit");
  CW_CHECK(norm.defined() && norm.shape() == Shape({g.size(0), 1}), ShapeError, op, ": norm must be (",
           g.size(0), ", 1), got ", norm.defined() ? describe(norm) : std::string("undefined"));
  check_same_dtype(norm, g, op);
  check_same_device(norm, g, op);
  Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
  backend_for(g.device(), op)
      .l2_normalize_rows_backward(g.contiguous(), unit.contiguous(), norm.contiguous(), eps, gx);
  return gx;
}

void adamw_step_(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamWStep& s) {
  const char* op = "adamw_step";
  check_floating(p, op);
  check_like(g, p, op, "the gradient");
  check_like(m, p, op, "exp_avg");
  check_like(v, p, op, "exp_avg_sq");
  CW_CHECK(m.is_contiguous() && v.is_contiguous(), ValueError, op, ": the moments must be contiguous");
  Backend& backend = backend_for(p.device(), op);
  if (p.is_contiguous()) {
    backend.adamw_step(p, g.contiguous(), m, v, s);
    return;
  }
  Tensor pc = p.contiguous();  // a strided parameter: update a copy, then write it back
  backend.adamw_step(pc, g.contiguous(), m, v, s);
  p.copy_(pc);
}

double sum_of_squares(const Tensor& x) {
  CW_CHECK(x.defined(), ValueError, "sum_of_squares: undefined tensor");
  check_floating(x, "sum_of_squares");
  if (x.numel() == 0) return 0.0;
  return backend_for(x.device(), "sum_of_squares").sum_of_squares(x.contiguous());
}

void matmul_out(const Tensor& a, const Tensor& b, Tensor& out) {
  const char* op = "matmul_out";
  CW_CHECK(a.defined() && b.defined() && out.defined(), ValueError, op, ": undefined operand");
  CW_CHECK(a.dim() == 2 && b.dim() == 2 && out.dim() == 2, ShapeError, op, ": operands must be 2-d, got ",
           describe(a), " @ ", describe(b), " -> ", describe(out));
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  CW_CHECK(b.size(0) == k && out.size(0) == m && out.size(1) == n, ShapeError, op, ": ", describe(a), " @ ",
           describe(b), " does not fit ", describe(out));
  check_same_device(a, b, op);
  check_same_device(a, out, op);
  check_same_dtype(a, b, op);
  check_same_dtype(a, out, op);
  check_floating(a, op);
  CW_CHECK(out.is_contiguous(), ValueError, op, ": out must be contiguous, got ", describe(out));
  backend_for(out.device(), op).matmul(a, b, out);
  FlopCounter::add("matmul", 2 * m * n * k);  // after the kernel: core/op_profiler.h charges it to this op
}

void add_(Tensor& dst, const Tensor& src) {
  CW_CHECK(dst.defined() && src.defined() && dst.shape() == src.shape(), ShapeError,
           "add_: operands must have one shape, got ",
           dst.defined() ? describe(dst) : std::string("undefined"), " and ",
           src.defined() ? describe(src) : std::string("undefined"));
  check_same_dtype(dst, src, "add_");
  check_same_device(dst, src, "add_");
  // Each output element reads only its own inputs, so the kernel may write over its first operand.
  backend_for(dst.device(), "add_").binary(BinaryOp::Add, dst, src, dst);
}

}  // namespace cw::ops
