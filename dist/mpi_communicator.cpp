// MPI communicator (see mpi_communicator.h).
#include "dist/mpi_communicator.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <thread>

#include "core/backend.h"
#include "core/error.h"
#include "core/ops.h"

namespace cw::dist {
namespace {

using Clock = std::chrono::steady_clock;

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

int as_count(int64_t n, const char* what) {
  CW_CHECK(n >= 0 && n <= INT_MAX, ValueError, "dist::", what, ": ", n,
           " elements exceed MPI's int count; use smaller buckets");
  return static_cast<int>(n);
}

// Tensors on a device go through host copies: MPI is given host memory only (a CUDA-aware MPI
// could take device pointers, but that is a property of the MPI build that cannot be counted
// on). One copy each way per collective; the NCCL communicator has none.
Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()).contiguous(); }
Tensor host_buffer(const Tensor& t) {
  return t.device().is_cpu() ? t : Tensor::empty(t.shape(), t.dtype(), Device::cpu());
}
void copy_back(const Tensor& host, Tensor& t, const char* what) {
  if (!t.device().is_cpu()) cross_device_copy(host, t, what);
}

}  // namespace

MpiCommunicator::MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    owns_mpi_ = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_mpi_ && !finalized) MPI_Finalize();
}

void MpiCommunicator::abort(const std::string& why, int code) {
  std::fprintf(stderr, "dist: rank %d of %d (pid %d): %s\n", rank_, world_, static_cast<int>(getpid()),
               why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; in case it does
}

void MpiCommunicator::wait(MPI_Request& req, const char* what, int64_t bytes, double timeout_s) {
  const auto t0 = Clock::now();
  // Spin briefly (a collective between ranks of one node takes microseconds), then poll every
  // 50 us so a rank waiting for a slower one leaves its core to it.
  for (int64_t polls = 0;; ++polls) {
    int done = 0;
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (polls < 2000) {
      sched_yield();
      continue;
    }
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    if (timeout_s > 0 && waited > timeout_s) {
      char msg[512];
      std::snprintf(msg, sizeof msg,
                    "%s (%lld bytes) did not complete within %.0f s (--dist.timeout): another rank has died "
                    "or hangs. Ending the whole job; the last checkpoint written stays valid.",
                    what, static_cast<long long>(bytes), timeout_s);
      abort(msg, 3);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void MpiCommunicator::do_broadcast(Tensor& t, int root) {
  Tensor h = on_host(t);
  MPI_Request req;
  MPI_Ibcast(h.raw_data(), as_count(h.numel(), "broadcast"), mpi_type(h.dtype()), root, MPI_COMM_WORLD, &req);
  wait(req, "broadcast", h.numel() * static_cast<int64_t>(dtype_size(h.dtype())), timeout_s_);
  copy_back(h, t, "dist::broadcast");
}

void MpiCommunicator::do_all_reduce(Tensor& t, ReduceOp op) {
  Tensor h = on_host(t);
  MPI_Request req;
  MPI_Iallreduce(MPI_IN_PLACE, h.raw_data(), as_count(h.numel(), "all_reduce"), mpi_type(h.dtype()), MPI_SUM,
                 MPI_COMM_WORLD, &req);
  wait(req, "all_reduce", h.numel() * static_cast<int64_t>(dtype_size(h.dtype())), timeout_s_);
  if (op == ReduceOp::Avg && world_ > 1) h.copy_(ops::mul(h, 1.0 / world_));
  copy_back(h, t, "dist::all_reduce");
}

void MpiCommunicator::do_all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts,
                                         Tensor& out) {
  const Tensor local_h = on_host(local);
  Tensor out_h = host_buffer(out);
  const int64_t row =
      local.size(0) > 0 ? local.numel() / local.size(0) : out.numel() / std::max<int64_t>(1, out.size(0));
  std::vector<int> recv(world_), displ(world_);
  int64_t at = 0;
  for (int r = 0; r < world_; ++r) {
    recv[r] = as_count(counts[r] * row, "all_gather_rows");
    displ[r] = as_count(at, "all_gather_rows");
    at += counts[r] * row;
  }
  MPI_Request req;
  MPI_Iallgatherv(local_h.raw_data(), recv[rank_], mpi_type(local.dtype()), out_h.raw_data(), recv.data(),
                  displ.data(), mpi_type(out.dtype()), MPI_COMM_WORLD, &req);
  wait(req, "all_gather_rows", out.numel() * static_cast<int64_t>(dtype_size(out.dtype())), timeout_s_);
  copy_back(out_h, out, "dist::all_gather_rows");
}

void MpiCommunicator::do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts,
                                             Tensor& out) {
  const Tensor full_h = on_host(full);
  Tensor out_h = host_buffer(out);
  const int64_t total = full.size(0);
  const int64_t row = total > 0 ? full.numel() / total : 0;
  std::vector<int> recv(world_);
  for (int r = 0; r < world_; ++r) recv[r] = as_count(counts[r] * row, "reduce_scatter_rows");
  MPI_Request req;
  MPI_Ireduce_scatter(full_h.raw_data(), out_h.raw_data(), recv.data(), mpi_type(full.dtype()), MPI_SUM,
                      MPI_COMM_WORLD, &req);
  wait(req, "reduce_scatter_rows", full.numel() * static_cast<int64_t>(dtype_size(full.dtype())), timeout_s_);
  copy_back(out_h, out, "dist::reduce_scatter_rows");
}

void MpiCommunicator::do_barrier(double timeout_s) {
  MPI_Request req;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  wait(req, "barrier", 0, timeout_s < 0 ? timeout_s_ : timeout_s);
}

}  // namespace cw::dist
