// TrainOptions: every setting of the `train` binary, read from the command line and from INI
// config files with Boost.Program_options. One option has one name everywhere: `--optim.lr 3e-4`
// on the command line is `lr = 3e-4` under `[optim]` in a config file (Program_options maps
// sections to dotted prefixes). Precedence: command line > later --config files > earlier ones >
// defaults. Part of train/.
#pragma once

#include <cmath>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "losses/contrastive_config.h"

namespace boost::program_options {
class options_description;
class variables_map;
}  // namespace boost::program_options

namespace cw::train {

struct TrainOptions {
  // speech_text: the tower against the frozen text tower (trainer.h); speech_asr: its CTC
  // pretraining as a character recognizer (asr_trainer.h). Same options otherwise.
  std::string task = "speech_text";

  // ---- [data]
  std::string corpus = ".cache/speech/small";  // corpus folder (tools/make_speech_corpus.py layout)
  std::string corpus_size = "small";           // generated into `corpus` if missing: tiny|small|full|none
  std::string feature_cache;                   // log-mel cache folder; empty = <corpus>/features
  int64_t max_frames = 600;                    // crop longer utterances (10 ms frames); 0 = no crop
  bool spec_augment = false;  // on: the Whisper tower runs its frozen blocks every step (no cache)
  // Batches of similar length (less padding) make every in-batch negative a length-matched one;
  // from scratch the towers then never leave the collapsed start (EXPERIMENTS.md), so it is off.
  bool bucket_by_length = false;
  int64_t loader_workers = 1;
  int64_t corpus_jobs = 0;  // processes for generating the corpus; 0 = all cores
  // What an audio file's header may declare (data/audio_io.h AudioLimits: checked before its
  // samples are allocated). Raise them for long recordings or unusual rates.
  double max_audio_seconds = 3600.0;
  int64_t min_audio_rate = 4000;
  int64_t max_audio_rate = 384000;

  // ---- [model]
  // conformer: trained from scratch (or --model.speech_init); whisper: the pretrained Whisper
  // encoder of --model.speech_weights (models/whisper_encoder.h), its top speech_train_layers
  // blocks, final norm and a projection trained.
  std::string speech_tower = "whisper";
  std::string speech_weights;          // Whisper folder (model.bin or HF); empty = the installed tiny.en
  int64_t speech_train_layers = 0;     // whisper: blocks trained from the top (0: final norm + projection)
  std::string speech_preset = "mini";  // tiny | mini | small (models/conformer.h)
  int64_t d_model = 0, num_layers = 0, num_heads = 0, ffn_dim = 0, conv_kernel = 0;  // 0 = preset's
  double dropout = -1;                                                               // < 0 = preset's
  std::string text_model;   // all-MiniLM-L6-v2 folder; empty = the installed package
  std::string speech_init;  // speech tower file (--task speech_asr's) the tower starts from; empty = random

  // ---- [loss]: every option of losses::ContrastiveConfig
  // The default job's loss is CWCL with the exp kernel (t = 0.1): with the paper's linear kernel the
  // targets are nearly flat at this batch size and the tower stays at chance (EXPERIMENTS.md).
  losses::ContrastiveConfig loss = [] {
    losses::ContrastiveConfig c;
    c.kernel = losses::WeightKernel::Exp;
    return c;
  }();

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

