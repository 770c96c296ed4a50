// Least-squares affine fit (see linear_fit.h).
#include "train/linear_fit.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace cw::train {

LinearFit fit_linear(const Tensor& X, const Tensor& Y, double ridge) {
  CW_CHECK(X.dim() == 2 && Y.dim() == 2 && X.size(0) == Y.size(0) && X.size(0) >= 1, ShapeError,
           "fit_linear: X ", describe(X), " and Y ", describe(Y), " should be (N, D) and (N, E)");
  CW_CHECK(ridge >= 0, ValueError, "fit_linear: ridge ", ridge, " must be >= 0");
  const int64_t N = X.size(0), D = X.size(1), E = Y.size(1), M = D + 1;
  const Tensor A = ops::concat({X.to(DType::F64), ops::full({N, 1}, 1.0, DType::F64)}, 1);  // (N, M)
  const Tensor ata = ops::matmul(A.t(), A).contiguous();                                    // (M, M)
  const Tensor aty = ops::matmul(A.t(), Y.to(DType::F64)).contiguous();                     // (M, E)
  std::vector<double> g = ata.to_vector<double>(), r = aty.to_vector<double>();
  double trace = 0;
  for (int64_t i = 0; i < M; ++i) trace += g[i * M + i];
  for (int64_t i = 0; i < M; ++i) g[i * M + i] += ridge * trace / static_cast<double>(M) + 1e-12;
  // Cholesky g = L L^T in place (lower triangle).
  for (int64_t j = 0; j < M; ++j) {
    double d = g[j * M + j];
    for (int64_t k = 0; k < j; ++k) d -= g[j * M + k] * g[j * M + k];
    CW_CHECK(d > 0, ValueError,
             "fit_linear: the normal equations are not positive definite (raise the ridge)");
    g[j * M + j] = std::sqrt(d);
    for (int64_t i = j + 1; i < M; ++i) {
      double v = g[i * M + j];
      for (int64_t k = 0; k < j; ++k) v -= g[i * M + k] * g[j * M + k];
      g[i * M + j] = v / g[j * M + j];
    }
  }
  // Solve L Z = R, then L^T W' = Z, column by column of R.
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t i = 0; i < M; ++i) {
      double v = r[i * E + e];
      for (int64_t k = 0; k < i; ++k) v -= g[i * M + k] * r[k * E + e];
      r[i * E + e] = v / g[i * M + i];
    }
    for (int64_t i = M - 1; i >= 0; --i) {
      double v = r[i * E + e];
      for (int64_t k = i + 1; k < M; ++k) v -= g[k * M + i] * r[k * E + e];
      r[i * E + e] = v / g[i * M + i];
    }
  }
  const Tensor w = ops::from_vector(r, {M, E});  // rows 0..D-1: W^T, row D: b
  return {w.narrow(0, 0, D).t().contiguous().to(DType::F32), w.select(0, D).contiguous().to(DType::F32)};
}

}  // namespace cw::train
