// Convolution modules Conv1d (incl. depthwise: groups = channels) and Conv2d, as PyTorch's nn.Conv1d
// and nn.Conv2d: the same parameter names and shapes (weight (Cout, Cin/groups, k...), bias (Cout)),
// the same default initialization, and the same output-size formula. The arithmetic is
// ops::conv1d / ops::conv2d (im2col + GEMM) through their autograd rules. Part of nn/.
#pragma once

#include <array>

#include "core/ops.h"
#include "nn/module.h"

namespace cw::nn {

// Output length of a convolution along one axis (PyTorch's formula):
//   floor((L + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1
int64_t conv_output_size(int64_t length, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation);
// The padding that keeps the length at stride 1 ('same'); the dilated kernel must be odd so
// that it is symmetric, as for PyTorch's padding='same' without an extra one-sided pad.
int64_t same_padding(int64_t kernel, int64_t dilation = 1);

// x (B, Cin, L) -> (B, Cout, L'). groups = Cin = Cout makes a depthwise conv (one k-tap filter
// per channel), the Conformer's temporal mixing.
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const ops::Conv1dOptions& o = {},
         bool bias = true, DType dtype = DType::F32);
  Variable forward(const Variable& x) const;
  int64_t output_length(int64_t length) const;

  int64_t in_channels, out_channels, kernel_size;
  ops::Conv1dOptions options;
  Variable weight, bias;  // (Cout, Cin/groups, k), (Cout) or undefined
};

// x (B, Cin, H, W) -> (B, Cout, H', W').
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size,
         const ops::Conv2dOptions& o = {}, bool bias = true, DType dtype = DType::F32);
  Variable forward(const Variable& x) const;
  // (H', W') for an (H, W) input.
  std::array<int64_t, 2> output_size(int64_t height, int64_t width) const;

  int64_t in_channels, out_channels;
  std::array<int64_t, 2> kernel_size;
  ops::Conv2dOptions options;
  Variable weight, bias;  // (Cout, Cin/groups, kh, kw), (Cout) or undefined
};

}  // namespace cw::nn
