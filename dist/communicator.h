// Communicator: the collectives of data-parallel training (broadcast, all-reduce, all-gather,
// reduce-scatter, barrier) behind one interface, with a single-process implementation that is
// the default (every collective the identity: a run without a launcher is exactly a plain run),
// MPI for CPU tensors (mpi_communicator.h) and NCCL for GPU buffers (nccl_communicator.h).
// Every call is counted (calls, payload bytes, seconds) for the benchmark. Part of dist/, the
// layer between autograd/ and train/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw::dist {

enum class ReduceOp { Sum, Avg };

// What the collectives of one communicator have cost so far. bytes: the payload this rank
// contributed (all-reduce, broadcast: the tensor; all-gather: the gathered tensor; reduce-scatter:
// the full input), not what the transport sent on the wire (algorithm-dependent).
struct CommStats {
  int64_t calls = 0;
  int64_t bytes = 0;
  double seconds = 0;
};

// Rows [offset, offset + count) of `total` rows held by `rank` of `world`: contiguous slices,
// the first total % world ranks one row longer. 2 ranks x B/2 hold exactly the rows 1 x B holds.
struct RowShard {
  int64_t offset = 0, count = 0;
};
RowShard shard_rows(int64_t total, int rank, int world);
std::vector<int64_t> shard_counts(int64_t total, int world);  // count of every rank

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"

  // In place on a contiguous tensor: root's values everywhere.
  void broadcast(Tensor& t, int root = 0);
  // In place on a contiguous tensor: the elementwise sum (or mean) over ranks.
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum);
  // Concatenation along dim 0 of every rank's `local` (rank order); counts[r] = rows of rank r,
  // counts[rank()] == local.size(0); all other dims equal on every rank.
  Tensor all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts);
  // The sum over ranks of `full` (sum of counts rows), of which this rank keeps its rows:
  // the backward of all_gather_rows.
  Tensor reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts);
  // timeout_s: < 0 the communicator's collective timeout, 0 none (waiting for rank 0 to prepare
  // data or evaluate), > 0 that many seconds.
  void barrier(double timeout_s = -1);
  // Ends the whole job (every rank) with `why` on stderr; never returns.
  [[noreturn]] virtual void abort(const std::string& why, int code = 1) = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  virtual void do_broadcast(Tensor& t, int root) = 0;
  virtual void do_all_reduce(Tensor& t, ReduceOp op) = 0;
  virtual void do_all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts, Tensor& out) = 0;
  virtual void do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts,
                                      Tensor& out) = 0;
  virtual void do_barrier(double timeout_s) = 0;

 private:
  CommStats stats_;
};

// World size 1: every collective is the identity (all-reduce Avg divides by 1).
class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string name() const override { return "single"; }
  [[noreturn]] void abort(const std::string& why, int code = 1) override;

 protected:
  void do_broadcast(Tensor&, int) override {}
  void do_all_reduce(Tensor&, ReduceOp) override {}
  void do_all_gather_rows(const Tensor& local, const std::vector<int64_t>&, Tensor& out) override;
  void do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>&, Tensor& out) override;
  void do_barrier(double) override {}
};

// True when this process was started by an MPI launcher (mpirun / mpiexec / srun with PMI/PMIx):
// the environment names a rank.
bool launched_by_mpi();
// This process's rank among the ranks of its machine, from the launcher's environment
// (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID, PMI_LOCAL_RANK, LOCAL_RANK); 0
// without one.
// Ranks on one machine use it to pick one GPU each.
int local_rank();

// The process-wide communicator, made on first call and kept until exit (MPI can be
// initialized once per process). backend: "auto" (MPI when launched by an MPI launcher and
// built with MPI, else single), "none" (single), "mpi" (MPI, error when not built), "nccl"
// (MPI for rank discovery, NCCL's communicator available through nccl_communicator.h).
// timeout_s bounds every collective (> 0); a rank that waits longer ends the job.
// A later call with other arguments returns the same communicator.
Communicator& world(const std::string& backend = "auto", double timeout_s = 300);

}  // namespace cw::dist
