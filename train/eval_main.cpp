// `eval`: zero-shot evaluation of a trained speech tower. Reads a run folder written by `train`
// (its config.ini and a checkpoint), embeds every benchmark utterance, and prints intent and
// keyword accuracy (prompt ensemble and per template), retrieval recall and the structure
// correlation as a table and as JSON. Image-text runs get their zero-shot image classification,
// speech_asr runs their validation character error rate.
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "data/model_files.h"
#include "train/asr_trainer.h"
#include "train/checkpoint.h"
#include "train/evaluator.h"
#include "train/image_options.h"
#include "train/image_text_trainer.h"
#include "train/trainer.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace cw;
using namespace cw::train;

int main(int argc, char** argv) {
  try {
    std::string run_dir, checkpoint, corpus, json_out;
    int64_t batch_size = 64;
    po::options_description desc("eval: zero-shot evaluation of a speech tower trained by `train`");
    desc.add_options()("help,h", "print this help")(
        "run", po::value(&run_dir)->required(), "run folder of `train` (holds config.ini and checkpoints/)")(
        "checkpoint", po::value(&checkpoint),
        "a step folder to evaluate (default: the run's latest checkpoint)")(
        "corpus", po::value(&corpus), "evaluate on this corpus instead of the run's")(
        "batch-size", po::value(&batch_size)->default_value(batch_size), "utterances per batch")(
        "json", po::value(&json_out), "also write the results as JSON to this file");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);

    const fs::path config = fs::path(run_dir) / "config.ini";
    CW_CHECK(fs::exists(config), ValueError, "--run ", run_dir,
             ": no config.ini (not a folder written by train?)");
    // A run of train --task image_text: zero-shot image classification instead (image_text_trainer.h).
    const std::string config_arg = config.string();
    const char* task_args[] = {"eval", "--config", config_arg.c_str()};
    if (requested_task(3, task_args) == "image_text") {
      evaluate_image_text_run(run_dir, checkpoint, json_out, std::cout);
      return 0;
    }
    // A run of train --task speech_asr: the recognizer's validation CER (asr_trainer.h).
    if (requested_task(3, task_args) == "speech_asr") {
      evaluate_speech_asr_run(run_dir, checkpoint, json_out, std::cout);
      return 0;
    }
    std::vector<std::string> args = {"train", "--config", config.string()};
    if (!corpus.empty()) args.insert(args.end(), {"--data.corpus", corpus, "--data.corpus_size", "none"});
    std::vector<const char*> cargs;
    for (const auto& a : args) cargs.push_back(a.c_str());
    TrainOptions o = parse_train_options(static_cast<int>(cargs.size()), cargs.data(), std::cout).options;

    const LoadedCheckpoint ck = checkpoint.empty() ? [&] {
      auto latest = load_latest_checkpoint(fs::path(run_dir) / "checkpoints");
      CW_CHECK(latest.has_value(), ValueError, "--run ", run_dir, ": no checkpoint in ", run_dir, "/checkpoints");
      return *latest;
    }()
                                                   : load_checkpoint(checkpoint);
    const FrozenTextTower text = FrozenTextTower::load(
        find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
    const SpeechTextData data = prepare_speech_text_data(o, text, std::cout);
    // The architecture comes from the run's configuration, exactly as train built it.
    const models::ConformerConfig cfg =
        speech_tower_config(o, data.train.features->num_bins(), data.train_text.size(1));
    models::SpeechTextModel model(cfg, 0.0, false);
    const nn::LoadReport rep = model.load_state_dict(ck.model, true);
    CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
    const EvalResult r = evaluate(model, data, batch_size, 0);
    std::cout << "zero-shot results of " << ck.path.string() << " (step " << ck.state.step << "):\n"
              << r.table();
    nlohmann::json j = r.to_json();
    j["checkpoint"] = ck.path.string();
    j["step"] = ck.state.step;
    std::cout << j.dump() << "\n";
    if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
    return 0;
  } catch (const po::error& e) {
    std::cerr << "eval: error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "eval: error: " << e.what() << "\n";
    return 1;
  }
}
