// Element counts and strides of huge shapes: core refuses, with a ShapeError naming the shape, a
// shape whose element (or byte) count would wrap around in 64 bits. Reproducer (issue 24):
// `train --model.ffn_dim 4611686018427387904` wrapped the count of a weight, allocated a small
// buffer and wrote past it.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace cw {
namespace {

// The message of the ShapeError that f throws ("" and a test failure if none).
template <class F>
std::string shape_error(F f) {
  try {
    f();
  } catch (const ShapeError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ShapeError";
  return "";
}

TEST(ShapeOverflow, ElementCountThatWouldWrapIsRefusedNamingTheShape) {
  const Shape huge = {4611686018427387904, 256};  // 2^62 x 256 = 2^70 elements
  const std::string msg = shape_error([&] { numel_of(huge); });
  EXPECT_NE(msg.find("(4611686018427387904, 256)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2^60"), std::string::npos) << msg;
  // Three factors that each fit but whose product passes 2^63.
  shape_error([] { numel_of({int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31}); });
  shape_error([] { contiguous_strides({int64_t{1} << 40, int64_t{1} << 40, 2}); });
}

TEST(ShapeOverflow, TensorOfTheReproducerShapeIsAShapeErrorNotACrash) {
  const std::string msg = shape_error([] { Tensor::empty({4611686018427387904, 256}, DType::F32); });
  EXPECT_NE(msg.find("4611686018427387904"), std::string::npos) << msg;
}

// view/reshape with a -1 dim multiply the known dims first: that product is checked too.
TEST(ShapeOverflow, ReshapeOfAHugeRequestIsAShapeError) {
  const Tensor t = Tensor::empty({4, 6}, DType::F32);
  EXPECT_NE(shape_error([&] {
              (void)t.reshape({int64_t{1} << 40, int64_t{1} << 40, -1});
            }).find("2^60"),
            std::string::npos);
  EXPECT_NE(shape_error([&] { (void)t.view({int64_t{1} << 62, 4, -1}); }).find("2^60"), std::string::npos);
  EXPECT_EQ(t.reshape({2, -1, 3}).size(1), 4);
}

TEST(ShapeOverflow, NegativeSizesAreRefused) {
  const std::string msg = shape_error([] { numel_of({2, -3}); });
  EXPECT_NE(msg.find("(2, -3)"), std::string::npos) << msg;
}

TEST(ShapeOverflow, CountsUpToTheLimitAndEmptyShapesAreFine) {
  EXPECT_EQ(numel_of({int64_t{1} << 30, int64_t{1} << 30}), kMaxNumel);  // the limit itself
  EXPECT_EQ(numel_of({}), 1);
  EXPECT_EQ(numel_of({0, int64_t{1} << 62}), 0);
  EXPECT_EQ(contiguous_strides({int64_t{1} << 30, int64_t{1} << 30}), (Strides{int64_t{1} << 30, 1}));
  // The byte count of the largest tensor of the widest dtype fits in 64 bits.
  EXPECT_LE(static_cast<uint64_t>(kMaxNumel) * 8, uint64_t{1} << 63);
}

}  // namespace
}  // namespace cw
