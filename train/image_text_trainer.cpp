// The image-text training loop and its zero-shot evaluation (see image_text_trainer.h).
#include "train/image_text_trainer.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "losses/contrastive_loss.h"
#include "models/image_text_model.h"
#include "train/checkpoint.h"
#include "train/image_tower.h"
#include "train/run_loop.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Retrieval and structure are measured on this many test rows (an N x N similarity matrix).
constexpr int64_t kRetrievalRows = 500;

struct ImageTextData {
  ImageTower tower;
  std::shared_ptr<const data::ImageDataset> train_set, test_set;
  Tensor train_images, test_images;  // (N, D) frozen image embeddings, row i = data set row i
  std::vector<int64_t> test_labels;
  std::vector<std::string> test_captions;  // first caption of the first kRetrievalRows rows
};

ImageTextData prepare_data(const ImageTrainOptions& o, std::ostream& log) {
  ImageTextData d;
  d.tower = load_image_tower(o.image_tower);
  const fs::path root = o.image_root.empty() ? fs::path() : fs::path(o.image_root);
  d.train_set =
      std::make_shared<const data::ImageDataset>(data::ImageDataset::load_named(o.dataset, "train", root));
  // The zero-shot test may come from another data set (trained on WebDataset pairs, evaluated on
  // ImageNet classes: the paper's setup); it needs classes and a class for every image.
  const std::string eval_name = o.eval_dataset.empty() ? o.dataset : o.eval_dataset;
  d.test_set =
      std::make_shared<const data::ImageDataset>(data::ImageDataset::load_named(eval_name, "test", root));
  CW_CHECK(d.test_set->num_classes() > 0 && d.test_set->labeled() && !d.test_set->prompt_templates().empty(),
           ValueError, "image_text: the zero-shot test split of '", eval_name,
           "' has no classes, prompt templates or labels (a caption-only corpus trains; give "
           "--data.eval_dataset a class-folder corpus, e.g. one written by `import imagenet`)");
  for (auto* split : {&d.train_set, &d.test_set}) {
    const CachedImageEmbeddings c = embed_images_cached(d.tower, *split, o.eval_batch_size);
    (split == &d.train_set ? d.train_images : d.test_images) = c.embeddings;
    char line[400];
    std::snprintf(line, sizeof line, "image embeddings: %s/%s %lld x %lld %s in %.1f s (%s)\n",
                  (*split)->name().c_str(), (*split)->split().c_str(),
                  static_cast<long long>(c.embeddings.size(0)), static_cast<long long>(c.embeddings.size(1)),
                  c.from_cache ? "read" : "computed", c.seconds, c.file.string().c_str());
    log << line;
  }
  d.test_labels = d.test_set->labels().to_vector<int64_t>();
  const int64_t n = std::min(kRetrievalRows, d.test_set->size());
  for (int64_t i = 0; i < n; ++i) d.test_captions.push_back(d.test_set->row(i).captions.at(0));
  return d;
}

