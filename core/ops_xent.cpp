// The fused softmax cross-entropy passes (ops.h, "fused softmax cross-entropy"): argument checks
// and dispatch. The losses call them once per row block, so the checks are O(1).
#include <limits>

#include "core/ops.h"

namespace cw::ops {
namespace {

constexpr const char* kOp = "xent";

// s: a contiguous floating (R, N) block whose pairs (global row i, column i) exist.
void check_block(const Tensor& s, int64_t row0, const char* name) {
  CW_CHECK(s.defined() && s.dim() == 2, ShapeError, name, ": the logit block must be 2-d, got ",
           s.defined() ? describe(s) : std::string("undefined"));
  check_floating(s, name);
  CW_CHECK(s.is_contiguous(), ValueError, name, ": the logit block must be contiguous, got ", describe(s));
  CW_CHECK(row0 >= 0 && row0 + s.size(0) <= s.size(1), ShapeError, name, ": rows [", row0, ", ",
           row0 + s.size(0), ") have no pair column in a block of ", s.size(1), " columns");
}

void check_weights(const Tensor& s, const Tensor& w, const char* name) {
  if (!w.defined()) return;
  CW_CHECK(w.shape() == s.shape() && w.is_contiguous(), ShapeError, name, ": the weight block ", describe(w),
           " must be contiguous and match the logit block ", describe(s));
  check_same_dtype(s, w, name);
  check_same_device(s, w, name);
}

// A 1-d vector of dtype `dtype` on s's device with at least `size` elements.
void check_vector(const Tensor& v, const Tensor& s, DType dtype, int64_t size, const char* what,
                  const char* name) {
  CW_CHECK(v.defined() && v.dim() == 1 && v.is_contiguous() && v.numel() >= size, ShapeError, name, ": ",
           what, " must be a contiguous vector of at least ", size, " elements, got ",
           v.defined() ? describe(v) : std::string("undefined"));
  CW_CHECK(v.dtype() == dtype, DTypeError, name, ": ", what, " must be ", dtype_name(dtype), ", got ",
           describe(v));
  check_same_device(s, v, name);
}

}  // namespace

XentColumnState xent_column_state(int64_t n, bool weighted, Device device) {
  XentColumnState st;
  st.max = full({n}, -std::numeric_limits<double>::infinity(), DType::F64, device);
  st.argmax = zeros({n}, DType::I64, device);
  st.sum = zeros({n}, DType::F64, device);
  if (weighted) {
    st.wdot = zeros({n}, DType::F64, device);
    st.wsum = zeros({n}, DType::F64, device);
  }
  return st;
}

XentRowTotals xent_row_pass(const Tensor& s, const Tensor& w, int64_t row0, bool weighted_rows, Tensor& lse,
                            Tensor& r) {
  const char* name = "xent_row_pass";
  check_block(s, row0, name);
  check_weights(s, w, name);
  CW_CHECK(!weighted_rows || w.defined(), ValueError, name, ": weighted rows need a weight block");
  const int64_t rows_end = row0 + s.size(0);
  check_vector(lse, s, DType::F64, rows_end, "lse", name);
  if (w.defined()) check_vector(r, s, DType::F64, rows_end, "r", name);
  return backend_for(s.device(), kOp).xent_row_pass(s, w, row0, weighted_rows, lse, r);
}

void xent_column_pass(const Tensor& s, const Tensor& w, int64_t row0, bool need_sum, bool weighted_cols,
                      XentColumnState& st) {
  const char* name = "xent_column_pass";
  check_block(s, row0, name);
  check_weights(s, w, name);
  const int64_t n = s.size(1);
  check_vector(st.max, s, DType::F64, n, "the column max", name);
  check_vector(st.argmax, s, DType::I64, n, "the column argmax", name);
  check_vector(st.sum, s, DType::F64, n, "the column sum", name);
  if (weighted_cols) {
    CW_CHECK(w.defined(), ValueError, name, ": weighted columns need a weight block");
    check_vector(st.wdot, s, DType::F64, n, "the column wdot", name);
    check_vector(st.wsum, s, DType::F64, n, "the column wsum", name);
  }
  backend_for(s.device(), kOp).xent_column_pass(s, w, row0, need_sum, weighted_cols, st);
}

XentGradTotals xent_gradient_(Tensor& s, const Tensor& w, int64_t row0, const XentGradCoeffs& c,
                              const Tensor& lse, const Tensor& clse, const Tensor& r, const Tensor& cinv) {
  const char* name = "xent_gradient";
  check_block(s, row0, name);
  check_weights(s, w, name);
  const int64_t rows_end = row0 + s.size(0), n = s.size(1);
  check_vector(lse, s, DType::F64, rows_end, "lse", name);
  if (c.beta != 0) check_vector(clse, s, s.dtype(), n, "clse", name);
  if (c.weighted_rows || c.weighted_cols)
    CW_CHECK(w.defined(), ValueError, name, ": weighted targets need a weight block");
  if (c.weighted_rows) check_vector(r, s, DType::F64, rows_end, "r", name);
  if (c.weighted_cols) check_vector(cinv, s, s.dtype(), n, "cinv", name);
  return backend_for(s.device(), kOp).xent_gradient(s, w, row0, c, lse, clse, r, cinv);
}

void xent_weights_(Tensor& c, int64_t row0, const XentWeightSpec& s, const Tensor& offsets,
                   const Tensor& index) {
  const char* name = "xent_weights";
  check_block(c, row0, name);
  CW_CHECK(s.kernel != XentWeightKernel::Exp || s.temperature > 0, ValueError, name,
           ": the exp kernel needs a temperature > 0, got ", s.temperature);
  if (s.mask == XentWeightMask::TopK) {
    const int64_t rows_end = row0 + c.size(0);
    check_vector(offsets, c, DType::I64, rows_end + 1, "offsets", name);
    CW_CHECK(index.defined() && index.dim() == 1 && index.is_contiguous() && index.dtype() == DType::I64,
             ShapeError, name, ": index must be a contiguous i64 vector, got ",
             index.defined() ? describe(index) : std::string("undefined"));
    check_same_device(c, index, name);
  }
  backend_for(c.device(), kOp).xent_weights(c, row0, s, offsets, index);
}

void xent_weight_sums(const Tensor& w, Tensor& rows, Tensor& cols) {
  const char* name = "xent_weight_sums";
  CW_CHECK(w.defined() && w.dim() == 2 && w.is_contiguous(), ShapeError, name,
           ": w must be a contiguous 2-d block, got ", w.defined() ? describe(w) : std::string("undefined"));
  check_floating(w, name);
  check_vector(rows, w, DType::F64, w.size(0), "rows", name);
  check_vector(cols, w, DType::F64, w.size(1), "cols", name);
  backend_for(w.device(), kOp).xent_weight_sums(w, rows, cols);
}

Tensor row_topk(const Tensor& c, int64_t k) {
  const char* name = "row_topk";
  CW_CHECK(c.defined() && c.dim() == 2, ShapeError, name, ": c must be 2-d, got ",
           c.defined() ? describe(c) : std::string("undefined"));
  check_floating(c, name);
  CW_CHECK(k >= 1 && k <= c.size(1), ValueError, name, ": k must be in [1, ", c.size(1), "], got ", k);
  const Tensor x = c.contiguous();
  Tensor idx = Tensor::empty({x.size(0), k}, DType::I64, x.device());
  backend_for(x.device(), kOp).row_topk(x, k, idx);
  return idx;
}

}  // namespace cw::ops
