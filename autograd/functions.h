// Differentiable ops on Variables: the same names as core/ops.h, in namespace cw::ag, each
// computing its forward with core ops and recording one backward rule. The rules live together
// in autograd/rules_*.cpp, one short rule per op. Gradients are plain Tensors (first-order
// autograd: backward rules are not themselves recorded). Part of autograd/.
#pragma once

#include <vector>

#include "autograd/variable.h"
#include "core/ops.h"

namespace cw::ag {

// Records `name` producing `outputs` from `inputs` with backward `fn`, when grad mode is on and
// some input requires grad; otherwise wraps the outputs as constants. Used by every op below
// and by fused ops in higher layers (e.g. the CWCL loss).
std::vector<Variable> record(const char* name, std::vector<Tensor> outputs,
                             const std::vector<Variable>& inputs, BackwardFn fn);
Variable record(const char* name, Tensor output, const std::vector<Variable>& inputs, BackwardFn fn);

// ---- elementwise unary
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable rsqrt(const Variable& x);
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);
Variable relu(const Variable& x);
Variable gelu(const Variable& x, ops::GeluApprox approx = ops::GeluApprox::None);
Variable silu(const Variable& x);
Variable abs(const Variable& x);
Variable pow(const Variable& x, double exponent);

// ---- elementwise binary (broadcasting; the gradient is summed back to each input's shape)
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable maximum(const Variable& a, const Variable& b);
Variable minimum(const Variable& a, const Variable& b);
Variable add(const Variable& a, double s);
Variable sub(const Variable& a, double s);
Variable sub(double s, const Variable& a);
Variable mul(const Variable& a, double s);
Variable div(const Variable& a, double s);
Variable div(double s, const Variable& a);
Variable where(const Tensor& cond, const Variable& a, const Variable& b);
Variable masked_fill(const Variable& x, const Tensor& mask, double value);

// ---- reductions
Variable sum(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable mean(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Gradient shared equally among tied maxima (as torch.amax).
Variable amax(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable amin(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable var(const Variable& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
             bool keepdim = false);

// ---- linear algebra and normalization
Variable matmul(const Variable& a, const Variable& b);
// x (..., K) @ weight^T + bias: weight (N, K), bias (N) or undefined (ops::linear, bias fused).
Variable linear(const Variable& x, const Variable& weight, const Variable& bias);
Variable softmax(const Variable& x, int64_t dim);
Variable log_softmax(const Variable& x, int64_t dim);
// weight/bias may be undefined Variables (no affine part).
Variable layer_norm(const Variable& x, int64_t normalized_ndim, const Variable& weight, const Variable& bias,
                    double eps = 1e-5);

// ---- indexing
Variable embedding(const Variable& weight, const Tensor& ids);
Variable index_select(const Variable& x, int64_t dim, const Tensor& index);
Variable gather(const Variable& x, int64_t dim, const Tensor& index);

// ---- joining and splitting
Variable concat(const std::vector<Variable>& xs, int64_t dim);
Variable stack(const std::vector<Variable>& xs, int64_t dim);
std::vector<Variable> split(const Variable& x, int64_t size, int64_t dim);
std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t dim);

// ---- views (the gradient is reshaped, transposed or scattered back)
Variable reshape(const Variable& x, const Shape& shape);
Variable transpose(const Variable& x, int64_t d0, int64_t d1);
Variable permute(const Variable& x, const std::vector<int64_t>& dims);
Variable narrow(const Variable& x, int64_t dim, int64_t start, int64_t length);
Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Variable select(const Variable& x, int64_t dim, int64_t index);
Variable expand(const Variable& x, const Shape& shape);
Variable squeeze(const Variable& x, int64_t dim);
Variable unsqueeze(const Variable& x, int64_t dim);
Variable flatten(const Variable& x, int64_t start_dim = 0, int64_t end_dim = -1);
Variable contiguous(const Variable& x);

// ---- regularization
// Inverted dropout; the identity when !training or p == 0.
Variable dropout(const Variable& x, double p, bool training, Generator& gen = default_generator());

// ---- convolution
Variable conv1d(const Variable& x, const Variable& weight, const Variable& bias,
                const ops::Conv1dOptions& o = {});
Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias,
                const ops::Conv2dOptions& o = {});

}  // namespace cw::ag

namespace cw {
// Arithmetic operators on Variables, for formulas that read like the paper.
inline Variable operator+(const Variable& a, const Variable& b) { return ag::add(a, b); }
inline Variable operator-(const Variable& a, const Variable& b) { return ag::sub(a, b); }
inline Variable operator*(const Variable& a, const Variable& b) { return ag::mul(a, b); }
inline Variable operator/(const Variable& a, const Variable& b) { return ag::div(a, b); }
inline Variable operator-(const Variable& a) { return ag::neg(a); }
inline Variable operator+(const Variable& a, double s) { return ag::add(a, s); }
inline Variable operator-(const Variable& a, double s) { return ag::sub(a, s); }
inline Variable operator*(const Variable& a, double s) { return ag::mul(a, s); }
inline Variable operator/(const Variable& a, double s) { return ag::div(a, s); }
inline Variable operator+(double s, const Variable& a) { return ag::add(a, s); }
inline Variable operator-(double s, const Variable& a) { return ag::sub(s, a); }
inline Variable operator*(double s, const Variable& a) { return ag::mul(a, s); }
inline Variable operator/(double s, const Variable& a) { return ag::div(s, a); }
}  // namespace cw
