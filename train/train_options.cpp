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

namespace cw::train {
namespace po = boost::program_options;

namespace {

// The loss options as the user spells them (enums become strings).
struct LossStrings {
  std::string kind = "cwcl", kernel = "exp", mask = "none", reverse = "weighted", reduction = "mean",
              linear_weights = "auto";
};

std::string bool_str(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string TrainOptions::to_ini() const {
  // CWCL's own options are written for CWCL runs only: an InfoNCE config that named them would be
  // rejected when read back (they contradict --loss.kind infonce).
  std::ostringstream cwcl_only_text;
  cwcl_only_text.precision(10);
  if (loss.loss == losses::LossKind::CWCL)
    cwcl_only_text << "\nkernel = " << losses::to_string(loss.kernel)
                   << "\nkernel_temperature = " << loss.kernel_temperature
                   << "\nmask = " << losses::to_string(loss.mask) << "\ntop_k = " << loss.top_k
                   << "\nthreshold = " << loss.threshold;
  const std::string cwcl_only = cwcl_only_text.str();
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
    << "\n\n"
    << "[loss]\n"
    << "kind = " << losses::to_string(loss.loss) << cwcl_only
    << "\nreverse = " << losses::to_string(loss.reverse)
    << "\nreduction = " << losses::to_string(loss.reduction)
    << "\ninit_temperature = " << loss.init_temperature
    << "\nlearn_temperature = " << bool_str(loss.learn_temperature)
    << "\nmax_logit_scale = " << loss.max_logit_scale
    << "\nlinear_weights = " << losses::to_string(loss.linear_weights) << "\nblock_rows = " << loss.block_rows
    << "\nwhole_matrix_max_mb = " << loss.whole_matrix_max_mb << "\n\n"
    << "[optim]\n"
    << "steps = " << steps << "\nbatch_size = " << batch_size << "\nwarmup_steps = " << warmup_steps
    << "\nlr = " << lr << "\nmin_lr_ratio = " << min_lr_ratio << "\nweight_decay = " << weight_decay
    << "\nbeta1 = " << beta1 << "\nbeta2 = " << beta2 << "\neps = " << eps << "\ngrad_clip = " << grad_clip
    << "\n\n"
    << "[run]\n"
    << "seed = " << seed << "\nout = " << out << "\neval_every = " << eval_every
    << "\ncheckpoint_every = " << checkpoint_every << "\nkeep_last = " << keep_last
    << "\nlog_every = " << log_every << "\nresume = " << bool_str(resume) << "\nstop_after = " << stop_after
    << "\ndevice = " << device << "\nconv = " << conv << "\ntf32 = " << bool_str(tf32)
    << "\nthreads = " << threads << "\nprogress = " << progress << "\nplots = " << bool_str(plots) << "\n\n"
    << "[dist]\n"
    << "backend = " << dist_backend << "\ntimeout = " << dist_timeout << "\nbucket_mb = " << dist_bucket_mb
    << "\n\n"
    << "[eval]\n"
    << "batch_size = " << eval_batch_size << "\nmax_items = " << eval_max_items << "\n";
  return s.str();
}

ParsedTrainOptions parse_train_options(int argc, const char* const* argv, std::ostream& out) {
  ParsedTrainOptions parsed;
  TrainOptions& o = parsed.options;
  LossStrings ls;
  std::vector<std::string> config_files;
  // Read signed: Boost reads "-1" into an unsigned as 2^64 - 1 without a word.
  int64_t seed = static_cast<int64_t>(o.seed);

  po::options_description general("General");
  general.add_options()("help,h", "print this help and exit")(
      "config,c", po::value(&config_files)->composing(),
      "INI config file (repeatable; later files override earlier ones, the command line overrides all)")(
      "print-config", "print the resolved configuration as INI and exit")(
      // Read by train_main.cpp before this table (requested_task); accepted here so that an
      // explicit --task speech_text, or `task = speech_text` in a config file, is not an error.
      "task", po::value(&o.task)->default_value(o.task),
      "speech_text | speech_asr (CTC pretraining of the speech tower; the options below) | image_ssl | "
      "image_text (their own: train --task image_text --help)");

  po::options_description data("Data [data]");
  data.add_options()("data.corpus", po::value(&o.corpus)->default_value(o.corpus),
                     "speech corpus folder (made by tools/make_speech_corpus.py)")(
      "data.corpus_size", po::value(&o.corpus_size)->default_value(o.corpus_size),
      "size to generate when the corpus is missing: tiny|small|full, or none to never generate")(
      "data.feature_cache", po::value(&o.feature_cache)->default_value(o.feature_cache),
      "log-mel feature cache folder (empty: <corpus>/features)")(
      "data.max_frames", po::value(&o.max_frames)->default_value(o.max_frames),
      "crop training utterances to this many 10 ms frames (0: no crop)")(
      "data.spec_augment", po::value(&o.spec_augment)->default_value(o.spec_augment),
      "SpecAugment masks on training batches")(
      "data.bucket_by_length", po::value(&o.bucket_by_length)->default_value(o.bucket_by_length),
      "batch utterances of similar length together (less padding, but length-matched negatives)")(
      "data.max_audio_seconds", po::value(&o.max_audio_seconds)->default_value(o.max_audio_seconds),
      "longest audio file accepted, in seconds (a longer header is refused before reading)")(
      "data.min_audio_rate", po::value(&o.min_audio_rate)->default_value(o.min_audio_rate),
      "lowest sample rate accepted, Hz (below: a corrupt header; resampling 1 Hz to 16 kHz is 16,000x the "
      "memory)")("data.max_audio_rate", po::value(&o.max_audio_rate)->default_value(o.max_audio_rate),
                 "highest sample rate accepted, Hz")(
      "data.loader_workers", po::value(&o.loader_workers)->default_value(o.loader_workers),
      "background batch threads (0: batches made on the training thread)")(
      "data.corpus_jobs", po::value(&o.corpus_jobs)->default_value(o.corpus_jobs),
      "processes for corpus generation (0: all cores)");

  po::options_description model("Model [model]");
  model.add_options()("model.speech_tower", po::value(&o.speech_tower)->default_value(o.speech_tower),
                      "conformer (from scratch) | whisper (the pretrained Whisper encoder)")(
      "model.speech_weights", po::value(&o.speech_weights)->default_value(o.speech_weights),
      "Whisper folder: model.bin (CTranslate2) or config.json + model.safetensors (empty: the installed "
      "tiny.en)")(
      "model.speech_train_layers", po::value(&o.speech_train_layers)->default_value(o.speech_train_layers),
      "whisper: top encoder blocks trained (the rest frozen; their outputs cached when SpecAugment is off)")(
      "model.speech_preset", po::value(&o.speech_preset)->default_value(o.speech_preset),
      "Conformer size: tiny | mini | small")("model.d_model", po::value(&o.d_model)->default_value(o.d_model),
                                             "override the preset (0: keep)")(
      "model.num_layers", po::value(&o.num_layers)->default_value(o.num_layers),
      "override the preset (0: keep)")("model.num_heads", po::value(&o.num_heads)->default_value(o.num_heads),
                                       "override the preset (0: keep)")(
      "model.ffn_dim", po::value(&o.ffn_dim)->default_value(o.ffn_dim), "override the preset (0: keep)")(
      "model.conv_kernel", po::value(&o.conv_kernel)->default_value(o.conv_kernel),
      "depthwise conv kernel, odd (0: keep)")("model.dropout",
                                              po::value(&o.dropout)->default_value(o.dropout),
                                              "dropout of the speech tower (< 0: keep the preset's)")(
      "model.text_model", po::value(&o.text_model)->default_value(o.text_model),
      "frozen text tower folder (empty: the installed all-MiniLM-L6-v2)")(
      "model.speech_init", po::value(&o.speech_init)->default_value(o.speech_init),
      "speech tower file to start from (written by --task speech_asr; empty: random initialization)");

  po::options_description loss("Loss [loss]");
  loss.add_options()("loss.kind", po::value(&ls.kind)->default_value(ls.kind), "cwcl | infonce (CLIP/LiT)")(
      "loss.kernel", po::value(&ls.kernel)->default_value(ls.kernel),
      "CWCL weight kernel: linear (paper: cos/2 + 1/2) | exp (exp((cos - 1) / kernel_temperature))")(
      "loss.kernel_temperature",
      po::value(&o.loss.kernel_temperature)->default_value(o.loss.kernel_temperature),
      "temperature of the exp kernel")("loss.mask", po::value(&ls.mask)->default_value(ls.mask),
                                       "sparsify CWCL weights: none | topk | threshold")(
      "loss.top_k", po::value(&o.loss.top_k)->default_value(o.loss.top_k), "k of the topk mask")(
      "loss.threshold", po::value(&o.loss.threshold)->default_value(o.loss.threshold),
      "cosine threshold of the threshold mask")(
      "loss.reverse", po::value(&ls.reverse)->default_value(ls.reverse),
      "reverse (frozen -> trained) direction: weighted | infonce | none")(
      "loss.reduction", po::value(&ls.reduction)->default_value(ls.reduction),
      "combine the two directions: mean | sum")(
      "loss.init_temperature", po::value(&o.loss.init_temperature)->default_value(o.loss.init_temperature),
      "initial temperature (logit scale 1/T)")(
      "loss.learn_temperature", po::value(&o.loss.learn_temperature)->default_value(o.loss.learn_temperature),
      "learn the logit scale (CLIP) or keep it fixed")(
      "loss.max_logit_scale", po::value(&o.loss.max_logit_scale)->default_value(o.loss.max_logit_scale),
      "clamp of the logit scale")("loss.linear_weights",
                                  po::value(&ls.linear_weights)->default_value(ls.linear_weights),
                                  "linear-kernel implementation: auto | factored | blockwise (speed only)")(
      "loss.block_rows", po::value(&o.loss.block_rows)->default_value(o.loss.block_rows),
      "logit rows per block (0: automatic; speed only)")(
      "loss.whole_matrix_max_mb",
      po::value(&o.loss.whole_matrix_max_mb)->default_value(o.loss.whole_matrix_max_mb),
      "largest N x N matrix made whole, MiB (speed/memory only)");

  po::options_description optim("Optimization [optim]");
  optim.add_options()("optim.steps", po::value(&o.steps)->default_value(o.steps), "training steps")(
      "optim.batch_size", po::value(&o.batch_size)->default_value(o.batch_size),
      "pairs per step (the contrastive batch)")("optim.warmup_steps",
                                                po::value(&o.warmup_steps)->default_value(o.warmup_steps),
                                                "linear LR warmup steps")(
      "optim.lr", po::value(&o.lr)->default_value(o.lr), "peak learning rate (AdamW)")(
      "optim.min_lr_ratio", po::value(&o.min_lr_ratio)->default_value(o.min_lr_ratio),
      "cosine schedule ends at lr * min_lr_ratio")(
      "optim.weight_decay", po::value(&o.weight_decay)->default_value(o.weight_decay),
      "decoupled weight decay (not on biases, norms or the logit scale)")(
      "optim.beta1", po::value(&o.beta1)->default_value(o.beta1), "AdamW beta1")(
      "optim.beta2", po::value(&o.beta2)->default_value(o.beta2), "AdamW beta2")(
      "optim.eps", po::value(&o.eps)->default_value(o.eps), "AdamW epsilon")(
      "optim.grad_clip", po::value(&o.grad_clip)->default_value(o.grad_clip),
      "clip gradients to this global L2 norm (0: off)");

  po::options_description run("Run [run]");
  run.add_options()("run.seed", po::value(&seed)->default_value(seed),
                    "seed of init, data order, dropout, SpecAugment")(
      "run.out", po::value(&o.out)->default_value(o.out), "output folder")(
      "run.eval_every", po::value(&o.eval_every)->default_value(o.eval_every),
      "zero-shot evaluation every N steps (0: at the end)")(
      "run.checkpoint_every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
      "checkpoint every N steps (0: at the end)")(
      "run.keep_last", po::value(&o.keep_last)->default_value(o.keep_last), "checkpoints kept")(
      "run.log_every", po::value(&o.log_every)->default_value(o.log_every),
      "log a metrics line every N steps")("run.resume", po::value(&o.resume)->default_value(o.resume),
                                          "continue from <out>/checkpoints (latest)")(
      "run.stop_after", po::value(&o.stop_after)->default_value(o.stop_after),
      "stop after N steps of this process, with a checkpoint (0: run to --optim.steps); for time-boxed runs "
      "and "
      "resume tests")("run.device", po::value(&o.device)->default_value(o.device),
                      "cpu, cuda or cuda:N (CUDA: a build with the CUDA backend and a GPU; one rank)")(
      "run.conv", po::value(&o.conv)->default_value(o.conv),
      "convolutions on CUDA: auto (cuDNN for dense ones, our kernel for depthwise) | cudnn | native "
      "(im2col + cuBLAS, our depthwise kernel)")(
      "run.tf32", po::value(&o.tf32)->default_value(o.tf32),
      "CUDA: f32 matmuls and cuDNN convolutions may use TF32 tensor cores (10-bit mantissa inputs)")(
      "run.threads", po::value(&o.threads)->default_value(o.threads), "OpenMP threads (0: default)")(
      "run.progress", po::value(&o.progress)->default_value(o.progress), "auto | bar | lines")(
      "run.plots", po::value(&o.plots)->default_value(o.plots), "render PNG plots with gnuplot at the end");

  po::options_description dist("Data-parallel training [dist] (launch: mpirun -np N train ...)");
  dist.add_options()(
      "dist.backend", po::value(&o.dist_backend)->default_value(o.dist_backend),
      "auto (MPI when started by mpirun/srun) | none (one process) | mpi | nccl (not wired yet: refused)")(
      "dist.timeout", po::value(&o.dist_timeout)->default_value(o.dist_timeout),
      "seconds a collective may wait for the other ranks before the job is ended")(
      "dist.bucket_mb", po::value(&o.dist_bucket_mb)->default_value(o.dist_bucket_mb),
      "MiB per gradient all-reduce bucket");

  po::options_description eval("Evaluation [eval]");
  eval.add_options()("eval.batch_size", po::value(&o.eval_batch_size)->default_value(o.eval_batch_size),
                     "utterances per evaluation batch")(
      "eval.max_items", po::value(&o.eval_max_items)->default_value(o.eval_max_items),
      "cap on items per benchmark split in mid-run evaluations (0: all)");

  po::options_description all(
      "train: CWCL / InfoNCE training of the speech tower against a frozen text tower");
  all.add(general).add(data).add(model).add(loss).add(optim).add(run).add(dist).add(eval);

  po::variables_map vm;
  std::vector<std::string> command_line;  // the option names given there
  try {
    // po::store keeps the first value stored for an option: the command line goes first so it
    // wins over every config file.
    command_line = store_command_line(argc, argv, all, vm);
    if (vm.count("config")) store_config_files(vm["config"].as<std::vector<std::string>>(), all, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw OptionError(std::string(e.what()) + " (see --help)");
  }
  if (vm.count("help")) {
    out << all << "\n";
    parsed.exit_now = true;
    return parsed;
  }

  // The loss parsers name the valid spellings but not the option; say which option it was.
  auto parse_as = [](const char* option, auto parse, const std::string& value) {
    try {
      return parse(value);
    } catch (const ValueError& e) {
      throw OptionError(std::string("--") + option + ": " + e.what());
    }
  };
  o.loss.loss = parse_as("loss.kind", losses::parse_loss_kind, ls.kind);
  o.loss.kernel = parse_as("loss.kernel", losses::parse_weight_kernel, ls.kernel);
  o.loss.mask = parse_as("loss.mask", losses::parse_weight_mask, ls.mask);
  o.loss.reverse = parse_as("loss.reverse", losses::parse_reverse_direction, ls.reverse);
  o.loss.reduction = parse_as("loss.reduction", losses::parse_direction_reduction, ls.reduction);
  o.loss.linear_weights =
      parse_as("loss.linear_weights", losses::parse_linear_weights_form, ls.linear_weights);
  try {
    o.loss.validate();
  } catch (const ValueError& e) {
    throw OptionError(std::string("[loss] options: ") + e.what());
  }

  // Contradictions and bad values, each named by its option.
  // An option counts as given when the command line names it or its value is not the default:
  // a config file from --print-config (or a run's config.ini) lists every option, defaults
  // included, and must read back without tripping the checks below.
  const TrainOptions defaults;
  const LossStrings default_strings;
  const std::map<std::string, bool> non_default = {
      {"loss.kernel", ls.kernel != default_strings.kernel},
      {"loss.kernel_temperature", o.loss.kernel_temperature != defaults.loss.kernel_temperature},
      {"loss.mask", ls.mask != default_strings.mask},
      {"loss.top_k", o.loss.top_k != defaults.loss.top_k},
      {"loss.threshold", o.loss.threshold != defaults.loss.threshold},
      {"model.speech_train_layers", o.speech_train_layers != defaults.speech_train_layers}};
  auto on_command_line = [&](const std::string& name) {
    return std::find(command_line.begin(), command_line.end(), name) != command_line.end();
  };
  auto given = [&](const char* name) { return on_command_line(name) || non_default.at(name); };
  if (o.loss.loss == losses::LossKind::InfoNCE)
    for (const char* n :
         {"loss.kernel", "loss.kernel_temperature", "loss.mask", "loss.top_k", "loss.threshold"})
      CW_CHECK(!given(n), OptionError, "--", n, " is a CWCL option but --loss.kind is infonce");
  if (o.loss.kernel != losses::WeightKernel::Exp)
    CW_CHECK(!given("loss.kernel_temperature"), OptionError,
             "--loss.kernel_temperature is set but --loss.kernel is not exp");
  CW_CHECK(!(given("loss.top_k") && o.loss.mask != losses::WeightMask::TopK), OptionError,
           "--loss.top_k is set but --loss.mask is not topk");
  CW_CHECK(!(given("loss.threshold") && o.loss.mask != losses::WeightMask::Threshold), OptionError,
           "--loss.threshold is set but --loss.mask is not threshold");
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
  CW_CHECK(o.speech_tower == "whisper" || (o.speech_weights.empty() && !given("model.speech_train_layers")),
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
  check_loss_ranges(o.loss);
  check_optim_options(o);
  check_run_options(o, seed);
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
  CW_CHECK(o.task == "speech_text" || o.task == "speech_asr", OptionError,
           "--task must be speech_text or speech_asr with these options, got '", o.task, "'");
  CW_CHECK(o.speech_init.empty() || o.task == "speech_text", OptionError,
           "--model.speech_init applies to --task speech_text (the tower it starts from is what speech_asr "
           "writes)");
  check_count("eval.batch_size", o.eval_batch_size, 1, kMaxBatch,
              "items embedded at once, at most a training batch");
  check_count("eval.max_items", o.eval_max_items, 0, kMaxItems, "0: all; more than any data set here");
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
  o.seed = static_cast<uint64_t>(seed);

  if (vm.count("print-config")) {
    out << o.to_ini();
    parsed.exit_now = true;
  }
  return parsed;
}

// ---- Reading options as untrusted input

namespace {

namespace fs = std::filesystem;

// Boost.Program_options 1.74 fills its error messages by replacing each %name% placeholder until
// none is left, so an option or value that holds one (--%canonical_option%, --optim.lr %value%)
// loops forever as soon as the error is printed. Such text is refused before Boost sees it.
void refuse_placeholders(const std::string& text, const std::string& where) {
  for (size_t i = text.find('%'); i != std::string::npos; i = text.find('%', i + 1)) {
    size_t j = i + 1;
    while (j < text.size() && (std::islower(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
    CW_CHECK(j == i + 1 || j == text.size() || text[j] != '%', OptionError, where, ": '",
             text.substr(i, j + 1 - i),
             "' is refused: a %word% in an option or value hangs Boost.Program_options' error messages");
  }
}

constexpr size_t kMaxConfigBytes = size_t{1} << 20;  // a config file is a few KiB
constexpr int kMaxConfigFiles = 64;                  // files read in all: a tree of includes stays small

// Reads config files and their includes depth first (see store_config_files).
struct ConfigReader {
  const po::options_description& desc;
  po::variables_map& vm;
  bool allow_unregistered;
  std::vector<std::pair<fs::path, std::string>> chain;  // open files: canonical path, as named
  int files_read = 0;

  std::string chain_str(const std::string& last) const {
    std::string s;
    for (const auto& c : chain) s += "'" + c.second + "' -> ";
    return s + "'" + last + "'";
  }

  void read(const fs::path& file) {
    const std::string name = file.string();
    const std::string where =
        "config file '" + name + "'" + (chain.empty() ? "" : " (included by '" + chain.back().second + "')");
    CW_CHECK(static_cast<int>(chain.size()) < kMaxConfigDepth, OptionError, where,
             ": includes nest deeper than ", kMaxConfigDepth, " files: ", chain_str(name));
    CW_CHECK(++files_read <= kMaxConfigFiles, OptionError, where, ": more than ", kMaxConfigFiles,
             " config files read in all (includes of includes?)");
    std::error_code ec;
    const fs::path key = fs::weakly_canonical(file, ec);
    for (const auto& c : chain)
      CW_CHECK(c.first != key, OptionError, where,
               ": config files include each other in a cycle: ", chain_str(name));
    CW_CHECK(!fs::is_directory(file, ec), OptionError, where, " is a folder, not a config file");
    std::ifstream in(file, std::ios::binary);
    CW_CHECK(in.good(), OptionError, where, ": cannot open it");
    std::string text(kMaxConfigBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    CW_CHECK(text.size() <= kMaxConfigBytes, OptionError, where, " is larger than 1 MiB: not a config file");
    std::istringstream lines(text);
    int line_no = 0;
    for (std::string line; std::getline(lines, line);)  // Boost drops a line's text from '#' on
      refuse_placeholders(line.substr(0, line.find('#')), where + " line " + std::to_string(++line_no));

    std::vector<std::string> includes;
    try {
      std::istringstream is(text);
      po::parsed_options parsed = po::parse_config_file(is, desc, allow_unregistered);
      // Includes are read below, not stored: vm["config"] keeps the command line's files.
      auto& opts = parsed.options;
      for (auto it = opts.begin(); it != opts.end();) {
        if (it->string_key != "config") {
          ++it;
          continue;
        }
        includes.insert(includes.end(), it->value.begin(), it->value.end());
        it = opts.erase(it);
      }
      po::store(parsed, vm);
    } catch (const po::error& e) {
      throw OptionError(where + ": " + e.what());
    }
    // The including file's own lines were stored first, so they win over its includes; the
    // includes go last-to-first, so a later one wins over an earlier one.
    chain.emplace_back(key, name);
    for (auto it = includes.rbegin(); it != includes.rend(); ++it) {
      const fs::path inc(*it);
      read(inc.is_absolute() ? inc : file.parent_path() / inc);
    }
    chain.pop_back();
  }
};

}  // namespace

std::vector<std::string> store_command_line(int argc, const char* const* argv,
                                            const po::options_description& desc, po::variables_map& vm,
                                            bool allow_unregistered) {
  for (int i = 1; i < argc; ++i) refuse_placeholders(argv[i], std::string("command line '") + argv[i] + "'");
  po::command_line_parser parser(argc, argv);
  parser.options(desc).style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing);
  if (allow_unregistered) parser.allow_unregistered();
  const po::parsed_options parsed = parser.run();
  po::store(parsed, vm);
  std::vector<std::string> names;
  for (const auto& opt : parsed.options) names.push_back(opt.string_key);
  return names;
}

void store_config_files(const std::vector<std::string>& files, const po::options_description& desc,
                        po::variables_map& vm, bool allow_unregistered) {
  ConfigReader reader{desc, vm, allow_unregistered, {}, 0};
  // po::store keeps the first value stored for an option: last file first.
  for (auto it = files.rbegin(); it != files.rend(); ++it) reader.read(*it);
}

void check_count(const char* option, int64_t value, int64_t lo, int64_t hi, const char* why) {
  CW_CHECK(value >= lo && value <= hi, OptionError, "--", option, " must be in [", lo, ", ", hi, "] (", why,
           "), got ", value);
}

void check_loss_ranges(const losses::ContrastiveConfig& loss) {
  check_count("loss.top_k", loss.top_k, 1, kMaxBatch, "pairs of a batch, at most 65536");
  check_count("loss.block_rows", loss.block_rows, 0, kMaxBatch,
              "0: automatic; rows of a batch's logits, at most 65536");
  check_count("loss.whole_matrix_max_mb", loss.whole_matrix_max_mb, 0, int64_t{1} << 20,
              "MiB; 1 TiB is more memory than any machine has");
}

int report_error(const char* binary, std::ostream& err) {
  try {
    throw;
  } catch (const OptionError& e) {
    err << binary << ": error: " << e.what() << "\n";
    return 2;
  } catch (const po::error& e) {
    err << binary << ": error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::bad_alloc&) {
    err << binary << ": error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    err << binary << ": error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    err << binary << ": error: an unknown exception\n";
    return 1;
  }
}

}  // namespace cw::train
