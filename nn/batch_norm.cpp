// BatchNorm1d (see batch_norm.h), composed of differentiable ops so that its backward rule is the
// composition of theirs. Training, over the set S of (batch, time) positions that are real:
//   mean_c = sum_S x / n,   var_c = sum_S (x - mean_c)^2 / n,   n = |S|
//   y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
//   running_mean <- (1 - momentum) * running_mean + momentum * mean_c
//   running_var  <- (1 - momentum) * running_var + momentum * var_c * n / (n - 1)
// as torch.nn.functional.batch_norm (which normalizes with the biased variance and averages the
// unbiased one). Eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
#include "nn/batch_norm.h"

#include "autograd/functions.h"

namespace cw::nn {
namespace {
BatchNormReplicaSum& replica_sum() {
  static BatchNormReplicaSum sum;
  return sum;
}
}  // namespace

void set_batch_norm_replica_sum(BatchNormReplicaSum sum) { replica_sum() = std::move(sum); }

BatchNorm1d::BatchNorm1d(int64_t c, double eps_, double momentum_, bool affine, DType dtype)
    : num_features(c), eps(eps_), momentum(momentum_) {
  CW_CHECK(c > 0 && eps > 0 && momentum >= 0 && momentum <= 1, ValueError, "BatchNorm1d: num_features ", c,
           ", eps ", eps, ", momentum ", momentum, " (need > 0, > 0, in [0, 1])");
  if (affine) {
    weight = register_parameter("weight", ops::ones({c}, dtype));
    bias = register_parameter("bias", ops::zeros({c}, dtype));
  }
  register_buffer("running_mean", ops::zeros({c}, dtype));
  register_buffer("running_var", ops::ones({c}, dtype));
  register_buffer("num_batches_tracked", ops::zeros({}, DType::I64));
}

Variable BatchNorm1d::forward(const Variable& x, const Tensor& padding_mask) {
  CW_CHECK((x.dim() == 2 || x.dim() == 3) && x.size(1) == num_features, ShapeError, "BatchNorm1d: input ",
           shape_str(x.shape()), " should be (batch, ", num_features, ") or (batch, ", num_features,
           ", time)");
  const int64_t C = num_features;
  // Per-channel vectors broadcast as (1, C) or (1, C, 1).
  const Shape channel_shape = x.dim() == 3 ? Shape{1, C, 1} : Shape{1, C};
  const std::vector<int64_t> dims = x.dim() == 3 ? std::vector<int64_t>{0, 2} : std::vector<int64_t>{0};

  Variable y;
  if (is_training()) {
    Variable mean, var;
    double n = 0;
    if (replica_sum()) {
      // Over every replica: sums of x and of the squared deviations, and the count, summed
      // across replicas (the same two-pass formulas as below).
      const BatchNormReplicaSum& all = replica_sum();
      Variable r;
      double local_n = static_cast<double>(x.numel() / C);
      if (padding_mask.defined()) {
        CW_CHECK(x.dim() == 3 && padding_mask.shape() == (Shape{x.size(0), x.size(2)}), ShapeError,
                 "BatchNorm1d: padding_mask ", shape_str(padding_mask.shape()), " should be (batch, time)");
        const Tensor real = ops::eq(padding_mask, 0.0).to(x.dtype()).unsqueeze(1);
        local_n = ops::sum(real).item();
        r = Variable(real);
      }
      n = all(Variable(ops::scalar(local_n, DType::F64))).item();
      CW_CHECK(n > 1, ValueError, "BatchNorm1d: training needs more than 1 value per channel, got ", n);
      mean = all(ag::sum(r.defined() ? x * r : x, dims, /*keepdim=*/true)) / n;
      const Variable centered = r.defined() ? (x - mean) * r : x - mean;
      var = all(ag::sum(centered * centered, dims, /*keepdim=*/true)) / n;
    } else if (padding_mask.defined()) {
      CW_CHECK(x.dim() == 3 && padding_mask.shape() == (Shape{x.size(0), x.size(2)}), ShapeError,
               "BatchNorm1d: padding_mask ", shape_str(padding_mask.shape()), " should be (batch, time) = (",
               x.size(0), ", ", x.dim() == 3 ? x.size(2) : 0, ") for a 3-d input");
      // real (B, 1, T): 1 at real frames. Padded values are multiplied by 0 before any sum, so
      // neither their values nor their count reach the statistics.
      const Tensor real = ops::eq(padding_mask, 0.0).to(x.dtype()).unsqueeze(1);
      n = ops::sum(real).item() * 1.0;  // real frames in the batch; each channel sees all of them
      CW_CHECK(n > 1, ValueError, "BatchNorm1d: training needs more than 1 real value per channel, got ", n);
      const Variable r(real);
      mean = ag::sum(x * r, dims, /*keepdim=*/true) / n;
      const Variable centered = (x - mean) * r;
      var = ag::sum(centered * centered, dims, /*keepdim=*/true) / n;
    } else {
      n = static_cast<double>(x.numel() / C);
      CW_CHECK(n > 1, ValueError, "BatchNorm1d: training needs more than 1 value per channel, input ",
               shape_str(x.shape()));
      mean = ag::mean(x, dims, /*keepdim=*/true);
      var = ag::var(x, dims, /*correction=*/0, /*keepdim=*/true);
    }
    y = (x - mean) * ag::rsqrt(var + eps);
    // The running averages are state, not part of the graph: plain tensor arithmetic, in place
    // so that handles taken by state_dict() see the update (as PyTorch's in-place buffers).
    Tensor& rm = buffer("running_mean");
    Tensor& rv = buffer("running_var");
    const Tensor batch_mean = mean.data().reshape({C}).to(rm.dtype());
    const Tensor batch_var = ops::mul(var.data().reshape({C}), n / (n - 1)).to(rv.dtype());
    rm.copy_(ops::add(ops::mul(rm, 1.0 - momentum), ops::mul(batch_mean, momentum)));
    rv.copy_(ops::add(ops::mul(rv, 1.0 - momentum), ops::mul(batch_var, momentum)));
    Tensor& steps = buffer("num_batches_tracked");
    steps.copy_(ops::add(steps, 1.0));
  } else {
    const Tensor rm = buffer("running_mean").to(x.dtype()).reshape(channel_shape);
    const Tensor rstd = ops::rsqrt(ops::add(buffer("running_var").to(x.dtype()), eps)).reshape(channel_shape);
    y = (x - Variable(rm)) * Variable(rstd);
  }
  if (weight.defined()) y = y * ag::reshape(weight, channel_shape) + ag::reshape(bias, channel_shape);
  return y;
}

}  // namespace cw::nn
