// The image tasks of `train` end to end on a small hand-made data set (image_text_test_data.h):
// SimCLR pretraining writes a tower file that reloads to the same embeddings; image-text training
// from it (MiniLM top layer + projection, CWCL) runs a few steps with a finite, falling loss and
// evaluates zero-shot per template. Also the pieces: SimCLR views, weighted k-NN, tower-file and
// option errors.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "data/ssl_augment.h"
#include "device_test_util.h"
#include "image_text_test_data.h"
#include "train/device_select.h"
#include "train/image_knn.h"
#include "train/image_options.h"
#include "train/image_text_trainer.h"
#include "train/image_tower.h"
#include "train/ssl_trainer.h"

namespace cw::train {
namespace {

ImageTrainOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), "train");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  return parse_image_train_options(static_cast<int>(argv.size()), argv.data(), out).options;
}

double mean_of(const std::vector<double>& v, size_t from, size_t to) {
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(from),
                         v.begin() + static_cast<std::ptrdiff_t>(to), 0.0) /
         static_cast<double>(to - from);
}

// The tiny SimCLR run and the image-text run of the end-to-end tests, on the bar image set.
std::vector<std::string> ssl_args(const std::string& root, const std::filesystem::path& out) {
  return {"--task",
          "image_ssl",
          "--data.image_root",
          root,
          "--data.loader_workers",
          "0",
          "--optim.steps",
          "6",
          "--optim.batch_size",
          "16",
          "--optim.warmup_steps",
          "1",
          "--optim.lr",
          "3e-3",
          "--run.eval_every",
          "0",
          "--run.out",
          out.string(),
          "--ssl.knn_k",
          "3",
          "--model.image_dim",
          "32",
          "--model.image_layers",
          "1",
          "--model.image_heads",
          "2",
          "--model.image_mlp",
          "64",
          "--model.ssl_proj_dim",
          "16"};
}

std::vector<std::string> image_text_args(const std::string& root, const std::filesystem::path& tower,
                                         const std::filesystem::path& out) {
  return {"--task",
          "image_text",
          "--data.image_root",
          root,
          "--data.loader_workers",
          "0",
          "--model.image_tower",
          tower.string(),
          "--model.text_train_layers",
          "1",
          "--optim.steps",
          "10",
          "--optim.batch_size",
          "12",
          "--optim.warmup_steps",
          "1",
          "--optim.lr",
          "1e-3",
          "--run.eval_every",
          "0",
          "--run.out",
          out.string()};
}

TEST(ImageTasks, SslThenImageTextEndToEnd) {
  if (!data::try_find_minilm_dir(std::nullopt))
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh)";
  test::ImageTaskTempDir dir("e2e");
  test::write_bar_image_set(dir.path);
  const std::string root = dir.path.string();
  std::ostringstream ssl_log;
  const ImageSslResult ssl = run_image_ssl(parse(ssl_args(root, dir.path / "ssl")), ssl_log);
  ASSERT_FALSE(ssl.stopped_on_nan) << ssl_log.str();
  ASSERT_EQ(ssl.losses.size(), 6u);
  for (double l : ssl.losses) EXPECT_TRUE(std::isfinite(l));
  ASSERT_EQ(ssl.knn.size(), 1u);  // the final check only (eval_every 0)
  EXPECT_GE(ssl.knn[0].second, 0.0);
  EXPECT_LE(ssl.knn[0].second, 1.0);

  // The tower file rebuilds the model: its configuration, and the same embeddings twice (cache).
  const ImageTower tower = load_image_tower(ssl.tower);
  EXPECT_EQ(tower.dim(), 32);
  EXPECT_EQ(tower.model->config.num_layers, 1);
  EXPECT_EQ(tower.model->config.patch_size, 7);
  auto test_set = std::make_shared<const data::ImageDataset>(
      data::ImageDataset::load_named("fashion_mnist", "test", dir.path));
  const CachedImageEmbeddings a = embed_images_cached(tower, test_set, 5);
  const CachedImageEmbeddings b = embed_images_cached(tower, test_set, 7);
  EXPECT_FALSE(a.from_cache);
  EXPECT_TRUE(b.from_cache);
  ASSERT_EQ(a.embeddings.shape(), (Shape{16, 32}));
  EXPECT_EQ(a.embeddings.to_vector<float>(), b.embeddings.to_vector<float>());
  const Tensor direct = embed_images(tower, test_set, 16);
  const auto x = a.embeddings.to_vector<float>(), y = direct.to_vector<float>();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], 1e-5) << "element " << i;

  std::ostringstream it_log;
  const ImageTextResult it = run_image_text(parse(image_text_args(root, ssl.tower, dir.path / "it")), it_log);
  ASSERT_FALSE(it.stopped_on_nan) << it_log.str();
  ASSERT_EQ(it.losses.size(), 10u);
  for (double l : it.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(mean_of(it.losses, 7, 10), mean_of(it.losses, 0, 3)) << it_log.str();
  // Evaluated before and after: every test image, every template.
  for (const ImageTextEval* e : {&it.initial_eval, &it.final_eval}) {
    EXPECT_EQ(e->zero_shot.n, 16);
    ASSERT_EQ(e->zero_shot.per_template.size(), 3u);
    EXPECT_EQ(e->templates.size(), 3u);
    EXPECT_GE(e->zero_shot.min, 0.0);
    EXPECT_LE(e->zero_shot.max, 1.0);
    EXPECT_EQ(e->retrieval.n, 16);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path / "it" / "eval_final.json"));
  // `eval` on the run gives the final evaluation again.
  std::ostringstream eval_out;
  const ImageTextEval again = evaluate_image_text_run(dir.path / "it", {}, "", eval_out);
  EXPECT_NEAR(again.zero_shot.ensemble_accuracy, it.final_eval.zero_shot.ensemble_accuracy, 1e-12);
  EXPECT_NEAR(again.structure_correlation, it.final_eval.structure_correlation, 1e-5);
}

