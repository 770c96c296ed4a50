// BatchNorm1d (see batch_norm.h). Training, over the set S of (batch, time) positions that are
// real:
//   mean_c = sum_S x / n,   var_c = sum_S (x - mean_c)^2 / n,   n = |S|
//   y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
//   running_mean <- (1 - momentum) * running_mean + momentum * mean_c
//   running_var  <- (1 - momentum) * running_var + momentum * var_c * n / (n - 1)
// as torch.nn.functional.batch_norm (which normalizes with the biased variance and averages the
// unbiased one). Eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
//
// Training is a single autograd node with a hand-written backward (below) that keeps x and two
// per-channel vectors, as PyTorch's native batch norm does: the same formula composed of ops
// kept x - mean and x-hat as well, two more activations per call, which in the Conformer's
// convolution module was most of the gap to PyTorch's peak memory. The node is built from core
// ops, so it runs on any backend; synchronized statistics (replica sum) use the same node.
#include "nn/batch_norm.h"

#include "autograd/functions.h"
#include "autograd/grad_mode.h"

namespace cw::nn {
namespace {
BatchNormReplicaSum& replica_sum() {
  static BatchNormReplicaSum sum;
  return sum;
}

// Sum of a plain tensor over every replica (the identity without replicas), for the statistics
// and their gradients. Not recorded: the node below owns the gradient of everything it sums.
Tensor sum_over_replicas(const BatchNormReplicaSum& all, const Tensor& t) {
  if (!all) return t;
  NoGradGuard no_grad;
  return all(Variable(t)).data();
}

// Training-mode batch norm as one node. x (B, C) or (B, C, T); real (B, 1, T) is 1 at real
// frames, or undefined when every frame counts; n = number of real (batch, time) positions over
// every replica; dims = the reduced dims ({0} or {0, 2}); w, b (C) or undefined; channel_shape =
// (1, C) or (1, C, 1); all = the replica sum, or empty. Returns y and sets the batch mean and
// biased variance (channel_shape) for the running averages.
//
// Backward, with g = dy * w and x-hat = (x - mean) * rstd recomputed from the saved x. Every
// y (padded frames too) depends on mean and rstd, but only real frames move them, so
//   dx = rstd * (g - real * (sum(g) + x-hat * sum(g * x-hat)) / n)
//   dw = sum(dy * x-hat),   db = sum(dy)
// with all sums over the reduced dims, padded frames included. With replicas the two sums in dx
// run over every replica (each replica's loss moves the shared statistics); dw and db stay
// local, since the trainer sums parameter gradients over replicas itself.
Variable batch_norm_train(const Variable& x, const Tensor& real, double n, const std::vector<int64_t>& dims,
                          double eps, const Variable& weight, const Variable& bias,
                          const Shape& channel_shape, const BatchNormReplicaSum& all, Tensor& batch_mean,
                          Tensor& batch_var) {
  const Tensor& xs = x.data();
  batch_mean =
      ops::div(sum_over_replicas(all, ops::sum(real.defined() ? ops::mul(xs, real) : xs, dims, true)), n);
  Tensor centered = ops::sub(xs, batch_mean);
  const Tensor centered_real = real.defined() ? ops::mul(centered, real) : centered;
  batch_var =
      ops::div(sum_over_replicas(all, ops::sum(ops::mul(centered_real, centered_real), dims, true)), n);
  const Tensor rstd = ops::rsqrt(ops::add(batch_var, eps));  // channel_shape
  const Tensor w = weight.defined() ? weight.data().reshape(channel_shape) : Tensor();
  Tensor y = ops::mul(centered, rstd);
  if (w.defined()) y = ops::add(ops::mul(y, w), bias.data().reshape(channel_shape));
  return ag::record(
      "batch_norm", y, {x, weight, bias},
      [xs, real, n, dims, mean = batch_mean, rstd, w, all](const Grads& g, const std::vector<bool>& need) {
        const Tensor& gy = g[0];
        const Tensor xhat = ops::mul(ops::sub(xs, mean), rstd);
        Grads out(3);
        if (need[1]) out[1] = ops::sum(ops::mul(gy, xhat), dims).reshape({mean.numel()});
        if (need[2]) out[2] = ops::sum(gy, dims).reshape({mean.numel()});
        if (need[0]) {
          const Tensor gh = w.defined() ? ops::mul(gy, w) : gy;
          const Tensor sum_g = sum_over_replicas(all, ops::sum(gh, dims, true));
          const Tensor sum_gx = sum_over_replicas(all, ops::sum(ops::mul(gh, xhat), dims, true));
          Tensor through_stats = ops::div(ops::add(ops::mul(xhat, sum_gx), sum_g), n);
          if (real.defined()) through_stats = ops::mul(through_stats, real);
          out[0] = ops::mul(ops::sub(gh, through_stats), rstd);
        }
        return out;
      });
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

  if (!is_training()) {
    const Tensor rm = buffer("running_mean").to(x.dtype()).reshape(channel_shape);
    const Tensor rstd = ops::rsqrt(ops::add(buffer("running_var").to(x.dtype()), eps)).reshape(channel_shape);
    Variable y = (x - Variable(rm)) * Variable(rstd);
    if (weight.defined()) y = y * ag::reshape(weight, channel_shape) + ag::reshape(bias, channel_shape);
    return y;
  }

  // real (B, 1, T): 1 at real frames. Padded values are multiplied by 0 before any sum, so
  // neither their values nor their count reach the statistics.
  Tensor real;
  double n = static_cast<double>(x.numel() / C);  // (batch, time) positions this process holds
  if (padding_mask.defined()) {
    CW_CHECK(x.dim() == 3 && padding_mask.shape() == (Shape{x.size(0), x.size(2)}), ShapeError,
             "BatchNorm1d: padding_mask ", shape_str(padding_mask.shape()), " should be (batch, time) = (",
             x.size(0), ", ", x.dim() == 3 ? x.size(2) : 0, ") for a 3-d input");
    real = ops::eq(padding_mask, 0.0).to(x.dtype()).unsqueeze(1);
    n = ops::sum(real).to(Device::cpu()).item();  // real frames in the batch; each channel sees all of them
  }

  // With replicas (synchronized statistics), n and every sum of the statistics are taken over
  // all of them, as one process holding the global batch would.
  const BatchNormReplicaSum& all = replica_sum();
  if (all) n = sum_over_replicas(all, ops::scalar(n, DType::F64)).to(Device::cpu()).item();
  CW_CHECK(n > 1, ValueError, "BatchNorm1d: training needs more than 1 real value per channel, input ",
           shape_str(x.shape()), all ? " (all replicas)" : "", " has ", n);
  Tensor batch_mean, batch_var;  // channel_shape
  Variable y =
      batch_norm_train(x, real, n, dims, eps, weight, bias, channel_shape, all, batch_mean, batch_var);

  // The running averages are state, not part of the graph: plain tensor arithmetic, in place
  // so that handles taken by state_dict() see the update (as PyTorch's in-place buffers).
  Tensor& rm = buffer("running_mean");
  Tensor& rv = buffer("running_var");
  const Tensor mean_c = batch_mean.reshape({C}).to(rm.dtype());
  const Tensor unbiased_var_c = ops::mul(batch_var.reshape({C}), n / (n - 1)).to(rv.dtype());
  rm.copy_(ops::add(ops::mul(rm, 1.0 - momentum), ops::mul(mean_c, momentum)));
  rv.copy_(ops::add(ops::mul(rv, 1.0 - momentum), ops::mul(unbiased_var_c, momentum)));
  Tensor& steps = buffer("num_batches_tracked");
  steps.copy_(ops::add(steps, 1.0));
  return y;
}

}  // namespace cw::nn
