// The NCCL communicator: collectives on GPU buffers between the ranks of an MPI job (MPI finds
// the ranks and carries NCCL's unique id from rank 0 to the others). One GPU per rank, chosen
// by the node-local rank. The Tensor entry points take tensors whose storage is on a CUDA device;
// the *_raw ones take device pointers, so the communicator does not depend on the CUDA tensor
// backend (cuda/). Collectives run on the communicator's stream and are polled against the same
// deadline as MPI's: a dead rank aborts NCCL and the job. Built with CW_MPI and CW_CUDA.
// Part of dist/.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "dist/mpi_communicator.h"

namespace cw::dist {

class NcclCommunicator final : public Communicator {
 public:
  // mpi: the bootstrap (its rank and world are NCCL's); selects GPU local_rank % device count.
  explicit NcclCommunicator(MpiCommunicator& mpi);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return mpi_.rank(); }
  int world_size() const override { return mpi_.world_size(); }
  std::string name() const override { return "nccl"; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  [[noreturn]] void abort(const std::string& why, int code = 1) override;

  // Device-pointer collectives (count in elements of dtype). Synchronous: return when done.
  void broadcast_raw(void* buf, int64_t count, DType dtype, int root);
  void all_reduce_raw(void* buf, int64_t count, DType dtype, ReduceOp op);
  // send: count_per_rank[rank] rows' elements; recv: all of them, rank order (equal counts:
  // NCCL's all-gather has no v-variant, so unequal counts go as one broadcast per rank).
  void all_gather_raw(const void* send, void* recv, const std::vector<int64_t>& elems, DType dtype);
  void reduce_scatter_raw(const void* send, void* recv, const std::vector<int64_t>& elems, DType dtype);

 protected:
  void do_broadcast(Tensor& t, int root) override;
  void do_all_reduce(Tensor& t, ReduceOp op) override;
  void do_all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts, Tensor& out) override;
  void do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts, Tensor& out) override;
  void do_barrier(double timeout_s) override;

 private:
  void sync(const char* what, int64_t bytes);  // waits for the stream, with the deadline

  MpiCommunicator& mpi_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
};

}  // namespace cw::dist
