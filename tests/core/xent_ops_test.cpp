// The fused softmax cross-entropy passes' argument checks (ops::xent_*): each bad argument is
// refused with a message that names the pass and the argument. Their numbers are tested through
// the contrastive losses (tests/losses/) and, on CUDA, against the CPU (tests/cuda/).
#include <gtest/gtest.h>

#include <string>

#include "core/ops.h"

namespace cw {
namespace {

// fn throws E with `text` in its message.
template <class E, class Fn>
::testing::AssertionResult throws_with(Fn fn, const std::string& text) {
  try {
    fn();
  } catch (const E& e) {
    if (std::string(e.what()).find(text) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "message \"" << e.what() << "\" lacks \"" << text << "\"";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw another type: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

TEST(XentOps, BadArgumentsNameThePassAndTheArgument) {
  const Tensor s = ops::zeros({3, 5}), w = ops::zeros({3, 5});
  Tensor lse = ops::zeros({5}, DType::F64), r = ops::zeros({5}, DType::F64);
  EXPECT_TRUE(throws_with<ShapeError>([&] { ops::xent_row_pass(s, w, 3, false, lse, r); }, "no pair column"));
  EXPECT_TRUE(throws_with<ValueError>(
      [&] {
        ops::xent_row_pass(ops::zeros({5, 3}).t(), Tensor(), 0, false, lse, r);
      },
      "contiguous"));
  Tensor lse32 = ops::zeros({5});
  EXPECT_TRUE(
      throws_with<DTypeError>([&] { ops::xent_row_pass(s, w, 0, false, lse32, r); }, "lse must be f64"));
  Tensor short_lse = ops::zeros({2}, DType::F64);
  EXPECT_TRUE(throws_with<ShapeError>([&] { ops::xent_row_pass(s, w, 0, false, short_lse, r); }, "lse"));
  EXPECT_TRUE(throws_with<ShapeError>(
      [&] {
        ops::xent_row_pass(s, ops::zeros({3, 4}), 0, false, lse, r);
      },
      "weight block"));
  EXPECT_TRUE(
      throws_with<ValueError>([&] { ops::xent_row_pass(s, Tensor(), 0, true, lse, r); }, "weighted rows"));
  XentColumnState st = ops::xent_column_state(5, false, Device::cpu());
  EXPECT_TRUE(throws_with<ShapeError>([&] { ops::xent_column_pass(s, w, 0, true, true, st); }, "wdot"));
  Tensor g = s.clone();
  XentGradCoeffs c;
  c.beta = 0.5;
  EXPECT_TRUE(throws_with<ShapeError>(
      [&] { ops::xent_gradient_(g, Tensor(), 0, c, lse, Tensor(), r, Tensor()); }, "clse"));
  c.beta = 0;
  c.weighted_rows = true;
  EXPECT_TRUE(throws_with<ValueError>(
      [&] { ops::xent_gradient_(g, Tensor(), 0, c, lse, Tensor(), r, Tensor()); }, "weight block"));
  EXPECT_TRUE(throws_with<DTypeError>(
      [&] {
        ops::xent_row_pass(ops::zeros({2, 2}, DType::I64), Tensor(), 0, false, lse, r);
      },
      "xent_row_pass"));
}

}  // namespace
}  // namespace cw
