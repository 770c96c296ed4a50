// NCCL communicator (see nccl_communicator.h). Compiled here, run only where a GPU is present.
#include "dist/nccl_communicator.h"

#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace cw::dist {
namespace {

using Clock = std::chrono::steady_clock;

void cuda_check(cudaError_t e, const char* what) {
  CW_CHECK(e == cudaSuccess, Error, "dist::nccl: ", what, ": ", cudaGetErrorString(e));
}
void nccl_check(ncclResult_t r, const char* what) {
  CW_CHECK(r == ncclSuccess, Error, "dist::nccl: ", what, ": ", ncclGetErrorString(r));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I64: return ncclInt64;
  }
  return ncclFloat32;
}

void check_cuda_tensor(const Tensor& t, const char* what) {
  CW_CHECK(t.device().is_cuda(), DeviceError, "dist::nccl ", what, ": takes CUDA tensors, got ", describe(t));
}

}  // namespace

NcclCommunicator::NcclCommunicator(MpiCommunicator& mpi) : mpi_(mpi) {
  int devices = 0;
  cuda_check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  CW_CHECK(devices > 0, DeviceError, "dist::nccl: no CUDA device visible to rank ", mpi.rank());
  device_ = dist::local_rank() % devices;
  cuda_check(cudaSetDevice(device_), "cudaSetDevice");
  cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  // NCCL's id made by rank 0, carried to the others over MPI (as bytes in an i64 tensor).
  ncclUniqueId id;
  if (mpi.rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  Tensor bytes = Tensor::empty({static_cast<int64_t>((sizeof id + 7) / 8)}, DType::I64);
  std::memcpy(bytes.raw_data(), &id, sizeof id);
  mpi.broadcast(bytes, 0);
  std::memcpy(&id, bytes.raw_data(), sizeof id);
  // Non-blocking init, so that a rank that never joins is caught by the deadline below too.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  nccl_check(ncclCommInitRankConfig(&comm_, mpi.world_size(), id, mpi.rank(), &config), "ncclCommInitRank");
  const auto t0 = Clock::now();
  for (ncclResult_t state = ncclInProgress; state == ncclInProgress;) {
    nccl_check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
    if (state == ncclInProgress) {
      if (std::chrono::duration<double>(Clock::now() - t0).count() > mpi.timeout_seconds())
        abort("ncclCommInitRank did not complete within --dist.timeout", 3);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    } else {
      nccl_check(state, "ncclCommInitRank");
    }
  }
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(comm_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclCommunicator::abort(const std::string& why, int code) {
  if (comm_) ncclCommAbort(comm_);
  comm_ = nullptr;
  mpi_.abort(why, code);
}

void NcclCommunicator::sync(const char* what, int64_t bytes) {
  const auto t0 = Clock::now();
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) cuda_check(e, what);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress)
      abort(detail::cat("NCCL ", what, " failed: ", ncclGetErrorString(async)), 3);
    if (std::chrono::duration<double>(Clock::now() - t0).count() > mpi_.timeout_seconds())
      abort(
          detail::cat("NCCL ", what, " (", bytes, " bytes) did not complete within ", mpi_.timeout_seconds(),
                      " s (--dist.timeout): another rank has died or hangs. Ending the whole job."),
          3);
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void NcclCommunicator::broadcast_raw(void* buf, int64_t count, DType dtype, int root) {
  nccl_check(ncclBroadcast(buf, buf, static_cast<size_t>(count), nccl_type(dtype), root, comm_, stream_),
             "ncclBroadcast");
  sync("broadcast", count * static_cast<int64_t>(dtype_size(dtype)));
}

void NcclCommunicator::all_reduce_raw(void* buf, int64_t count, DType dtype, ReduceOp op) {
  CW_CHECK(op == ReduceOp::Sum || dtype != DType::I64, DTypeError, "dist::nccl: Avg of integers");
  nccl_check(ncclAllReduce(buf, buf, static_cast<size_t>(count), nccl_type(dtype),
                           op == ReduceOp::Avg ? ncclAvg : ncclSum, comm_, stream_),
             "ncclAllReduce");
  sync("all_reduce", count * static_cast<int64_t>(dtype_size(dtype)));
}

void NcclCommunicator::all_gather_raw(const void* send, void* recv, const std::vector<int64_t>& elems,
                                      DType dtype) {
  const size_t esize = dtype_size(dtype);
  bool equal = true;
  for (int64_t e : elems) equal = equal && e == elems[0];
  int64_t total = 0;
  for (int64_t e : elems) total += e;
  if (equal) {
    nccl_check(ncclAllGather(send, recv, static_cast<size_t>(elems[0]), nccl_type(dtype), comm_, stream_),
               "ncclAllGather");
  } else {
    nccl_check(ncclGroupStart(), "ncclGroupStart");
    int64_t at = 0;
    for (int r = 0; r < world_size(); ++r) {
      auto* dst = static_cast<char*>(recv) + at * esize;
      nccl_check(ncclBroadcast(r == rank() ? send : dst, dst, static_cast<size_t>(elems[r]), nccl_type(dtype),
                               r, comm_, stream_),
                 "ncclBroadcast");
      at += elems[r];
    }
    nccl_check(ncclGroupEnd(), "ncclGroupEnd");
  }
  sync("all_gather", total * static_cast<int64_t>(esize));
}

void NcclCommunicator::reduce_scatter_raw(const void* send, void* recv, const std::vector<int64_t>& elems,
                                          DType dtype) {
  const size_t esize = dtype_size(dtype);
  bool equal = true;
  for (int64_t e : elems) equal = equal && e == elems[0];
  int64_t total = 0;
  for (int64_t e : elems) total += e;
  if (equal) {
    nccl_check(ncclReduceScatter(send, recv, static_cast<size_t>(elems[0]), nccl_type(dtype), ncclSum, comm_,
                                 stream_),
               "ncclReduceScatter");
  } else {  // one reduce per rank's rows, to that rank
    nccl_check(ncclGroupStart(), "ncclGroupStart");
    int64_t at = 0;
    for (int r = 0; r < world_size(); ++r) {
      nccl_check(ncclReduce(static_cast<const char*>(send) + at * esize, recv, static_cast<size_t>(elems[r]),
                            nccl_type(dtype), ncclSum, r, comm_, stream_),
                 "ncclReduce");
      at += elems[r];
    }
    nccl_check(ncclGroupEnd(), "ncclGroupEnd");
  }
  sync("reduce_scatter", total * static_cast<int64_t>(esize));
}

void NcclCommunicator::do_broadcast(Tensor& t, int root) {
  check_cuda_tensor(t, "broadcast");
  broadcast_raw(t.raw_data(), t.numel(), t.dtype(), root);
}

void NcclCommunicator::do_all_reduce(Tensor& t, ReduceOp op) {
  check_cuda_tensor(t, "all_reduce");
  all_reduce_raw(t.raw_data(), t.numel(), t.dtype(), op);
}

void NcclCommunicator::do_all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts,
                                          Tensor& out) {
  check_cuda_tensor(local, "all_gather_rows");
  const int64_t row = out.size(0) > 0 ? out.numel() / out.size(0) : 0;
  std::vector<int64_t> elems;
  for (int64_t c : counts) elems.push_back(c * row);
  all_gather_raw(local.raw_data(), out.raw_data(), elems, local.dtype());
}

void NcclCommunicator::do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts,
                                              Tensor& out) {
  check_cuda_tensor(full, "reduce_scatter_rows");
  const int64_t row = full.size(0) > 0 ? full.numel() / full.size(0) : 0;
  std::vector<int64_t> elems;
  for (int64_t c : counts) elems.push_back(c * row);
  reduce_scatter_raw(full.raw_data(), out.raw_data(), elems, full.dtype());
}

void NcclCommunicator::do_barrier(double timeout_s) { mpi_.barrier(timeout_s); }

}  // namespace cw::dist
