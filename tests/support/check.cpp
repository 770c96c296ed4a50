// Test helpers (see check.h).
#include "support/check.h"

#include <cmath>
#include <sstream>

namespace cw::test {

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double atol, double rtol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure()
           << "undefined tensor: actual " << describe(actual) << ", expected " << describe(expected);
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(actual.shape()) << " != expected " << shape_str(expected.shape());
  const auto a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double worst = 0;
  int64_t worst_i = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(e[i]) && std::isnan(a[i])) continue;
    const double err = std::abs(a[i] - e[i]);
    const double excess = err - (atol + rtol * std::abs(e[i]));
    if (!(excess <= 0) && (worst_i < 0 || excess > worst || std::isnan(excess))) {
      worst = excess;
      worst_i = static_cast<int64_t>(i);
    }
  }
  if (worst_i < 0) return ::testing::AssertionSuccess();
  // Multi-index of the worst element.
  std::vector<int64_t> idx(actual.dim());
  int64_t rem = worst_i;
  for (int64_t d = actual.dim() - 1; d >= 0; --d) {
    idx[d] = rem % actual.size(d);
    rem /= actual.size(d);
  }
  std::ostringstream where;
  for (size_t d = 0; d < idx.size(); ++d) where << (d ? ", " : "") << idx[d];
  return ::testing::AssertionFailure()
         << "worst element [" << where.str() << "]: actual " << a[worst_i] << ", expected " << e[worst_i]
         << " (|diff| " << std::abs(a[worst_i] - e[worst_i]) << ", atol " << atol << ", rtol " << rtol
         << ", shape " << shape_str(actual.shape()) << ")";
}

Tensor f64(const std::vector<double>& v, const Shape& s) { return ops::from_vector(v, s); }
Tensor f32(const std::vector<float>& v, const Shape& s) { return ops::from_vector(v, s); }
Tensor i64(const std::vector<int64_t>& v, const Shape& s) { return ops::from_vector(v, s); }

Tensor rand64(const Shape& shape, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  return ops::uniform(shape, lo, hi, DType::F64, g);
}

::testing::AssertionResult gradcheck(const Fn& fn, const std::vector<Tensor>& inputs, double eps, double atol,
                                     double rtol) {
  for (const Tensor& t : inputs)
    if (t.dtype() != DType::F64) return ::testing::AssertionFailure() << "gradcheck needs f64 inputs";
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.clone(), true);
  Variable out = fn(vars);
  if (!out.requires_grad()) return ::testing::AssertionFailure() << "output does not require grad";
  const int64_t m = out.numel();

  // Analytic: row j of the Jacobian is the gradient of output element j.
  std::vector<std::vector<double>> analytic(inputs.size());  // [input][j * n_i + k]
  for (size_t i = 0; i < inputs.size(); ++i) analytic[i].assign(m * inputs[i].numel(), 0.0);
  for (int64_t j = 0; j < m; ++j) {
    for (Variable& v : vars) v.zero_grad();
    Tensor seed = ops::zeros(out.shape(), DType::F64);
    seed.view({-1}).narrow(0, j, 1).fill_(1.0);
    out.backward(seed, /*retain_graph=*/true);
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!vars[i].grad().defined()) continue;  // no path from this input: a zero row
      const auto g = vars[i].grad().to_vector<double>();
      for (size_t k = 0; k < g.size(); ++k) analytic[i][j * g.size() + k] = g[k];
    }
  }

  // Numeric: column k of input i by central differences.
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t n = inputs[i].numel();
    for (int64_t k = 0; k < n; ++k) {
      auto eval = [&](double delta) {
        std::vector<Variable> vs;
        for (size_t q = 0; q < inputs.size(); ++q) {
          Tensor t = inputs[q].clone();
          if (q == i) {
            double* p = t.data<double>() + k;
            *p += delta;
          }
          vs.emplace_back(t, false);
        }
        NoGradGuard ng;
        return fn(vs).data().to_vector<double>();
      };
      const auto plus = eval(eps), minus = eval(-eps);
      for (int64_t j = 0; j < m; ++j) {
        const double num = (plus[j] - minus[j]) / (2 * eps);
        const double ana = analytic[i][j * n + k];
        if (!(std::abs(num - ana) <= atol + rtol * std::abs(num)))
          return ::testing::AssertionFailure()
                 << "d out[" << j << "] / d input" << i << "[" << k << "]: analytic " << ana << ", numeric "
                 << num << " (|diff| " << std::abs(num - ana) << ")";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult gradcheck_params(const std::function<Variable()>& fn,
                                            const std::vector<Variable>& params, double eps, double atol,
                                            double rtol) {
  for (const Variable& p : params)
    if (p.dtype() != DType::F64 || !p.requires_grad() || !p.is_leaf() || !p.data().is_contiguous())
      return ::testing::AssertionFailure()
             << "gradcheck_params needs contiguous f64 leaves that require grad";
  Variable out = fn();
  const int64_t m = out.numel();
  std::vector<std::vector<double>> analytic(params.size());
  for (size_t i = 0; i < params.size(); ++i) analytic[i].assign(m * params[i].numel(), 0.0);
  for (int64_t j = 0; j < m; ++j) {
    for (Variable p : params) p.zero_grad();
    Tensor seed = ops::zeros(out.shape(), DType::F64);
    seed.view({-1}).narrow(0, j, 1).fill_(1.0);
    out.backward(seed, /*retain_graph=*/true);
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) continue;
      const auto g = params[i].grad().to_vector<double>();
      for (size_t k = 0; k < g.size(); ++k) analytic[i][j * g.size() + k] = g[k];
    }
  }
  NoGradGuard ng;
  for (size_t i = 0; i < params.size(); ++i) {
    double* data = params[i].data().data<double>();
    const int64_t n = params[i].numel();
    for (int64_t k = 0; k < n; ++k) {
      const double saved = data[k];
      data[k] = saved + eps;
      const auto plus = fn().data().to_vector<double>();
      data[k] = saved - eps;
      const auto minus = fn().data().to_vector<double>();
      data[k] = saved;
      for (int64_t j = 0; j < m; ++j) {
        const double num = (plus[j] - minus[j]) / (2 * eps), ana = analytic[i][j * n + k];
        if (!(std::abs(num - ana) <= atol + rtol * std::abs(num)))
          return ::testing::AssertionFailure() << "d out[" << j << "] / d param" << i << "[" << k
                                               << "]: analytic " << ana << ", numeric " << num;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace cw::test
