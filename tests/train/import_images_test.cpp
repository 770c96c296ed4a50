// The image recipe of docs/REPRODUCE_IMAGES.md end to end on fake layouts written here: `import
// imagenet` (train/ and val/ class folders + LOC_synset_mapping.txt) and `import webdataset`
// (two img2dataset-style shards, one sample without a caption), then `train --task image_ssl` on
// the imported ImageNet (the frozen tower), `train --task image_text` on the imported pairs with
// the zero-shot test from the imported ImageNet (--data.eval_dataset), and `eval` of the run. Also
// the commands' option errors.
#include "train/import_images.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "data/jpeg_test_util.h"
#include "data/model_files.h"
#include "data/tar_test_util.h"
#include "image_text_test_data.h"
#include "train/image_options.h"
#include "train/image_text_trainer.h"
#include "train/ssl_trainer.h"

namespace cw::train {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string jpeg(int w, int h, int tint) {
  return test::encode_jpeg(test::test_picture(w, h, tint), w, h, 3);
}

int run(int (*main)(int, const char* const*, std::ostream&), std::vector<std::string> args,
        std::ostream& log) {
  std::vector<const char*> argv = {"import"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return main(static_cast<int>(argv.size()), argv.data(), log);
}

ImageTrainOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), "train");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  return parse_image_train_options(static_cast<int>(argv.size()), argv.data(), out).options;
}

// Four classes; the picture's tint is the class, the captions say the color in words.
const char* kWnids[4] = {"n01440764", "n01443537", "n01484850", "n01491361"};
const char* kColors[4] = {"reddish", "greenish", "bluish", "yellowish"};

void write_layouts(const fs::path& src) {
  write(src / "imagenet" / "LOC_synset_mapping.txt",
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
        "n01484850 great white shark, white shark\nn01491361 tiger shark, Galeocerdo cuvieri\n");
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < 4; ++i)
      write(src / "imagenet" / "train" / kWnids[c] /
                (std::string(kWnids[c]) + "_" + std::to_string(i) + ".JPEG"),
            jpeg(40 + i * 3, 32, c * 4 + i % 2));
    for (int i = 0; i < 2; ++i)
      write(src / "imagenet" / "val" / kWnids[c] / ("ILSVRC2012_val_" + std::to_string(c * 2 + i) + ".JPEG"),
            jpeg(36, 44, c * 4 + i));
  }
  for (int shard = 0; shard < 2; ++shard) {
    std::string tar;
    for (int i = 0; i < 8; ++i) {
      const int c = (i + shard) % 4;
      char key[16];
      std::snprintf(key, sizeof key, "%09d", shard * 8 + i);
      tar += test::tar_entry(std::string(key) + ".jpg", jpeg(48, 40, c * 4 + i % 2));
      if (!(shard == 1 && i == 7))  // one sample without a caption
        tar += test::tar_entry(
            std::string(key) + ".txt",
            std::string("a ") + kColors[c] + " picture with a bright square, n\xc2\xb0" + std::to_string(i));
      tar += test::tar_entry(std::string(key) + ".json",
                             "{\"url\": \"http://example.com\", \"status\": \"success\"}");
    }
    write(src / "cc3m" / (std::string(shard == 0 ? "00000" : "00001") + ".tar"), tar + test::tar_end());
  }
}

