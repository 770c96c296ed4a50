// The recipe of docs/REPRODUCE_IMAGES.md, run as written on tiny fake copies of the two archives'
// layouts written here: ImageNet's train/ and val/ class folders with LOC_synset_mapping.txt, and
// two img2dataset-style CC3M shards (one sample without a caption). Every line of its recipe
// block runs in order, with $DL pointing at the fake downloads and $IMG at a folder of the test:
// `import imagenet`, `import webdataset`, `train --task image_ssl` (the frozen image tower),
// `train --task image_text` (the text tower with CWCL, zero-shot on the imported ImageNet) and
// `eval` of that run. The train lines get a few options appended that shrink them to seconds (a
// one-layer image tower, 2 steps, no trained MiniLM layers); nothing else is changed. The output
// shown after the block is checked against what the webdataset import printed. So an edit to the
// recipe, the importers or the binaries that breaks the path to zero-shot ImageNet fails this
// test. The text tower is the real all-MiniLM-L6-v2: the test skips where it is not installed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/jpeg_test_util.h"
#include "data/model_files.h"
#include "data/tar_test_util.h"

#if defined(CW_BIN_DIR) && defined(CW_SOURCE_DIR)
#include "recipe_test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using test::runs_binary;
using test::word_after;

const fs::path kDoc = fs::path(CW_SOURCE_DIR) / "docs" / "REPRODUCE_IMAGES.md";

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string jpeg(int w, int h, int tint) {
  return test::encode_jpeg(test::test_picture(w, h, tint), w, h, 3);
}

// Four classes; the picture's tint is the class, the captions say the color in words.
const char* kWnids[4] = {"n01440764", "n01443537", "n01484850", "n01491361"};
const char* kColors[4] = {"reddish", "greenish", "bluish", "yellowish"};

// <dl>/imagenet: LOC_synset_mapping.txt, train/<wnid>/ with 4 JPEGs per class and val/<wnid>/ with
// 2 (the validation images sorted into class folders, as the recipe asks). <dl>/cc3m: shards
// 00000.tar and 00001.tar of 8 samples each (jpg, txt, json members), sample 000000015 without a
// caption; the recipe's pattern names 332 shards, so 330 are missing (a note, as after an
// img2dataset run that lost some).
void write_layouts(const fs::path& dl) {
  write(dl / "imagenet" / "LOC_synset_mapping.txt",
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
        "n01484850 great white shark, white shark\nn01491361 tiger shark, Galeocerdo cuvieri\n");
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < 4; ++i)
      write(dl / "imagenet" / "train" / kWnids[c] /
                (std::string(kWnids[c]) + "_" + std::to_string(i) + ".JPEG"),
            jpeg(40 + i * 3, 32, c * 4 + i % 2));
    for (int i = 0; i < 2; ++i)
      write(dl / "imagenet" / "val" / kWnids[c] / ("ILSVRC2012_val_" + std::to_string(c * 2 + i) + ".JPEG"),
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
    write(dl / "cc3m" / (std::string(shard == 0 ? "00000" : "00001") + ".tar"), tar + test::tar_end());
  }
}

// What shrinks each task's run to seconds; appended, so they override the defaults. The SimCLR
// tower gets one narrow layer; the text tower trains its projection and scale only.
const std::string kTinyRun =
    " --optim.steps 2 --optim.warmup_steps 1 --run.eval_every 0 --run.plots false --run.progress lines"
    " --run.threads 2 --data.loader_workers 0";
const std::map<std::string, std::string> kTinyTask = {
    {"image_ssl", kTinyRun + " --optim.batch_size 8 --ssl.knn_k 3 --model.image_dim 32 --model.image_layers 1"
                             " --model.image_heads 2 --model.image_mlp 64 --model.ssl_proj_dim 16"},
    {"image_text", kTinyRun + " --optim.batch_size 6 --model.text_train_layers 0"}};

// The last line of `log` that is a JSON object (eval prints its results as one).
nlohmann::json last_json_line(const std::string& log) {
  std::istringstream lines(log);
  std::string found;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.front() == '{') found = line;
  return found.empty() ? nlohmann::json() : nlohmann::json::parse(found);
}

