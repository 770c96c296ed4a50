// CTC pretraining of the speech tower (see asr_trainer.h).
#include "train/asr_trainer.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/audio_normalize.h"
#include "data/feature_batch.h"
#include "data/speech_loader.h"
#include "losses/ctc_loss.h"
#include "models/asr_model.h"
#include "train/char_vocab.h"
#include "train/checkpoint.h"
#include "train/run_loop.h"
#include "train/speech_model.h"
#include "train/speech_text_data.h"
#include "train/speech_tower_file.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Greedy transcripts of up to max_items validation utterances (evenly spaced; 0 = all), whole
// (no crop), and their CER against the references.
double validation_cer(models::AsrModel& model, const SpeechSplit& valid, const CharVocab& vocab,
                      int64_t batch_size, int64_t max_items, std::vector<std::string>* examples) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const int64_t n = valid.size(), m = max_items > 0 ? std::min(max_items, n) : n;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < m; ++i) rows.push_back(i * n / m);
  std::vector<std::string> hyp, ref;
  for (size_t b = 0; b < rows.size(); b += static_cast<size_t>(batch_size)) {
    std::vector<Tensor> feats;
    for (size_t i = b; i < std::min(rows.size(), b + static_cast<size_t>(batch_size)); ++i) {
      feats.push_back(data::utterance_cmvn(valid.features->features(rows[i])));
      ref.push_back(
          normalize_transcript(valid.manifest().utterances()[static_cast<size_t>(rows[i])].transcript));
    }
    const data::FeatureBatch fb = data::pad_features(feats);
    const auto [lp, lengths] = model.log_probs(Variable(fb.features.to(model.device())), fb.lengths);
    const Tensor scores = lp.data().to(Device::cpu());  // (T', B, V)
    const auto len = lengths.to_vector<int64_t>();
    for (int64_t k = 0; k < scores.size(1); ++k)
      hyp.push_back(vocab.decode_greedy(scores.select(1, k), len[static_cast<size_t>(k)]));
  }
  model.train(was_training);
  if (examples)
    for (size_t i = 0; i < std::min<size_t>(3, hyp.size()); ++i)
      examples->push_back("\"" + ref[i] + "\" -> \"" + hyp[i] + "\"");
  return character_error_rate(hyp, ref);
}

CharVocab vocab_of(const SpeechSplit& train) {
  std::vector<std::string> transcripts;
  for (const auto& u : train.manifest().utterances()) transcripts.push_back(u.transcript);
  return CharVocab::from_transcripts(transcripts);
}

// CTC pretraining as a Task of the one training loop (run_loop.h).
class AsrTask : public LoaderTask<data::SpeechLoader, data::SpeechBatch> {
 public:
  AsrTask(const TrainOptions& o, const RunContext& ctx)
      : o_(o),
        ctx_(ctx),
        // ensure_corpus first: load_speech_split reads the corpus it may generate.
        train_((ensure_corpus(o, ctx.log()), load_speech_split(o, "train", ctx.log()))),
        valid_(load_speech_split(o, "valid", ctx.log())),
        vocab_(vocab_of(train_)) {
    manual_seed(o.seed);
    // The projection head's width is the frozen text tower's (all-MiniLM-L6-v2: 384); recognition
    // never uses it and the tower file leaves it out.
    cfg_ = speech_tower_config(o, train_.features->num_bins(), 384);
    model_ = std::make_unique<models::AsrModel>(cfg_, vocab_.size());
    model_->speech->proj->requires_grad_(false);
    loader_ = std::make_unique<data::SpeechLoader>(train_.features, training_loader_options(o));
    if (o.max_frames > 0)
      ctx.log()
          << "note: --data.max_frames " << o.max_frames
          << " crops long utterances but keeps their whole transcripts; 0 (no crop) suits recognition\n";
    ctc_.zero_infinity = true;  // a transcript longer than its (cropped) frames allow adds nothing
  }

  nn::Module& model() override { return *model_; }
  std::string describe() const override {
    std::ostringstream s;
    s << "Conformer d_model " << cfg_.d_model << ", " << cfg_.num_layers << " blocks + CTC head over "
      << vocab_.size() << " symbols (blank + \"" << vocab_.chars() << "\"): " << model_->num_parameters()
      << " parameters";
    return s.str();
  }

  TaskLoss forward(int64_t, const dist::RowShard&) override {
    std::vector<std::vector<int64_t>> targets;
    for (const std::string& t : batch_.transcripts) targets.push_back(vocab_.encode(t));
    const auto [lp, lengths] = model_->log_probs(Variable(batch_.features.to(ctx_.device)), batch_.lengths);
    const losses::CtcOutput c = losses::ctc_loss(lp, targets, lengths.to_vector<int64_t>(), ctc_);
    int64_t infeasible = 0;
    for (const double r : c.row_losses) infeasible += std::isinf(r) ? 1 : 0;
    return {c.loss,
            {{"loss", "loss", c.loss.data().to(Device::cpu()).item(), "%.6f"},
             {"infeasible", "infeasible", static_cast<double>(infeasible), "%.0f"}}};
  }
  std::string progress(const std::vector<StepMetric>& m) const override {
    char line[64];
    std::snprintf(line, sizeof line, "ctc %.4f", m[0].value);
    return line;
  }

