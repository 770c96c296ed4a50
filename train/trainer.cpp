// The speech-text task (see trainer.h): the speech tower against the frozen text tower, as a Task
// of the one training loop (run_loop.h). The task prepares the data and the model, reads a batch,
// computes this rank's part of the contrastive loss, evaluates zero-shot, and at the end writes
// eval_final.json with the verdict and the plots.
#include "train/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "data/speech_loader.h"
#include "dist/differentiable.h"
#include "losses/contrastive_block.h"
#include "losses/contrastive_loss.h"
#include "train/run_loop.h"
#include "train/speech_model.h"
#include "train/stopwatch.h"
#include "train/subprocess.h"
#include "train/verdict.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Loss curve, zero-shot accuracy over steps and a similarity heat map, as PNGs (gnuplot, when
// installed: plots are a convenience, never a reason to fail a finished run). Each carries what a
// model that learnt nothing would show: ln N on the loss (InfoNCE's loss at uniform logits, N the
// batch), chance on the accuracies, and what the heat map's pattern means.
void render_plots(const fs::path& out, std::ostream& log, int64_t batch_size, const ChanceLevels& chance) {
  if (!fs::exists("/usr/bin/gnuplot")) {
    log << "plots: gnuplot not installed, skipped (apt install gnuplot-nox)\n";
    return;
  }
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,500 noenhanced\nset datafile separator ','\nset key outside\n"
     << "set output 'loss.png'\nset title 'training loss'\nset xlabel 'step'\nset ylabel 'loss'\n"
     << "plot 'metrics.csv' using 1:3 with lines title 'loss', '' using 1:4 with lines title 'speech->text', "
        "'' using 1:5 with lines title 'text->speech', log("
     << batch_size << ") with lines dashtype 2 lc rgb 'gray' title 'ln N = ln " << batch_size
     << " (uniform logits)'\n";
  // The accuracies of a short run sit near chance: a 0-1 axis would flatten them, so the axis
  // follows the data (from 0) and chance is drawn for each.
  if (fs::exists(out / "eval.csv"))
    gp << "set output 'zero_shot.png'\nset title 'zero-shot accuracy (dashed: chance)'\nset ylabel "
          "'accuracy'\nset yrange [0:*]\n"
       << "plot 'eval.csv' using 1:2 with linespoints lc 1 title 'intent', '' using 1:3 with linespoints lc "
          "2 "
          "title 'keywords', '' using 1:4 with linespoints lc 3 title 'keywords (human)', '' using 1:5 with "
          "linespoints lc 4 title 'R@1 speech->text', "
       << chance.intent << " with lines dashtype 2 lc 1 title 'intent chance', " << chance.keywords
       << " with lines dashtype 2 lc 2 title 'keyword chance', " << chance.retrieval_r1
       << " with lines dashtype 2 lc 4 title 'R@1 chance'\n"
       << "set autoscale y\n";
  if (fs::exists(out / "similarity.dat"))
    gp << "set datafile separator whitespace\nset output 'similarity.png'\nset size ratio -1\n"
       << "set title \"cosine, held-out speech (rows) vs transcripts (columns)\\nbright diagonal: aligned "
          "pairs; stripes or a uniform map: collapsed\"\nset xlabel 'transcript'\n"
       << "set ylabel 'utterance'\nset yrange [] reverse\nplot 'similarity.dat' matrix with image notitle\n";
  write_file_atomic(out / "plots.gp", gp.str());
  if (run_process({"/usr/bin/gnuplot", "plots.gp"}, out) == 0)
    log << "plots: " << (out / "loss.png").string() << ", zero_shot.png, similarity.png\n";
  else
    log << "plots: gnuplot failed (see " << (out / "plots.gp").string() << ")\n";
}