TEST(ImageRecipe, FromTheArchivesToZeroShotImageNetAsWritten) {
  if (!data::try_find_minilm_dir()) GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh)";
  const std::vector<std::string> lines = test::marked_block_lines(kDoc, "recipe");
  test::RecipeScratch dir("image_recipe");
  const fs::path dl = dir.path / "downloads";
  write_layouts(dl);
  const std::map<std::string, std::string> env = {{"DL", dl.string()}, {"IMG", "corpora/images"}};

  std::vector<std::string> trained;  // the --run.out of each train line run so far
  std::string webdataset_log, eval_log;
  int imports = 0, trains = 0, evals = 0;
  for (const std::string& c : lines) {
    if (c.rfind("BIN=", 0) == 0) continue;  // the reader's own settings; the test sets BIN, DL, IMG
    const bool import = runs_binary(c, "import"), train = runs_binary(c, "train"),
               eval = runs_binary(c, "eval");
    // A line of another kind would go untested: say so rather than skip it.
    ASSERT_TRUE(import || train || eval) << "a recipe line this test does not know how to run: " << c;
    std::string tiny;
    if (train) {
      const std::string task = word_after(c, "--task");
      ASSERT_TRUE(kTinyTask.count(task)) << "no tiny overrides for the task of " << c;
      tiny = kTinyTask.at(task);
    }
    // A line that reads a run folder (an eval, or image_text's frozen tower) comes after the train
    // line that writes it, as a reader runs them.
    const std::string tower = word_after(c, "--model.image_tower");
    for (const std::string& needs : {word_after(c, "--run"), fs::path(tower).parent_path().string()}) {
      if (!needs.empty()) {
        EXPECT_NE(std::find(trained.begin(), trained.end(), needs), trained.end())
            << "reads a run no earlier line trained: " << c;
      }
    }
    std::string log;
    ASSERT_EQ(test::run_recipe_line(dir.path, c + tiny, env, &log), 0) << c << "\n" << log;
    if (import) {
      ++imports;
      if (word_after(c, "import") == "webdataset") {
        webdataset_log = log;
      } else {
        EXPECT_NE(log.find("imagenet: kept 24 images (test 8) (train 16), dropped 0"), std::string::npos)
            << log;
      }
    }
    if (train) {
      ++trains;
      trained.push_back(word_after(c, "--run.out"));
      EXPECT_NE(log.find("step 2/2"), std::string::npos) << c << "\n" << log;
    }
    if (eval) {
      ++evals;
      eval_log = log;
    }
  }
  EXPECT_EQ(imports, 2);  // ImageNet, CC3M
  EXPECT_EQ(trains, 2);   // the SimCLR image tower, the text tower
  EXPECT_EQ(evals, 1);

  // The import output the document shows is what the webdataset import printed (the timing on
  // its last line aside).
  for (const std::string& shown : test::marked_block_lines(kDoc, "webdataset output")) {
    const std::string untimed = shown.substr(0, shown.find(';'));
    EXPECT_NE(webdataset_log.find(untimed), std::string::npos) << untimed << "\n" << webdataset_log;
  }
  // The 330 shards of the pattern that are not there: the first 10 named, then a count.
  EXPECT_NE(webdataset_log.find("note: shard missing: " + (dl / "cc3m" / "00002.tar").string()),
            std::string::npos)
      << webdataset_log;
  EXPECT_NE(webdataset_log.find("note: 320 more shards missing"), std::string::npos) << webdataset_log;
  // Run again on the unchanged shards, the import is a no-op (what keeps a rerun recipe cheap).
  const auto webdataset_line = std::find_if(lines.begin(), lines.end(), [](const std::string& c) {
    return runs_binary(c, "import") && word_after(c, "import") == "webdataset";
  });
  ASSERT_NE(webdataset_line, lines.end());
  std::string rerun;
  ASSERT_EQ(test::run_recipe_line(dir.path, *webdataset_line, env, &rerun), 0) << rerun;
  EXPECT_NE(rerun.find("up to date"), std::string::npos) << rerun;

  // The text tower's run: trained with CWCL (the line's --loss.kind), zero-shot on the imported
  // ImageNet's validation images (8, 4 classes) with CLIP's 80 templates; `eval --run` gives the
  // training's final evaluation again.
  const std::string config = test::slurp_file(dir.path / "runs" / "cc3m_cwcl" / "config.ini");
  EXPECT_NE(config.find("[loss]\nkind = cwcl\n"), std::string::npos) << config;
  const nlohmann::json final_eval =
      nlohmann::json::parse(test::slurp_file(dir.path / "runs" / "cc3m_cwcl" / "eval_final.json"));
  EXPECT_EQ(final_eval["dataset"], "imagenet");
  EXPECT_EQ(final_eval["zero_shot"]["n"], 8);
  EXPECT_EQ(final_eval["chance"]["zero_shot"], 0.25);
  ASSERT_EQ(final_eval["templates"].size(), 80u);
  EXPECT_EQ(final_eval["templates"][0], "a bad photo of a {}.");
  EXPECT_NE(eval_log.find("zero-shot imagenet test (8 images, 80 templates)"), std::string::npos) << eval_log;
  const nlohmann::json evaluated = last_json_line(eval_log);
  ASSERT_TRUE(evaluated.is_object()) << eval_log;
  EXPECT_NEAR(evaluated["zero_shot"]["ensemble_accuracy"].get<double>(),
              final_eval["zero_shot"]["ensemble_accuracy"].get<double>(), 1e-12);

  // The caption-only corpus cannot be the zero-shot test: the image_text line without
  // --data.eval_dataset fails before training (exit 1: bad data), naming the split it lacks.
  const std::string no_zero_shot_test =
      "$BIN/train --task image_text --data.image_root $IMG --data.dataset cc3m"
      " --model.image_tower runs/imagenet_ssl/image_tower.safetensors --run.out runs/x" +
      kTinyTask.at("image_text");
  std::string log;
  EXPECT_EQ(test::run_recipe_line(dir.path, no_zero_shot_test, env, &log), 1) << log;
  EXPECT_NE(log.find("cc3m/dataset.json has no split 'test'"), std::string::npos) << log;
}

}  // namespace
}  // namespace cw
#endif
