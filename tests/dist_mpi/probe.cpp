// cw_dist_probe: a loop of all-reduces under mpirun in which rank 1 misbehaves, for the tests of
// tests/dist/mpi_launch_test.cpp: `kill` (rank 1 kills itself with SIGKILL at iteration 3) or
// `hang` (rank 1 stops calling collectives). Usage: cw_dist_probe kill|hang TIMEOUT_S.
// The job must end non-zero with a message, never hang.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/ops.h"
#include "dist/communicator.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: cw_dist_probe kill|hang TIMEOUT_S\n");
    return 2;
  }
  const std::string mode = argv[1];
  cw::dist::Communicator& c = cw::dist::world("mpi", std::atof(argv[2]));
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
