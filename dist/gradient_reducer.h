// Data-parallel bookkeeping around the optimizer: the start-of-run broadcast of parameters and
// buffers from rank 0, and the bucketed all-reduce (mean) of the gradients after each backward,
// after which every rank holds the same gradients and its optimizer takes the same step.
// Buckets: gradients are packed in parameter order into flat buffers of about bucket_bytes (one
// all-reduce each, fewer and larger messages than one per tensor). The all-reduces start after
// the backward has finished (no overlap: the backward engine has no per-parameter hooks; with
// one bucket in flight at a time the cost is the sum of the bucket times). Part of dist/.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "dist/communicator.h"

namespace cw::dist {

// Root's values of every tensor, in place (each must be contiguous).
void broadcast_tensors(Communicator& comm, std::vector<Tensor> tensors, int root = 0);

class GradientReducer {
 public:
  // params: the trained parameters, in the same order on every rank.
  GradientReducer(Communicator& comm, std::vector<Variable> params, int64_t bucket_bytes = 4 << 20);
  // Every parameter's .grad becomes the mean over ranks (an undefined gradient counts as zeros
  // and is set). A no-op in a world of one.
  void average();
  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, all of one dtype
    int64_t numel = 0;
  };
  Communicator& comm_;
  std::vector<Variable> params_;
  std::vector<Bucket> buckets_;

  Tensor pack(const Bucket& b, DType dtype, Device device) const;
};

}  // namespace cw::dist
