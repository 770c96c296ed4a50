// CUDA vs CPU parity for matmul (cuBLAS: transposed operands, strided and looped batches,
// broadcasting, 1-d operands), softmax / log-softmax, layer norm, indexing (embedding, gather,
// their atomic backward passes) and convolutions under each engine setting (cuDNN; im2col /
// col2im and the depthwise kernel), forward and backward through autograd. f32 GEMMs sum in a
// different order than OpenBLAS: 1e-4 relative.
#include "cuda_test_util.h"

namespace cw::test {
namespace {

class CudaLinalgParity : public CudaTest {};

TEST_F(CudaLinalgParity, LinearWithFusedBias) {
  // ops::linear accumulates the GEMM onto the bias (beta = 1 in cuBLAS and BLAS).
  for (DType dt : {DType::F32, DType::F64}) {
    const double at = dt == DType::F32 ? 1e-4 : 1e-12, rt = dt == DType::F32 ? 1e-4 : 1e-11;
    auto lin = [](auto& v) { return ag::linear(v[0], v[1], v[2]); };
    EXPECT_TRUE(
        grad_parity(lin, {rnd({3, 5, 8}, dt), rnd({6, 8}, dt, -1, 1, 3), rnd({6}, dt, -1, 1, 4)}, at, rt))
        << "(B, T, K)";
    EXPECT_TRUE(
        grad_parity(lin, {rnd({1, 8}, dt), rnd({6, 8}, dt, -1, 1, 3), rnd({6}, dt, -1, 1, 4)}, at, rt))
        << "one row";
  }
}

TEST_F(CudaLinalgParity, MatmulLayoutsAndBatches) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double at = dt == DType::F32 ? 1e-4 : 1e-12, rt = dt == DType::F32 ? 1e-4 : 1e-11;
    auto mm = [](auto& v) { return ag::matmul(v[0], v[1]); };
    EXPECT_TRUE(grad_parity(mm, {rnd({17, 33}, dt), rnd({33, 9}, dt, -1, 1, 3)}, at, rt)) << "2-d";
    // Transposed operands are read in place (cuBLAS transpose flags).
    EXPECT_TRUE(grad_parity([](auto& v) { return ag::matmul(ag::transpose(v[0], 0, 1), v[1]); },
                            {rnd({33, 17}, dt), rnd({33, 9}, dt, -1, 1, 3)}, at, rt))
        << "a^T";
    EXPECT_TRUE(grad_parity([](auto& v) { return ag::matmul(v[0], ag::transpose(v[1], 0, 1)); },
                            {rnd({17, 33}, dt), rnd({9, 33}, dt, -1, 1, 3)}, at, rt))
        << "b^T";
    // Batched: strided batch, folded (B, M, K) @ (K, N), broadcast left operand (stride 0).
    EXPECT_TRUE(grad_parity(mm, {rnd({5, 7, 8}, dt), rnd({5, 8, 6}, dt, -1, 1, 3)}, at, rt)) << "batched";
    EXPECT_TRUE(grad_parity(mm, {rnd({5, 7, 8}, dt), rnd({8, 6}, dt, -1, 1, 3)}, at, rt)) << "folded";
    EXPECT_TRUE(grad_parity(mm, {rnd({7, 8}, dt), rnd({5, 8, 6}, dt, -1, 1, 3)}, at, rt)) << "broadcast a";
    // Batch offsets that are not equally spaced: the per-matrix loop.
    EXPECT_TRUE(grad_parity(mm, {rnd({2, 1, 7, 8}, dt), rnd({1, 3, 8, 6}, dt, -1, 1, 3)}, at, rt))
        << "4-d bcast";
    // Attention-style: (B, H, T, d) @ (B, H, d, T) from a permuted projection.
    EXPECT_TRUE(grad_parity(
        [](auto& v) {
          const Variable q = ag::permute(ag::reshape(v[0], {2, 5, 3, 4}), {0, 2, 1, 3});  // (B, H, T, d)
          return ag::matmul(q, ag::transpose(q, -1, -2));
        },
        {rnd({2, 5, 12}, dt)}, at, rt))
        << "attention";
    // 1-d operands and an empty inner dim.
    EXPECT_TRUE(grad_parity(mm, {rnd({8}, dt), rnd({8, 6}, dt, -1, 1, 3)}, at, rt)) << "vector @ matrix";
    EXPECT_TRUE(grad_parity(mm, {rnd({7, 8}, dt), rnd({8}, dt, -1, 1, 3)}, at, rt)) << "matrix @ vector";
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::matmul(v[0], v[1]); },
                               {rnd({3, 0}, dt), rnd({0, 4}, dt)}, 0, 0))
        << "K = 0";
  }
}

