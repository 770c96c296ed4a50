// Convolutions (conv1d is conv2d with height 1). The backend says which of three ways one runs
// (Backend::conv_method): whole, by its convolution library (cuDNN on CUDA: forward and both
// backward passes are one library call each, and the library picks its own algorithm), or by
// one of the two ways below, which every backend has.
//
// Depthwise (groups = Cin = Cout, the Conformer's convolution module): a direct backend kernel
// per channel plane (Backend::depthwise_conv and its two backward kernels); no buffers.
//
// Everything else is lowered to im2col + GEMM, per image and group g (K = Cin/groups * kh * kw,
// L = OH * OW):
//   cols = im2col(x)                      (K, L)   one column per output pixel
//   y_g  = W_g @ cols_g                   (Cout/groups, L)
// Backward follows from y = W @ cols being a matmul:
//   dW_g   = sum over images of dy_g @ cols_g^T
//   dcols_g = W_g^T @ dy_g,  dx = col2im(dcols)   (col2im is the adjoint of im2col)
//   db     = sum of dy over images and pixels
// The column matrix is kh*kw times the input, so it is built for a chunk of images at a time
// (kColumnBudget elements): the batch's full column matrix was the largest transient of a
// Conformer step (312 MB for its 3x3 subsampling conv at 32 x 4 s). Chunks of several images
// keep each GEMM large enough to run at full speed. A pointwise conv (1x1, stride 1, no padding)
// needs no lowering at all: x is its own column matrix.
#include <algorithm>

#include "core/flop_counter.h"
#include "core/op_profiler.h"
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

// The backend's way for this convolution. An empty batch is left to the lowering, which
// handles it with no kernel at all (libraries reject zero-sized tensors).
ConvMethod method_for(Backend& be, const Conv2dShapes& s, const Tensor& x) {
  const ConvMethod m = be.conv_method(x.device(), x.dtype(), s.geo, s.groups, s.cout);
  return m == ConvMethod::Library && s.n == 0 ? ConvMethod::Lowered : m;
}

// A depthwise pass (forward, or either backward) is one multiply-add per output element and tap;
// the lowered convolutions are GEMMs and are counted by matmul. A library pass does the lowered
// pass's multiply-adds (each output element is a K-long dot product), however it computes them.
void count_depthwise(const Conv2dShapes& s) {
  FlopCounter::add("depthwise_conv", 2 * s.n * s.cout * s.geo.out_h() * s.geo.out_w() * s.geo.kh * s.geo.kw);
}
void count_library(const Conv2dShapes& s) {
  FlopCounter::add("conv", 2 * s.n * s.cout * s.geo.out_h() * s.geo.out_w() * s.k);
}

void check_conv_bias(const Tensor& bias, const Conv2dShapes& s) {
  CW_CHECK(bias.shape() == Shape{s.cout}, ShapeError, "conv2d: bias ", shape_str(bias.shape()),
           " should be (", s.cout, ",)");
}

// A 1x1 kernel with stride 1 and no padding: im2col is the identity, so x itself is the column
// matrix (N, Cin, H*W) and the whole batch is one chunk.
bool is_pointwise(const Conv2dShapes& s) {
  const ConvGeometry& g = s.geo;
  return g.kh == 1 && g.kw == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}

// Elements of the im2col buffer one chunk may use (16 MiB of f32): at least one image.
constexpr int64_t kColumnBudget = int64_t{1} << 22;

