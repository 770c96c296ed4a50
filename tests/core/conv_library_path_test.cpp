// The library path of ops::conv2d / conv1d (Backend::conv_method = Library, the way cuDNN runs
// on CUDA) on any machine: a test backend, the CPU backend with a "convolution library" that is
// a plain direct loop, serves the CPU while a test runs. Checked: ops hands the library the
// arguments its contract states (contiguous x and w, the geometry, groups, outputs of the right
// shape), the results match the CPU's own paths (im2col + GEMM, depthwise kernel), an empty batch
// never reaches the library, the FLOP count is the same, and a backend without a library says so.
// What cuDNN itself computes is the GPU parity suite's job (tests/cuda/parity_linalg_test.cpp).
#include <gtest/gtest.h>

#include "core/backend.h"
#include "core/cpu/cpu_backend.h"
#include "core/flop_counter.h"
#include "core/ops.h"
#include "support/check.h"

namespace cw {
namespace {

using test::rand64;

// Element (a, b, c, d) of a contiguous 4-d tensor of doubles.
struct View4 {
  double* p;
  int64_t s0, s1, s2;
  explicit View4(const Tensor& t)
      : p(t.data<double>()),
        s0(t.size(1) * t.size(2) * t.size(3)),
        s1(t.size(2) * t.size(3)),
        s2(t.size(3)) {}
  double& operator()(int64_t a, int64_t b, int64_t c, int64_t d) const {
    return p[a * s0 + b * s1 + c * s2 + d];
  }
};

// The CPU backend plus a library convolution: the textbook loop, one pass per entry point, each
// visiting every (image, output channel, output pixel, input channel of the group, tap).
class LoopLibraryBackend : public cpu::CpuBackend {
 public:
  const char* name() const override { return "cpu+loop-library"; }
  ConvMethod conv_method(Device, DType, const ConvGeometry&, int64_t, int64_t) override {
    return ConvMethod::Library;
  }

  void conv_forward(const Tensor& x, const Tensor& w, const ConvGeometry& g, int64_t groups,
                    Tensor& y) override {
    check_args(x, w, y, g, groups);
    ++forward_calls;
    y.zero_();
    const View4 Y(y), W(w), X(x);
    visit(g, groups, x.size(0), w.size(0),
          [&](int64_t n, int64_t co, int64_t oh, int64_t ow, int64_t ci, int64_t k, int64_t i, int64_t j,
              int64_t h, int64_t wd) { Y(n, co, oh, ow) += W(co, k, i, j) * X(n, ci, h, wd); });
  }
  void conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g, int64_t groups,
                           Tensor& gx) override {
    check_args(gx, w, gy, g, groups);
    ++input_calls;
    gx.zero_();
    const View4 GX(gx), W(w), GY(gy);
    visit(g, groups, gx.size(0), w.size(0),
          [&](int64_t n, int64_t co, int64_t oh, int64_t ow, int64_t ci, int64_t k, int64_t i, int64_t j,
              int64_t h, int64_t wd) { GX(n, ci, h, wd) += W(co, k, i, j) * GY(n, co, oh, ow); });
  }
  void conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g, int64_t groups,
                            Tensor& gw) override {
    check_args(x, gw, gy, g, groups);
    ++weight_calls;
    gw.zero_();
    const View4 GW(gw), X(x), GY(gy);
    visit(g, groups, x.size(0), gw.size(0),
          [&](int64_t n, int64_t co, int64_t oh, int64_t ow, int64_t ci, int64_t k, int64_t i, int64_t j,
              int64_t h, int64_t wd) { GW(co, k, i, j) += X(n, ci, h, wd) * GY(n, co, oh, ow); });
  }

  int forward_calls = 0, input_calls = 0, weight_calls = 0;