TEST(ImageTasks, SimclrViewIsSeededAndResamplesCorrectly) {
  data::SslAugment a;
  a.noise_std = 0.1;
  const Tensor img = ops::rand({3, 1, 12, 12});
  const Tensor v1 = data::simclr_view(img, a, 5, 0), v1b = data::simclr_view(img, a, 5, 0),
               v2 = data::simclr_view(img, a, 5, 1);
  EXPECT_EQ(v1.to_vector<float>(), v1b.to_vector<float>());
  EXPECT_NE(v1.to_vector<float>(), v2.to_vector<float>());
  // A constant image stays constant through crop, flip and resampling (bilinear weights sum to 1),
  // and brightness/contrast off leave its value; normalization is applied last.
  data::SslAugment plain;
  plain.brightness = plain.contrast = plain.noise_std = 0;
  plain.mean = {0.25f};
  plain.std = {0.5f};
  const Tensor flat = ops::full({2, 1, 9, 9}, 0.75);
  for (uint64_t s = 0; s < 5; ++s)
    for (float v : data::simclr_view(flat, plain, 1, s).to_vector<float>()) ASSERT_NEAR(v, 1.0f, 1e-6);
  EXPECT_THROW(data::simclr_view(ops::zeros({2, 9, 9}), plain, 0, 0), ShapeError);
}

TEST(ImageTasks, KnnAccuracyOnHandMadeClusters) {
  // Two clusters along x and y; the query at (1, 0.1) is class 0, at (0.1, 1) class 1.
  const Tensor mem = ops::from_vector(std::vector<float>{1, 0, 0.9f, 0.1f, 0, 1, 0.1f, 0.9f}, {4, 2});
  const Tensor q = ops::from_vector(std::vector<float>{1, 0.1f, 0.1f, 1}, {2, 2});
  EXPECT_DOUBLE_EQ(knn_accuracy(mem, {0, 0, 1, 1}, q, {0, 1}, 2, 2), 1.0);
  EXPECT_DOUBLE_EQ(knn_accuracy(mem, {0, 0, 1, 1}, q, {1, 0}, 2, 2), 0.0);
  EXPECT_DOUBLE_EQ(knn_accuracy(mem, {0, 0, 1, 1}, q, {0, 0}, 2, 2), 0.5);
  EXPECT_THROW(knn_accuracy(mem, {0, 0, 1, 5}, q, {0, 1}, 2, 2), IndexError);
  EXPECT_THROW(knn_accuracy(mem, {0, 0, 1}, q, {0, 1}, 2, 2), ShapeError);
}