  EvalRecord evaluate(int64_t step, int64_t max_items) override {
    const auto t0 = Clock::now();
    std::vector<std::string> examples;
    const double cer = validation_cer(*model_, valid_, vocab_, o_.eval_batch_size, max_items, &examples);
    const int64_t n = max_items > 0 ? std::min(max_items, valid_.size()) : valid_.size();
    cer_.emplace_back(step, cer);
    char line[160];
    std::snprintf(line, sizeof line, "validation CER %.4f on %lld utterances (%.1f s)\n", cer,
                  static_cast<long long>(n), seconds_since(t0));
    std::string text = line;
    for (const std::string& e : examples) text += "  " + e + "\n";
    return {{{"valid_cer", cer}, {"utterances", static_cast<double>(n)}},
            {{"valid_cer", cer}, {"utterances", n}},
            text};
  }
  std::string eval_log() const override { return "cer"; }

  void finish(int64_t step, double train_seconds, const EvalRecord&, std::ostream& log) override {
    const fs::path out(o_.out);
    tower_ = out / "speech_tower.safetensors";
    const double cer = cer_.back().second;
    save_speech_tower(tower_, *model_->speech, vocab_, step, cer);
    nlohmann::json j = {{"steps", step},
                        {"valid_cer", cer},
                        {"train_seconds", train_seconds},
                        {"tower", tower_.string()},
                        {"vocab", vocab_.chars()}};
    for (const auto& [s, v] : cer_) j["cer"].push_back({{"step", s}, {"valid_cer", v}});
    write_file_atomic(out / "asr_final.json", j.dump(2) + "\n");
    log << "speech tower: " << tower_.string()
        << " (start a speech-text run from it with --model.speech_init)\n";
  }

  std::vector<std::pair<int64_t, double>> cer_;  // (step, validation CER) of each evaluation
  fs::path tower_;

 private:
  const TrainOptions& o_;
  const RunContext& ctx_;
  SpeechSplit train_, valid_;
  CharVocab vocab_;
  models::ConformerConfig cfg_;
  std::unique_ptr<models::AsrModel> model_;
  losses::CtcOptions ctc_;
};

}  // namespace

// One process: recognition pretraining has no data-parallel path (an MPI launch would run copies
// that overwrite each other's files).
SpeechAsrResult run_speech_asr(const TrainOptions& o, std::ostream& log) {
  const RunContext ctx = start_run(o, o.with_absolute_paths().to_ini(), /*data_parallel=*/false, log);
  AsrTask task(o, ctx);
  SpeechAsrResult result;
  static_cast<LoopResult&>(result) = run_loop(task, o, ctx);
  result.cer = task.cer_;
  result.tower = task.tower_;
  return result;
}

double evaluate_speech_asr_run(const fs::path& run_dir, const fs::path& checkpoint,
                               const std::string& json_out, std::ostream& out) {
  const fs::path config = run_dir / "config.ini";
  CW_CHECK(fs::exists(config), ValueError, "--run ", run_dir.string(), ": no config.ini");
  const std::string cfg_arg = config.string();
  const char* args[] = {"train", "--config", cfg_arg.c_str()};
  std::ostringstream quiet;
  const TrainOptions o = parse_train_options(3, args, quiet).options;
  const LoadedCheckpoint ck = checkpoint.empty() ? [&] {
    auto latest = load_latest_checkpoint(run_dir / "checkpoints");
    CW_CHECK(latest.has_value(), ValueError, "--run ", run_dir.string(), ": no checkpoint");
    return *latest;
  }()
                                                 : load_checkpoint(checkpoint);
  const SpeechSplit train = load_speech_split(o, "train", quiet);
  const SpeechSplit valid = load_speech_split(o, "valid", quiet);
  const CharVocab vocab = vocab_of(train);  // as the run built it: from the same transcripts
  models::AsrModel model(speech_tower_config(o, train.features->num_bins(), 384), vocab.size());
  const nn::LoadReport rep = model.load_state_dict(ck.model, true);
  CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
  std::vector<std::string> examples;
  const double cer = validation_cer(model, valid, vocab, o.eval_batch_size, 0, &examples);
  out << "validation CER of " << ck.path.string() << " (step " << ck.state.step << "): " << cer << " on "
      << valid.size() << " utterances\n";
  for (const std::string& e : examples) out << "  " << e << "\n";
  const nlohmann::json j = {{"checkpoint", ck.path.string()},
                            {"step", ck.state.step},
                            {"valid_cer", cer},
                            {"utterances", valid.size()}};
  out << j.dump() << "\n";
  if (!json_out.empty()) write_file_atomic(json_out, j.dump(2) + "\n");
  return cer;
}

}  // namespace cw::train
