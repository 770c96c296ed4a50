// SimCLR pretraining of the image tower (see ssl_trainer.h).
#include "train/ssl_trainer.h"

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
#include "data/ssl_augment.h"
#include "losses/contrastive_loss.h"
#include "train/image_knn.h"
#include "train/image_tower.h"
#include "train/run_loop.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Test-set k-NN accuracy of the tower's representation (forward_features), with up to `memory`
// training images as the neighbours and up to `max_queries` test images (0: all).
double knn_check(const ImageTower& tower, std::shared_ptr<const data::ImageDataset> train,
                 std::shared_ptr<const data::ImageDataset> test, const ImageTrainOptions& o,
                 int64_t max_queries) {
  const Tensor mem = embed_images(tower, train, o.eval_batch_size, o.knn_memory);  // (M, D)
  const Tensor q = embed_images(tower, test, o.eval_batch_size, max_queries);      // (N, D)
  std::vector<int64_t> ml = train->labels().to_vector<int64_t>(), ql = test->labels().to_vector<int64_t>();
  ml.resize(static_cast<size_t>(mem.size(0)));
  ql.resize(static_cast<size_t>(q.size(0)));
  return knn_accuracy(mem, ml, q, ql, o.knn_k, train->num_classes());
}

// SimCLR pretraining as a Task of the one training loop (run_loop.h).
class SslTask : public LoaderTask<data::ImageLoader, data::ImageBatch> {
 public:
  SslTask(const ImageTrainOptions& o, const RunContext& ctx) : o_(o), ctx_(ctx) {
    const fs::path root = o.image_root.empty() ? fs::path() : fs::path(o.image_root);
    train_set_ =
        std::make_shared<const data::ImageDataset>(data::ImageDataset::load_named(o.dataset, "train", root));
    test_set_ =
        std::make_shared<const data::ImageDataset>(data::ImageDataset::load_named(o.dataset, "test", root));
    // Normalization from the training images alone, stored in the tower file for every later use.
    stats_ = train_set_->channel_stats();
    manual_seed(o.seed);
    cfg_ = image_tower_config(o, train_set_->channels());
    tower_.model = std::make_shared<models::VisionTransformer>(cfg_);
    tower_.mean = stats_.mean;
    tower_.std = stats_.std;

    // SimCLR's loss between the two views: InfoNCE both ways (view 1 -> view 2 and back), a fixed
    // temperature. (NT-Xent also counts the other images' same-view embeddings as negatives; here
    // the project's InfoNCE is reused as it is, which keeps 2(B - 1) of SimCLR's 2B - 2 negatives.)
    lc_.loss = losses::LossKind::InfoNCE;
    lc_.reverse = losses::ReverseDirection::InfoNCE;
    lc_.reduction = losses::DirectionReduction::Mean;
    lc_.learn_temperature = false;
    lc_.init_temperature = o.ssl_temperature;
    log_scale_ = Variable(losses::make_log_scale(lc_).data().to(ctx.device), false);

    data::ImageLoaderOptions lo;
    lo.batch_size = o.batch_size;
    lo.seed = o.seed;
    lo.num_workers = static_cast<int>(o.loader_workers);
    if (train_set_->height() != cfg_.image_size || train_set_->width() != cfg_.image_size)
      lo.resize_height = lo.resize_width = cfg_.image_size;
    loader_ =
        std::make_unique<data::ImageLoader>(train_set_, lo);  // raw [0, 1] pixels; the views are made below
    aug_.crop_min_scale = o.crop_min_scale;
    aug_.flip = train_set_->horizontal_flip();
    aug_.brightness = o.brightness;
    aug_.contrast = o.contrast;
    aug_.noise_std = o.noise_std;
    aug_.mean = stats_.mean;
    aug_.std = stats_.std;
  }

  nn::Module& model() override { return *tower_.model; }
  std::string describe() const override {
    std::ostringstream s;
    s << "ViT image " << cfg_.image_size << ", patch " << cfg_.patch_size << ", dim " << cfg_.hidden_dim
      << ", " << cfg_.num_layers << " layers, " << cfg_.num_heads << " heads, MLP " << cfg_.mlp_dim
      << ", projection " << cfg_.hidden_dim << " -> tanh -> " << cfg_.embed_dim << ": "
      << tower_.model->num_parameters() << " parameters";
    return s.str();
  }
  const char* items_name() const override { return "images"; }

