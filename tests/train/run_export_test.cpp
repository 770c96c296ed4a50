// `eval --export` (train/run_export.h, train/tower_export.h): tower folders read back by our own
// loaders give identical tensors and embeddings (the Whisper HF reader, the sentence-transformers
// reader, the rename tables' inverse); whole run folders (Conformer and Whisper speech-text runs, an
// image-text run) export completely; bad input (no config.ini, no checkpoint, an existing or
// unwritable folder, a checkpoint that does not fit) is a clear error that leaves nothing behind.
#include "train/run_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "models/export_names.h"
#include "models/image_text_model.h"
#include "models/sentence_encoder.h"
#include "models/speech_text_model.h"
#include "models/whisper_encoder.h"
#include "support/check.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/image_options.h"
#include "train/image_tower.h"
#include "train/speech_model.h"
#include "train/tower_export.h"
#include "train/train_options.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

const fs::path kWhisperTiny = fs::path(CW_FIXTURE_DIR) / "whisper_hf_tiny";
const fs::path kBertTiny = fs::path(CW_FIXTURE_DIR) / "bert_variants" / "cls_normalize";

// A fresh folder per test, removed afterwards.
class RunExport : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("cw_export_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // No temporary export folder anywhere under dir_.
  void expect_no_leftovers() const {
    for (const auto& e : fs::recursive_directory_iterator(dir_))
      EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }

  // A run folder as train leaves it: config.ini and one checkpoint of `model`.
  fs::path write_run(const std::string& config_ini, const nn::Module& model, int64_t step = 3) {
    const fs::path run = dir_ / "run";
    fs::create_directories(run);
    std::ofstream(run / "config.ini") << config_ini;
    train::AdamW opt(train::make_param_groups(model.named_parameters(), 0.0), train::AdamWOptions{});
    train::TrainerState state;
    state.step = step;
    EXPECT_TRUE(train::save_checkpoint(run / "checkpoints", model.state_dict(), opt, state, 0));
    return run;
  }

  fs::path dir_;
};

using test::expect_error;

// Same names, shapes and values (compared in f64, exact).
::testing::AssertionResult identical(const std::map<std::string, Tensor>& a,
                                     const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << a.size() << " vs " << b.size() << " tensors";
  for (const auto& [name, t] : a) {
    if (!b.count(name)) return ::testing::AssertionFailure() << "'" << name << "' only in the first";
    const Tensor& u = b.at(name);
    if (u.shape() != t.shape() ||
        u.to(DType::F64).to_vector<double>() != t.to(DType::F64).to_vector<double>())
      return ::testing::AssertionFailure()
             << "'" << name << "' differs: " << describe(t) << " vs " << describe(u);
  }
  return ::testing::AssertionSuccess();
}

std::map<std::string, Tensor> read_all(const fs::path& file) {
  const SafetensorsFile f = SafetensorsFile::open(file.string());
  std::map<std::string, Tensor> out;
  for (const std::string& name : f.names()) out[name] = f.load(name);
  return out;
}

Tensor lengths_of(const std::vector<int64_t>& v) {
  return ops::from_vector(v, {static_cast<int64_t>(v.size())});
}

// ---------------------------------------------------------------- tower folders

TEST_F(RunExport, WhisperFolderReadsBackThroughTheHfLoaderWithIdenticalEmbeddings) {
  manual_seed(1);
  const models::WhisperEncoderConfig cfg = models::read_whisper_hf(kWhisperTiny).config;
  models::WhisperSpeechTower tower(cfg, 6, 1, models::WhisperInput::Mel);  // random weights
  train::export_whisper_encoder(*tower.encoder, dir_);
  const models::WhisperWeights back = models::read_whisper_hf(dir_);
  EXPECT_EQ(back.config, cfg);
  models::WhisperSpeechTower again(back.config, 6, 1, models::WhisperInput::Mel);
  ASSERT_TRUE(again.encoder->load_state_dict(back.encoder, true).ok());
  again.proj->load_state_dict(tower.proj->state_dict(), true);
  EXPECT_TRUE(identical(again.state_dict(), tower.state_dict()));
  NoGradGuard no_grad;
  const Tensor mel = ops::randn({2, 9, cfg.n_mels});
  const Tensor len = lengths_of({9, 6});
  EXPECT_TRUE(
      test::all_close(again.embed(Variable(mel), len).data(), tower.embed(Variable(mel), len).data(), 0, 0));
}

