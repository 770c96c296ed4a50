// `eval`: zero-shot evaluation of a trained speech tower. Reads a run folder written by `train`
// (its config.ini and a checkpoint), embeds every benchmark utterance, and prints intent and
// keyword accuracy (prompt ensemble and per template), retrieval recall and the structure
// correlation as a table and as JSON. Image-text runs get their zero-shot image classification,
// speech_asr runs their validation character error rate. With --wav it classifies the given audio
// files instead (top intents and keywords; --embeddings writes their embeddings); with --export
// it writes the run's towers under Hugging Face / torchaudio names instead (run_export.h). Exit status:
// 0 done, 2 a bad option, 1 any other error (a run folder or data that cannot be read).
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "core/atomic_file.h"
#include "core/cpu/blas_kernels.h"
#include "core/cpu/denormals.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "models/whisper_encoder.h"
#include "train/asr_trainer.h"
#include "train/cascade.h"
#include "train/checkpoint.h"
#include "train/evaluator.h"
#include "train/image_options.h"
#include "train/image_text_trainer.h"
#include "train/linear_fit.h"
#include "train/option_default.h"
#include "train/option_reading.h"
#include "train/progress.h"
#include "train/run_export.h"
#include "train/speech_model.h"
#include "train/verdict.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace cw;
using namespace cw::train;

namespace {

struct EvalArgs {
  std::string run_dir, checkpoint, corpus, json_out, baseline, embeddings_out, export_dir;
  std::vector<std::string> wavs;
  int64_t batch_size = 64, cascade_beam = 5, top = 3;
};

// The command line; std::nullopt when --help was printed.
std::optional<EvalArgs> parse_eval_args(int argc, char** argv) {
  EvalArgs a;
  po::options_description desc("eval: zero-shot evaluation of a speech tower trained by `train`");
  desc.add_options()("help,h", "print this help")(
      "run", po::value(&a.run_dir)->required(), "run folder of `train` (holds config.ini and checkpoints/)")(
      "checkpoint", po::value(&a.checkpoint),
      "a step folder to evaluate (default: the run's latest checkpoint)")(
      "corpus", po::value(&a.corpus), "evaluate on this corpus instead of the run's")(
      "eval.batch_size", with_default(&a.batch_size), "utterances per batch (as train's --eval.batch_size)")(
      "batch-size", po::value<int64_t>(), "deprecated spelling of --eval.batch_size")(
      "json", po::value(&a.json_out), "also write the results as JSON to this file")(
      "baseline", po::value(&a.baseline),
      "instead of the checkpoint: untrained (the run's tower as built, projection at init) | lstsq (a "
      "Whisper tower's frozen encoder with its projection fitted by least squares to the training "
      "transcripts' embeddings) | text (the text tower on each test utterance's own transcript: the upper "
      "bound) | cascade (Whisper's transcript of each test utterance, embedded by the text tower)")(
      "cascade-beam", with_default(&a.cascade_beam),
      "beam size of --baseline cascade's decoding (1: greedy)")(
      "wav", po::value(&a.wavs)->multitoken(),
      "classify these audio files instead (any format and rate the front end reads): each file's top "
      "intents and keywords with their cosine scores, against the run corpus's class prompts")(
      "top", with_default(&a.top), "--wav: classes printed per file")(
      "embeddings", po::value(&a.embeddings_out),
      "--wav: also write the files' speech embeddings (N, D) f32, in --wav order, to this .npy or "
      ".safetensors file")(
      "export", po::value(&a.export_dir),
      "instead of evaluating: write the run's towers (the checkpoint's) into this new folder under Hugging "
      "Face / torchaudio names, with the projection heads, the logit scale and a README.txt on loading them "
      "in PyTorch");
  po::variables_map vm;
  // No abbreviations, no %placeholders%; a bare word is most likely the run folder (option_reading.h).
  store_command_line(argc, argv, desc, vm, false, "run");
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return std::nullopt;
  }
  po::notify(vm);
  // One spelling per option across the binaries: train's --eval.batch_size. The old one still
  // works, with a note, and the error messages name the spelling that was used.
  const char* batch_option = "eval.batch_size";
  if (vm.count("batch-size")) {
    CW_CHECK(vm["eval.batch_size"].defaulted(), OptionError,
             "--batch-size and --eval.batch_size name the same option; give --eval.batch_size only");
    a.batch_size = vm["batch-size"].as<int64_t>();
    batch_option = "batch-size";
  }
  check_count(batch_option, a.batch_size, 1, kMaxBatch, "items embedded at once, at most a training batch");
  if (vm.count("batch-size")) std::cerr << "eval: --batch-size is deprecated; use --eval.batch_size\n";
  check_count("top", a.top, 1, 1000, "classes printed per file");
  CW_CHECK(!vm.count("wav") || !a.wavs.empty(), OptionError, "--wav needs at least one audio file");
  CW_CHECK(a.embeddings_out.empty() || !a.wavs.empty(), OptionError,
           "--embeddings writes the embeddings of --wav files; give --wav too");
  CW_CHECK(a.embeddings_out.empty() || a.embeddings_out.ends_with(".npy") ||
               a.embeddings_out.ends_with(".safetensors"),
           OptionError, "--embeddings must name a .npy or .safetensors file, got '", a.embeddings_out, "'");
  CW_CHECK(a.wavs.empty() || a.baseline.empty() || a.baseline == "untrained", OptionError,
           "--wav classifies with the run's speech tower (or --baseline untrained), not --baseline ",
           a.baseline);
  CW_CHECK(a.export_dir.empty() ||
               (a.wavs.empty() && a.baseline.empty() && a.json_out.empty() && a.corpus.empty()),
           OptionError, "--export writes the run's towers; it takes --run and --checkpoint only");
  check_count("cascade-beam", a.cascade_beam, 1, 16,
              "Whisper decodes with beam 5; wider beams only cost time");
  CW_CHECK(a.baseline.empty() || a.baseline == "untrained" || a.baseline == "lstsq" || a.baseline == "text" ||
               a.baseline == "cascade",
           OptionError, "--baseline must be untrained, lstsq, text or cascade, got '", a.baseline, "'");
  return a;
}

