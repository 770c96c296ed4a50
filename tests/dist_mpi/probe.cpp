// cw_dist_probe: a loop of all-reduces under mpirun in which rank 1 misbehaves, for the tests of
// tests/dist/mpi_launch_test.cpp: `kill` (rank 1 kills itself with SIGKILL at iteration 3) or
// `hang` (rank 1 stops calling collectives). Usage: cw_dist_probe kill|hang TIMEOUT_S.
// The job must end non-zero with a message, never hang.
// `cw_dist_probe bench TIMEOUT_S` instead times all-reduces (mean) of f32 buffers of a few sizes
// (the transfer cost behind docs/notes/mpi.md's per-step communication) and prints rank 0's medians.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/ops.h"
#include "dist/communicator.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cw_dist_probe kill|hang|bench TIMEOUT_S\n");
    return 2;
  }
  const std::string mode = argv[1];
  cw::dist::Communicator& c = cw::dist::world("mpi", std::atof(argv[2]));
  if (mode == "bench") {
    for (int64_t n : {int64_t{1} << 10, int64_t{1} << 18, int64_t{1} << 20, int64_t{2571649}}) {
      cw::Tensor t = cw::ops::ones({n});
      std::vector<double> ms;
      for (int i = 0; i < 25; ++i) {
        c.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        c.all_reduce(t, cw::dist::ReduceOp::Avg);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      if (c.rank() == 0)
        std::printf("all_reduce mean of %lld f32 (%.2f MB) on %d ranks: median %.3f ms, min %.3f ms\n",
                    static_cast<long long>(n), 4e-6 * static_cast<double>(n), c.world_size(),
                    ms[ms.size() / 2], ms[0]);
    }
    return 0;
  }
  for (int i = 0; i < 1000; ++i) {
    if (c.rank() == 1 && i == 3) {
      std::fprintf(stderr, "probe: rank 1 %s at iteration %d\n", mode == "kill" ? "dies" : "hangs", i);
      std::fflush(stderr);
      if (mode == "kill") std::raise(SIGKILL);
      std::this_thread::sleep_for(std::chrono::seconds(600));
    }
    cw::Tensor t = cw::ops::ones({1000});
    c.all_reduce(t);
  }
  std::fprintf(stderr, "probe: rank %d finished all iterations (unexpected)\n", c.rank());
  return 0;
}