 private:
  // The contract of Backend::conv_*: contiguous 4-d operands of matching shapes, N >= 1.
  static void check_args(const Tensor& x, const Tensor& w, const Tensor& y, const ConvGeometry& g,
                         int64_t groups) {
    ASSERT_TRUE(x.is_contiguous() && w.is_contiguous() && y.is_contiguous());
    ASSERT_EQ(x.dtype(), DType::F64);
    ASSERT_GE(x.size(0), 1);
    ASSERT_EQ(x.shape(), (Shape{x.size(0), g.channels, g.height, g.width}));
    ASSERT_EQ(w.shape(), (Shape{w.size(0), g.channels / groups, g.kh, g.kw}));
    ASSERT_EQ(y.shape(), (Shape{x.size(0), w.size(0), g.out_h(), g.out_w()}));
  }
  template <class F>
  static void visit(const ConvGeometry& g, int64_t groups, int64_t n_images, int64_t cout, const F& f) {
    const int64_t cin_g = g.channels / groups, cout_g = cout / groups;
    for (int64_t n = 0; n < n_images; ++n)
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t oh = 0; oh < g.out_h(); ++oh)
          for (int64_t ow = 0; ow < g.out_w(); ++ow)
            for (int64_t k = 0; k < cin_g; ++k)
              for (int64_t i = 0; i < g.kh; ++i)
                for (int64_t j = 0; j < g.kw; ++j) {
                  const int64_t h = oh * g.stride_h - g.pad_h + i * g.dil_h;
                  const int64_t wd = ow * g.stride_w - g.pad_w + j * g.dil_w;
                  if (h < 0 || h >= g.height || wd < 0 || wd >= g.width) continue;
                  f(n, co, oh, ow, (co / cout_g) * cin_g + k, k, i, j, h, wd);
                }
  }
};

// Serves the CPU with `b` for the scope.
class ServeCpuWith {
 public:
  explicit ServeCpuWith(Backend& b) { register_backend(DeviceType::CPU, &b); }
  ~ServeCpuWith() { register_backend(DeviceType::CPU, &cpu::cpu_backend()); }
};

struct Case {
  const char* what;
  Shape x, w;
  ops::Conv2dOptions o;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  ops::Conv2dOptions dense;
  dense.stride = {2, 1};
  dense.padding = {1, 2};
  dense.dilation = {1, 2};
  dense.groups = 2;
  c.push_back({"grouped, strided, padded, dilated conv2d", {2, 4, 9, 11}, {6, 2, 3, 3}, dense});
  ops::Conv2dOptions sub;  // the Conformer's subsampling conv: 3x3, stride 2
  sub.stride = {2, 2};
  c.push_back({"3x3 stride-2 conv2d", {3, 1, 12, 10}, {5, 1, 3, 3}, sub});
  c.push_back({"pointwise conv (1x1)", {3, 8, 1, 20}, {16, 8, 1, 1}, {}});
  ops::Conv2dOptions dw;  // depthwise conv1d, as the Conformer's convolution module
  dw.groups = 6;
  dw.padding = {0, 4};
  c.push_back({"depthwise conv1d", {2, 6, 1, 17}, {6, 1, 1, 9}, dw});
  return c;
}

TEST(ConvLibraryPath, LibraryPassesMatchTheCpuPathsAndGetTheirContract) {
  LoopLibraryBackend lib;
  for (const Case& c : cases()) {
    const Tensor x = rand64(c.x, -1, 1, 1), w = rand64(c.w, -1, 1, 2), b = rand64({c.w[0]}, -1, 1, 3);
    // A non-contiguous x: the library must still get a contiguous one.
    const Tensor x_strided = x.transpose(2, 3).contiguous().transpose(2, 3);
    const Tensor y_want = ops::conv2d(x, w, b, c.o);
    const Tensor gy = rand64(y_want.shape(), -1, 1, 4);
    const ops::ConvGrads g_want = ops::conv2d_backward(gy, x, w, c.o, true, true, true);
    Tensor y_got;
    ops::ConvGrads g_got;
    const int before = lib.forward_calls;
    {
      ServeCpuWith serve(lib);
      y_got = ops::conv2d(x_strided, w, b, c.o);
      g_got = ops::conv2d_backward(gy, x_strided, w, c.o, true, true, true);
    }
    EXPECT_EQ(lib.forward_calls, before + 1) << c.what;
    EXPECT_TRUE(test::all_close(y_got, y_want, 1e-12, 1e-12)) << c.what;
    EXPECT_TRUE(test::all_close(g_got.x, g_want.x, 1e-12, 1e-12)) << c.what;
    EXPECT_TRUE(test::all_close(g_got.weight, g_want.weight, 1e-12, 1e-12)) << c.what;
    EXPECT_TRUE(test::all_close(g_got.bias, g_want.bias, 1e-12, 1e-12)) << c.what;
  }
  EXPECT_EQ(lib.input_calls, static_cast<int>(cases().size()));
  EXPECT_EQ(lib.weight_calls, static_cast<int>(cases().size()));
}