// --baseline lstsq: the frozen Whisper encoder with its projection fitted by least squares to the
// training transcripts' embeddings, put into `model`. Returns the number of training pairs.
size_t fit_lstsq_projection(models::SpeechTextModel& model, const SpeechTextData& data, int64_t batch_size,
                            int64_t max_frames) {
  auto* tower = dynamic_cast<models::WhisperSpeechTower*>(model.speech.get());
  CW_CHECK(tower != nullptr, ValueError,
           "--baseline lstsq needs a Whisper tower (--model.speech_tower whisper)");
  std::vector<int64_t> rows(static_cast<size_t>(data.train.size()));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  tower->project = false;
  const Tensor pooled = embed_split(model, data.train, rows, batch_size, max_frames);  // (N, D)
  tower->project = true;
  const LinearFit fit = fit_linear(pooled, data.train_text.all());  // targets (N, D), read whole
  Tensor w = tower->proj->weight.data(), b = tower->proj->bias.data();
  w.copy_(fit.weight);
  b.copy_(fit.bias);
  return rows.size();
}

// (N, D) f32 as a NumPy .npy file (format 1.0: magic, header length, a Python dict literal padded
// to 64 bytes, then the little-endian data), readable by numpy.load.
void write_npy(const fs::path& path, const Tensor& x) {
  const Tensor f = x.to(DType::F32).contiguous();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(f.size(0)) +
                       ", " + std::to_string(f.size(1)) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ').push_back('\n');
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(f.data<float>()),
               static_cast<size_t>(f.numel()) * sizeof(float));
  write_file_atomic(path, bytes);
}