  TaskLoss forward(int64_t step, const dist::RowShard&) override {
    // The views of step s draw from streams 2s and 2s + 1 (a pure function of seed and step).
    const uint64_t stream = static_cast<uint64_t>(step) * 2;
    const Tensor v1 = data::simclr_view(batch_.images, aug_, o_.seed, stream);      // (B, C, H, W)
    const Tensor v2 = data::simclr_view(batch_.images, aug_, o_.seed, stream + 1);  // (B, C, H, W)
    // One forward over both views: (2B, E), split back into the two views' rows.
    const Variable z = tower_.model->forward(Variable(ops::concat({v1, v2}, 0).to(ctx_.device)));
    const int64_t B = batch_.images.size(0);
    const losses::ContrastiveOutput lo =
        losses::contrastive_loss(ag::narrow(z, 0, 0, B), ag::narrow(z, 0, B, B), log_scale_, lc_);
    const auto& m = lo.metrics;
    final_loss_ = lo.loss.data().to(Device::cpu()).item();
    return {lo.loss,
            {{"loss", "loss", final_loss_, "%.6f"},
             {"acc_view1_to_view2", "acc_view1_to_view2", m.acc_p2q, "%.4f"},
             {"pos_sim", "pos_sim", m.pos_sim, "%.4f"},
             {"neg_sim", "neg_sim", m.neg_sim, "%.4f"}}};
  }
  std::string progress(const std::vector<StepMetric>& m) const override {
    char line[128];
    std::snprintf(line, sizeof line, "loss %.4f  view acc %.3f  pos %.3f neg %.3f", m[0].value, m[1].value,
                  m[2].value, m[3].value);
    return line;
  }

  EvalRecord evaluate(int64_t step, int64_t max_queries) override {
    tower_.model->eval();
    const auto t0 = Clock::now();
    const double acc = knn_check(tower_, train_set_, test_set_, o_, max_queries);
    tower_.model->train();
    const int64_t n = max_queries > 0 ? std::min(max_queries, test_set_->size()) : test_set_->size();
    knn_.emplace_back(step, acc);
    const double chance = 1.0 / static_cast<double>(test_set_->num_classes());  // a uniform guess
    char line[240];
    std::snprintf(line, sizeof line,
                  "k-NN accuracy %.4f (chance %.4f) on %lld test images (k %lld, memory %lld; %.1f s)\n", acc,
                  chance, static_cast<long long>(n), static_cast<long long>(o_.knn_k),
                  static_cast<long long>(o_.knn_memory), seconds_since(t0));
    return {{{"knn_acc", acc}, {"queries", static_cast<double>(n)}},
            {{"knn_acc", acc}, {"queries", n}, {"chance", chance}},
            line};
  }
  std::string eval_log() const override { return "knn"; }
  bool evaluates_at_start() const override { return o_.eval_every > 0; }

  void finish(int64_t step, double train_seconds, const EvalRecord&, std::ostream& log) override {
    tower_.model->eval();
    file_ = fs::path(o_.out) / "image_tower.safetensors";
    save_image_tower(file_, *tower_.model, stats_.mean, stats_.std, o_.dataset, step);
    log << "image tower: " << file_.string() << "\n";
    nlohmann::json j = {{"steps", step},
                        {"knn_k", o_.knn_k},
                        {"knn_memory", o_.knn_memory},
                        {"train_seconds", train_seconds},
                        {"tower", file_.string()}};
    for (const auto& [s, a] : knn_) j["knn"].push_back({{"step", s}, {"accuracy", a}});
    j["final_loss"] = final_loss_;
    write_file_atomic(fs::path(o_.out) / "ssl_final.json", j.dump(2) + "\n");
  }

  std::vector<std::pair<int64_t, double>> knn_;  // (step, k-NN test accuracy), step 0 = the random init
  fs::path file_;

 private:
  const ImageTrainOptions& o_;
  const RunContext& ctx_;
  std::shared_ptr<const data::ImageDataset> train_set_, test_set_;
  data::ChannelStats stats_;
  models::ViTConfig cfg_;
  ImageTower tower_;
  losses::ContrastiveConfig lc_;
  Variable log_scale_;
  data::SslAugment aug_;
  double final_loss_ = NAN;  // of the last step taken
};

}  // namespace

ImageSslResult run_image_ssl(const ImageTrainOptions& o, std::ostream& log) {
  const RunContext ctx = start_run(o, o.with_absolute_paths().to_ini(), /*data_parallel=*/false, log);
  SslTask task(o, ctx);
  ImageSslResult result;
  static_cast<LoopResult&>(result) = run_loop(task, o, ctx);
  result.knn = task.knn_;
  result.tower = task.file_;
  return result;
}

}  // namespace cw::train
