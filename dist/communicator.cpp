// The communicator interface's counting wrappers, the single-process communicator, row shards
// and the process-wide communicator (see communicator.h).
#include "dist/communicator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "core/ops.h"
#ifdef CW_HAVE_MPI
#include "dist/mpi_communicator.h"
#endif

namespace cw::dist {
namespace {

using Clock = std::chrono::steady_clock;

int64_t bytes_of(const Tensor& t) { return t.numel() * static_cast<int64_t>(dtype_size(t.dtype())); }

void check_counts(const Communicator& c, const std::vector<int64_t>& counts, const char* what) {
  CW_CHECK(static_cast<int>(counts.size()) == c.world_size(), ShapeError, "dist::", what, ": ", counts.size(),
           " row counts for a world of ", c.world_size(), " ranks");
  for (int64_t n : counts) CW_CHECK(n >= 0, ValueError, "dist::", what, ": negative row count ", n);
}

// Counts one call into stats: its payload and its wall time.
class Timed {
 public:
  Timed(CommStats& s, int64_t bytes) : s_(s), t0_(Clock::now()) {
    ++s_.calls;
    s_.bytes += bytes;
  }
  ~Timed() { s_.seconds += std::chrono::duration<double>(Clock::now() - t0_).count(); }

 private:
  CommStats& s_;
  Clock::time_point t0_;
};

}  // namespace

RowShard shard_rows(int64_t total, int rank, int world) {
  CW_CHECK(world >= 1 && rank >= 0 && rank < world && total >= 0, ValueError, "dist::shard_rows: rank ", rank,
           " of ", world, ", ", total, " rows");
  const int64_t base = total / world, extra = total % world;
  RowShard s;
  s.count = base + (rank < extra ? 1 : 0);
  s.offset = rank * base + std::min<int64_t>(rank, extra);
  return s;
}

std::vector<int64_t> shard_counts(int64_t total, int world) {
  std::vector<int64_t> c;
  for (int r = 0; r < world; ++r) c.push_back(shard_rows(total, r, world).count);
  return c;
}

void Communicator::broadcast(Tensor& t, int root) {
  CW_CHECK(t.is_contiguous(), ValueError, "dist::broadcast: tensor ", describe(t), " must be contiguous");
  CW_CHECK(root >= 0 && root < world_size(), ValueError, "dist::broadcast: root ", root, " outside world of ",
           world_size());
  Timed timed(stats_, bytes_of(t));
  do_broadcast(t, root);
}

void Communicator::all_reduce(Tensor& t, ReduceOp op) {
  CW_CHECK(t.is_contiguous(), ValueError, "dist::all_reduce: tensor ", describe(t), " must be contiguous");
  CW_CHECK(is_floating(t.dtype()) || op == ReduceOp::Sum, DTypeError, "dist::all_reduce: Avg of ",
           describe(t), " (integer)");
  Timed timed(stats_, bytes_of(t));
  do_all_reduce(t, op);
}

Tensor Communicator::all_gather_rows(const Tensor& local, const std::vector<int64_t>& counts) {
  check_counts(*this, counts, "all_gather_rows");
  CW_CHECK(local.dim() >= 1 && local.size(0) == counts[rank()], ShapeError, "dist::all_gather_rows: rank ",
           rank(), " holds ", describe(local), " but its row count is ", counts[rank()]);
  int64_t total = 0;
  for (int64_t n : counts) total += n;
  Shape shape = local.shape();
  shape[0] = total;
  Tensor out = Tensor::empty(shape, local.dtype(), local.device());
  Timed timed(stats_, bytes_of(out));
  do_all_gather_rows(local.contiguous(), counts, out);
  return out;
}

Tensor Communicator::reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>& counts) {
  check_counts(*this, counts, "reduce_scatter_rows");
  int64_t total = 0;
  for (int64_t n : counts) total += n;
  CW_CHECK(full.dim() >= 1 && full.size(0) == total, ShapeError,
           "dist::reduce_scatter_rows: ", describe(full), " should have ", total,
           " rows (the sum of the counts)");
  Shape shape = full.shape();
  shape[0] = counts[rank()];
  Tensor out = Tensor::empty(shape, full.dtype(), full.device());
  Timed timed(stats_, bytes_of(full));
  do_reduce_scatter_rows(full.contiguous(), counts, out);
  return out;
}

void Communicator::barrier(double timeout_s) {
  Timed timed(stats_, 0);
  do_barrier(timeout_s);
}

void SingleProcessCommunicator::abort(const std::string& why, int code) {
  std::fprintf(stderr, "dist: %s\n", why.c_str());
  std::fflush(stderr);
  std::exit(code);
}

void SingleProcessCommunicator::do_all_gather_rows(const Tensor& local, const std::vector<int64_t>&,
                                                   Tensor& out) {
  out.copy_(local);
}

void SingleProcessCommunicator::do_reduce_scatter_rows(const Tensor& full, const std::vector<int64_t>&,
                                                       Tensor& out) {
  out.copy_(full);
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"})
    if (std::getenv(v)) return true;
  return false;
}

int local_rank() {
  for (const char* v :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "PMI_LOCAL_RANK", "LOCAL_RANK"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return 0;
}

Communicator& world(const std::string& backend, double timeout_s) {
  static std::once_flag once;
  static std::unique_ptr<Communicator> comm;
  std::call_once(once, [&] {
    CW_CHECK(backend == "auto" || backend == "none" || backend == "mpi" || backend == "nccl", ValueError,
             "--dist.backend: '", backend, "' is not one of auto, none, mpi, nccl");
    CW_CHECK(timeout_s > 0, ValueError, "--dist.timeout: must be > 0 seconds, got ", timeout_s);
    const bool want_mpi = backend == "mpi" || backend == "nccl" || (backend == "auto" && launched_by_mpi());
    if (want_mpi) {
#ifdef CW_HAVE_MPI
      comm = std::make_unique<MpiCommunicator>(timeout_s);
      return;
#else
      if (backend != "auto")
        throw ValueError(detail::cat("--dist.backend ", backend,
                                     ": this build has no MPI (configure with Open MPI installed, CW_MPI=ON)"));
      // Launched by mpirun but built without MPI: every rank would train alone on the whole
      // batch and write the same files; refuse rather than do that silently.
      throw ValueError(
          "dist: this process was started by an MPI launcher but this build has no MPI "
          "(configure with Open MPI installed, CW_MPI=ON), or pass --dist.backend none to run alone");
#endif
    }
    comm = std::make_unique<SingleProcessCommunicator>();
  });
  return *comm;
}

}  // namespace cw::dist
