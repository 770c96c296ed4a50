// Conv1d and Conv2d modules (see conv.h). Initialization as PyTorch's _ConvNd.reset_parameters:
// kaiming_uniform_(a = sqrt(5)) for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
// bias, fan_in = Cin/groups * prod(kernel), which is what init::kaiming_uniform_linear computes.
#include "nn/conv.h"

#include "autograd/functions.h"
#include "nn/init.h"

namespace cw::nn {

int64_t conv_output_size(int64_t length, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  const int64_t span = length + 2 * padding - dilation * (kernel - 1) - 1;
  // Floor division that also holds for a negative span (input shorter than the kernel).
  return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
}

int64_t same_padding(int64_t kernel, int64_t dilation) {
  const int64_t span = dilation * (kernel - 1);
  CW_CHECK(kernel >= 1 && dilation >= 1 && span % 2 == 0, ValueError, "same_padding: the dilated kernel ",
           span + 1, " (kernel ", kernel, ", dilation ", dilation, ") must be odd");
  return span / 2;
}

namespace {

void check_channels(const char* op, int64_t cin, int64_t cout, int64_t groups) {
  CW_CHECK(cin > 0 && cout > 0 && groups >= 1 && cin % groups == 0 && cout % groups == 0, ValueError, op,
           ": groups ", groups, " must divide in_channels ", cin, " and out_channels ", cout,
           " (all positive)");
}

}  // namespace

Conv1d::Conv1d(int64_t cin, int64_t cout, int64_t k, const ops::Conv1dOptions& o, bool with_bias, DType dtype)
    : in_channels(cin), out_channels(cout), kernel_size(k), options(o) {
  check_channels("Conv1d", cin, cout, o.groups);
  CW_CHECK(k >= 1 && o.stride >= 1 && o.dilation >= 1 && o.padding >= 0, ValueError,
           "Conv1d: kernel, stride and dilation must be >= 1 and padding >= 0");
  const int64_t fan_in = cin / o.groups * k;
  weight = register_parameter("weight", init::kaiming_uniform_linear({cout, cin / o.groups, k}, dtype));
  if (with_bias) bias = register_parameter("bias", init::bias_uniform(cout, fan_in, dtype));
}

Variable Conv1d::forward(const Variable& x) const {
  CW_CHECK(x.dim() == 3 && x.size(1) == in_channels, ShapeError, "Conv1d: input ", shape_str(x.shape()),
           " should be (batch, ", in_channels, ", length)");
  return ag::conv1d(x, weight, bias, options);
}

int64_t Conv1d::output_length(int64_t length) const {
  return conv_output_size(length, kernel_size, options.stride, options.padding, options.dilation);
}

Conv2d::Conv2d(int64_t cin, int64_t cout, std::array<int64_t, 2> k, const ops::Conv2dOptions& o,
               bool with_bias, DType dtype)
    : in_channels(cin), out_channels(cout), kernel_size(k), options(o) {
  check_channels("Conv2d", cin, cout, o.groups);
  for (int i = 0; i < 2; ++i) {
    CW_CHECK(k[i] >= 1 && o.stride[i] >= 1 && o.dilation[i] >= 1 && o.padding[i] >= 0, ValueError,
             "Conv2d: kernel, stride and dilation must be >= 1 and padding >= 0");
  }
  const int64_t fan_in = cin / o.groups * k[0] * k[1];
  weight =
      register_parameter("weight", init::kaiming_uniform_linear({cout, cin / o.groups, k[0], k[1]}, dtype));
  if (with_bias) bias = register_parameter("bias", init::bias_uniform(cout, fan_in, dtype));
}

Variable Conv2d::forward(const Variable& x) const {
  CW_CHECK(x.dim() == 4 && x.size(1) == in_channels, ShapeError, "Conv2d: input ", shape_str(x.shape()),
           " should be (batch, ", in_channels, ", height, width)");
  return ag::conv2d(x, weight, bias, options);
}

std::array<int64_t, 2> Conv2d::output_size(int64_t height, int64_t width) const {
  const auto& o = options;
  return {conv_output_size(height, kernel_size[0], o.stride[0], o.padding[0], o.dilation[0]),
          conv_output_size(width, kernel_size[1], o.stride[1], o.padding[1], o.dilation[1])};
}

}  // namespace cw::nn
