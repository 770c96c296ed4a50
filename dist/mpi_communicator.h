// The MPI communicator (Open MPI): rank discovery from the launcher (mpirun, srun) and the
// collectives on CPU tensors (device tensors are copied through the host: correct, not fast;
// GPUs are NCCL's job). Every collective is non-blocking (MPI_I*) and polled against a
// deadline: a rank that died or hangs makes the others print what they were waiting for and end
// the job with MPI_Abort instead of waiting forever. Built with CMake CW_MPI. Part of dist/.
#pragma once

#include <mpi.h>

#include "dist/communicator.h"

namespace cw::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Initializes MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI; OpenMP and loader
  // threads never do) unless the program already did; finalizes it on destruction if it did.
  explicit MpiCommunicator(double timeout_s);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string name() const override { return "mpi"; }
  double timeout_seconds() const { return timeout_s_; }
  [[noreturn]] void abort(const std::string& why, int code = 1) override;

 protected:
  void do_broadcast(Tensor& t, int root) override;
  void do_all_reduce(Tensor& t, ReduceOp op) override;
  void do_all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts, Tensor& out) override;
  void do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts, Tensor& out) override;
  void do_barrier(double timeout_s) override;

 private:
  // Polls `req` until done; past the deadline (timeout_s > 0) reports `what` and aborts the job.
  void wait(MPI_Request& req, const char* what, int64_t bytes, double timeout_s);

  int rank_ = 0, world_ = 1;
  double timeout_s_;
  bool owns_mpi_ = false;
};

}  // namespace cw::dist
