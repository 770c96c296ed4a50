// TrainOptions: every setting of the `train` binary, read from the command line and from INI
// config files with Boost.Program_options. One option has one name everywhere: `--optim.lr 3e-4`
// on the command line is `lr = 3e-4` under `[optim]` in a config file (Program_options maps
// sections to dotted prefixes). Precedence: command line > later --config files > earlier ones >
// defaults. Part of train/.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "core/error.h"
#include "losses/contrastive_config.h"
#include "train/loop_options.h"
#include "train/option_reading.h"

namespace cw::train {

// The speech tasks' options; [optim], [run], [dist] and [eval] are the loop's (loop_options.h).
struct TrainOptions : LoopOptions {
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

  // The resolved settings as an INI file that `--config` reads back to the same options.
  std::string to_ini() const;
  // These options with every path made absolute (corpus, caches, towers): what a run folder's
  // config.ini records, so that `eval --run DIR` finds the same files from any folder.
  TrainOptions with_absolute_paths() const;
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

}  // namespace cw::train