TEST_F(CudaLinalgParity, MatmulTf32SwitchIsOffByDefault) {
  EXPECT_FALSE(cuda::allow_tf32());
  // Inputs in [1, 2) with full 24-bit mantissas: TF32 rounds each to 11 bits (relative error up
  // to 2^-11), which moves the 256-term sums by ~1e-5..6e-5; f32 stays within ~2e-6 of the CPU.
  const Tensor a = rnd({64, 256}, DType::F32, 1, 2), b = rnd({256, 64}, DType::F32, 1, 2, 2);
  EXPECT_TRUE(forward_parity([](auto& v) { return ops::matmul(v[0], v[1]); }, {a, b}, 0, 1e-5));
  cuda::set_allow_tf32(true);
  const Tensor fast = ops::matmul(a.to(gpu()), b.to(gpu())).to(Device::cpu());
  cuda::set_allow_tf32(false);
  EXPECT_TRUE(all_close(fast, ops::matmul(a, b), 0, 1e-2));  // still close, just not f32-exact
}

TEST_F(CudaLinalgParity, SoftmaxAndLogSoftmax) {
  for (DType dt : {DType::F32, DType::F64})
    for (const Shape& shape : {Shape{6, 7}, Shape{3, 3000}, Shape{2, 4, 1100}, Shape{5}}) {
      const Tensor x = rnd(shape, dt, -8, 8);
      for (int64_t dim : {int64_t{-1}, int64_t{0}}) {
        EXPECT_TRUE(
            grad_parity([dim](auto& v) { return ag::softmax(v[0], dim); }, {x}, atol_for(dt), rtol_for(dt)))
            << "softmax " << shape_str(shape) << " dim " << dim;
        EXPECT_TRUE(grad_parity([dim](auto& v) { return ag::log_softmax(v[0], dim); }, {x}, atol_for(dt),
                                rtol_for(dt) * 10))
            << "log_softmax " << shape_str(shape) << " dim " << dim;
      }
    }
}

TEST_F(CudaLinalgParity, LayerNormWithAndWithoutAffine) {
  for (DType dt : {DType::F32, DType::F64})
    for (const Shape& shape : {Shape{300, 384}, Shape{2, 5, 1000}, Shape{7, 3}}) {
      const int64_t n = shape.back();
      const Tensor x = ops::add(rnd(shape, dt, -2, 2), 3.0);  // a mean far from 0
      const Tensor w = rnd({n}, dt, 0.5, 1.5, 2), b = rnd({n}, dt, -1, 1, 3);
      const double at = atol_for(dt) * 10, rt = rtol_for(dt) * 10;  // weight grads sum over rows
      EXPECT_TRUE(
          grad_parity([](auto& v) { return ag::layer_norm(v[0], 1, v[1], v[2], 1e-5); }, {x, w, b}, at, rt))
          << shape_str(shape);
      EXPECT_TRUE(grad_parity([](auto& v) { return ag::layer_norm(v[0], 1, Variable(), Variable(), 1e-5); },
                              {x}, at, rt))
          << shape_str(shape) << " no affine";
    }
}

