// Parameter broadcast and bucketed gradient averaging (see gradient_reducer.h).
#include "dist/gradient_reducer.h"

#include "core/error.h"
#include "core/ops.h"

namespace cw::dist {
namespace {

void check_grad(const Tensor& g, const Variable& p, DType dtype, Device device) {
  CW_CHECK(g.device() == device && g.dtype() == dtype && g.numel() == p.numel(), Error,
           "dist::GradientReducer: gradient ", describe(g), " does not match its parameter ",
           describe(p.data()));
}

}  // namespace

void broadcast_tensors(Communicator& comm, std::vector<Tensor> tensors, int root) {
  if (comm.world_size() == 1) return;
  for (Tensor& t : tensors) comm.broadcast(t, root);
}

GradientReducer::GradientReducer(Communicator& comm, std::vector<Variable> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  CW_CHECK(bucket_bytes > 0, ValueError, "--dist.bucket_mb: the bucket size must be > 0, got ", bucket_bytes,
           " bytes");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Variable& p = params_[i];
    const int64_t bytes = p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
    const bool fits =
        !buckets_.empty() && params_[buckets_.back().params.front()].dtype() == p.dtype() &&
        (buckets_.back().numel * static_cast<int64_t>(dtype_size(p.dtype())) + bytes <= bucket_bytes);
    if (!fits) buckets_.push_back({});
    buckets_.back().params.push_back(i);
    buckets_.back().numel += p.numel();
  }
}

// The bucket's gradients end to end in one flat tensor on their device, by one concatenation (a
// missing gradient is zeros).
Tensor GradientReducer::pack(const Bucket& b, DType dtype, Device device) const {
  std::vector<Tensor> parts;
  for (size_t i : b.params) {
    const Variable& p = params_[i];
    if (p.grad().defined()) {
      check_grad(p.grad(), p, dtype, device);
      parts.push_back(p.grad().contiguous().reshape({p.numel()}));
    } else {
      parts.push_back(ops::zeros({p.numel()}, dtype, device));
    }
  }
  return ops::concat(parts, 0);
}

void GradientReducer::average() {
  if (comm_.world_size() == 1) return;
  for (const Bucket& b : buckets_) {
    const DType dtype = params_[b.params.front()].dtype();
    const Device device = params_[b.params.front()].data().device();
    Tensor flat = pack(b, dtype, device);
    comm_.all_reduce(flat, ReduceOp::Avg);
    int64_t at = 0;
    for (size_t i : b.params) {  // unpack into fresh tensors (a grad may share storage with another)
      Variable p = params_[i];
      p.set_grad(flat.narrow(0, at, p.numel()).reshape(p.shape()).clone());
      at += p.numel();
    }
  }
}

}  // namespace cw::dist