int64_t images_per_chunk(const Conv2dShapes& s) {
  if (is_pointwise(s)) return std::max<int64_t>(1, s.n);
  const int64_t per_image = s.cin * s.geo.kh * s.geo.kw * s.geo.out_h() * s.geo.out_w();
  return std::max<int64_t>(1, std::min<int64_t>(s.n, kColumnBudget / std::max<int64_t>(per_image, 1)));
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w, const Tensor& bias, const Conv2dOptions& o) {
  const OpProfiler::Region region("conv2d");  // its im2col GEMMs are convolution time
  const Conv2dShapes s = conv2d_shapes(x_in, w, o);
  const Tensor x = x_in.contiguous();
  const int64_t OH = s.geo.out_h(), OW = s.geo.out_w(), L = OH * OW;
  Backend& be = backend_for(x.device(), "conv2d");
  Tensor y;
  const ConvMethod method = method_for(be, s, x);
  if (method == ConvMethod::Library) {
    y = Tensor::empty({s.n, s.cout, OH, OW}, x.dtype(), x.device());
    be.conv_forward(x, w.contiguous(), s.geo, s.groups, y);
    count_library(s);
  } else if (method == ConvMethod::Depthwise) {
    y = Tensor::empty({s.n, s.cout, OH, OW}, x.dtype(), x.device());
    be.depthwise_conv(x, w.contiguous(), s.geo, y);
    count_depthwise(s);
  } else {
    // The bias is written into y first and each chunk's GEMM adds onto its slice of y (beta = 1),
    // so neither the product nor the bias costs a separate pass over the output.
    y = Tensor::empty({s.n, s.cout, OH, OW}, x.dtype(), x.device());
    if (bias.defined()) {
      check_conv_bias(bias, s);
      y.view({s.n, s.cout, L}).copy_(bias.view({1, s.cout, 1}));
    }
    const Tensor wg = w.contiguous().view({s.groups, s.cout / s.groups, s.k});  // (g, Cout/g, K)
    const int64_t chunk = images_per_chunk(s);
    const bool pointwise = is_pointwise(s);
    Tensor cols;
    if (!pointwise) cols = Tensor::empty({chunk, s.cin * s.geo.kh * s.geo.kw, L}, x.dtype(), x.device());
    for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
      const int64_t nc = std::min(chunk, s.n - n0);
      Tensor c = pointwise ? x.narrow(0, n0, nc).view({nc, s.cin, L}) : cols.narrow(0, 0, nc);
      if (!pointwise) be.im2col(x.narrow(0, n0, nc), s.geo, c);
      // (g, Cout/g, K) @ (nc, g, K, L) -> (nc, g, Cout/g, L), straight into the chunk's images of y
      Tensor out = y.narrow(0, n0, nc).view({nc, s.groups, s.cout / s.groups, L});
      backend_for(x.device(), "matmul")
          .matmul(wg.expand({nc, s.groups, s.cout / s.groups, s.k}), c.view({nc, s.groups, s.k, L}), out,
                  bias.defined());
      FlopCounter::add("matmul", 2 * nc * s.cout * s.k * L);
    }
    return y;
  }
  if (bias.defined()) {
    check_conv_bias(bias, s);
    y = add(y, bias.view({1, s.cout, 1, 1}));
  }
  return y;
}