TEST_F(RunExport, TextFolderReadsBackAsTheSameSentenceEncoder) {
  const models::SentenceEncoder source = models::SentenceEncoder::load(kBertTiny);
  // A trained tower differs from its source file: change a weight so that a copied file would fail.
  Tensor w = (*source.model->encoder->layer)[0].output->dense->weight.data();
  w.copy_(ops::add(w, ops::full(w.shape(), 0.25)));
  train::export_text_tower(*source.model, kBertTiny, dir_);
  const models::SentenceEncoder back = models::SentenceEncoder::load(dir_);
  EXPECT_TRUE(identical(back.model->state_dict(), source.model->state_dict()));
  EXPECT_EQ(back.pooling.describe(), source.pooling.describe());
  EXPECT_EQ(back.normalize, source.normalize);
  const std::vector<std::string> s = {"a shoe", "the cat sat on the mat"};
  EXPECT_TRUE(test::all_close(back.encode(s), source.encode(s), 0, 0));
  EXPECT_FALSE(read_all(dir_ / "model.safetensors").count("embeddings.position_ids"));  // as BertModel saves
}

// ---------------------------------------------------------------- whole runs

TEST_F(RunExport, ConformerSpeechTextRunExportsTorchaudioAndEspnetNamesThatReadBack) {
  train::TrainOptions o;
  o.speech_tower = "conformer";
  o.speech_preset = "tiny";
  manual_seed(2);
  models::SpeechTextModel model(train::speech_tower_config(o, 80, 12), std::log(1 / 0.07), true);
  const fs::path run = write_run(o.to_ini(), model, 7);
  std::ostringstream log;
  const fs::path out = dir_ / "exported" / "conformer";
  EXPECT_EQ(train::export_run(run, "", out, log), out);
  for (const char* f : {"speech/config.json", "speech/model.safetensors", "speech/frontend.safetensors",
                        "heads.safetensors", "export.json", "README.txt"})
    EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
  // The two files under upstream names, back through the tables, plus the head: the tower exactly.
  const auto blocks = read_all(out / "speech" / "model.safetensors");
  EXPECT_TRUE(blocks.count("conformer_layers.0.self_attn.in_proj_weight"));
  std::map<std::string, Tensor> back = models::from_upstream(models::torchaudio_conformer_names(), blocks);
  for (auto& [name, t] : models::from_upstream(models::espnet_subsampling_names(),
                                               read_all(out / "speech" / "frontend.safetensors")))
    back[name] = t;
  const auto heads = read_all(out / "heads.safetensors");
  back["proj.weight"] = heads.at("speech_proj.weight");
  back["proj.bias"] = heads.at("speech_proj.bias");
  EXPECT_TRUE(identical(back, model.speech->state_dict()));
  EXPECT_EQ(heads.at("logit_scale").item(), model.logit_scale.data().item());
  EXPECT_EQ(SafetensorsFile::open((out / "heads.safetensors").string()).metadata().at("format"), "pt");
  EXPECT_NE(log.str().find("step 7"), std::string::npos) << log.str();
  expect_no_leftovers();
}

TEST_F(RunExport, WhisperSpeechTextRunExportsAnHfFolderOurReaderLoads) {
  train::TrainOptions o;
  o.speech_tower = "whisper";
  o.speech_weights = kWhisperTiny.string();
  const models::WhisperEncoderConfig cfg = models::read_whisper_hf(kWhisperTiny).config;
  manual_seed(3);
  models::SpeechTextModel model(
      std::make_shared<models::WhisperSpeechTower>(cfg, 10, 1, models::WhisperInput::Hidden),
      std::log(1 / 0.07), true);
  const fs::path run = write_run(o.to_ini(), model);
  std::ostringstream log;
  const fs::path out = dir_ / "whisper_export";
  train::export_run(run, "", out, log);
  const models::WhisperWeights back = models::read_whisper_hf(out / "speech");
  EXPECT_EQ(back.config, cfg);
  auto& tower = dynamic_cast<models::WhisperSpeechTower&>(*model.speech);
  EXPECT_TRUE(identical(back.encoder, tower.encoder->state_dict()));
  const auto heads = read_all(out / "heads.safetensors");
  EXPECT_TRUE(identical({{"weight", heads.at("speech_proj.weight")}, {"bias", heads.at("speech_proj.bias")}},
                        tower.proj->state_dict()));
  // Every name in the file is an HF WhisperModel encoder name.
  for (const auto& [name, t] : read_all(out / "speech" / "model.safetensors"))
    EXPECT_EQ(name.rfind("encoder.", 0), 0u) << name;
  expect_no_leftovers();
}