// --wav: each file embedded by the run's tower as an evaluation embeds a benchmark utterance
// (same front end, normalization and frozen blocks), then scored against the prompt ensemble's
// class embeddings (zero_shot.h) of the run corpus's intents and keywords.
void classify_audio_files(const EvalArgs& a, const TrainOptions& o, const SpeechModel& built,
                          const SpeechTextData& data, const std::string& what) {
  std::vector<Tensor> inputs;
  for (const std::string& file : a.wavs) {
    CW_CHECK(fs::is_regular_file(file), OptionError, "--wav ", file, ": no such file");
    inputs.push_back(tower_input(built, audio_features(o, file)));
  }
  const Tensor e = embed_utterances(
      *built.model, inputs.size(), [&](size_t i) { return inputs[i]; }, data.intent.cmvn, a.batch_size,
      "eval: --wav");
  const auto intents = top_classes(e, ensemble_classes(data.intent_classes.embeddings), a.top);
  const auto keywords = top_classes(e, ensemble_classes(data.kws_classes.embeddings), a.top);
  std::cout << "zero-shot classes of " << a.wavs.size() << " files by " << what << " (cosine; "
            << data.intent_classes.labels.size() << " intents, " << data.kws_classes.labels.size()
            << " keywords of " << data.corpus.string() << "):\n";
  nlohmann::json j = nlohmann::json::array();
  auto listed = [](const std::vector<std::pair<int64_t, double>>& top, const std::vector<std::string>& labels,
                   nlohmann::json& out) {
    std::ostringstream s;
    char score[32];
    for (const auto& [c, cos] : top) {
      std::snprintf(score, sizeof score, " %.3f", cos);
      s << "  " << labels[static_cast<size_t>(c)] << score;
      out.push_back({{"label", labels[static_cast<size_t>(c)]}, {"cosine", cos}});
    }
    return s.str();
  };
  for (size_t i = 0; i < a.wavs.size(); ++i) {
    nlohmann::json row = {
        {"file", a.wavs[i]}, {"intents", nlohmann::json::array()}, {"keywords", nlohmann::json::array()}};
    std::cout << a.wavs[i]
              << "\n  intents: " << listed(intents[i], data.intent_classes.labels, row["intents"])
              << "\n  keywords:" << listed(keywords[i], data.kws_classes.labels, row["keywords"]) << "\n";
    j.push_back(row);
  }
  if (!a.embeddings_out.empty()) {
    if (a.embeddings_out.ends_with(".npy"))
      write_npy(a.embeddings_out, e);
    else
      save_safetensors(a.embeddings_out, {{"embeddings", e.to(DType::F32).contiguous()}}, {{"model", what}});
    std::cout << "embeddings: " << a.embeddings_out << " (" << e.size(0) << " x " << e.size(1) << " f32)\n";
  }
  if (!a.json_out.empty()) write_file_atomic(a.json_out, j.dump(2) + "\n");
}

