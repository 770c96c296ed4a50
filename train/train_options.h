// TrainOptions: every setting of the `train` binary, read from the command line and from INI
// config files with Boost.Program_options. One option has one name everywhere: `--optim.lr 3e-4`
// on the command line is `lr = 3e-4` under `[optim]` in a config file (Program_options maps
// sections to dotted prefixes). Precedence: command line > later --config files > earlier ones >
// defaults. Part of train/.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "losses/contrastive_config.h"

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
// --print-config prints the resolved INI and exits. An unknown option, a bad value, a missing or
// malformed config file, or a contradiction (e.g. CWCL-only options with --loss.kind infonce,
// warmup longer than the run) throws cw::ValueError naming the option (and the file).
ParsedTrainOptions parse_train_options(int argc, const char* const* argv, std::ostream& out);

}  // namespace cw::train
