// The image-text training loop and its zero-shot evaluation (see image_text_trainer.h).
#include "train/image_text_trainer.h"

#include <omp.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "losses/contrastive_loss.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/image_run_util.h"
#include "train/image_text_model.h"
#include "train/image_tower.h"
#include "train/lr_schedule.h"
#include "train/step_tail.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Retrieval and structure are measured on this many test rows (an N x N similarity matrix).
constexpr int64_t kRetrievalRows = 500;

struct ImageTextData {
  ImageTower tower;
  std::shared_ptr<const ImageDataset> train_set, test_set;
  Tensor train_images, test_images;  // (N, D) frozen image embeddings, row i = data set row i
  std::vector<int64_t> test_labels;
  std::vector<std::string> test_captions;  // first caption of the first kRetrievalRows rows
};

ImageTextData prepare_data(const ImageTrainOptions& o, std::ostream& log) {
  ImageTextData d;
  d.tower = load_image_tower(o.image_tower);
  const fs::path root = o.image_root.empty() ? fs::path() : fs::path(o.image_root);
  d.train_set = std::make_shared<const ImageDataset>(ImageDataset::load_named(o.dataset, "train", root));
  d.test_set = std::make_shared<const ImageDataset>(ImageDataset::load_named(o.dataset, "test", root));
  for (auto* split : {&d.train_set, &d.test_set}) {
    const CachedImageEmbeddings c = embed_images_cached(d.tower, *split, o.eval_batch_size);
    (split == &d.train_set ? d.train_images : d.test_images) = c.embeddings;
    char line[400];
    std::snprintf(line, sizeof line, "image embeddings: %s/%s %lld x %lld %s in %.1f s (%s)\n",
                  o.dataset.c_str(), (*split)->split().c_str(), static_cast<long long>(c.embeddings.size(0)),
                  static_cast<long long>(c.embeddings.size(1)), c.from_cache ? "read" : "computed", c.seconds,
                  c.file.string().c_str());
    log << line;
  }
  d.test_labels = d.test_set->labels().to_vector<int64_t>();
  const int64_t n = std::min(kRetrievalRows, d.test_set->size());
  for (int64_t i = 0; i < n; ++i) d.test_captions.push_back(d.test_set->row(i).captions.at(0));
  return d;
}

ImageTextEval evaluate(const ImageTextModel& model, const ImageTextData& d, int64_t max_items) {
  const auto t0 = ImageClock::now();
  ImageTextEval r;
  r.dataset = d.test_set->name();
  r.templates = d.test_set->prompt_templates();
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
          {"seconds", seconds}};
}

std::string ImageTextEval::table() const {
  std::ostringstream s;
  char line[300];
  std::snprintf(line, sizeof line, "  zero-shot %s test (%lld images, %zu templates)\n", dataset.c_str(),
                static_cast<long long>(zero_shot.n), templates.size());
  s << line;
  std::snprintf(
      line, sizeof line,
      "    ensemble accuracy   %.4f\n    per template        mean %.4f  std %.4f  min %.4f  max %.4f\n",
      zero_shot.ensemble_accuracy, zero_shot.mean, zero_shot.std, zero_shot.min, zero_shot.max);
  s << line;
  for (size_t t = 0; t < templates.size() && t < zero_shot.per_template.size(); ++t) {
    std::snprintf(line, sizeof line, "      %.4f  %s\n", zero_shot.per_template[t], templates[t].c_str());
    s << line;
  }
  std::snprintf(
      line, sizeof line,
      "  retrieval (%lld test pairs): image->text R@1 %.4f R@5 %.4f, text->image R@1 %.4f R@5 %.4f\n"
      "  structure correlation (text vs image tower): %.4f\n",
      static_cast<long long>(retrieval.n), retrieval.speech_to_text_r1, retrieval.speech_to_text_r5,
      retrieval.text_to_speech_r1, retrieval.text_to_speech_r5, structure_correlation);
  s << line;
  return s.str();
}

