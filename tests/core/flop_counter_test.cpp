// FlopCounter (core/flop_counter.h): the GEMM-class ops count 2 FLOPs per multiply-add, with
// PyTorch's conventions for matmul (broadcast batch dims included) and convolutions (dense,
// grouped, depthwise; each backward pass counted as the forward's); counters nest, stop at the
// end of their scope and see only their own thread. The whole-model counts against PyTorch's are
// in tests/models (conformer_test.cpp, text_transformer_test.cpp).
#include "core/flop_counter.h"

#include <thread>

#include "support/check.h"

namespace cw {
namespace {

using test::rand64;

TEST(FlopCounter, MatmulCountsTwiceTheMultiplyAddsOfTheBroadcastProduct) {
  const Tensor b = rand64({5, 6});
  {
    FlopCounter fc;
    ops::matmul(rand64({2, 3, 4, 5}), b);  // folded into one (24, 5) @ (5, 6) GEMM
    EXPECT_EQ(fc.total(), 2 * 24 * 6 * 5);
  }
  {
    FlopCounter fc;
    ops::matmul(rand64({3, 1, 4, 5}), rand64({2, 5, 6}));  // batch (3, 2), each (4, 5) @ (5, 6)
    EXPECT_EQ(fc.total(), 2 * 6 * 4 * 6 * 5);
  }
  {
    FlopCounter fc;
    ops::matmul(rand64({5}), b);  // a vector on the left is one row
    ops::matmul(b.t(), rand64({5}));
    EXPECT_EQ(fc.total(), 2 * 6 * 5 + 2 * 6 * 5);
    EXPECT_EQ(fc.by_op().at("matmul"), fc.total());
  }
}

// PyTorch's convolution count: 2 * output elements * (Cin / groups) * kernel taps, and as much
// again for each of the input and weight gradients that is computed.
TEST(FlopCounter, ConvolutionsCountAsPyTorchCountsThem) {
  {  // dense, strided and padded: an im2col GEMM, counted by matmul
    ops::Conv2dOptions o;
    o.stride = {2, 1};
    o.padding = {1, 0};
    const Tensor x = rand64({2, 3, 9, 7}), w = rand64({4, 3, 3, 2});
    FlopCounter fwd;
    const Tensor y = ops::conv2d(x, w, Tensor(), o);
    const int64_t one = 2 * y.numel() * 3 * 3 * 2;
    EXPECT_EQ(fwd.total(), one);
    FlopCounter bwd;
    ops::conv2d_backward(ops::ones_like(y), x, w, o, true, true, true);
    EXPECT_EQ(bwd.total(), 2 * one);
    FlopCounter weight_only;
    ops::conv2d_backward(ops::ones_like(y), x, w, o, false, true, false);
    EXPECT_EQ(weight_only.total(), one);
  }
  {  // grouped, 1-d
    ops::Conv1dOptions o;
    o.groups = 3;
    const Tensor x = rand64({2, 6, 10}), w = rand64({9, 2, 3});
    FlopCounter fc;
    const Tensor y = ops::conv1d(x, w, Tensor(), o);
    EXPECT_EQ(fc.total(), 2 * y.numel() * 2 * 3);
  }
  {  // depthwise, 1-d: not a GEMM, counted by itself
    ops::Conv1dOptions o;
    o.groups = 5;
    o.padding = 1;
    const Tensor x = rand64({2, 5, 11}), w = rand64({5, 1, 3});
    FlopCounter fc;
    const Tensor y = ops::conv1d(x, w, Tensor(), o);
    const int64_t one = 2 * 2 * 5 * 11 * 3;
    EXPECT_EQ(fc.total(), one);
    ops::conv1d_backward(ops::ones_like(y), x, w, o, true, true, false);
    EXPECT_EQ(fc.total(), 3 * one);
    EXPECT_EQ(fc.by_op().at("depthwise_conv"), 3 * one);
    EXPECT_EQ(fc.by_op().count("matmul"), 0u);
  }
}

TEST(FlopCounter, CountersNestStopAtTheirScopeAndSeeOnlyTheirThread) {
  const Tensor a = rand64({4, 5}), b = rand64({5, 6});
  const int64_t one = 2 * 4 * 6 * 5;
  ops::matmul(a, b);  // no counter: nothing to add to
  FlopCounter outer;
  ops::matmul(a, b);
  {
    FlopCounter inner;
    ops::matmul(a, b);
    EXPECT_EQ(inner.total(), one);
  }
  ops::matmul(a, b);  // the inner counter is gone; the outer goes on
  std::thread([&] { ops::matmul(a, b); }).join();
  EXPECT_EQ(outer.total(), 3 * one);
  {
    FlopCounter elementwise;
    ops::softmax(ops::add(a, 1.0), -1);
    EXPECT_EQ(elementwise.total(), 0);
  }
}

}  // namespace
}  // namespace cw