TEST_F(CudaLinalgParity, IndexingForwardAndBackward) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor table = rnd({50, 16}, dt);
    // Repeated ids: the backward's index_add accumulates several rows into one.
    const Tensor ids = ops::from_vector<int64_t>({3, 7, 3, 0, 49, 7, 7, 12}, {2, 4});
    EXPECT_TRUE(grad_parity([ids](auto& v) { return ag::embedding(v[0], ids.to(v[0].device())); }, {table},
                            atol_for(dt), rtol_for(dt)));
    const Tensor cols = ops::from_vector<int64_t>({3, 7, 3, 0, 15, 7}, {6});  // dim 1 has 16
    EXPECT_TRUE(grad_parity([cols](auto& v) { return ag::index_select(v[0], 1, cols.to(v[0].device())); },
                            {table}, atol_for(dt), rtol_for(dt)));
    // gather along dim 1 (backward: scatter_add with repeats), and along dim 0.
    const Tensor gi = ops::from_vector<int64_t>({0, 15, 15, 3, 2, 2, 9, 1}, {2, 4});
    EXPECT_TRUE(grad_parity([gi](auto& v) { return ag::gather(v[0], 1, gi.to(v[0].device())); }, {table},
                            atol_for(dt), rtol_for(dt)));
    const Tensor gi0 = ops::from_vector<int64_t>({49, 0, 1, 1, 2, 2, 3, 49}, {4, 2});
    EXPECT_TRUE(grad_parity([gi0](auto& v) { return ag::gather(v[0], 0, gi0.to(v[0].device())); }, {table},
                            atol_for(dt), rtol_for(dt)));
    // The raw ops.
    EXPECT_TRUE(forward_parity(
        [](auto& v) { return ops::scatter_add(v[0], 0, v[1], v[2]); },
        {rnd({6, 3}, dt), ops::from_vector<int64_t>({5, 5, 0, 5, 1, 1}, {2, 3}), rnd({2, 3}, dt, -1, 1, 4)},
        atol_for(dt), rtol_for(dt)));
    EXPECT_TRUE(forward_parity(
        [](auto& v) { return ops::index_add(v[0], 1, v[1], v[2]); },
        {rnd({4, 6}, dt), ops::from_vector<int64_t>({5, 0, 5}, {3}), rnd({4, 3}, dt, -1, 1, 5)}, atol_for(dt),
        rtol_for(dt)));
  }
  // Joins copy through the backend too.
  EXPECT_TRUE(grad_parity(
      [](auto& v) {
        return ag::concat({v[0], ag::transpose(v[1], 0, 1)}, 0);
      },
      {rnd({2, 3}), rnd({3, 4}, DType::F32, -1, 1, 2)}, kAtol32, kRtol32));
  EXPECT_TRUE(grad_parity(
      [](auto& v) {
        return ag::stack({v[0], v[1]}, 1);
      },
      {rnd({2, 3}), rnd({2, 3})}, kAtol32, kRtol32));
}

// Sets the convolution engine for a scope, then back to Auto.
class EngineScope {
 public:
  explicit EngineScope(cuda::ConvEngine e) { cuda::set_conv_engine(e); }
  ~EngineScope() { cuda::set_conv_engine(cuda::ConvEngine::Auto); }
};

