// Option table of the `train` binary (see train_options.h). Each option is declared once, in its
// section's options_description, bound straight to its TrainOptions field; the loss options are
// read as strings and parsed by losses/contrastive_config.h, which names the valid spellings.
#include "train/train_options.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <sstream>

#include "core/error.h"
#include "train/device_select.h"
#include "train/loss_options.h"
#include "train/option_default.h"

namespace cw::train {
namespace po = boost::program_options;

namespace {

std::string bool_str(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string TrainOptions::to_ini() const {
  std::ostringstream s;
  s.precision(10);
  s << "task = " << task << "\n\n[data]\n"
    << "corpus = " << corpus << "\ncorpus_size = " << corpus_size << "\nfeature_cache = " << feature_cache
    << "\nmax_frames = " << max_frames << "\nspec_augment = " << bool_str(spec_augment)
    << "\nbucket_by_length = " << bool_str(bucket_by_length) << "\nloader_workers = " << loader_workers
    << "\ncorpus_jobs = " << corpus_jobs << "\nmax_audio_seconds = " << max_audio_seconds
    << "\nmin_audio_rate = " << min_audio_rate << "\nmax_audio_rate = " << max_audio_rate << "\n\n"
    << "[model]\n"
    << "speech_tower = " << speech_tower << "\nspeech_weights = " << speech_weights
    << "\nspeech_train_layers = " << speech_train_layers << "\n"
    << "speech_preset = " << speech_preset << "\nd_model = " << d_model << "\nnum_layers = " << num_layers
    << "\nnum_heads = " << num_heads << "\nffn_dim = " << ffn_dim << "\nconv_kernel = " << conv_kernel
    << "\ndropout = " << dropout << "\ntext_model = " << text_model << "\nspeech_init = " << speech_init
    << "\n\n";
  write_loss_ini(s, loss);
  write_loop_ini(s, *this);
  return s.str();
}

TrainOptions TrainOptions::with_absolute_paths() const {
  TrainOptions a = *this;
  for (std::string* p : {&a.corpus, &a.feature_cache, &a.speech_weights, &a.text_model, &a.speech_init})
    *p = absolute_path(*p);
  return a;
}

namespace {

void add_data_options(po::options_description& data, TrainOptions& o) {
  data.add_options()("data.corpus", with_default(&o.corpus),
                     "speech corpus folder (made by tools/make_speech_corpus.py)")(
      "data.corpus_size", with_default(&o.corpus_size),
      "size to generate when the corpus is missing: tiny|small|full, or none to never generate")(
      "data.feature_cache", with_default(&o.feature_cache),
      "log-mel feature cache folder (empty: <corpus>/features)")(
      "data.max_frames", with_default(&o.max_frames),
      "crop training utterances to this many 10 ms frames (0: no crop)")(
      "data.spec_augment", with_default(&o.spec_augment), "SpecAugment masks on training batches")(
      "data.bucket_by_length", with_default(&o.bucket_by_length),
      "batch utterances of similar length together (less padding, but length-matched negatives)")(
      "data.max_audio_seconds", with_default(&o.max_audio_seconds),
      "longest audio file accepted, in seconds (a longer header is refused before reading)")(
      "data.min_audio_rate", with_default(&o.min_audio_rate),
      "lowest sample rate accepted, Hz (below: a corrupt header; resampling 1 Hz to 16 kHz is 16,000x the "
      "memory)")("data.max_audio_rate", with_default(&o.max_audio_rate), "highest sample rate accepted, Hz")(
      "data.loader_workers", with_default(&o.loader_workers),
      "background batch threads (0: batches made on the training thread)")(
      "data.corpus_jobs", with_default(&o.corpus_jobs), "processes for corpus generation (0: all cores)");
}

void add_model_options(po::options_description& model, TrainOptions& o) {
  model.add_options()("model.speech_tower", with_default(&o.speech_tower),
                      "conformer (from scratch) | whisper (the pretrained Whisper encoder)")(
      "model.speech_weights", with_default(&o.speech_weights),
      "Whisper folder: model.bin (CTranslate2) or config.json + model.safetensors (empty: the installed "
      "tiny.en)")(
      "model.speech_train_layers", with_default(&o.speech_train_layers),
      "whisper: top encoder blocks trained (the rest frozen; their outputs cached when SpecAugment is off)")(
      "model.speech_preset", with_default(&o.speech_preset), "Conformer size: tiny | mini | small")(
      "model.d_model", with_default(&o.d_model), "override the preset (0: keep)")(
      "model.num_layers", with_default(&o.num_layers), "override the preset (0: keep)")(
      "model.num_heads", with_default(&o.num_heads), "override the preset (0: keep)")(
      "model.ffn_dim", with_default(&o.ffn_dim), "override the preset (0: keep)")(
      "model.conv_kernel", with_default(&o.conv_kernel), "depthwise conv kernel, odd (0: keep)")(
      "model.dropout", with_default(&o.dropout), "dropout of the speech tower (< 0: keep the preset's)")(
      "model.text_model", with_default(&o.text_model),
      "frozen text tower folder (empty: the installed all-MiniLM-L6-v2)")(
      "model.speech_init", with_default(&o.speech_init),
      "speech tower file to start from (written by --task speech_asr; empty: random initialization)");
}

// The [data] and [model] checks and the task's, each error an OptionError naming its option.
// speech_train_layers_given: named on the command line or not the default (loss_options.h).
void check_speech_options(const TrainOptions& o, bool speech_train_layers_given) {
  const TrainOptions defaults;
  CW_CHECK(o.corpus_size == "tiny" || o.corpus_size == "small" || o.corpus_size == "full" ||
               o.corpus_size == "none",
           OptionError, "--data.corpus_size must be tiny, small, full or none, got '", o.corpus_size, "'");
  CW_CHECK(o.max_frames == 0 || (o.max_frames >= 16 && o.max_frames <= kMaxFrames), OptionError,
           "--data.max_frames must be 0 or in [16, ", kMaxFrames,
           "] (16: the Conformer's subsampling; the top: 1000 s of audio, longer than any utterance), got ",
           o.max_frames);
  CW_CHECK(std::isfinite(o.max_audio_seconds) && o.max_audio_seconds > 0 && o.max_audio_seconds <= 86400,
           OptionError,
           "--data.max_audio_seconds must be in (0, 86400] (a day of audio is 5.5 GB at 16 kHz), got ",
           o.max_audio_seconds);
  check_count("data.min_audio_rate", o.min_audio_rate, 1, o.max_audio_rate, "at most --data.max_audio_rate");
  check_count("data.max_audio_rate", o.max_audio_rate, 1, 10'000'000,
              "10 MHz: above any audio converter; higher is a corrupt header");
  check_count("data.loader_workers", o.loader_workers, 0, kMaxWorkers,
              "0: on the training thread; more threads than any machine has cores");
  check_count("data.corpus_jobs", o.corpus_jobs, 0, kMaxWorkers,
              "0: all cores; more processes than any machine has cores");
  CW_CHECK(o.speech_tower == "conformer" || o.speech_tower == "whisper", OptionError,
           "--model.speech_tower must be conformer or whisper, got '", o.speech_tower, "'");
  CW_CHECK(o.speech_train_layers >= 0 && o.speech_train_layers <= 64, OptionError,
           "--model.speech_train_layers must be in [0, 64], got ", o.speech_train_layers);
  CW_CHECK(o.speech_tower == "whisper" || (o.speech_weights.empty() && !speech_train_layers_given),
           OptionError,
           "--model.speech_weights and --model.speech_train_layers apply to --model.speech_tower whisper");
  CW_CHECK(o.speech_tower == "conformer" || (o.speech_init.empty() && o.task == "speech_text"), OptionError,
           "--model.speech_tower whisper trains with --task speech_text and no --model.speech_init");
  CW_CHECK(o.speech_preset == "tiny" || o.speech_preset == "mini" || o.speech_preset == "small", OptionError,
           "--model.speech_preset must be tiny, mini or small, got '", o.speech_preset, "'");
  check_count("model.d_model", o.d_model, 0, kMaxWidth,
              "0 keeps the preset's; one 65536^2 f32 matrix is 16 GiB");
  check_count("model.ffn_dim", o.ffn_dim, 0, kMaxWidth,
              "0 keeps the preset's; one 65536^2 f32 matrix is 16 GiB");
  check_count("model.num_layers", o.num_layers, 0, kMaxLayers,
              "0 keeps the preset's; deeper than any published encoder");
  check_count("model.num_heads", o.num_heads, 0, kMaxHeads,
              "0 keeps the preset's; more than any published model");
  check_count("model.conv_kernel", o.conv_kernel, 0, kMaxConvKernel,
              "0 keeps the preset's; 2.5 s of 10 ms frames");
  CW_CHECK(o.conv_kernel == 0 || o.conv_kernel % 2 == 1, OptionError, "--model.conv_kernel must be odd, got ",
           o.conv_kernel);
  CW_CHECK(std::isfinite(o.dropout) && o.dropout < 1.0, OptionError,
           "--model.dropout must be < 1 and finite (< 0 keeps the preset's), got ", o.dropout);
  // The Conformer's sizes mean nothing to the Whisper tower (its sizes come with its weights).
  CW_CHECK(o.speech_tower == "conformer" ||
               (o.speech_preset == defaults.speech_preset && o.d_model == 0 && o.num_layers == 0 &&
                o.num_heads == 0 && o.ffn_dim == 0 && o.conv_kernel == 0 && o.dropout < 0),
           OptionError,
           "--model.speech_preset, d_model, num_layers, num_heads, ffn_dim, conv_kernel and dropout apply to "
           "--model.speech_tower conformer (the Whisper tower's sizes come with its weights)");
  CW_CHECK(o.task == "speech_text" || o.task == "speech_asr", OptionError,
           "--task must be speech_text or speech_asr with these options, got '", o.task, "'");
  CW_CHECK(o.speech_init.empty() || o.task == "speech_text", OptionError,
           "--model.speech_init applies to --task speech_text (the tower it starts from is what speech_asr "
           "writes)");
}

}  // namespace

ParsedTrainOptions parse_train_options(int argc, const char* const* argv, std::ostream& out) {
  ParsedTrainOptions parsed;
  TrainOptions& o = parsed.options;
  LossSpelling ls(o.loss);
  GeneralOptions g;
  // Read signed: Boost reads "-1" into an unsigned as 2^64 - 1 without a word.
  int64_t seed = static_cast<int64_t>(o.seed);
  po::options_description general("General"), data("Data [data]"), model("Model [model]"),
      loss("Loss [loss]"), optim("Optimization [optim]"), run("Run [run]"),
      dist("Data-parallel training [dist] (launch: mpirun -np N train ...)"), eval("Evaluation [eval]");
  add_general_options(general, g, o.task,
                      "speech_text | speech_asr (CTC pretraining of the speech tower; the options below) | "
                      "image_ssl | image_text (their own: train --task image_text --help)");
  add_data_options(data, o);
  add_model_options(model, o);
  add_loss_options(loss, o.loss, ls);
  add_loop_options(o, seed, optim, run, dist, eval);
  po::options_description all(
      "train: CWCL / InfoNCE training of the speech tower against a frozen text tower");
  all.add(general).add(data).add(model).add(loss).add(optim).add(run).add(dist).add(eval);

  parse_options(argc, argv, all, g, "see --help");
  if (g.help) {
    out << all << "\n";
    parsed.exit_now = true;
    return parsed;
  }
  const TrainOptions defaults;
  read_loss_options(o.loss, ls, defaults.loss, g.command_line);
  check_speech_options(o, o.speech_train_layers != defaults.speech_train_layers ||
                              std::find(g.command_line.begin(), g.command_line.end(),
                                        "model.speech_train_layers") != g.command_line.end());
  check_loop_options(o, seed);
  if (g.print_config) {
    out << o.to_ini();
    parsed.exit_now = true;
  }
  return parsed;
}

}  // namespace cw::train