// --run.device cuda: both image tasks give the CPU runs' losses to 1e-3 (the bar), and
// the tower trained on the GPU is saved from the host. Skips where the build has no CUDA backend
// or the machine no GPU, saying which.
TEST(ImageTasks, CudaRunsMatchTheCpuRuns) {
  std::string why_not;
  if (!test::cuda_for_test(why_not)) GTEST_SKIP() << why_not;
  if (!data::try_find_minilm_dir(std::nullopt))
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh)";
  test::ImageTaskTempDir dir("cuda");
  test::write_bar_image_set(dir.path);
  const std::string root = dir.path.string();
  auto on = [](std::vector<std::string> args, const char* device) {
    args.insert(args.end(), {"--run.device", device});
    return parse(args);
  };
  std::ostringstream log;
  const ImageSslResult ssl_cpu = run_image_ssl(on(ssl_args(root, dir.path / "ssl_cpu"), "cpu"), log);
  const ImageSslResult ssl_gpu = run_image_ssl(on(ssl_args(root, dir.path / "ssl_gpu"), "cuda"), log);
  ASSERT_EQ(ssl_cpu.losses.size(), 6u);
  ASSERT_EQ(ssl_gpu.losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i)
    EXPECT_NEAR(ssl_gpu.losses[i], ssl_cpu.losses[i], 1e-3) << "ssl step " << i + 1;
  EXPECT_NEAR(ssl_gpu.knn.back().second, ssl_cpu.knn.back().second, 1.0 / 16 + 1e-9);  // one image at most
  // The image-text runs share the CPU-trained tower, so only the text tower's device differs.
  const ImageTextResult it_cpu =
      run_image_text(on(image_text_args(root, ssl_cpu.tower, dir.path / "it_cpu"), "cpu"), log);
  const ImageTextResult it_gpu =
      run_image_text(on(image_text_args(root, ssl_cpu.tower, dir.path / "it_gpu"), "cuda"), log);
  ASSERT_EQ(it_cpu.losses.size(), 10u);
  ASSERT_EQ(it_gpu.losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_NEAR(it_gpu.losses[i], it_cpu.losses[i], 1e-3) << "image-text step " << i + 1;
  EXPECT_NEAR(it_gpu.final_eval.structure_correlation, it_cpu.final_eval.structure_correlation, 1e-3);
  EXPECT_EQ(load_image_tower(ssl_gpu.tower).dim(), 32);
}

TEST(ImageTasks, BadTowerFileAndOptions) {
  test::ImageTaskTempDir dir("bad");
  const auto not_tower = dir.path / "plain.safetensors";
  save_safetensors(not_tower.string(), {{"x", ops::zeros({2})}});
  try {
    load_image_tower(not_tower);
    FAIL() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("plain.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("format"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_image_tower(dir.path / "missing.safetensors"), ValueError);
  EXPECT_THROW(parse({"--task", "image_text"}), ValueError);  // no --model.image_tower
  EXPECT_THROW(parse({"--task", "image_ssl", "--model.image_preset", "huge"}), ValueError);
  EXPECT_THROW(parse({"--task", "image_ssl", "--optim.warmup_steps", "500"}), ValueError);
  try {
    parse({"--task", "image_ssl", "--run.device", "gpu"});
    ADD_FAILURE() << "--run.device gpu was accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("--run.device"), std::string::npos) << e.what();
  }
  // The spelling parses anywhere (--print-config needs no GPU); the run checks the machine.
  EXPECT_NE(parse({"--task", "image_ssl", "--run.device", "cuda:1"}).to_ini().find("device = cuda:1"),
            std::string::npos);
  EXPECT_NE(parse({"--task", "image_ssl", "--run.conv", "cudnn"}).to_ini().find("conv = cudnn"),
            std::string::npos);
  EXPECT_THROW(parse({"--task", "image_ssl", "--run.conv", "cuDNN"}), ValueError);
  if (!built_with_cuda()) {
    try {
      std::ostringstream quiet;
      run_image_ssl(
          parse({"--task", "image_ssl", "--run.device", "cuda", "--run.out", (dir.path / "dev").string()}),
          quiet);
      ADD_FAILURE() << "a CPU-only build ran --run.device cuda";
    } catch (const DeviceError& e) {
      EXPECT_NE(std::string(e.what()).find("--run.device"), std::string::npos) << e.what();
    }
  }
  const ImageTrainOptions o = parse({"--task", "image_ssl", "--optim.steps", "70"});
  // The resolved INI reads back to the same options.
  const auto ini = dir.path / "c.ini";
  std::ofstream(ini) << o.to_ini();
  EXPECT_EQ(parse({"--config", ini.string()}).to_ini(), o.to_ini());
  const char* argv[] = {"train", "--config", ini.c_str()};
  EXPECT_EQ(requested_task(3, argv), "image_ssl");
  const char* argv2[] = {"train", "--optim.steps", "3"};
  EXPECT_EQ(requested_task(3, argv2), "speech_text");
}

}  // namespace
}  // namespace cw::train
