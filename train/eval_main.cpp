// `eval`: zero-shot evaluation of a trained speech tower. Reads a run folder written by `train`
// (its config.ini and a checkpoint), embeds every benchmark utterance, and prints intent and
// keyword accuracy (prompt ensemble and per template), retrieval recall and the structure
// correlation as a table and as JSON. Image-text runs get their zero-shot image classification,
// speech_asr runs their validation character error rate. Exit status: 0 done, 2 a bad option,
// 1 any other error (a run folder or data that cannot be read).
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "core/cpu/blas_kernels.h"
#include "core/cpu/denormals.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "models/whisper_encoder.h"
#include "train/asr_trainer.h"
#include "train/atomic_file.h"
#include "train/cascade.h"
#include "train/checkpoint.h"
#include "train/evaluator.h"
#include "train/image_options.h"
#include "train/image_text_trainer.h"
#include "train/linear_fit.h"
#include "train/speech_model.h"
#include "train/verdict.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace cw;
using namespace cw::train;

namespace {

struct EvalArgs {
  std::string run_dir, checkpoint, corpus, json_out, baseline;
  int64_t batch_size = 64, cascade_beam = 5;
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
      "batch-size", po::value(&a.batch_size)->default_value(a.batch_size), "utterances per batch")(
      "json", po::value(&a.json_out), "also write the results as JSON to this file")(
      "baseline", po::value(&a.baseline),
      "instead of the checkpoint: untrained (the run's tower as built, projection at init) | lstsq (a "
      "Whisper tower's frozen encoder with its projection fitted by least squares to the training "
      "transcripts' embeddings) | text (the text tower on each test utterance's own transcript: the upper "
      "bound) | cascade (Whisper's transcript of each test utterance, embedded by the text tower)")(
      "cascade-beam", po::value(&a.cascade_beam)->default_value(a.cascade_beam),
      "beam size of --baseline cascade's decoding (1: greedy)");
  po::variables_map vm;
  store_command_line(argc, argv, desc, vm);  // no abbreviations, no %placeholders% (option_reading.h)
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return std::nullopt;
  }
  po::notify(vm);
  check_count("batch-size", a.batch_size, 1, kMaxBatch, "items embedded at once, at most a training batch");
  check_count("cascade-beam", a.cascade_beam, 1, 16,
              "Whisper decodes with beam 5; wider beams only cost time");
  CW_CHECK(a.baseline.empty() || a.baseline == "untrained" || a.baseline == "lstsq" || a.baseline == "text" ||
               a.baseline == "cascade",
           OptionError, "--baseline must be untrained, lstsq, text or cascade, got '", a.baseline, "'");
  return a;
}

// --baseline lstsq: the frozen Whisper encoder with its projection fitted by least squares to the
// training transcripts' embeddings, put into `model`. Returns the number of training pairs.
size_t fit_lstsq_projection(models::SpeechTextModel& model, const SpeechTextData& data, int64_t batch_size) {
  auto* tower = dynamic_cast<models::WhisperSpeechTower*>(model.speech.get());
  CW_CHECK(tower != nullptr, ValueError,
           "--baseline lstsq needs a Whisper tower (--model.speech_tower whisper)");
  std::vector<int64_t> rows(static_cast<size_t>(data.train.size()));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  tower->project = false;
  const Tensor pooled = embed_split(model, data.train, rows, batch_size);  // (N, D)
  tower->project = true;
  const LinearFit fit = fit_linear(pooled, data.train_text);
  Tensor w = tower->proj->weight.data(), b = tower->proj->bias.data();
  w.copy_(fit.weight);
  b.copy_(fit.bias);
  return rows.size();
}

// A speech-text run: its checkpoint or a baseline, on every test row; table and JSON.
void evaluate_speech_text_run(const EvalArgs& a, const fs::path& config) {
  std::vector<std::string> args = {"train", "--config", config.string()};
  if (!a.corpus.empty()) args.insert(args.end(), {"--data.corpus", a.corpus, "--data.corpus_size", "none"});
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
      find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
  SpeechTextData data = prepare_speech_text_data(o, text, std::cout);
  // The architecture comes from the run's configuration, exactly as train built it.
  SpeechModel built = build_speech_model(o, data, std::cout);
  models::SpeechTextModel& model = *built.model;
  EvalResult r;
  std::string what;
  std::optional<CascadeResult> cascade;
  if (a.baseline.empty()) {
    const nn::LoadReport rep = model.load_state_dict(ck.model, true);
    CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
    r = evaluate(model, data, a.batch_size, 0);
    what = ck.path.string() + " (step " + std::to_string(ck.state.step) + ")";
  } else if (a.baseline == "untrained") {
    r = evaluate(model, data, a.batch_size, 0);
    what = "the untrained tower (seed " + std::to_string(o.seed) + ")";
  } else if (a.baseline == "lstsq") {
    const size_t pairs = fit_lstsq_projection(model, data, a.batch_size);
    r = evaluate(model, data, a.batch_size, 0);
    what = "the frozen Whisper encoder with a least-squares projection (" + std::to_string(pairs) +
           " training pairs)";
  } else if (a.baseline == "cascade") {
    models::WhisperDecodeOptions decode;
    decode.beam_size = a.cascade_beam;
    const fs::path whisper_dir =
        find_whisper_dir(o.speech_weights.empty() ? std::nullopt : std::optional<fs::path>(o.speech_weights));
    cascade = evaluate_cascade(data, text, whisper_dir, decode, std::cout);
    r = cascade->eval;
    what = "the ASR cascade (Whisper " + whisper_dir.filename().string() + ", beam " +
           std::to_string(a.cascade_beam) + ", then the text tower)";
  } else {
    r = evaluate_text_bound(data, text);
    what = "the text tower on each utterance's own transcript (upper bound)";
  }
  std::cout << "zero-shot results of " << what << ":\n" << r.table();
  nlohmann::json j = r.to_json();
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
  cw::reexec_with_fast_blas_kernels(argv);  // before any GEMM: see core/cpu/blas_kernels.h
  cw::set_flush_denormals(true);            // subnormals cost 5x in the backward: core/cpu/denormals.h
  try {
    const std::optional<EvalArgs> a = parse_eval_args(argc, argv);
    if (!a) return 0;
    const fs::path config = fs::path(a->run_dir) / "config.ini";
    CW_CHECK(fs::is_regular_file(config), OptionError, "--run ", a->run_dir,
             ": no config.ini (not a folder written by train?)");
    const std::string config_arg = config.string();
    const char* task_args[] = {"eval", "--config", config_arg.c_str()};
    const std::string task = requested_task(3, task_args);
    if (task == "image_text")  // zero-shot image classification instead (image_text_trainer.h)
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