void write_similarity(const fs::path& out, models::SpeechTextModel& model, const SpeechTextData& d,
                      int64_t batch_size, int64_t max_frames) {
  const int64_t n = std::min<int64_t>(32, d.retrieval.size());
  if (n == 0) return;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(i);
  const Tensor p = unit_rows(embed_split(model, d.retrieval, rows, batch_size, max_frames));
  const Tensor q = unit_rows(d.retrieval_text.narrow(0, 0, n));
  const Tensor s = ops::matmul(p, q.t()).contiguous();
  std::ostringstream f;
  f.precision(4);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) f << (j ? " " : "") << s.data<double>()[i * n + j];
    f << "\n";
  }
  write_file_atomic(out / "similarity.dat", f.str());
}

class SpeechTextTask : public LoaderTask<data::SpeechLoader, data::SpeechBatch> {
 public:
  SpeechTextTask(const TrainOptions& o, const RunContext& ctx)
      : o_(o),
        ctx_(ctx),
        text_(FrozenTextTower::load(data::find_minilm_dir(
            o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)))) {
    // Rank 0 first: it may generate the corpus and write the feature and embedding caches,
    // which the other ranks then read (no timeout: that can take long).
    dist::Communicator& comm = *ctx.comm;
    if (!ctx.lead()) comm.barrier(0);
    data_ = prepare_speech_text_data(o, text_, ctx.log());
    if (ctx.lead() && ctx.world > 1) comm.barrier(0);
    manual_seed(o.seed);  // the same seed gives the same initial weights
    built_ = build_speech_model(o, data_, ctx.log());
    // --data.max_frames counts 10 ms mel frames; cached Whisper positions are 20 ms each.
    data::SpeechLoaderOptions lo = training_loader_options(o, built_.frames_per_input);
    lo.normalization = data_.train.cmvn ? "utterance" : "none";
    // Each rank reads the features of its own rows of the global batch only.
    const dist::RowShard mine = dist::shard_rows(o.batch_size, ctx.rank, ctx.world);
    if (ctx.world > 1) lo.slice_offset = mine.offset, lo.slice_count = mine.count;
    loader_ = std::make_unique<data::SpeechLoader>(data_.train.features, lo);
    shard_counts_ = dist::shard_counts(o.batch_size, ctx.world);
  }

  nn::Module& model() override { return *built_.model; }
  std::vector<std::string> no_decay_names() const override { return {"logit_scale"}; }
  std::string describe() const override {
    return built_.description + "\nloss: " + losses::describe(o_.loss);
  }
  bool data_parallel() const override { return true; }

  // Every rank draws the same global batch (a pure function of seed, epoch and batch), reads the
  // features of its contiguous slice of rows only, padded to the global batch's length as one
  // process's, and embeds them; the embeddings of all ranks are gathered, and the rank's row
  // block of the loss computed.
  TaskLoss forward(int64_t, const dist::RowShard& shard) override {
    models::SpeechTextModel& model = *built_.model;
    const Device device = ctx_.device;
    const Variable q(data_.train_text.rows(batch_.indices).to(device));  // (B, D) frozen, read from disk
    const bool whole = shard.count == static_cast<int64_t>(batch_.indices.size());
    // The loader read this rank's rows only (its slice), padded to the global batch's length.
    const bool sliced = batch_.features.size(0) == shard.count;
    const Tensor feats =
        sliced ? batch_.features : batch_.features.narrow(0, shard.offset, shard.count).contiguous();
    const Tensor lens =
        sliced ? batch_.lengths : batch_.lengths.narrow(0, shard.offset, shard.count).contiguous();
    // lengths stay on the host: the tower reads them to build its masks.
    const Variable p_local = model.embed_speech(Variable(feats.to(device)), lens);  // (B_r, D)
    const losses::ContrastiveOutput lo =
        whole ? losses::contrastive_loss(p_local, q, model.logit_scale, o_.loss)
              : losses::contrastive_loss_block(dist::all_gather_rows(*ctx_.comm, p_local, shard_counts_), q,
                                               model.logit_scale, o_.loss, shard.offset, shard.count);
    const losses::ContrastiveMetrics& m = lo.metrics;
    return {lo.loss,
            {{"loss", "loss", lo.loss.data().to(Device::cpu()).item(), "%.6f"},
             {"loss_speech_to_text", "loss_s2t", m.loss_p2q, "%.6f"},
             {"loss_text_to_speech", "loss_t2s", m.loss_q2p, "%.6f"},
             {"acc_speech_to_text", "acc_s2t", m.acc_p2q, "%.4f"},
             {"acc_text_to_speech", "acc_t2s", m.acc_q2p, "%.4f"},
             {"pos_sim", "pos_sim", m.pos_sim, "%.4f"},
             {"neg_sim", "neg_sim", m.neg_sim, "%.4f"},
             {"logit_scale", "logit_scale", m.logit_scale, "%.3f", false}}};
  }
  std::string progress(const std::vector<StepMetric>& m) const override {
    char line[128];
    std::snprintf(line, sizeof line, "loss %.4f  acc %.3f  scale %.1f", m[0].value, m[3].value, m[7].value);
    return line;
  }
  std::string summary() const override {
    return "; the loader kept the trainer waiting " + std::to_string(loader_->stats().wait_seconds) +
           " s in all";
  }

  EvalRecord evaluate(int64_t, int64_t max_items) override {
    last_eval_ = cw::train::evaluate(*built_.model, data_, o_.eval_batch_size, max_items, eval_frames());
    const EvalResult& r = last_eval_;
    const ChanceLevels chance = chance_levels(data_, r);
    std::ostringstream text;
    text << r.seconds << " s\n" << r.table() << chance.line();
    nlohmann::json json = r.to_json();
    json["chance"] = chance.to_json();
    return {{{"intent_acc", r.intent.ensemble_accuracy},
             {"keyword_acc", r.keywords.ensemble_accuracy},
             {"keyword_human_acc", r.keywords_human.ensemble_accuracy},
             {"retrieval_s2t_r1", r.retrieval.speech_to_text_r1},
             {"retrieval_t2s_r1", r.retrieval.text_to_speech_r1},
             {"structure_corr", r.structure_correlation},
             {"intent_template_std", r.intent.std}},
            json,
            text.str()};
  }

  void finish(int64_t step, double, const EvalRecord&, std::ostream& log) override {
    const fs::path out(o_.out);
    const Verdict verdict = make_verdict(last_eval_, data_, text_);
    nlohmann::json final_json = last_eval_.to_json();
    final_json["step"] = step;
    final_json["config"] = ctx_.config_ini;
    final_json["chance"] = verdict.json["chance"];
    final_json["verdict"] = verdict.json;
    write_file_atomic(out / "eval_final.json", final_json.dump(2) + "\n");
    log << "results: " << (out / "eval_final.json").string() << "\n" << verdict.text;
    if (o_.plots) {
      write_similarity(out, *built_.model, data_, o_.eval_batch_size, eval_frames());
      render_plots(out, log, o_.batch_size, chance_levels(data_, last_eval_));
    }
  }

  EvalResult last_eval_;

 private:
  // Padded frames of an evaluation batch: at most a training batch's (speech_text_data.h).
  int64_t eval_frames() const { return evaluation_batch_frames(o_, built_.frames_per_input); }

  const TrainOptions& o_;
  const RunContext& ctx_;
  FrozenTextTower text_;
  SpeechTextData data_;
  SpeechModel built_;
  std::vector<int64_t> shard_counts_;
};

}  // namespace

TrainResult run_training(const TrainOptions& o, std::ostream& log) {
  const auto t_prepare = Clock::now();
  const RunContext ctx = start_run(o, o.with_absolute_paths().to_ini(), /*data_parallel=*/true, log);
  SpeechTextTask task(o, ctx);
  TrainResult result;
  result.prepare_seconds = seconds_since(t_prepare);
  static_cast<LoopResult&>(result) = run_loop(task, o, ctx);
  if (result.finished) result.final_eval = task.last_eval_;
  return result;
}

}  // namespace cw::train