ImageTextEval evaluate(const models::ImageTextModel& model, const ImageTextData& d, int64_t max_items) {
  const auto t0 = Clock::now();
  ImageTextEval r;
  r.dataset = d.test_set->name();
  r.templates = d.test_set->prompt_templates();
  r.num_classes = d.test_set->num_classes();
  const int64_t C = d.test_set->num_classes(), T = static_cast<int64_t>(r.templates.size());
  // Every (class, template) prompt in one pass: row c * T + t.
  std::vector<std::string> prompts;
  for (int64_t c = 0; c < C; ++c)
    for (const std::string& p : d.test_set->prompts(c)) prompts.push_back(p);
  const Tensor all = model.encode(prompts).reshape({C, T, -1});  // (C, T, D)
  std::vector<Tensor> per_template;
  for (int64_t t = 0; t < T; ++t) per_template.push_back(all.select(1, t).contiguous());  // (C, D)
  const int64_t n = max_items > 0 ? std::min(max_items, d.test_images.size(0)) : d.test_images.size(0);
  const std::vector<int64_t> labels(d.test_labels.begin(), d.test_labels.begin() + n);
  r.zero_shot = zero_shot_classify(d.test_images.narrow(0, 0, n), labels, per_template);
  const int64_t m = static_cast<int64_t>(d.test_captions.size());
  const Tensor text = model.encode(d.test_captions);  // (m, D)
  const Tensor images = d.test_images.narrow(0, 0, m);
  r.retrieval = retrieval_recall(images, text);  // "speech" = image, "text" = caption
  r.structure_correlation = similarity_structure_correlation(text, images);
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace

nlohmann::json ImageTextEval::to_json() const {
  return {{"dataset", dataset},
          {"zero_shot", zero_shot.to_json()},
          {"templates", templates},
          {"retrieval",
           {{"n", retrieval.n},
            {"image_to_text", {{"R@1", retrieval.speech_to_text_r1}, {"R@5", retrieval.speech_to_text_r5}}},
            {"text_to_image", {{"R@1", retrieval.text_to_speech_r1}, {"R@5", retrieval.text_to_speech_r5}}}}},
          {"structure_correlation", structure_correlation},
          {"chance",
           {{"zero_shot", num_classes > 0 ? 1.0 / static_cast<double>(num_classes) : 0.0},
            {"retrieval_r1", retrieval.n > 0 ? 1.0 / static_cast<double>(retrieval.n) : 0.0}}},
          {"seconds", seconds}};
}

std::string ImageTextEval::table() const {
  std::ostringstream s;
  char line[300];
  std::snprintf(line, sizeof line, "  zero-shot %s test (%lld images, %zu templates)\n", dataset.c_str(),
                static_cast<long long>(zero_shot.n), templates.size());
  s << line;
  std::snprintf(line, sizeof line,
                "    ensemble accuracy   %.4f  (chance %.4f: 1 of %lld classes)\n    per template        "
                "mean %.4f  std "
                "%.4f  min %.4f  max %.4f\n",
                zero_shot.ensemble_accuracy, num_classes > 0 ? 1.0 / static_cast<double>(num_classes) : 0.0,
                static_cast<long long>(num_classes), zero_shot.mean, zero_shot.std, zero_shot.min,
                zero_shot.max);
  s << line;
  for (size_t t = 0; t < templates.size() && t < zero_shot.per_template.size(); ++t) {
    std::snprintf(line, sizeof line, "      %.4f  %s\n", zero_shot.per_template[t], templates[t].c_str());
    s << line;
  }
  std::snprintf(
      line, sizeof line,
      "  retrieval (%lld test pairs): image->text R@1 %.4f R@5 %.4f, text->image R@1 %.4f R@5 %.4f (R@1 "
      "chance %.4f)\n"
      "  structure correlation (text vs image tower): %.4f\n",
      static_cast<long long>(retrieval.n), retrieval.speech_to_text_r1, retrieval.speech_to_text_r5,
      retrieval.text_to_speech_r1, retrieval.text_to_speech_r5,
      retrieval.n > 0 ? 1.0 / static_cast<double>(retrieval.n) : 0.0, structure_correlation);
  s << line;
  return s.str();
}

namespace {

// The image-text experiment as a Task of the one training loop (run_loop.h).
class ImageTextTask : public LoaderTask<data::ImageLoader, data::ImageBatch> {
 public:
  ImageTextTask(const ImageTrainOptions& o, const RunContext& ctx)
      : o_(o),
        ctx_(ctx),
        d_(prepare_data(o, ctx.log())),
        minilm_((manual_seed(o.seed),  // the projection's initial weights
                 models::SentenceEncoder::load(data::find_minilm_dir(
                     o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model))))),
        model_(minilm_, d_.tower.dim(), o.text_train_layers, std::log(1.0 / o.loss.init_temperature),
               o.loss.learn_temperature) {
    data::ImageLoaderOptions lo;
    lo.batch_size = o.batch_size;
    lo.seed = o.seed;
    lo.num_workers = static_cast<int>(o.loader_workers);
    lo.caption_choice = "random";
    loader_ =
        std::make_unique<data::ImageLoader>(d_.train_set, lo);  // rows and captions; the pixels are embedded
  }

  nn::Module& model() override { return model_; }
  std::vector<std::string> no_decay_names() const override { return {"logit_scale"}; }
  std::string describe() const override {
    int64_t trained = 0;
    for (const auto& [name, p] : model_.named_parameters()) trained += p.requires_grad() ? p.numel() : 0;
    std::ostringstream s;
    s << "MiniLM (" << model_.text->config.num_hidden_layers << " layers, top "
      << (o_.text_train_layers < 0 ? std::string("all + embeddings") : std::to_string(o_.text_train_layers))
      << " trained) + projection " << model_.text->config.hidden_size << " -> " << d_.tower.dim() << ": "
      << model_.num_parameters() << " parameters, " << trained
      << " trained\nimage tower (frozen): " << d_.tower.path.string() << ", "
      << d_.tower.model->num_parameters() << " parameters\nloss: " << losses::describe(o_.loss);
    return s.str();
  }
  const char* items_name() const override { return "pairs"; }

  TaskLoss forward(int64_t, const dist::RowShard&) override {
    const Tensor idx = ops::from_vector(batch_.indices, {static_cast<int64_t>(batch_.indices.size())});
    const Variable q(ops::index_select(d_.train_images, 0, idx).to(ctx_.device));  // (B, D) frozen images
    const Variable p = model_.embed_text(batch_.captions);                         // (B, D) trained text
    // CWCL's weights default to q: the frozen image tower's similarities (the paper's image-text setup).
    const losses::ContrastiveOutput lo = losses::contrastive_loss(p, q, model_.logit_scale, o_.loss);
    const auto& m = lo.metrics;
    return {lo.loss,
            {{"loss", "loss", lo.loss.data().to(Device::cpu()).item(), "%.6f"},
             {"loss_text_to_image", "loss_t2i", m.loss_p2q, "%.6f"},
             {"loss_image_to_text", "loss_i2t", m.loss_q2p, "%.6f"},
             {"acc_text_to_image", "acc_t2i", m.acc_p2q, "%.4f"},
             {"pos_sim", "pos_sim", m.pos_sim, "%.4f"},
             {"neg_sim", "neg_sim", m.neg_sim, "%.4f"},
             {"logit_scale", "logit_scale", m.logit_scale, "%.3f", false}}};
  }
  std::string progress(const std::vector<StepMetric>& m) const override {
    char line[160];
    std::snprintf(line, sizeof line, "loss %.4f  acc %.3f  pos %.3f neg %.3f  scale %.1f", m[0].value,
                  m[3].value, m[4].value, m[5].value, m[6].value);
    return line;
  }

  EvalRecord evaluate(int64_t, int64_t max_items) override {
    model_.eval();
    const ImageTextEval r = cw::train::evaluate(model_, d_, max_items);
    model_.train();
    evals_.push_back(r);
    std::ostringstream text;
    text << r.seconds << " s\n" << r.table();
    return {{{"zero_shot_ensemble", r.zero_shot.ensemble_accuracy},
             {"template_mean", r.zero_shot.mean},
             {"template_std", r.zero_shot.std},
             {"template_min", r.zero_shot.min},
             {"template_max", r.zero_shot.max},
             {"retrieval_t2i_r1", r.retrieval.text_to_speech_r1},
             {"structure_corr", r.structure_correlation}},
            r.to_json(),
            text.str()};
  }
  bool evaluates_at_start() const override { return true; }

  void finish(int64_t step, double train_seconds, const EvalRecord&, std::ostream& log) override {
    nlohmann::json j = evals_.back().to_json();
    j["step"] = step;
    j["train_seconds"] = train_seconds;
    j["config"] = ctx_.config_ini;
    const fs::path file = fs::path(o_.out) / "eval_final.json";
    write_file_atomic(file, j.dump(2) + "\n");
    log << "results: " << file.string() << "\n";
  }

  std::vector<ImageTextEval> evals_;  // every evaluation, in order

 private:
  const ImageTrainOptions& o_;
  const RunContext& ctx_;
  ImageTextData d_;
  models::SentenceEncoder minilm_;
  models::ImageTextModel model_;
};

}  // namespace