TEST(ConvLibraryPath, Conv1dAndSingleGradientsReachTheLibrary) {
  LoopLibraryBackend lib;
  ops::Conv1dOptions o;
  o.stride = 2;
  o.padding = 1;
  const Tensor x = rand64({2, 3, 15}), w = rand64({4, 3, 3}, -1, 1, 2);
  const Tensor y_want = ops::conv1d(x, w, Tensor(), o);
  const Tensor gy = rand64(y_want.shape(), -1, 1, 4);
  const ops::ConvGrads want = ops::conv1d_backward(gy, x, w, o, true, true, false);
  ServeCpuWith serve(lib);
  EXPECT_TRUE(test::all_close(ops::conv1d(x, w, Tensor(), o), y_want, 1e-12, 1e-12));
  const ops::ConvGrads only_x = ops::conv1d_backward(gy, x, w, o, true, false, false);
  EXPECT_FALSE(only_x.weight.defined());
  EXPECT_TRUE(test::all_close(only_x.x, want.x, 1e-12, 1e-12));
  const ops::ConvGrads only_w = ops::conv1d_backward(gy, x, w, o, false, true, false);
  EXPECT_FALSE(only_w.x.defined());
  EXPECT_TRUE(test::all_close(only_w.weight, want.weight, 1e-12, 1e-12));
  EXPECT_EQ(lib.forward_calls, 1);
  EXPECT_EQ(lib.input_calls, 1);
  EXPECT_EQ(lib.weight_calls, 1);
}

// Libraries reject zero-sized tensors; the lowering handles an empty batch with no kernel.
TEST(ConvLibraryPath, AnEmptyBatchNeverReachesTheLibrary) {
  LoopLibraryBackend lib;
  ServeCpuWith serve(lib);
  const Tensor x = ops::zeros({0, 3, 5, 5}, DType::F64), w = rand64({4, 3, 3, 3});
  const Tensor y = ops::conv2d(x, w, Tensor(), {});
  EXPECT_EQ(y.shape(), (Shape{0, 4, 3, 3}));
  const ops::ConvGrads g =
      ops::conv2d_backward(ops::zeros({0, 4, 3, 3}, DType::F64), x, w, {}, true, true, false);
  EXPECT_EQ(g.x.shape(), x.shape());
  EXPECT_TRUE(test::all_close(g.weight, ops::zeros_like(w), 0, 0));
  EXPECT_EQ(lib.forward_calls + lib.input_calls + lib.weight_calls, 0);
}

// A library pass counts what the lowered pass counts: 2 * output elements * (Cin / groups) * taps.
TEST(ConvLibraryPath, FlopsCountAsOnTheOtherPaths) {
  LoopLibraryBackend lib;
  for (const Case& c : cases()) {
    const Tensor x = rand64(c.x), w = rand64(c.w, -1, 1, 2);
    int64_t want = 0, got = 0;
    {
      FlopCounter fc;
      const Tensor y = ops::conv2d(x, w, Tensor(), c.o);
      ops::conv2d_backward(ops::ones_like(y), x, w, c.o, true, true, false);
      want = fc.total();
    }
    {
      ServeCpuWith serve(lib);
      FlopCounter fc;
      const Tensor y = ops::conv2d(x, w, Tensor(), c.o);
      ops::conv2d_backward(ops::ones_like(y), x, w, c.o, true, true, false);
      got = fc.total();
      EXPECT_EQ(fc.by_op().count("conv"), 1u) << c.what;
    }
    EXPECT_EQ(got, want) << c.what;
  }
}

TEST(ConvLibraryPath, ABackendWithoutALibraryNamesItself) {
  Backend& cpu = cpu::cpu_backend();
  ConvGeometry g{3, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1};
  EXPECT_EQ(cpu.conv_method(Device::cpu(), DType::F32, g, 1, 4), ConvMethod::Lowered);
  EXPECT_EQ(cpu.conv_method(Device::cpu(), DType::F32, g, 3, 3), ConvMethod::Depthwise);
  Tensor y = Tensor::empty({1, 4, 3, 3});
  try {
    cpu.conv_forward(Tensor::empty({1, 3, 5, 5}), Tensor::empty({4, 3, 3, 3}), g, 1, y);
    ADD_FAILURE() << "no error";
  } catch (const NotImplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("conv_forward: backend cpu has no convolution library"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cw
