// The one training loop of `train`: every task (task.h) runs through run_loop. It owns the
// device and the optimizer (AdamW, warmup + cosine, global-norm clipping), resume from the latest
// checkpoint, the step on one rank or many (dist/: each rank computes its rows' part of the loss,
// the gradients are averaged), the stop on a non-finite loss, the logs (metrics.csv / .jsonl,
// <eval>.csv / .jsonl, progress lines with an ETA), the evaluation and checkpoint cadence, and
// --run.stop_after. Part of train/.
//
// A run is three calls (see trainer.cpp for the speech-text task):
//   RunContext ctx = start_run(o, o.to_ini(), /*data_parallel=*/true, log);  // device, ranks, out/
//   SpeechTextTask task(o, ctx);                                              // data and model
//   LoopResult r = run_loop(task, o, ctx);                                    // train, evaluate
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "dist/communicator.h"
#include "train/loop_options.h"
#include "train/task.h"

namespace cw::train {

// What every part of a run needs to know about where it runs.
struct RunContext {
  dist::Communicator* comm = nullptr;
  int rank = 0, world = 1;
  Device device = Device::cpu();
  std::string config_ini;  // the resolved options, saved in config.ini and in every checkpoint
  bool lead() const { return rank == 0; }  // rank 0 alone logs, evaluates and writes files
  std::ostream& log() const { return *log_; }

  std::ostream* log_ = nullptr;           // the caller's stream on rank 0, a closed one elsewhere
  std::shared_ptr<std::ostream> closed_;  // ranks > 0: writes to it are dropped
  // Progress lines (progress.h) go to log_ while the run lasts; the last copy of the context
  // unsets it, so no line is written to a stream the caller has destroyed.
  std::shared_ptr<void> progress_;
};

// The start of every run, before the task prepares anything: OpenMP threads, the ranks (a world
// of one without a launcher; a task without data_parallel refuses several), the device (a
// missing GPU is one error at start), the output folder and config.ini (rank 0).
RunContext start_run(const LoopOptions& o, const std::string& config_ini, bool data_parallel,
                     std::ostream& log);

struct LoopResult {
  int64_t first_step = 0;       // 0, or the step a resumed run started from
  int64_t steps_done = 0;       // optimizer steps completed (counting those before a resume)
  bool stopped_on_nan = false;  // stopped because the loss or a gradient was not finite
  bool finished = false;        // reached --optim.steps, evaluated and finished (rank 0)
  std::vector<double> losses;   // loss of every step this process ran
  std::vector<std::pair<int64_t, EvalRecord>> evals;  // (step, evaluation), the final one last
  double train_seconds = 0;                           // the step loop alone
  dist::CommStats comm;  // this rank's collectives in the step loop (none in a world of one)
};

LoopResult run_loop(Task& task, const LoopOptions& o, const RunContext& ctx);

}  // namespace cw::train