ConvGrads conv2d_backward(const Tensor& gy, const Tensor& x_in, const Tensor& w, const Conv2dOptions& o,
                          bool need_x, bool need_weight, bool need_bias) {
  const OpProfiler::Region region("conv2d_backward");
  const Conv2dShapes s = conv2d_shapes(x_in, w, o);
  const int64_t L = s.geo.out_h() * s.geo.out_w();
  CW_CHECK(gy.shape() == (Shape{s.n, s.cout, s.geo.out_h(), s.geo.out_w()}), ShapeError,
           "conv2d_backward: gradient ", shape_str(gy.shape()), " does not match the output shape");
  const Tensor gyc = gy.contiguous();
  Backend& be = backend_for(x_in.device(), "conv2d_backward");
  ConvGrads g;
  const ConvMethod method = method_for(be, s, x_in);
  if (method == ConvMethod::Library) {
    if (need_weight) {
      g.weight = Tensor::empty(w.shape(), w.dtype(), w.device());
      be.conv_backward_weight(gyc, x_in.contiguous(), s.geo, s.groups, g.weight);
      count_library(s);
    }
    if (need_x) {
      g.x = Tensor::empty(x_in.shape(), x_in.dtype(), x_in.device());
      be.conv_backward_input(gyc, w.contiguous(), s.geo, s.groups, g.x);
      count_library(s);
    }
  } else if (method == ConvMethod::Depthwise) {
    if (need_weight) {
      g.weight = Tensor::empty(w.shape(), w.dtype(), w.device());
      be.depthwise_conv_backward_weight(gyc, x_in.contiguous(), s.geo, g.weight);
      count_depthwise(s);
    }
    if (need_x) {
      g.x = Tensor::empty(x_in.shape(), x_in.dtype(), x_in.device());
      be.depthwise_conv_backward_input(gyc, w.contiguous(), s.geo, g.x);
      count_depthwise(s);
    }
  } else if (need_weight || need_x) {
    const Tensor x = x_in.contiguous();
    const int64_t chunk = images_per_chunk(s);
    const int64_t K_all = s.cin * s.geo.kh * s.geo.kw, cg = s.cout / s.groups;
    const Tensor wg = w.contiguous().view({s.groups, cg, s.k});  // (g, Cout/g, K)
    const bool pointwise = is_pointwise(s);
    // One column buffer for the chunks, reused: the im2col columns for the weight gradient, then
    // the input gradient's columns (a fresh 16 MiB buffer per chunk is fresh pages to fault in).
    Tensor cols, gcols;
    if (!pointwise) cols = Tensor::empty({chunk, K_all, L}, x.dtype(), x.device());
    if (need_x) {
      g.x = Tensor::empty(x_in.shape(), x_in.dtype(), x_in.device());
      gcols = pointwise ? Tensor() : cols;
    }
    Tensor gw;  // (g, Cout/g, K), the sum over the chunks
    if (need_weight) gw = Tensor::empty({s.groups, cg, s.k}, w.dtype(), w.device());
    for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
      const int64_t nc = std::min(chunk, s.n - n0);
      const Tensor gyv = gyc.narrow(0, n0, nc).view({nc, s.groups, cg, L});
      if (need_weight) {
        Tensor c = pointwise ? x.narrow(0, n0, nc).view({nc, K_all, L}) : cols.narrow(0, 0, nc);
        if (!pointwise) be.im2col(x.narrow(0, n0, nc), s.geo, c);
        const Tensor cvt = c.view({nc, s.groups, s.k, L}).transpose(-1, -2);  // (nc, g, L, K)
        if (nc == 1) {
          // (g, Cout/g, L) @ (g, L, K) added onto (g, Cout/g, K)
          backend_for(x.device(), "matmul").matmul(gyv.select(0, 0), cvt.select(0, 0), gw, n0 > 0);
          FlopCounter::add("matmul", 2 * s.cout * s.k * L);
        } else {
          // Many small images: one batched product (its GEMMs run in parallel over the images),
          // then summed over them. (nc, g, Cout/g, L) @ (nc, g, L, K) -> (g, Cout/g, K)
          const Tensor part = sum(matmul(gyv, cvt), {0});
          if (n0 == 0)
            gw.copy_(part);
          else
            add_(gw, part);
        }
      }
      if (need_x) {
        // (g, K, Cout/g) @ (nc, g, Cout/g, L) -> (nc, g, K, L), folded back into the images
        Tensor gx = g.x.narrow(0, n0, nc);
        Tensor gc =
            pointwise ? gx.view({nc, s.groups, s.k, L}) : gcols.narrow(0, 0, nc).view({nc, s.groups, s.k, L});
        backend_for(x.device(), "matmul")
            .matmul(wg.transpose(-1, -2).expand({nc, s.groups, s.k, cg}), gyv, gc);
        FlopCounter::add("matmul", 2 * nc * s.cout * s.k * L);
        if (!pointwise) be.col2im(gcols.narrow(0, 0, nc), s.geo, gx);  // overwrites gx
      }
    }
    // An empty batch runs no chunk: its weight gradient is zero.
    if (need_weight) g.weight = s.n > 0 ? gw.view(w.shape()) : zeros_like(w);
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
