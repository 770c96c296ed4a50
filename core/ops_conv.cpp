// Convolutions lowered to im2col + batched GEMM (conv1d is conv2d with height 1).
//
// Forward, per image and group g (K = Cin/groups * kh * kw, L = OH * OW):
//   cols = im2col(x)                      (K, L)   one column per output pixel
//   y_g  = W_g @ cols_g                   (Cout/groups, L)
// Backward follows from y = W @ cols being a matmul:
//   dW_g   = sum over images of dy_g @ cols_g^T
//   dcols_g = W_g^T @ dy_g,  dx = col2im(dcols)   (col2im is the adjoint of im2col)
//   db     = sum of dy over images and pixels
// Simple and GEMM-bound; a depthwise conv pays for a (1, k) @ (k, L) product per channel, which
// a direct kernel would beat: left for when the Conformer measures it.
#include "core/ops.h"

namespace cw::ops {
namespace {

struct Conv2dShapes {
  ConvGeometry geo;
  int64_t n, cin, cout, groups, k;  // k = Cin/groups * kh * kw
};

Conv2dShapes conv2d_shapes(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  CW_CHECK(x.defined() && x.dim() == 4, ShapeError, "conv2d: input must be (N, C, H, W), got ", describe(x));
  CW_CHECK(w.defined() && w.dim() == 4, ShapeError, "conv2d: weight must be (Cout, Cin/groups, kh, kw), got ",
           describe(w));
  check_same_dtype(x, w, "conv2d");
  check_same_device(x, w, "conv2d");
  check_floating(x, "conv2d");
  const int64_t g = o.groups;
  CW_CHECK(g >= 1 && x.size(1) % g == 0 && w.size(0) % g == 0, ShapeError, "conv2d: groups ", g,
           " must divide input channels ", x.size(1), " and output channels ", w.size(0));
  CW_CHECK(w.size(1) * g == x.size(1), ShapeError, "conv2d: weight ", shape_str(w.shape()), " expects ",
           w.size(1) * g, " input channels with groups ", g, ", input ", shape_str(x.shape()), " has ",
           x.size(1));
  for (int i = 0; i < 2; ++i) {
    CW_CHECK(o.stride[i] >= 1 && o.dilation[i] >= 1 && o.padding[i] >= 0, ValueError,
             "conv2d: stride and dilation must be >= 1 and padding >= 0");
  }
  ConvGeometry geo{x.size(1),   x.size(2),    x.size(3),    w.size(2),     w.size(3),    o.stride[0],
                   o.stride[1], o.padding[0], o.padding[1], o.dilation[0], o.dilation[1]};
  CW_CHECK(geo.out_h() >= 1 && geo.out_w() >= 1, ShapeError, "conv2d: input ", shape_str(x.shape()),
           " is smaller than the (dilated) kernel ", shape_str(w.shape()), " after padding");
  return {geo, x.size(0), x.size(1), w.size(0), g, w.size(1) * w.size(2) * w.size(3)};
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w, const Tensor& bias, const Conv2dOptions& o) {
  const Conv2dShapes s = conv2d_shapes(x_in, w, o);
  const Tensor x = x_in.contiguous();
  const int64_t L = s.geo.out_h() * s.geo.out_w();
  Tensor cols = Tensor::empty({s.n, s.cin * s.geo.kh * s.geo.kw, L}, x.dtype(), x.device());
  backend_for(x.device(), "conv2d").im2col(x, s.geo, cols);
  // (g, Cout/g, K) @ (N, g, K, L) -> (N, g, Cout/g, L)
  Tensor y = matmul(w.reshape({s.groups, s.cout / s.groups, s.k}), cols.view({s.n, s.groups, s.k, L}));
  y = y.view({s.n, s.cout, s.geo.out_h(), s.geo.out_w()});
  if (bias.defined()) {
    CW_CHECK(bias.shape() == Shape{s.cout}, ShapeError, "conv2d: bias ", shape_str(bias.shape()),
             " should be (", s.cout, ",)");
    y = add(y, bias.view({1, s.cout, 1, 1}));
  }
  return y;
}

ConvGrads conv2d_backward(const Tensor& gy, const Tensor& x_in, const Tensor& w, const Conv2dOptions& o,
                          bool need_x, bool need_weight, bool need_bias) {
  const Conv2dShapes s = conv2d_shapes(x_in, w, o);
  const int64_t L = s.geo.out_h() * s.geo.out_w();
  CW_CHECK(gy.shape() == (Shape{s.n, s.cout, s.geo.out_h(), s.geo.out_w()}), ShapeError,
           "conv2d_backward: gradient ", shape_str(gy.shape()), " does not match the output shape");
  const Tensor gyv = gy.contiguous().view({s.n, s.groups, s.cout / s.groups, L});
  ConvGrads g;
  if (need_weight) {
    const Tensor x = x_in.contiguous();
    Tensor cols = Tensor::empty({s.n, s.cin * s.geo.kh * s.geo.kw, L}, x.dtype(), x.device());
    backend_for(x.device(), "conv2d_backward").im2col(x, s.geo, cols);
    // (N, g, Cout/g, L) @ (N, g, L, K) -> (N, g, Cout/g, K), summed over images.
    const Tensor per_image = matmul(gyv, cols.view({s.n, s.groups, s.k, L}).transpose(-1, -2));
    g.weight = sum(per_image, {0}).view(w.shape());
  }
  if (need_x) {
    // (g, K, Cout/g) @ (N, g, Cout/g, L) -> (N, g, K, L)
    const Tensor wt = w.reshape({s.groups, s.cout / s.groups, s.k}).transpose(-1, -2);
    const Tensor gcols = matmul(wt, gyv).view({s.n, s.cin * s.geo.kh * s.geo.kw, L});
    g.x = zeros(x_in.shape(), x_in.dtype(), x_in.device());
    backend_for(x_in.device(), "conv2d_backward").col2im(gcols, s.geo, g.x);
  }
  if (need_bias) g.bias = sum(gy, {0, 2, 3});
  return g;
}

namespace {
Conv2dOptions as_2d(const Conv1dOptions& o) {
  Conv2dOptions o2;
  o2.stride = {1, o.stride};
  o2.padding = {0, o.padding};
  o2.dilation = {1, o.dilation};
  o2.groups = o.groups;
  return o2;
}
void check_conv1d(const Tensor& x, const Tensor& w) {
  CW_CHECK(x.defined() && x.dim() == 3, ShapeError, "conv1d: input must be (N, C, L), got ", describe(x));
  CW_CHECK(w.defined() && w.dim() == 3, ShapeError, "conv1d: weight must be (Cout, Cin/groups, k), got ",
           describe(w));
}
}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv1dOptions& o) {
  check_conv1d(x, w);
  return conv2d(x.unsqueeze(2), w.unsqueeze(2), bias, as_2d(o)).squeeze(2);
}

ConvGrads conv1d_backward(const Tensor& gy, const Tensor& x, const Tensor& w, const Conv1dOptions& o,
                          bool need_x, bool need_weight, bool need_bias) {
  check_conv1d(x, w);
  ConvGrads g = conv2d_backward(gy.unsqueeze(2), x.unsqueeze(2), w.unsqueeze(2), as_2d(o), need_x,
                                need_weight, need_bias);
  if (g.x.defined()) g.x = g.x.squeeze(2);
  if (g.weight.defined()) g.weight = g.weight.squeeze(2);
  return g;
}

}  // namespace cw::ops
