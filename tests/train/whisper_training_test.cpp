// End-to-end runs of the trainer with the Whisper speech tower (--model.speech_tower whisper) on
// the miniature corpus of speech_text_test_corpus.h, from a small random Whisper checkpoint in the
// Hugging Face layout that the test writes: the frozen part stays exactly the pretrained weights,
// the top blocks train, the cached path and the SpecAugment (whole-encoder) path both run, the
// frozen blocks' cache is read back, and `eval` rebuilds the same model. Skips without MiniLM.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/generator.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "models/whisper_encoder.h"
#include "speech_text_test_corpus.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

// A random 2-block Whisper encoder (80 mel bins, 4 s of positions) saved as a Hugging Face
// WhisperForConditionalGeneration folder would hold it ("model.encoder.*" + config.json).
std::map<std::string, Tensor> write_random_whisper(const fs::path& dir) {
  fs::create_directories(dir);
  models::WhisperEncoderConfig c;
  c.d_model = 16;
  c.num_heads = 2;
  c.num_layers = 2;
  c.ffn_dim = 32;
  c.max_positions = 200;
  manual_seed(123);
  models::WhisperEncoder enc(c);
  std::map<std::string, Tensor> state, prefixed;
  for (const auto& [name, t] : enc.state_dict()) {
    state[name] = t.clone();
    prefixed["model.encoder." + name] = t;
  }
  save_safetensors((dir / "model.safetensors").string(), prefixed);
  std::ofstream(dir / "config.json") << R"({"num_mel_bins": 80, "d_model": 16, "encoder_attention_heads": 2,
    "encoder_layers": 2, "encoder_ffn_dim": 32, "max_source_positions": 200})";
  return state;
}

class WhisperTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!data::try_find_minilm_dir())
      GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
    dir_ = std::make_unique<test::SpeechTempDir>(
        std::string("whisper_run_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    corpus_ = dir_->path / "corpus";
    test::write_speech_text_corpus(corpus_);
    weights_dir_ = dir_->path / "whisper";
    pretrained_ = write_random_whisper(weights_dir_);
  }

  train::TrainOptions options(const std::string& out, const std::vector<std::string>& extra = {}) const {
    std::vector<std::pair<std::string, std::string>> pairs = {
        {"--data.corpus", corpus_.string()},
        {"--data.corpus_size", "none"},
        {"--model.speech_tower", "whisper"},
        {"--model.speech_weights", weights_dir_.string()},
        {"--model.speech_train_layers", "1"},
        {"--data.spec_augment", "false"},
        {"--optim.batch_size", "8"},
        {"--optim.steps", "4"},
        {"--optim.warmup_steps", "1"},
        {"--optim.lr", "0.01"},
        {"--run.out", (dir_->path / out).string()},
        {"--run.eval_every", "0"},
        {"--run.plots", "false"},
        {"--run.progress", "lines"},
        {"--eval.batch_size", "4"}};
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {  // extra replaces or adds "--name", "value" pairs
      std::erase_if(pairs, [&](const auto& p) { return p.first == extra[i]; });
      pairs.emplace_back(extra[i], extra[i + 1]);
    }
    std::vector<std::string> args = {"train"};
    for (const auto& [k, v] : pairs) args.insert(args.end(), {k, v});
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream ignored;
    return train::parse_train_options(static_cast<int>(argv.size()), argv.data(), ignored).options;
  }

  train::TrainResult run(const train::TrainOptions& o) {
    std::ostringstream log;
    try {
      train::TrainResult r = train::run_training(o, log);
      log_ = log.str();
      return r;
    } catch (...) {
      std::cerr << log.str();
      throw;
    }
  }

  double max_abs_diff(const Tensor& a, const Tensor& b) const {
    return ops::amax(ops::abs(ops::sub(a.to(DType::F64), b.to(DType::F64)))).item();
  }

  std::unique_ptr<test::SpeechTempDir> dir_;
  fs::path corpus_, weights_dir_;
  std::map<std::string, Tensor> pretrained_;
  std::string log_;
};

