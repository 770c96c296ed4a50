// BatchNorm1d (Ioffe & Szegedy 2015) as PyTorch's nn.BatchNorm1d: per-channel normalization with
// batch statistics in training and running statistics in eval; the same parameters (weight, bias)
// and buffers (running_mean, running_var, num_batches_tracked (i64)), momentum 0.1, biased variance
// to normalize and unbiased variance in the running average. One addition for variable-length
// batches: a padding mask restricts the statistics to real frames. Part of nn/.
#pragma once

#include <functional>

#include "nn/module.h"

namespace cw::nn {

class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       DType dtype = DType::F32);

  // x (B, C) or (B, C, T) -> the same shape. padding_mask (B, T), nonzero at padded frames, only
  // with 3-d input: in training the mean and variance are taken over the real frames alone, so a
  // batch's statistics (and the running averages) do not depend on how much padding it carries;
  // without a mask every frame counts, as in PyTorch. Training mode updates the running
  // statistics, hence not const (as PyTorch's forward mutates its buffers).
  Variable forward(const Variable& x, const Tensor& padding_mask = Tensor());

  const Tensor& running_mean() { return buffer("running_mean"); }                // (C)
  const Tensor& running_var() { return buffer("running_var"); }                  // (C)
  const Tensor& num_batches_tracked() { return buffer("num_batches_tracked"); }  // 0-d i64

  int64_t num_features;
  double eps, momentum;
  Variable weight, bias;  // (C), or undefined when !affine
};

// Synchronized batch statistics for data-parallel training: when set, training-mode batch norm
// takes its mean and variance over the real frames of every replica's batch, as one process
// holding the global batch would. The function is a differentiable sum over replicas (the
// trainer passes dist::all_reduce_sum); unset (the default), the statistics are this batch's.
using BatchNormReplicaSum = std::function<Variable(const Variable&)>;
void set_batch_norm_replica_sum(BatchNormReplicaSum sum);

}  // namespace cw::nn