TEST(ImportImages, ImportThenTrainThenZeroShotEval) {
  if (!data::try_find_minilm_dir(std::nullopt))
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh)";
  test::ImageTaskTempDir dir("import_e2e");
  const fs::path src = dir.path / "downloads", data = dir.path / "images";
  write_layouts(src);
  std::ostringstream log;
  ASSERT_EQ(run(import_imagenet_main,
                {"--root", (src / "imagenet").string(), "--out", (data / "imagenet").string(), "--size", "28",
                 "--resize", "32", "--jobs", "2"},
                log),
            0);
  ASSERT_EQ(run(import_webdataset_main,
                {"--shards", (src / "cc3m" / "{00000..00001}.tar").string(), "--out",
                 (data / "cc3m").string(), "--name", "cc3m", "--size", "28"},
                log),
            0);
  const std::string text = log.str();
  EXPECT_NE(text.find("imagenet: kept 24 images (test 8) (train 16), dropped 0"), std::string::npos) << text;
  EXPECT_NE(text.find("webdataset: kept 15 images (train 15), dropped 1"), std::string::npos) << text;
  EXPECT_NE(text.find("dropped 1: no caption"), std::string::npos) << text;
  std::ostringstream again;
  ASSERT_EQ(run(import_webdataset_main,
                {"--shards", (src / "cc3m" / "{00000..00001}.tar").string(), "--out",
                 (data / "cc3m").string(), "--name", "cc3m", "--size", "28"},
                again),
            0);
  EXPECT_NE(again.str().find("up to date"), std::string::npos) << again.str();

  // The frozen image tower: SimCLR on the imported ImageNet (3 channels, 28 x 28).
  const std::string root = data.string();
  std::ostringstream ssl_log;
  const ImageSslResult ssl = run_image_ssl(parse({"--task",
                                                  "image_ssl",
                                                  "--data.dataset",
                                                  "imagenet",
                                                  "--data.image_root",
                                                  root,
                                                  "--data.loader_workers",
                                                  "0",
                                                  "--optim.steps",
                                                  "2",
                                                  "--optim.batch_size",
                                                  "8",
                                                  "--optim.warmup_steps",
                                                  "1",
                                                  "--run.eval_every",
                                                  "0",
                                                  "--run.out",
                                                  (dir.path / "ssl").string(),
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
                                                  "16"}),
                                           ssl_log);
  ASSERT_FALSE(ssl.stopped_on_nan) << ssl_log.str();
  ASSERT_EQ(ssl.losses.size(), 2u);

  // The text tower on the imported pairs; zero-shot on the imported ImageNet's 80 CLIP templates.
  std::ostringstream it_log;
  const ImageTextResult it = run_image_text(parse({"--task",
                                                   "image_text",
                                                   "--data.dataset",
                                                   "cc3m",
                                                   "--data.eval_dataset",
                                                   "imagenet",
                                                   "--data.image_root",
                                                   root,
                                                   "--data.loader_workers",
                                                   "0",
                                                   "--model.image_tower",
                                                   ssl.tower.string(),
                                                   "--model.text_train_layers",
                                                   "0",
                                                   "--optim.steps",
                                                   "3",
                                                   "--optim.batch_size",
                                                   "6",
                                                   "--optim.warmup_steps",
                                                   "1",
                                                   "--run.eval_every",
                                                   "0",
                                                   "--run.out",
                                                   (dir.path / "it").string()}),
                                            it_log);
  ASSERT_FALSE(it.stopped_on_nan) << it_log.str();
  ASSERT_EQ(it.losses.size(), 3u);
  for (double l : it.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_EQ(it.final_eval.dataset, "imagenet");
  EXPECT_EQ(it.final_eval.zero_shot.n, 8);
  EXPECT_EQ(it.final_eval.num_classes, 4);
  EXPECT_EQ(it.final_eval.templates.size(), 80u);
  EXPECT_EQ(it.final_eval.templates[0], "a bad photo of a {}.");
  // `eval --run` of the run: the same final evaluation.
  std::ostringstream eval_out;
  const ImageTextEval ev = evaluate_image_text_run(dir.path / "it", {}, "", eval_out);
  EXPECT_NEAR(ev.zero_shot.ensemble_accuracy, it.final_eval.zero_shot.ensemble_accuracy, 1e-12);

  // The caption-only corpus cannot be the zero-shot test.
  EXPECT_THROW(run_image_text(parse({"--task", "image_text", "--data.dataset", "cc3m", "--data.image_root",
                                     root, "--model.image_tower", ssl.tower.string(), "--run.out",
                                     (dir.path / "it2").string()}),
                              it_log),
               ValueError);
}

TEST(ImportImages, CommandErrors) {
  std::ostringstream log;
  EXPECT_THROW(run(import_imagenet_main, {"--out", "x"}, log), std::exception);  // --root required
  EXPECT_THROW(run(import_imagenet_main, {"--root", "/nonexistent-folder", "--out", "x"}, log), OptionError);
  EXPECT_THROW(run(import_imagenet_main, {"--root", ".", "--out", "x", "--size", "0"}, log), OptionError);
  EXPECT_THROW(
      run(import_imagenet_main, {"--root", ".", "--out", "x", "--size", "64", "--resize", "32"}, log),
      OptionError);
  EXPECT_THROW(run(import_webdataset_main, {"--shards", "a.tar", "--out", "x", "--split", "a/b"}, log),
               OptionError);
  EXPECT_THROW(parse({"--task", "image_text", "--data.dataset", "../x", "--model.image_tower", "t"}),
               OptionError);
  EXPECT_EQ(run(import_webdataset_main, {"--help"}, log), 0);
  EXPECT_NE(log.str().find("--shards"), std::string::npos);
}

}  // namespace
}  // namespace cw::train