// Every convolution shape the towers use, forward and backward, against the CPU.
void check_convolutions(const char* engine) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double at = dt == DType::F32 ? 1e-4 : 1e-12, rt = dt == DType::F32 ? 1e-4 : 1e-11;
    // conv2d: stride, padding, dilation, groups.
    ops::Conv2dOptions o;
    o.stride = {2, 1};
    o.padding = {1, 2};
    o.dilation = {1, 2};
    o.groups = 2;
    EXPECT_TRUE(grad_parity([o](auto& v) { return ag::conv2d(v[0], v[1], v[2], o); },
                            {rnd({2, 4, 9, 11}, dt), rnd({6, 2, 3, 3}, dt, -1, 1, 2), rnd({6}, dt, -1, 1, 3)},
                            at, rt))
        << "conv2d " << dtype_name(dt) << ", engine " << engine;
    // The Conformer's subsampling: 3x3 stride 2, 1 then 16 channels in, on a (frames, mels) map.
    ops::Conv2dOptions sub;
    sub.stride = {2, 2};
    for (int64_t cin : {1, 16})
      EXPECT_TRUE(grad_parity(
          [sub](auto& v) { return ag::conv2d(v[0], v[1], v[2], sub); },
          {rnd({3, cin, 41, 20}, dt), rnd({16, cin, 3, 3}, dt, -1, 1, 2), rnd({16}, dt, -1, 1, 3)}, at, rt))
          << "subsampling conv2d, " << cin << " channels in, " << dtype_name(dt) << ", engine " << engine;
    // conv1d, pointwise and depthwise (groups = C), as in the Conformer's convolution module.
    ops::Conv1dOptions pw;
    EXPECT_TRUE(grad_parity([pw](auto& v) { return ag::conv1d(v[0], v[1], v[2], pw); },
                            {rnd({3, 8, 40}, dt), rnd({16, 8, 1}, dt, -1, 1, 2), rnd({16}, dt, -1, 1, 3)}, at,
                            rt))
        << "pointwise " << dtype_name(dt) << ", engine " << engine;
    for (int64_t stride : {1, 2}) {
      ops::Conv1dOptions dw;
      dw.groups = 8;
      dw.padding = 15;
      dw.stride = stride;
      EXPECT_TRUE(grad_parity([dw](auto& v) { return ag::conv1d(v[0], v[1], v[2], dw); },
                              {rnd({3, 8, 40}, dt), rnd({8, 1, 31}, dt, -1, 1, 2), rnd({8}, dt, -1, 1, 3)},
                              at, rt))
          << "depthwise stride " << stride << " " << dtype_name(dt) << ", engine " << engine;
    }
  }
}

// The default (Auto): cuDNN for f32 dense convolutions where built with it, our kernels otherwise.
TEST_F(CudaLinalgParity, Convolutions) { check_convolutions("auto"); }

// Our kernels only: im2col + cuBLAS and the direct depthwise kernel.
TEST_F(CudaLinalgParity, ConvolutionsOnOurKernels) {
  EngineScope engine(cuda::ConvEngine::Native);
  check_convolutions("native");
}

// cuDNN for every convolution, depthwise and f64 included; the backward passes repeat bit for bit
// (deterministic algorithms are preferred).
TEST_F(CudaLinalgParity, ConvolutionsOnCudnn) {
  if (!cuda::built_with_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  EngineScope engine(cuda::ConvEngine::Cudnn);
  if (!dry_run_on_cpu()) {  // the emulated device runs the CPU backend, which has no library
    const ConvGeometry g{4, 9, 11, 3, 3, 1, 1, 0, 0, 1, 1};
    EXPECT_EQ(backend_for(gpu(), "test").conv_method(gpu(), DType::F32, g, 4, 4), ConvMethod::Library);
  }
  check_convolutions("cudnn");
  ops::Conv2dOptions sub;
  sub.stride = {2, 2};
  const Tensor x = rnd({4, 8, 61, 40}).to(gpu()), w = rnd({16, 8, 3, 3}, DType::F32, -1, 1, 2).to(gpu());
  const Tensor gy = rnd({4, 16, 30, 19}, DType::F32, -1, 1, 3).to(gpu());
  const ops::ConvGrads a = ops::conv2d_backward(gy, x, w, sub, true, true, false);
  const ops::ConvGrads b = ops::conv2d_backward(gy, x, w, sub, true, true, false);
  EXPECT_TRUE(all_close(a.x.to(Device::cpu()), b.x.to(Device::cpu()), 0, 0))
      << "input gradient not repeatable";
  EXPECT_TRUE(all_close(a.weight.to(Device::cpu()), b.weight.to(Device::cpu()), 0, 0))
      << "weight gradient not repeatable";
}

}  // namespace
}  // namespace cw::test