ImageTextResult run_image_text(const ImageTrainOptions& o, std::ostream& log) {
  const auto t_prepare = Clock::now();
  const RunContext ctx = start_run(o, o.with_absolute_paths().to_ini(), /*data_parallel=*/false, log);
  ImageTextTask task(o, ctx);
  ImageTextResult result;
  result.prepare_seconds = seconds_since(t_prepare);
  static_cast<LoopResult&>(result) = run_loop(task, o, ctx);
  if (result.first_step == 0 && !task.evals_.empty()) result.initial_eval = task.evals_.front();
  if (result.finished) result.final_eval = task.evals_.back();
  return result;
}

ImageTextEval evaluate_image_text_run(const fs::path& run_dir, const fs::path& checkpoint,
                                      const std::string& json_out, std::ostream& out) {
  const fs::path config = run_dir / "config.ini";
  CW_CHECK(fs::exists(config), ValueError, "--run ", run_dir.string(), ": no config.ini");
  const std::string cfg_arg = config.string();
  const char* args[] = {"train", "--config", cfg_arg.c_str()};
  const ImageTrainOptions o = parse_image_train_options(3, args, out).options;
  const LoadedCheckpoint ck = checkpoint.empty() ? [&] {
    auto latest = load_latest_checkpoint(run_dir / "checkpoints");
    CW_CHECK(latest.has_value(), ValueError, "--run ", run_dir.string(), ": no checkpoint");
    return *latest;
  }()
                                                 : load_checkpoint(checkpoint);
  std::ostringstream quiet;
  const ImageTextData d = prepare_data(o, quiet);
  const models::SentenceEncoder minilm = models::SentenceEncoder::load(
      data::find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
  models::ImageTextModel model(minilm, d.tower.dim(), o.text_train_layers, 0.0, false);
  const nn::LoadReport rep = model.load_state_dict(ck.model, true);
  CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
  model.eval();
  const ImageTextEval r = evaluate(model, d, 0);
  out << "zero-shot results of " << ck.path.string() << " (step " << ck.state.step << "):\n" << r.table();
  nlohmann::json j = r.to_json();
  j["checkpoint"] = ck.path.string();
  j["step"] = ck.state.step;
  out << j.dump() << "\n";
  if (!json_out.empty()) write_file_atomic(json_out, j.dump(2) + "\n");
  return r;
}

}  // namespace cw::train
