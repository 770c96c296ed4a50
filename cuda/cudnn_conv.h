// cuDNN convolutions: the CUDA backend's Backend::conv_method policy and its library passes
// (conv_forward, conv_backward_input, conv_backward_weight) on cuDNN's convolution API. No cuDNN
// types here, so tests can include it in any build. Internal to cuda/.
//
// Per problem (device, dtype, TF32 switch, batch, channels, geometry, groups) one plan holds the
// cuDNN descriptors and, per pass, the algorithm cuDNN's heuristics rank first among those that
// are allowed: f32 in FMA math (no tensor cores) unless TF32 is on (cuda.h), the backward
// passes deterministic where any deterministic algorithm exists (so a run repeats bit for bit,
// like our kernels), and a workspace of at most kCudnnWorkspaceLimit. Heuristics, not timed
// trials (cudnnFind*): they are cheap on every new shape (speech batches vary in length) and
// choose the same algorithm run to run. The workspace comes from the caching allocator for the
// call's duration.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/backend.h"
#include "cuda/cuda.h"

namespace cw::cuda {

inline constexpr size_t kCudnnWorkspaceLimit = size_t{256} << 20;  // bytes

// The method a convolution takes under an engine setting (cuda.h's ConvEngine), given whether it
// is depthwise (groups = Cin = Cout), its dtype, and whether the build has cuDNN.
ConvMethod choose_conv_method(ConvEngine engine, bool depthwise, DType dt, bool have_cudnn);

namespace detail {
// cuDNN's own output shape (N, Cout, OH, OW) for the problem, from the descriptors the plans are
// built from. Host only: descriptors touch no device, so tests check the descriptor setup
// against ConvGeometry::out_h/out_w on machines without a GPU. Throws DeviceError without cuDNN.
std::array<int64_t, 4> cudnn_output_shape(int64_t n, int64_t out_channels, const ConvGeometry& g,
                                          int64_t groups, DType dt);
}  // namespace detail

}  // namespace cw::cuda