// A speech-text run: its checkpoint or a baseline, on every test row; table and JSON.
void evaluate_speech_text_run(const EvalArgs& a, const fs::path& config) {
  // Evaluation never generates a corpus: a missing one is an error naming the folder (a run
  // folder records absolute paths, so this one holds from any folder).
  std::vector<std::string> args = {"train", "--config", config.string(), "--data.corpus_size", "none"};
  if (!a.corpus.empty()) args.insert(args.end(), {"--data.corpus", a.corpus});
  std::vector<const char*> cargs;
  for (const auto& s : args) cargs.push_back(s.c_str());
  TrainOptions o = parse_train_options(static_cast<int>(cargs.size()), cargs.data(), std::cout).options;
  const LoadedCheckpoint ck = !a.baseline.empty() ? LoadedCheckpoint{} : a.checkpoint.empty() ? [&] {
    auto latest = load_latest_checkpoint(fs::path(a.run_dir) / "checkpoints");
    CW_CHECK(latest.has_value(), ValueError, "--run ", a.run_dir, ": no checkpoint in ", a.run_dir, "/checkpoints");
    return *latest;
  }()
                                                                            : load_checkpoint(a.checkpoint);
  const FrozenTextTower text = FrozenTextTower::load(
      data::find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
  SpeechTextData data = prepare_speech_text_data(o, text, std::cout);
  // The architecture comes from the run's configuration, exactly as train built it.
  SpeechModel built = build_speech_model(o, data, std::cout);
  models::SpeechTextModel& model = *built.model;
  if (a.baseline.empty()) {
    const nn::LoadReport rep = model.load_state_dict(ck.model, true);
    CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
  }
  if (!a.wavs.empty()) {
    classify_audio_files(a, o, built, data,
                         a.baseline.empty() ? ck.path.string() : std::string("the untrained tower"));
    return;
  }
  EvalResult r;
  std::string what;
  std::optional<CascadeResult> cascade;
  // Batches of at most a training batch's padded frames, as the run's own evaluations.
  const int64_t eval_frames = evaluation_batch_frames(o, built.frames_per_input);
  if (a.baseline.empty()) {
    r = evaluate(model, data, a.batch_size, 0, eval_frames);
    what = ck.path.string() + " (step " + std::to_string(ck.state.step) + ")";
  } else if (a.baseline == "untrained") {
    r = evaluate(model, data, a.batch_size, 0, eval_frames);
    what = "the untrained tower (seed " + std::to_string(o.seed) + ")";
  } else if (a.baseline == "lstsq") {
    const size_t pairs = fit_lstsq_projection(model, data, a.batch_size, eval_frames);
    r = evaluate(model, data, a.batch_size, 0, eval_frames);
    what = "the frozen Whisper encoder with a least-squares projection (" + std::to_string(pairs) +
           " training pairs)";
  } else if (a.baseline == "cascade") {
    models::WhisperDecodeOptions decode;
    decode.beam_size = a.cascade_beam;
    const fs::path whisper_dir = data::find_whisper_dir(
        o.speech_weights.empty() ? std::nullopt : std::optional<fs::path>(o.speech_weights));
    cascade = evaluate_cascade(data, text, whisper_dir, decode, std::cout);
    r = cascade->eval;
    what = "the ASR cascade (Whisper " + whisper_dir.filename().string() + ", beam " +
           std::to_string(a.cascade_beam) + ", then the text tower)";
  } else {
    r = evaluate_text_bound(data, text);
    what = "the text tower on each utterance's own transcript (upper bound)";
  }
  const ChanceLevels chance = chance_levels(data, r);
  std::cout << "zero-shot results of " << what << ":\n" << r.table() << chance.line();
  nlohmann::json j = r.to_json();
  j["chance"] = chance.to_json();
  if (cascade) {
    std::cout << "cascade: word error rate " << 100 * cascade->word_errors.rate() << "% ("
              << cascade->word_errors.errors << " errors in " << cascade->word_errors.words
              << " reference words, case and punctuation ignored)\n";
    j["wer"] = cascade->word_errors.rate();
    j["wer_words"] = cascade->word_errors.words;
  }
  j["checkpoint"] = a.baseline.empty() ? ck.path.string() : "baseline:" + a.baseline;
  j["step"] = ck.state.step;
  std::cout << j.dump() << "\n";
  if (!a.json_out.empty()) write_file_atomic(a.json_out, j.dump(2) + "\n");
}

}  // namespace

int main(int argc, char** argv) {
  cw::reexec_with_fast_blas_kernels(argv);   // before any GEMM: see core/cpu/blas_kernels.h
  cw::set_flush_denormals(true);             // subnormals cost 5x in the backward: core/cpu/denormals.h
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a redirected log shows each line as it is written
  set_progress_log(&std::cout);
  try {
    const std::optional<EvalArgs> a = parse_eval_args(argc, argv);
    if (!a) return 0;
    const fs::path config = fs::path(a->run_dir) / "config.ini";
    CW_CHECK(fs::is_regular_file(config), OptionError, "--run ", a->run_dir,
             ": no config.ini (not a folder written by train?)");
    const std::string config_arg = config.string();
    const char* task_args[] = {"eval", "--config", config_arg.c_str()};
    const std::string task = requested_task(3, task_args);
    if (!a->export_dir.empty())  // the towers under upstream names instead (run_export.h)
      export_run(a->run_dir, a->checkpoint, a->export_dir, std::cout);
    else if (task == "image_text")  // zero-shot image classification instead (image_text_trainer.h)
      evaluate_image_text_run(a->run_dir, a->checkpoint, a->json_out, std::cout);
    else if (task == "speech_asr")  // the recognizer's validation CER (asr_trainer.h)
      evaluate_speech_asr_run(a->run_dir, a->checkpoint, a->json_out, std::cout);
    else
      evaluate_speech_text_run(*a, config);
    return 0;
  } catch (...) {
    return report_error("eval", std::cerr);
  }
}