TEST_F(RunExport, ImageTextRunExportsTheTextTowerAndTheViT) {
  // The frozen image tower file, as image_ssl writes it.
  manual_seed(4);
  models::ViTConfig vc = models::ViTConfig::tiny();
  models::VisionTransformer vit(vc);
  const fs::path tower_file = dir_ / "tower.safetensors";
  train::save_image_tower(tower_file, vit, {0.5f, 0.25f}, {0.2f, 0.3f}, "test", 1);
  train::ImageTrainOptions o;
  o.task = "image_text";
  o.image_tower = tower_file.string();
  o.text_model = kBertTiny.string();
  o.text_train_layers = -1;
  const models::SentenceEncoder minilm = models::SentenceEncoder::load(kBertTiny);
  models::ImageTextModel model(minilm, vc.hidden_dim, o.text_train_layers, std::log(1 / 0.07), true);
  const fs::path run = write_run(o.to_ini(), model);
  std::ostringstream log;
  const fs::path out = dir_ / "image_text_export";
  train::export_run(run, "", out, log);
  const models::SentenceEncoder text = models::SentenceEncoder::load(out / "text");
  EXPECT_TRUE(identical(text.model->state_dict(), model.text->state_dict()));
  std::map<std::string, Tensor> vit_state = vit.state_dict();
  std::erase_if(vit_state, [](const auto& kv) { return kv.first.rfind("heads.", 0) == 0; });
  EXPECT_TRUE(
      identical(models::from_upstream(models::hf_vit_names(), read_all(out / "image" / "model.safetensors")),
                vit_state));
  const auto heads = read_all(out / "heads.safetensors");
  EXPECT_TRUE(identical({{"weight", heads.at("text_proj.weight")}, {"bias", heads.at("text_proj.bias")}},
                        model.proj->state_dict()));
  for (const char* f : {"image/config.json", "image/preprocessor_config.json", "text/modules.json",
                        "text/1_Pooling/config.json", "text/vocab.txt", "README.txt"})
    EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
  expect_no_leftovers();
}

// ---------------------------------------------------------------- bad input

TEST_F(RunExport, BadRunsAndFoldersAreClearErrorsThatLeaveNothing) {
  std::ostringstream log;
  // Not a run folder.
  expect_error<ValueError>([&] { train::export_run(dir_, "", dir_ / "out", log); },
                           {"config.ini", dir_.string()});
  // A run folder without a checkpoint.
  const fs::path run = dir_ / "empty_run";
  fs::create_directories(run);
  std::ofstream(run / "config.ini") << "task = speech_text\n";
  expect_error<ValueError>([&] { train::export_run(run, "", dir_ / "out", log); },
                           {"no checkpoint", (run / "checkpoints").string()});
  EXPECT_FALSE(fs::exists(dir_ / "out"));

  train::TrainOptions o;
  o.speech_tower = "conformer";
  o.speech_preset = "tiny";
  models::SpeechTextModel model(train::speech_tower_config(o, 80, 12), 1.0, true);
  const fs::path good = write_run(o.to_ini(), model);
  // An existing folder is never replaced.
  fs::create_directories(dir_ / "taken");
  expect_error<Error>([&] { train::export_run(good, "", dir_ / "taken", log); }, {"already exists", "taken"});
  // A folder that cannot be made: its parent is a file.
  std::ofstream(dir_ / "a_file") << "x";
  expect_error<Error>([&] { train::export_run(good, "", dir_ / "a_file" / "out", log); }, {"a_file"});
  // A checkpoint that does not fit the run's configuration fails after the export started: nothing is left.
  o.num_layers = 3;
  std::ofstream(good / "config.ini") << o.to_ini();
  expect_error<ValueError>([&] { train::export_run(good, "", dir_ / "out", log); },
                           {"does not fit", "Conformer"});
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  expect_no_leftovers();
}

}  // namespace
}  // namespace cw
