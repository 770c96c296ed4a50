// LoopOptions: the settings of the one training loop (run_loop.h) that every task shares, the
// [optim], [run], [dist] and [eval] sections of `train`. Each task's option struct derives from it
// (TrainOptions for the speech tasks, ImageTrainOptions for the image tasks) and sets its own
// defaults; the sections are declared, written as INI and checked here, once. Part of train/.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace boost::program_options {
class options_description;
}  // namespace boost::program_options

namespace cw::train {

struct LoopOptions {
  // ---- [optim]
  // The default job is sized for about 10 minutes of training on 2 cores (README, EXPERIMENTS.md).
  int64_t steps = 300, batch_size = 32, warmup_steps = 30;
  double lr = 1e-3, min_lr_ratio = 0.05, weight_decay = 0.05;
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-8;
  double grad_clip = 1.0;  // global L2 norm; 0 = off

  // ---- [run]
  uint64_t seed = 0;
  std::string out = "runs/default";  // checkpoints, logs, plots, eval results
  int64_t eval_every = 100;          // steps; 0 = only at the end
  int64_t checkpoint_every = 100;    // steps; 0 = only at the end
  int64_t keep_last = 2;
  int64_t log_every = 10;
  bool resume = false;     // continue from <out>/checkpoints/latest
  int64_t stop_after = 0;  // stop (with a checkpoint) after N steps of this process; 0 = run to steps
  std::string device = "cpu";
  std::string conv = "auto";      // CUDA convolution engine: auto | cudnn | native (device_select.h)
  bool tf32 = false;              // CUDA: f32 matmuls and cuDNN convolutions may use TF32
  int64_t threads = 0;            // OpenMP threads; 0 = OpenMP's default
  std::string progress = "auto";  // auto (bar on a terminal) | bar | lines
  bool plots = true;              // PNG plots with gnuplot at the end, when gnuplot is installed

  // ---- [dist]: data-parallel training (dist/), when launched by mpirun / srun
  std::string dist_backend = "auto";  // auto (MPI when launched by MPI) | none | mpi | nccl
  double dist_timeout = 300;          // seconds a collective may wait before the job is ended
  double dist_bucket_mb = 4;          // gradient all-reduce bucket size

  // ---- [eval]
  int64_t eval_batch_size = 64;
  int64_t eval_max_items = 200;  // per split in mid-run evaluations, 0 = all (the final one uses all)
};

// The four sections' option tables, bound to o's fields (their current values are the defaults
// shown). The seed is bound to `seed`, read signed: Boost reads "-1" into an unsigned as 2^64 - 1
// without a word; check_loop_options refuses a negative one and stores it.
void add_loop_options(LoopOptions& o, int64_t& seed, boost::program_options::options_description& optim,
                      boost::program_options::options_description& run,
                      boost::program_options::options_description& dist,
                      boost::program_options::options_description& eval);

// The four sections as INI text ("[optim]" ... "[eval]"), in the spelling the tables read.
void write_loop_ini(std::ostream& s, const LoopOptions& o);

// Every range and spelling of the four sections, each error an OptionError naming its option;
// then o.seed = seed.
void check_loop_options(LoopOptions& o, int64_t seed);

}  // namespace cw::train
