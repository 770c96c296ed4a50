// FlopCounter: counts the floating-point operations of the GEMM-class ops (matmul and the
// convolutions) that run on this thread while it is alive. These are the "model FLOPs" of model
// FLOP utilization (MFU) and what PyTorch's FlopCounterMode counts: one multiply-add is 2 FLOPs;
// elementwise ops, reductions, softmax and normalization are not counted (they are memory-bound
// and a few percent of the arithmetic). Backward passes count their own GEMMs, so a training step
// counted whole is about 3x its forward. Part of core/.
//
//   FlopCounter fc;                      // starts counting on this thread
//   model.forward(x) ...; loss.backward();
//   fc.total();                          // FLOPs of both passes; fc.by_op() splits them by op
//
// What is counted, and where: ops::matmul counts 2 * batch * M * N * K (a dense or pointwise
// convolution is an im2col GEMM, so it is counted there, with the same number as PyTorch's
// convolution formula); the depthwise convolution, which is not a GEMM, counts 2 * N * C * L * k
// in each direction; ops::matmul_out (the fused contrastive loss's GEMMs into its row-block
// buffers, O(N^2 D) per step) counts as matmul. Counters nest: an inner one also adds to the outer.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace cw {

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  int64_t total() const { return total_; }
  // FLOPs per counting op ("matmul", "depthwise_conv").
  const std::map<std::string, int64_t>& by_op() const { return by_op_; }

  // Called by the ops: adds to every live counter of this thread; nothing when there is none,
  // so uncounted code pays one thread-local load per GEMM.
  static void add(const char* op, int64_t flops);

 private:
  FlopCounter* outer_;
  int64_t total_ = 0;
  std::map<std::string, int64_t> by_op_;
};

}  // namespace cw
