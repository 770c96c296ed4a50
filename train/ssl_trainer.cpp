// SimCLR pretraining of the image tower (see ssl_trainer.h).
#include "train/ssl_trainer.h"

#include <omp.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "losses/contrastive_loss.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/image_knn.h"
#include "train/image_run_util.h"
#include "train/image_tower.h"
#include "train/lr_schedule.h"
#include "train/ssl_augment.h"
#include "train/step_tail.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Test-set k-NN accuracy of the tower's representation (forward_features), with up to `memory`
// training images as the neighbours and up to `max_queries` test images (0: all).
double knn_check(const ImageTower& tower, std::shared_ptr<const ImageDataset> train,
                 std::shared_ptr<const ImageDataset> test, const ImageTrainOptions& o, int64_t max_queries) {
  const Tensor mem = embed_images(tower, train, o.eval_batch_size, o.knn_memory);  // (M, D)
  const Tensor q = embed_images(tower, test, o.eval_batch_size, max_queries);      // (N, D)
  std::vector<int64_t> ml = train->labels().to_vector<int64_t>(), ql = test->labels().to_vector<int64_t>();
  ml.resize(static_cast<size_t>(mem.size(0)));
  ql.resize(static_cast<size_t>(q.size(0)));
  return knn_accuracy(mem, ml, q, ql, o.knn_k, train->num_classes());
}

}  // namespace