ImageTextResult run_image_text(const ImageTrainOptions& o, std::ostream& log) {
  ImageTextResult result;
  const auto t_prepare = ImageClock::now();
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  const fs::path out(o.out), ckpt_dir = out / "checkpoints";
  fs::create_directories(out);
  log << "train: resolved configuration (also in " << (out / "config.ini").string() << ")\n"
      << o.to_ini() << "\n";
  write_text_file_atomic(out / "config.ini", o.to_ini());
  const Device device = select_device(o.device);  // before any data work: a missing GPU fails fast
  apply_cuda_options(device, o.conv, o.tf32);

  const ImageTextData d = prepare_data(o, log);
  manual_seed(o.seed);  // the projection's initial weights
  const models::SentenceEncoder minilm = models::SentenceEncoder::load(
      find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
  ImageTextModel model(minilm, d.tower.dim(), o.text_train_layers, std::log(1.0 / o.loss.init_temperature),
                       o.loss.learn_temperature);
  model.to(device);  // before the optimizer, so that its moments are made on the device too
  AdamW opt(make_param_groups(model.named_parameters(), o.weight_decay, {"logit_scale"}),
            AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  std::vector<Variable> params;
  int64_t trained = 0;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) {
      params.push_back(p);
      trained += p.numel();
    }
  const LrSchedule schedule{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio};
  log << "model: MiniLM (" << model.text->config.num_hidden_layers << " layers, top "
      << (o.text_train_layers < 0 ? std::string("all + embeddings") : std::to_string(o.text_train_layers))
      << " trained) + projection " << model.text->config.hidden_size << " -> " << d.tower.dim() << ": "
      << model.num_parameters() << " parameters, " << trained
      << " trained\nimage tower (frozen): " << d.tower.path.string() << ", "
      << d.tower.model->num_parameters() << " parameters\nloss: " << losses::describe(o.loss) << "\n";

  ImageLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.seed;
  lo.num_workers = static_cast<int>(o.loader_workers);
  lo.caption_choice = "random";
  ImageLoader loader(d.train_set, lo);  // rows and captions; the pixels are already embedded

  int64_t step = 0;
  if (o.resume) {
    if (auto ck = load_latest_checkpoint(ckpt_dir)) {
      const nn::LoadReport rep = model.load_state_dict(ck->model, true);
      CW_CHECK(rep.ok(), ValueError, "--run.resume: ", ck->path.string(),
               " does not fit this model: ", rep.str());
      opt.load_state_tensors(ck->optimizer, ck->optimizer_step);
      default_generator().set_state(ck->state.seed, ck->state.rng_offset);
      loader.seek(ck->state.epoch, ck->state.batch_in_epoch);
      step = ck->state.step;
      log << "resume: " << ck->path.string() << " (step " << step << ")\n";
    }
  }
  if (step == 0) default_generator().manual_seed(o.seed);  // dropout draws
  const auto mode = step == 0 ? std::ios::trunc : std::ios::app;
  std::ofstream metrics(out / "metrics.csv", mode), eval_csv(out / "eval.csv", mode),
      eval_jsonl(out / "eval.jsonl", mode);
  if (step == 0) {
    metrics << "step,epoch,loss,loss_text_to_image,loss_image_to_text,acc_text_to_image,pos_sim,neg_sim,"
               "logit_scale,lr,grad_norm,step_seconds\n";
    eval_csv << "step,zero_shot_ensemble,template_mean,template_std,template_min,template_max,"
                "retrieval_t2i_r1,structure_corr\n";
  }
  auto run_eval = [&](int64_t at_step, int64_t max_items) {
    model.eval();
    const ImageTextEval r = evaluate(model, d, max_items);
    model.train();
    eval_csv << at_step << ',' << r.zero_shot.ensemble_accuracy << ',' << r.zero_shot.mean << ','
             << r.zero_shot.std << ',' << r.zero_shot.min << ',' << r.zero_shot.max << ','
             << r.retrieval.text_to_speech_r1 << ',' << r.structure_correlation << std::endl;
    nlohmann::json j = r.to_json();
    j["step"] = at_step;
    eval_jsonl << j.dump() << std::endl;
    log << "eval @ step " << at_step << " (" << r.seconds << " s):\n" << r.table() << std::flush;
    return r;
  };
  result.prepare_seconds = seconds_since(t_prepare);
  if (step == 0) result.initial_eval = run_eval(0, o.eval_max_items);

  const auto t_train = ImageClock::now();
  const int64_t first = step;
  while (step < o.steps) {
    const auto t_step = ImageClock::now();
    const ImageBatch batch = loader.next();
    const Tensor idx = ops::from_vector(batch.indices, {static_cast<int64_t>(batch.indices.size())});
    const Variable q(ops::index_select(d.train_images, 0, idx).to(device));  // (B, D) frozen image embeddings
    const Variable p = model.embed_text(batch.captions);                     // (B, D) trained text tower
    // CWCL's weights default to q: the frozen image tower's similarities (the paper's image-text setup).
    const losses::ContrastiveOutput lo_out = losses::contrastive_loss(p, q, model.logit_scale, o.loss);
    const double loss_value = lo_out.loss.data().to(Device::cpu()).item();
    const StepTail tail = finish_step(lo_out.loss, loss_value, params, o.grad_clip, opt, schedule, step, log);
    if (tail.stopped) {
      result.stopped_on_nan = true;
      break;
    }
    const double lr = tail.lr, norm = tail.norm;
    ++step;
    result.losses.push_back(loss_value);
    const auto& m = lo_out.metrics;
    char row[400];
    std::snprintf(row, sizeof row, "%lld,%lld,%.6f,%.6f,%.6f,%.4f,%.4f,%.4f,%.3f,%.6g,%.4f,%.3f",
                  static_cast<long long>(step), static_cast<long long>(batch.epoch), loss_value, m.loss_p2q,
                  m.loss_q2p, m.acc_p2q, m.pos_sim, m.neg_sim, m.logit_scale, lr, norm,
                  seconds_since(t_step));
    metrics << row << std::endl;
    if (step % o.log_every == 0 || step == o.steps || step == first + 1) {
      const double per_step = seconds_since(t_train) / static_cast<double>(step - first);
      char line[256];
      std::snprintf(
          line, sizeof line,
          "step %lld/%lld  loss %.4f  acc %.3f  pos %.3f neg %.3f  scale %.1f  lr %.2e  %.2f s/step\n",
          static_cast<long long>(step), static_cast<long long>(o.steps), loss_value, m.acc_p2q, m.pos_sim,
          m.neg_sim, m.logit_scale, lr, per_step);
      log << line << std::flush;
    }
    const bool last = step == o.steps;
    if (o.eval_every > 0 && step % o.eval_every == 0 && !last) run_eval(step, o.eval_max_items);
    if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || last) {
      TrainerState st;
      st.step = step;
      st.epoch = loader.epoch();
      st.batch_in_epoch = loader.batch_in_epoch();
      st.seed = default_generator().seed();
      st.rng_offset = default_generator().offset();
      st.config_text = o.to_ini();
      save_checkpoint(ckpt_dir, model.state_dict(), opt, st, static_cast<int>(o.keep_last));
    }
  }
  result.train_seconds = seconds_since(t_train);
  result.steps_done = step;
  log << "train: " << step - first << " steps in " << result.train_seconds << " s\n"
      << device_memory_line(device);
  if (result.stopped_on_nan) return result;
  result.final_eval = run_eval(step, 0);
  nlohmann::json j = result.final_eval.to_json();
  j["step"] = step;
  j["train_seconds"] = result.train_seconds;
  j["config"] = o.to_ini();
  write_text_file_atomic(out / "eval_final.json", j.dump(2) + "\n");
  log << "results: " << (out / "eval_final.json").string() << "\n";
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
      find_minilm_dir(o.text_model.empty() ? std::nullopt : std::optional<fs::path>(o.text_model)));
  ImageTextModel model(minilm, d.tower.dim(), o.text_train_layers, 0.0, false);
  const nn::LoadReport rep = model.load_state_dict(ck.model, true);
  CW_CHECK(rep.ok(), ValueError, ck.path.string(), " does not fit the run's model: ", rep.str());
  model.eval();
  const ImageTextEval r = evaluate(model, d, 0);
  out << "zero-shot results of " << ck.path.string() << " (step " << ck.state.step << "):\n" << r.table();
  nlohmann::json j = r.to_json();
  j["checkpoint"] = ck.path.string();
  j["step"] = ck.state.step;
  out << j.dump() << "\n";
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
  return r;
}

}  // namespace cw::train
