// The host-side half of the cuDNN convolutions (cuda/cudnn_conv.h), run without a GPU: the
// engine switch's policy (which convolutions cuDNN takes), and the cuDNN descriptors the plans are
// built from, checked against cuDNN itself: descriptors are host objects, so cuDNN's own output
// shape for each problem can be compared with ConvGeometry's. The passes themselves are in the
// GPU parity suite (parity_linalg_test.cpp, CudaLinalgParity.Convolutions*).
#include "cuda/cudnn_conv.h"

#include <gtest/gtest.h>

#include <string>

#include "core/backend.h"
#include "core/error.h"

namespace cw::cuda {
namespace {

TEST(CudnnConvPolicy, AutoGivesCudnnTheF32NonDepthwiseConvolutions) {
  using M = ConvMethod;
  const DType f32 = DType::F32, f64 = DType::F64;
  // Auto: cuDNN for f32 dense/grouped; our depthwise kernel; f64 and cuDNN-less builds ours.
  EXPECT_EQ(choose_conv_method(ConvEngine::Auto, false, f32, true), M::Library);
  EXPECT_EQ(choose_conv_method(ConvEngine::Auto, true, f32, true), M::Depthwise);
  EXPECT_EQ(choose_conv_method(ConvEngine::Auto, false, f64, true), M::Lowered);
  EXPECT_EQ(choose_conv_method(ConvEngine::Auto, false, f32, false), M::Lowered);
  EXPECT_EQ(choose_conv_method(ConvEngine::Auto, true, f32, false), M::Depthwise);
  // Cudnn: everything, depthwise and f64 included.
  EXPECT_EQ(choose_conv_method(ConvEngine::Cudnn, true, f32, true), M::Library);
  EXPECT_EQ(choose_conv_method(ConvEngine::Cudnn, false, f64, true), M::Library);
  // Native: never cuDNN.
  EXPECT_EQ(choose_conv_method(ConvEngine::Native, false, f32, true), M::Lowered);
  EXPECT_EQ(choose_conv_method(ConvEngine::Native, true, f32, true), M::Depthwise);
}

TEST(CudnnConvPolicy, TheSwitchDefaultsToAutoAndRefusesCudnnWithoutIt) {
  EXPECT_EQ(conv_engine(), ConvEngine::Auto);
  EXPECT_STREQ(conv_engine_name(ConvEngine::Native), "native");
  set_conv_engine(ConvEngine::Native);
  EXPECT_EQ(conv_engine(), ConvEngine::Native);
  if (built_with_cudnn()) {
    set_conv_engine(ConvEngine::Cudnn);
    EXPECT_EQ(conv_engine(), ConvEngine::Cudnn);
  } else {
    EXPECT_THROW(set_conv_engine(ConvEngine::Cudnn), DeviceError);
  }
  set_conv_engine(ConvEngine::Auto);
}

TEST(CudnnConvPolicy, EnginesAreFoundByTheirNames) {
  for (ConvEngine e : {ConvEngine::Auto, ConvEngine::Cudnn, ConvEngine::Native}) {
    ConvEngine got = ConvEngine::Auto;
    EXPECT_TRUE(conv_engine_from_name(conv_engine_name(e), &got));
    EXPECT_EQ(got, e);
  }
  ConvEngine untouched = ConvEngine::Native;
  EXPECT_FALSE(conv_engine_from_name("cuDNN", &untouched));
  EXPECT_EQ(untouched, ConvEngine::Native);
}

// Auto takes cuDNN only where it can run: on a machine without a GPU the probe fails (no device),
// so Auto answers our kernels, with one line on stderr; an explicit cudnn engine still answers
// cuDNN, whose error then names the call.
TEST(CudnnConvPolicy, AutoFallsBackToOurKernelsWhereCudnnCannotRun) {
  if (!built_with_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  if (is_available()) GTEST_SKIP() << "a GPU is present: the fallback is for machines where cuDNN cannot run";
  init();
  Backend& be = backend_for(Device::cuda(0), "test");
  const ConvGeometry g{4, 9, 11, 3, 3, 1, 1, 0, 0, 1, 1};
  EXPECT_EQ(be.conv_method(Device::cuda(0), DType::F32, g, 1, 8), ConvMethod::Lowered);
  EXPECT_EQ(be.conv_method(Device::cuda(0), DType::F32, g, 4, 4), ConvMethod::Depthwise);
  set_conv_engine(ConvEngine::Cudnn);
  EXPECT_EQ(be.conv_method(Device::cuda(0), DType::F32, g, 1, 8), ConvMethod::Library);
  set_conv_engine(ConvEngine::Auto);
}

// ConvGeometry{channels, height, width, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w}
TEST(CudnnConvDescriptors, CudnnsOutputShapeIsConvGeometrys) {
  if (!built_with_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  struct Problem {
    int64_t n, cout, groups;
    ConvGeometry g;
  };
  const Problem problems[] = {
      {4, 32, 1, {1, 400, 80, 3, 3, 2, 2, 0, 0, 1, 1}},        // Conformer subsampling, first conv
      {4, 32, 1, {32, 199, 39, 3, 3, 2, 2, 0, 0, 1, 1}},       // and second
      {2, 6, 2, {4, 9, 11, 3, 3, 2, 1, 1, 2, 1, 2}},           // grouped, strided, padded, dilated
      {3, 288, 1, {144, 1, 100, 1, 1, 1, 1, 0, 0, 1, 1}},      // pointwise conv1d
      {3, 144, 144, {144, 1, 100, 1, 31, 1, 1, 0, 15, 1, 1}},  // depthwise conv1d, "same"
      {1, 8, 1, {3, 7, 7, 7, 7, 1, 1, 0, 0, 1, 1}},            // kernel = input: one pixel out
      {2, 16, 1, {3, 224, 224, 16, 16, 16, 16, 0, 0, 1, 1}},   // ViT patch embedding
  };
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Problem& p : problems) {
      const auto got = detail::cudnn_output_shape(p.n, p.cout, p.g, p.groups, dt);
      EXPECT_EQ(got[0], p.n);
      EXPECT_EQ(got[1], p.cout);
      EXPECT_EQ(got[2], p.g.out_h()) << "kernel " << p.g.kh << "x" << p.g.kw;
      EXPECT_EQ(got[3], p.g.out_w()) << "kernel " << p.g.kh << "x" << p.g.kw;
    }
  }
}

TEST(CudnnConvDescriptors, SizesBeyondCudnnsNameTheLimit) {
  if (!built_with_cudnn()) GTEST_SKIP() << "this build has no cuDNN";
  const ConvGeometry big{64, 4096, 4096, 3, 3, 1, 1, 1, 1, 1, 1};  // 2^30 elements per image
  try {
    detail::cudnn_output_shape(4, 64, big, 1, DType::F32);
    ADD_FAILURE() << "no error";
  } catch (const NotImplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds cuDNN's 32-bit sizes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(detail::cudnn_output_shape(1, 4, {3, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1}, 1, DType::I64),
               DTypeError);
}

}  // namespace
}  // namespace cw::cuda