ImageSslResult run_image_ssl(const ImageTrainOptions& o, std::ostream& log) {
  ImageSslResult result;
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  const fs::path out(o.out), ckpt_dir = out / "checkpoints";
  fs::create_directories(out);
  log << "train: resolved configuration (also in " << (out / "config.ini").string() << ")\n"
      << o.to_ini() << "\n";
  write_text_file_atomic(out / "config.ini", o.to_ini());
  const Device device = select_device(o.device);  // before any data work: a missing GPU fails fast
  apply_cuda_options(device, o.conv, o.tf32);

  const fs::path root = o.image_root.empty() ? fs::path() : fs::path(o.image_root);
  auto train_set = std::make_shared<const ImageDataset>(ImageDataset::load_named(o.dataset, "train", root));
  auto test_set = std::make_shared<const ImageDataset>(ImageDataset::load_named(o.dataset, "test", root));
  // Normalization from the training images alone, stored in the tower file for every later use.
  const ChannelStats stats = train_set->channel_stats();

  manual_seed(o.seed);
  const models::ViTConfig cfg = image_tower_config(o, train_set->channels());
  ImageTower tower;
  tower.model = std::make_shared<models::VisionTransformer>(cfg);
  tower.mean = stats.mean;
  tower.std = stats.std;
  models::VisionTransformer& model = *tower.model;
  model.train();
  model.to(device);  // before the optimizer, so that its moments are made on the device too
  AdamW opt(make_param_groups(model.named_parameters(), o.weight_decay),
            AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  std::vector<Variable> params;
  for (const auto& g : opt.groups())
    for (const auto& p : g.params) params.push_back(p);
  const LrSchedule schedule{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio};
  log << "model: ViT image " << cfg.image_size << ", patch " << cfg.patch_size << ", dim " << cfg.hidden_dim
      << ", " << cfg.num_layers << " layers, " << cfg.num_heads << " heads, MLP " << cfg.mlp_dim
      << ", projection " << cfg.hidden_dim << " -> tanh -> " << cfg.embed_dim << ": "
      << model.num_parameters() << " parameters\n";

  // SimCLR's loss between the two views: InfoNCE both ways (view 1 -> view 2 and back), a fixed
  // temperature. (NT-Xent also counts the other images' same-view embeddings as negatives; here
  // the project's InfoNCE is reused as it is, which keeps 2(B - 1) of SimCLR's 2B - 2 negatives.)
  losses::ContrastiveConfig lc;
  lc.loss = losses::LossKind::InfoNCE;
  lc.reverse = losses::ReverseDirection::InfoNCE;
  lc.reduction = losses::DirectionReduction::Mean;
  lc.learn_temperature = false;
  lc.init_temperature = o.ssl_temperature;
  const Variable log_scale(losses::make_log_scale(lc).data().to(device), false);

  ImageLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.seed;
  lo.num_workers = static_cast<int>(o.loader_workers);
  if (train_set->height() != cfg.image_size || train_set->width() != cfg.image_size)
    lo.resize_height = lo.resize_width = cfg.image_size;
  ImageLoader loader(train_set, lo);  // raw [0, 1] pixels; the views are made below
  SslAugment aug;
  aug.crop_min_scale = o.crop_min_scale;
  aug.flip = train_set->horizontal_flip();
  aug.brightness = o.brightness;
  aug.contrast = o.contrast;
  aug.noise_std = o.noise_std;
  aug.mean = stats.mean;
  aug.std = stats.std;

  int64_t step = 0;
  if (o.resume) {
    if (auto ck = load_latest_checkpoint(ckpt_dir)) {
      const nn::LoadReport rep = model.load_state_dict(ck->model, true);
      CW_CHECK(rep.ok(), ValueError, "--run.resume: ", ck->path.string(),
               " does not fit this model: ", rep.str());
      opt.load_state_tensors(ck->optimizer, ck->optimizer_step);
      loader.seek(ck->state.epoch, ck->state.batch_in_epoch);
      step = ck->state.step;
      log << "resume: " << ck->path.string() << " (step " << step << ")\n";
    }
  }
  std::ofstream metrics(out / "metrics.csv", step == 0 ? std::ios::trunc : std::ios::app);
  if (step == 0) metrics << "step,epoch,loss,acc_view1_to_view2,pos_sim,neg_sim,lr,grad_norm,step_seconds\n";
  std::ofstream knn_csv(out / "knn.csv", step == 0 ? std::ios::trunc : std::ios::app);
  if (step == 0) knn_csv << "step,knn_acc,queries\n";
  auto run_knn = [&](int64_t at_step, int64_t max_queries) {
    model.eval();
    const auto t0 = ImageClock::now();
    const double acc = knn_check(tower, train_set, test_set, o, max_queries);
    model.train();
    const int64_t n = max_queries > 0 ? std::min(max_queries, test_set->size()) : test_set->size();
    knn_csv << at_step << ',' << acc << ',' << n << std::endl;
    result.knn.emplace_back(at_step, acc);
    char line[200];
    std::snprintf(line, sizeof line,
                  "k-NN @ step %lld: %.4f on %lld test images (k %lld, memory %lld; %.1f s)\n",
                  static_cast<long long>(at_step), acc, static_cast<long long>(n),
                  static_cast<long long>(o.knn_k), static_cast<long long>(o.knn_memory), seconds_since(t0));
    log << line << std::flush;
  };
  if (step == 0 && o.eval_every > 0) run_knn(0, o.eval_max_items);

  const auto t_train = ImageClock::now();
  const int64_t first = step;
  while (step < o.steps) {
    const auto t_step = ImageClock::now();
    const ImageBatch batch = loader.next();
    const uint64_t stream = static_cast<uint64_t>(step) * 2;
    const Tensor v1 = simclr_view(batch.images, aug, o.seed, stream);      // (B, C, H, W)
    const Tensor v2 = simclr_view(batch.images, aug, o.seed, stream + 1);  // (B, C, H, W)
    // One forward over both views: (2B, E), split back into the two views' rows.
    const Variable z = model.forward(Variable(ops::concat({v1, v2}, 0).to(device)));
    const int64_t B = batch.images.size(0);
    const losses::ContrastiveOutput lo_out =
        losses::contrastive_loss(ag::narrow(z, 0, 0, B), ag::narrow(z, 0, B, B), log_scale, lc);
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
    char row[256];
    std::snprintf(row, sizeof row, "%lld,%lld,%.6f,%.4f,%.4f,%.4f,%.6g,%.4f,%.3f",
                  static_cast<long long>(step), static_cast<long long>(batch.epoch), loss_value, m.acc_p2q,
                  m.pos_sim, m.neg_sim, lr, norm, seconds_since(t_step));
    metrics << row << std::endl;
    if (step % o.log_every == 0 || step == o.steps || step == first + 1) {
      const double per_step = seconds_since(t_train) / static_cast<double>(step - first);
      char line[256];
      std::snprintf(line, sizeof line,
                    "step %lld/%lld  loss %.4f  view acc %.3f  pos %.3f neg %.3f  lr %.2e  %.2f s/step\n",
                    static_cast<long long>(step), static_cast<long long>(o.steps), loss_value, m.acc_p2q,
                    m.pos_sim, m.neg_sim, lr, per_step);
      log << line << std::flush;
    }
    const bool last = step == o.steps;
    if (o.eval_every > 0 && step % o.eval_every == 0 && !last) run_knn(step, o.eval_max_items);
    if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || last) {
      TrainerState st;
      st.step = step;
      st.epoch = loader.epoch();
      st.batch_in_epoch = loader.batch_in_epoch();
      st.seed = o.seed;
      st.config_text = o.to_ini();
      save_checkpoint(ckpt_dir, model.state_dict(), opt, st, static_cast<int>(o.keep_last));
    }
  }
  result.train_seconds = seconds_since(t_train);
  result.steps_done = step;
  log << "train: " << step - first << " steps in " << result.train_seconds << " s\n"
      << device_memory_line(device);
  if (result.stopped_on_nan) return result;

  model.eval();
  result.tower = out / "image_tower.safetensors";
  save_image_tower(result.tower, model, stats.mean, stats.std, o.dataset, step);
  log << "image tower: " << result.tower.string() << "\n";
  run_knn(step, 0);
  nlohmann::json j = {{"steps", step},
                      {"knn_k", o.knn_k},
                      {"knn_memory", o.knn_memory},
                      {"train_seconds", result.train_seconds},
                      {"tower", result.tower.string()}};
  for (const auto& [s, a] : result.knn) j["knn"].push_back({{"step", s}, {"accuracy", a}});
  j["final_loss"] = result.losses.empty() ? NAN : result.losses.back();
  write_text_file_atomic(out / "ssl_final.json", j.dump(2) + "\n");
  return result;
}

}  // namespace cw::train