  // The resolved settings as an INI file that `--config` reads back to the same options.
  std::string to_ini() const;
};

// What parse_train_options decided.
struct ParsedTrainOptions {
  TrainOptions options;
  bool exit_now = false;  // --help or --print-config was handled; exit with status 0
};

// Parses argv (and the --config files it names). --help prints the options grouped by section;
// --print-config prints the resolved INI and exits. An unknown or abbreviated option, a bad or
// out-of-range value, a missing or malformed config file, or a contradiction (e.g. CWCL-only
// options with --loss.kind infonce, warmup longer than the run) throws cw::OptionError naming
// the option (and the file).
ParsedTrainOptions parse_train_options(int argc, const char* const* argv, std::ostream& out);

// ---- Reading options as untrusted input: shared by every option table (the speech and image
// tasks of `train`, `eval`), so that each gets the same guards.

// Stores argv[1..] into vm without Boost's abbreviations (--optim.l is not --optim.lr: a later
// option sharing the prefix would silently change its meaning). Returns the option names given.
// allow_unregistered: other options are skipped (requested_task's first look at argv).
std::vector<std::string> store_command_line(int argc, const char* const* argv,
                                            const boost::program_options::options_description& desc,
                                            boost::program_options::variables_map& vm,
                                            bool allow_unregistered = false);

// Stores INI config files into vm so that a later file overrides an earlier one and none
// overrides what vm already holds (the command line). A `config = <file>` line (before any
// [section]) includes a file, relative to the including one, read as if it stood before the
// including file's own lines. Throws OptionError naming the file (and the chain of includes) for
// a file that cannot be read, is a folder or is over 1 MiB, a bad line, an include cycle, or
// includes nested deeper than kMaxConfigDepth (a base config and a variant or two need 3).
inline constexpr int kMaxConfigDepth = 8;
void store_config_files(const std::vector<std::string>& files,
                        const boost::program_options::options_description& desc,
                        boost::program_options::variables_map& vm, bool allow_unregistered = false);

// Ranges of the size and count options, shared by the option tables. Each is far above what
// this code trains and low enough that products of them (parameter counts, the N x N logits,
// step arithmetic) neither overflow nor ask for an absurd allocation.
inline constexpr int64_t kMaxWidth = 65536;  // d_model, ffn_dim, ...: one 65536 x 65536 f32 matrix is 16 GiB
inline constexpr int64_t kMaxLayers = 256;   // blocks of a tower: no published encoder has more
inline constexpr int64_t kMaxHeads = 256;    // attention heads: more than any published model
inline constexpr int64_t kMaxConvKernel = 255;    // a depthwise kernel of 2.5 s of 10 ms frames
inline constexpr int64_t kMaxFrames = 100000;     // 1000 s of 10 ms frames, longer than any utterance
inline constexpr int64_t kMaxBatch = 65536;       // pairs per step: the N x N f32 logits are then 16 GiB
inline constexpr int64_t kMaxSteps = 1000000000;  // steps and step intervals: 30 years at 1 step/s
inline constexpr int64_t kMaxItems = 1000000000;  // items of a data set
inline constexpr int64_t kMaxWorkers = 64;        // loader threads / corpus processes
// OpenMP threads: above any machine's cores; OpenMP's runtime crashes creating 100000.
inline constexpr int64_t kMaxThreads = 1024;

// Throws OptionError "--<option> must be in [lo, hi] (<why>), got <value>" unless lo <= value <= hi.
void check_count(const char* option, int64_t value, int64_t lo, int64_t hi, const char* why);

// Runs f, rethrowing a ValueError from it (a parser of a spelling: device, loss kind) as an
// OptionError with the same message: it came from an option.
template <class F>
void as_option_error(F&& f) {
  try {
    f();
  } catch (const OptionError&) {
    throw;
  } catch (const ValueError& e) {
    throw OptionError(e.what());
  }
}

// Ranges of the loss options beyond ContrastiveConfig::validate (sizes that feed allocations).
void check_loss_ranges(const losses::ContrastiveConfig& loss);

// The checks of the [optim] and [run] options, which both tables have under the same names.
// Every real option must be finite: inf and nan pass comparisons written for real numbers
// (nan passes none, inf passes every lower bound), then poison the run.
template <class O>
void check_optim_options(const O& o) {
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
}
template <class O>
void check_run_options(const O& o, int64_t seed) {
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
}

// The exit status of a binary for the exception being handled (call it in a catch block), after
// printing "<binary>: error: <what>" on err: 2 for a bad option (OptionError or a
// Boost.Program_options error), 1 for anything else (bad data, out of memory, ...).
int report_error(const char* binary, std::ostream& err);

}  // namespace cw::train