TEST_F(WhisperTraining, CachedRunTrainsTheTopBlockOnly) {
  const train::TrainResult r = run(options("cached"));
  ASSERT_FALSE(r.stopped_on_nan) << log_;
  EXPECT_EQ(r.steps_done, 4);
  EXPECT_NE(log_.find("frozen blocks cached"), std::string::npos) << log_;
  EXPECT_NE(log_.find("frozen Whisper blocks 0-0 computed"), std::string::npos) << log_;
  EXPECT_TRUE(fs::exists(dir_->path / "cached" / "eval_final.json"));
  const auto ck = train::load_latest_checkpoint(dir_->path / "cached" / "checkpoints");
  ASSERT_TRUE(ck.has_value());
  // Frozen: the stem and block 0 are the pretrained weights, bit for bit.
  for (const char* name : {"conv1.weight", "conv2.bias", "embed_positions.weight", "layers.0.fc1.weight",
                           "layers.0.self_attn.k_proj.weight"})
    EXPECT_EQ(max_abs_diff(ck->model.at(std::string("speech.encoder.") + name), pretrained_.at(name)), 0.0)
        << name;
  // Trained: block 1 and the final norm moved.
  for (const char* name : {"layers.1.fc1.weight", "layers.1.self_attn.q_proj.weight", "layer_norm.weight"})
    EXPECT_GT(max_abs_diff(ck->model.at(std::string("speech.encoder.") + name), pretrained_.at(name)), 0.0)
        << name;

  // A second run reads the frozen blocks' outputs back from the cache.
  run(options("cached_again", {"--optim.steps", "2"}));
  EXPECT_NE(log_.find("frozen Whisper blocks 0-0 cached"), std::string::npos) << log_;
}

TEST_F(WhisperTraining, SpecAugmentRunsTheWholeEncoderEveryStep) {
  const train::TrainResult r =
      run(options("specaug", {"--data.spec_augment", "true", "--model.speech_train_layers", "2"}));
  ASSERT_FALSE(r.stopped_on_nan) << log_;
  EXPECT_EQ(r.steps_done, 4);
  EXPECT_EQ(log_.find("frozen blocks cached"), std::string::npos) << log_;
  const auto ck = train::load_latest_checkpoint(dir_->path / "specaug" / "checkpoints");
  ASSERT_TRUE(ck.has_value());
  EXPECT_EQ(max_abs_diff(ck->model.at("speech.encoder.conv1.weight"), pretrained_.at("conv1.weight")), 0.0);
  EXPECT_GT(
      max_abs_diff(ck->model.at("speech.encoder.layers.0.fc1.weight"), pretrained_.at("layers.0.fc1.weight")),
      0.0);
}

TEST_F(WhisperTraining, OptionsAreChecked) {
  std::ostringstream ignored;
  auto parse = [&](std::vector<const char*> argv) {
    argv.insert(argv.begin(), "train");
    return train::parse_train_options(static_cast<int>(argv.size()), argv.data(), ignored);
  };
  EXPECT_THROW(parse({"--model.speech_tower", "wav2vec"}), ValueError);
  EXPECT_THROW(parse({"--model.speech_tower", "conformer", "--model.speech_train_layers", "2"}), ValueError);
  EXPECT_THROW(parse({"--model.d_model", "96"}), ValueError);  // a Conformer size, the tower is whisper
  EXPECT_THROW(parse({"--model.speech_train_layers", "-1", "--model.speech_tower", "whisper"}), ValueError);
  EXPECT_NO_THROW(parse({"--model.speech_tower", "whisper", "--model.speech_train_layers", "0"}));
  // More trained blocks than the checkpoint has: named when the model is built.
  const train::TrainOptions o = options("too_many", {"--model.speech_train_layers", "3"});
  try {
    run(o);
    ADD_FAILURE() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("--model.speech_train_layers 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cw
