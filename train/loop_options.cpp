// The shared sections of `train`'s option tables (see loop_options.h).
#include "train/loop_options.h"

#include <boost/program_options.hpp>
#include <cmath>

#include "core/error.h"
#include "train/device_select.h"
#include "train/option_default.h"
#include "train/option_reading.h"

namespace cw::train {
namespace po = boost::program_options;

void add_loop_options(LoopOptions& o, int64_t& seed, po::options_description& optim,
                      po::options_description& run, po::options_description& dist,
                      po::options_description& eval) {
  optim.add_options()("optim.steps", with_default(&o.steps), "training steps")(
      "optim.batch_size", with_default(&o.batch_size),
      "rows per step (pairs of the contrastive batch; utterances for speech_asr)")(
      "optim.warmup_steps", with_default(&o.warmup_steps), "linear LR warmup steps")(
      "optim.lr", with_default(&o.lr), "peak learning rate (AdamW)")(
      "optim.min_lr_ratio", with_default(&o.min_lr_ratio), "cosine schedule ends at lr * min_lr_ratio")(
      "optim.weight_decay", with_default(&o.weight_decay),
      "decoupled weight decay (not on biases, norms or the logit scale)")(
      "optim.beta1", with_default(&o.beta1), "AdamW beta1")("optim.beta2", with_default(&o.beta2),
                                                            "AdamW beta2")(
      "optim.eps", with_default(&o.eps), "AdamW epsilon")("optim.grad_clip", with_default(&o.grad_clip),
                                                          "clip gradients to this global L2 norm (0: off)");

  run.add_options()("run.seed", with_default(&seed), "seed of init, data order, dropout, augmentation")(
      "run.out", with_default(&o.out), "output folder")("run.eval_every", with_default(&o.eval_every),
                                                        "evaluation every N steps (0: at the end)")(
      "run.checkpoint_every", with_default(&o.checkpoint_every), "checkpoint every N steps (0: at the end)")(
      "run.keep_last", with_default(&o.keep_last), "checkpoints kept")(
      "run.log_every", with_default(&o.log_every), "log a metrics line every N steps")(
      "run.resume", with_default(&o.resume), "continue from <out>/checkpoints (latest)")(
      "run.stop_after", with_default(&o.stop_after),
      "stop after N steps of this process, with a checkpoint (0: run to --optim.steps); for time-boxed runs "
      "and resume tests")("run.device", with_default(&o.device),
                          "cpu, cuda or cuda:N (CUDA: a build with the CUDA backend and a GPU; one rank)")(
      "run.conv", with_default(&o.conv),
      "convolutions on CUDA: auto (cuDNN for dense ones, our kernel for depthwise) | cudnn | native "
      "(im2col + cuBLAS, our depthwise kernel)")(
      "run.tf32", with_default(&o.tf32),
      "CUDA: f32 matmuls and cuDNN convolutions may use TF32 tensor cores (10-bit mantissa inputs)")(
      "run.threads", with_default(&o.threads), "OpenMP threads (0: default)")(
      "run.progress", with_default(&o.progress), "auto | bar | lines")(
      "run.plots", with_default(&o.plots), "render PNG plots with gnuplot at the end");

  dist.add_options()(
      "dist.backend", with_default(&o.dist_backend),
      "auto (MPI when started by mpirun/srun) | none (one process) | mpi | nccl (not wired yet: refused)")(
      "dist.timeout", with_default(&o.dist_timeout),
      "seconds a collective may wait for the other ranks before the job is ended")(
      "dist.bucket_mb", with_default(&o.dist_bucket_mb), "MiB per gradient all-reduce bucket");

  eval.add_options()("eval.batch_size", with_default(&o.eval_batch_size), "items per evaluation batch")(
      "eval.max_items", with_default(&o.eval_max_items),
      "cap on items per benchmark split in mid-run evaluations (0: all; the final one uses all)");
}

void write_loop_ini(std::ostream& s, const LoopOptions& o) {
  const auto b = [](bool v) { return v ? "true" : "false"; };
  s << "[optim]\n"
    << "steps = " << o.steps << "\nbatch_size = " << o.batch_size << "\nwarmup_steps = " << o.warmup_steps
    << "\nlr = " << o.lr << "\nmin_lr_ratio = " << o.min_lr_ratio << "\nweight_decay = " << o.weight_decay
    << "\nbeta1 = " << o.beta1 << "\nbeta2 = " << o.beta2 << "\neps = " << o.eps
    << "\ngrad_clip = " << o.grad_clip << "\n\n"
    << "[run]\n"
    << "seed = " << o.seed << "\nout = " << o.out << "\neval_every = " << o.eval_every
    << "\ncheckpoint_every = " << o.checkpoint_every << "\nkeep_last = " << o.keep_last
    << "\nlog_every = " << o.log_every << "\nresume = " << b(o.resume) << "\nstop_after = " << o.stop_after
    << "\ndevice = " << o.device << "\nconv = " << o.conv << "\ntf32 = " << b(o.tf32)
    << "\nthreads = " << o.threads << "\nprogress = " << o.progress << "\nplots = " << b(o.plots) << "\n\n"
    << "[dist]\n"
    << "backend = " << o.dist_backend << "\ntimeout = " << o.dist_timeout
    << "\nbucket_mb = " << o.dist_bucket_mb << "\n\n"
    << "[eval]\n"
    << "batch_size = " << o.eval_batch_size << "\nmax_items = " << o.eval_max_items << "\n";
}

void check_loop_options(LoopOptions& o, int64_t seed) {
  // [optim]. Every real option must be finite: inf and nan pass comparisons written for real
  // numbers (nan passes none, inf passes every lower bound), then poison the run.
  check_count("optim.steps", o.steps, 1, kMaxSteps, "10^9 steps is 30 years at a step a second");
  check_count("optim.batch_size", o.batch_size, 2, kMaxBatch,
              "a contrastive batch has >= 2 pairs; the N x N logits of 65536 are 16 GiB");
  CW_CHECK(o.warmup_steps >= 0 && o.warmup_steps < o.steps, OptionError, "--optim.warmup_steps (",
           o.warmup_steps, ") must be in [0, --optim.steps = ", o.steps, ")");
  CW_CHECK(std::isfinite(o.lr) && o.lr > 0 && o.lr <= 1, OptionError,
           "--optim.lr must be in (0, 1] (an AdamW step moves a weight by about lr), got ", o.lr);
  CW_CHECK(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, OptionError,
           "--optim.min_lr_ratio must be in [0, 1] (a fraction of --optim.lr), got ", o.min_lr_ratio);
  CW_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, OptionError,
           "--optim.weight_decay must be finite and >= 0, got ", o.weight_decay);
  CW_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, OptionError,
           "--optim.beta1 and --optim.beta2 must be in [0, 1) (moment decay rates), got ", o.beta1, " and ",
           o.beta2);
  CW_CHECK(std::isfinite(o.eps) && o.eps > 0, OptionError, "--optim.eps must be finite and > 0, got ", o.eps);
  CW_CHECK(std::isfinite(o.grad_clip) && o.grad_clip >= 0, OptionError,
           "--optim.grad_clip must be finite and >= 0 (0: off), got ", o.grad_clip);

  // [run]
  CW_CHECK(seed >= 0, OptionError, "--run.seed must be >= 0, got ", seed,
           " (seeds are unsigned: -1 would wrap to 2^64 - 1)");
  check_count("run.eval_every", o.eval_every, 0, kMaxSteps,
              "0: at the end; 10^9 steps is 30 years at a step a second");
  check_count("run.checkpoint_every", o.checkpoint_every, 0, kMaxSteps,
              "0: at the end; 10^9 steps is 30 years at a step a second");
  check_count("run.log_every", o.log_every, 1, kMaxSteps, "10^9 steps is 30 years at a step a second");
  check_count("run.keep_last", o.keep_last, 1, kMaxSteps, "checkpoints kept; at most one per step");
  check_count("run.threads", o.threads, 0, kMaxThreads,
              "0: OpenMP's default; more than any machine has cores, and 100000 crashed OpenMP");
  CW_CHECK(!o.out.empty(), OptionError, "--run.out must not be empty");
  check_count("run.stop_after", o.stop_after, 0, kMaxSteps,
              "0: run to --optim.steps; 10^9 steps is 30 years at a step a second");
  CW_CHECK(o.progress == "auto" || o.progress == "bar" || o.progress == "lines", OptionError,
           "--run.progress must be auto, bar or lines, got '", o.progress, "'");
  // The spelling only: whether the build and the machine have that device is checked when the
  // run starts (select_device), so that --print-config works anywhere.
  as_option_error([&] {
    parse_device(o.device);
    parse_conv_engine(o.conv);
  });

  // [dist]
  CW_CHECK(o.dist_backend == "auto" || o.dist_backend == "none" || o.dist_backend == "mpi" ||
               o.dist_backend == "nccl",
           OptionError, "--dist.backend must be auto, none, mpi or nccl, got '", o.dist_backend, "'");
  CW_CHECK(std::isfinite(o.dist_timeout) && o.dist_timeout > 0 && o.dist_timeout <= 86400, OptionError,
           "--dist.timeout must be in (0, 86400] seconds (a collective waiting a day is a hung job), got ",
           o.dist_timeout);
  CW_CHECK(std::isfinite(o.dist_bucket_mb) && o.dist_bucket_mb > 0 && o.dist_bucket_mb <= 4096, OptionError,
           "--dist.bucket_mb must be in (0, 4096] MiB (a bucket is staged in memory), got ",
           o.dist_bucket_mb);
  // NCCL is compiled (dist/nccl_communicator.h) but not wired into the trainer: refuse it rather
  // than run the MPI path under its name. Several ranks on GPUs use mpi (host-staged copies).
  CW_CHECK(o.dist_backend != "nccl", OptionError,
           "--dist.backend nccl: the NCCL communicator is not wired into the trainer yet; use mpi (with "
           "--run.device cuda it copies device tensors through the host)");

  // [eval]
  check_count("eval.batch_size", o.eval_batch_size, 1, kMaxBatch,
              "items embedded at once, at most a training batch");
  check_count("eval.max_items", o.eval_max_items, 0, kMaxItems, "0: all; more than any data set here");
  o.seed = static_cast<uint64_t>(seed);
}

}  // namespace cw::train
