// Test helpers shared by every test binary: tolerant tensor comparison that reports the worst
// element and where it is, and a full-Jacobian central-difference gradient check in f64.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace cw::test {

// |actual - expected| <= atol + rtol * |expected| everywhere (shapes must match; NaN matches
// only NaN). On failure the message names the worst element's index and both values.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double atol = 1e-6,
                                     double rtol = 1e-5);

// Expects `fn` to throw E whose message contains every one of `parts` (each missing part is
// reported with the message).
template <class E, class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one naming " << ::testing::PrintToString(parts);
  } catch (const E& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\n  lacks: " << p;
  }
}

// f64 tensors from a list of values, for readable expectations.
Tensor f64(const std::vector<double>& values, const Shape& shape);
Tensor f32(const std::vector<float>& values, const Shape& shape);
Tensor i64(const std::vector<int64_t>& values, const Shape& shape);

// Random f64 inputs in [lo, hi) from a fixed seed (reproducible failures).
Tensor rand64(const Shape& shape, double lo = -1.0, double hi = 1.0, uint64_t seed = 1);

// Gradient check: compares the Jacobian of fn at `inputs` computed by backward (one pass per
// output element, retain_graph) with central differences (step eps, in f64). Every input
// requires grad. fn may return any shape.
using Fn = std::function<Variable(const std::vector<Variable>&)>;
::testing::AssertionResult gradcheck(const Fn& fn, const std::vector<Tensor>& inputs, double eps = 1e-6,
                                     double atol = 1e-7, double rtol = 1e-5);

// The same check with respect to existing leaf Variables (a module's parameters): fn builds
// the output from them; the numeric side perturbs their values in place. All must be f64.
::testing::AssertionResult gradcheck_params(const std::function<Variable()>& fn,
                                            const std::vector<Variable>& params, double eps = 1e-6,
                                            double atol = 1e-7, double rtol = 1e-5);

}  // namespace cw::test
