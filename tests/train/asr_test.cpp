// The speech tower's CTC pretraining (train --task speech_asr) and what it hands on: the
// character vocabulary, greedy decoding and CER on hand-made cases; a short run on a corpus of
// short words whose CTC loss falls; the speech tower file's round trip and its errors; and a
// speech-text run that starts from the tower (--model.speech_init).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "device_test_util.h"
#include "speech_text_test_corpus.h"
#include "train/asr_trainer.h"
#include "train/char_vocab.h"
#include "train/checkpoint.h"
#include "train/speech_tower_file.h"
#include "train/train_options.h"
#include "train/trainer.h"

namespace cw::train {
namespace {

namespace fs = std::filesystem;

TEST(CharVocab, EncodesDecodesAndScores) {
  const CharVocab v = CharVocab::from_transcripts({"no way", "yes"});
  EXPECT_EQ(v.chars(), " aenoswy");
  EXPECT_EQ(v.size(), 9);                                                    // with the blank
  EXPECT_EQ(v.encode("yes no!"), (std::vector<int64_t>{8, 3, 6, 1, 4, 5}));  // '!' is not in it
  EXPECT_THROW(CharVocab::from_chars("abca"), ValueError);
  EXPECT_EQ(normalize_transcript("  Wake me UP, at 7 o'clock!! "), "wake me up at 7 o'clock");
  EXPECT_EQ(CharVocab::from_transcripts({"Hi, You!"}).chars(), " hiouy");
  // Frames: n n <blank> o o <blank> o -> "noo" (a blank separates the repeated o).
  const std::vector<int64_t> best = {4, 4, 0, 5, 5, 0, 5, 2};
  std::vector<double> scores(best.size() * 9, 0.0);
  for (size_t t = 0; t < best.size(); ++t) scores[t * 9 + static_cast<size_t>(best[t])] = 1.0;
  const Tensor s = ops::from_vector(scores, {static_cast<int64_t>(best.size()), 9});
  EXPECT_EQ(v.decode_greedy(s, 7), "noo");
  EXPECT_EQ(v.decode_greedy(s, 8), "nooa");
  EXPECT_EQ(v.decode_greedy(s, 0), "");
  EXPECT_THROW(v.decode_greedy(s, 9), ShapeError);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);
  EXPECT_EQ(edit_distance("", "abc"), 3);
  EXPECT_EQ(edit_distance("abc", "abc"), 0);
  EXPECT_DOUBLE_EQ(character_error_rate({"kitten", "abc"}, {"sitting", "abd"}), 4.0 / 10.0);
  EXPECT_DOUBLE_EQ(character_error_rate({""}, {""}), 0.0);
  // Words: case and punctuation do not count, a number for a word does.
  EXPECT_EQ(
      sequence_edit_distance(std::vector<std::string>{"a", "b", "c"}, std::vector<std::string>{"a", "c"}), 1);
  const WordErrors e = word_errors({"Turn the lights off.", "Wake me up at 7!", ""},
                                   {"turn the lights off", "wake me up at seven", "set an alarm"});
  EXPECT_EQ(e.errors, 1 + 3);
  EXPECT_EQ(e.words, 4 + 5 + 3);
  EXPECT_DOUBLE_EQ(e.rate(), 4.0 / 12.0);
  EXPECT_THROW(word_errors({"a"}, {}), ValueError);
}

class AsrRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<test::SpeechTempDir>(
        std::string("asr_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    corpus_ = dir_->path / "corpus";
    // Short words, so that every transcript fits the ~12 frames a 0.5 s sound leaves after the
    // 4x subsampling; each word is its own sound.
    const std::vector<std::string> words = {"go",  "no",  "up",  "on",  "off", "yes", "hi",  "ok",
                                            "out", "in",  "see", "two", "go",  "no",  "up",  "on",
                                            "off", "yes", "hi",  "ok",  "out", "in",  "see", "two"};
    std::vector<test::TestRow> rows;
    for (const std::string& w : words) rows.push_back({w, "espeak:en-us", ""});
    test::write_split(corpus_, "train", rows, 0);
    test::write_split(corpus_, "valid", {{"go", "flite:kal", ""}, {"yes", "flite:kal", ""}}, 0);
    test::write_text(corpus_ / "corpus.json", "{\"size\": \"test\", \"complete\": true}\n");
  }

  TrainOptions options(const std::string& task, const std::string& out,
                       const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"train",
                                     "--task",
                                     task,
                                     "--data.corpus",
                                     corpus_.string(),
                                     "--data.corpus_size",
                                     "none",
                                     "--data.spec_augment",
                                     "false",
                                     "--data.loader_workers",
                                     "0",
                                     "--model.speech_tower",
                                     "conformer",
                                     "--model.speech_preset",
                                     "tiny",
                                     "--model.dropout",
                                     "0",
                                     "--optim.batch_size",
                                     "8",
                                     "--optim.warmup_steps",
                                     "1",
                                     "--optim.weight_decay",
                                     "0",
                                     "--run.eval_every",
                                     "0",
                                     "--run.out",
                                     (dir_->path / out).string(),
                                     "--run.plots",
                                     "false",
                                     "--run.progress",
                                     "lines"};
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {  // extra replaces or adds "--name", "value" pairs
      const auto at = std::find(args.begin(), args.end(), extra[i]);
      if (at != args.end())
        *(at + 1) = extra[i + 1];
      else
        args.insert(args.end(), {extra[i], extra[i + 1]});
    }
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream ignored;
    return parse_train_options(static_cast<int>(argv.size()), argv.data(), ignored).options;
  }

  std::unique_ptr<test::SpeechTempDir> dir_;
  fs::path corpus_;
};

TEST_F(AsrRun, CtcLossFallsAndTheTowerFileRoundTrips) {
  std::ostringstream log;
  const SpeechAsrResult r =
      run_speech_asr(options("speech_asr", "asr", {"--optim.steps", "12", "--optim.lr", "0.01"}), log);
  ASSERT_FALSE(r.stopped_on_nan) << log.str();
  ASSERT_EQ(r.losses.size(), 12u);
  const double first = std::accumulate(r.losses.begin(), r.losses.begin() + 3, 0.0) / 3;
  const double last = std::accumulate(r.losses.end() - 3, r.losses.end(), 0.0) / 3;
  EXPECT_LT(last, 0.8 * first) << log.str();
  ASSERT_EQ(r.cer.size(), 1u);  // the final evaluation (eval_every 0)
  EXPECT_GE(r.cer[0].second, 0.0);
  EXPECT_TRUE(fs::exists(dir_->path / "asr" / "asr_final.json"));
  // `eval` on the run: the final checkpoint's CER again.
  std::ostringstream eval_out;
  EXPECT_DOUBLE_EQ(evaluate_speech_asr_run(dir_->path / "asr", {}, "", eval_out), r.cer[0].second)
      << eval_out.str();

  // The file holds the tower without its projection head, with the vocabulary.
  const SafetensorsFile f = SafetensorsFile::open(r.tower.string());
  EXPECT_EQ(f.metadata().at("vocab"), "efghiknopstuwy");
  const auto saved = f.load_all(DType::F32);
  models::ConformerConfig cfg = models::ConformerConfig::tiny();
  cfg.dropout = 0;
  cfg.n_mels = 80;  // the corpus's log-mel bins
  models::Conformer fresh(cfg);
  EXPECT_EQ(init_speech_tower(fresh, r.tower), static_cast<int64_t>(saved.size()));
  for (const auto& [name, t] : fresh.state_dict()) {
    if (name.rfind("proj.", 0) == 0) {
      EXPECT_EQ(saved.count(name), 0u) << name;
      continue;
    }
    ASSERT_EQ(saved.count(name), 1u) << name;
    EXPECT_EQ(t.to_vector<float>(), saved.at(name).to_vector<float>()) << name;
  }
  // A different shape names the field; a file of another kind says what it is not.
  models::ConformerConfig wider = cfg;
  wider.d_model = cfg.d_model * 2;
  models::Conformer other(wider);
  try {
    init_speech_tower(other, r.tower);
    ADD_FAILURE() << "a wider tower loaded";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("d_model"), std::string::npos) << e.what();
  }
  const fs::path plain = dir_->path / "plain.safetensors";
  save_safetensors(plain.string(), {{"x", ops::zeros({2})}});
  EXPECT_THROW(init_speech_tower(fresh, plain), ValueError);
  EXPECT_THROW(init_speech_tower(fresh, dir_->path / "missing.safetensors"), ValueError);
  EXPECT_THROW(options("speech_asr", "x", {"--model.speech_init", r.tower.string()}), ValueError);
  EXPECT_THROW(options("speech_recognition", "x", {}), ValueError);
}

// A speech-text run from the tower: its speech weights start as the file's (checked after one
// step of a negligible learning rate), its projection head fresh.
// --run.device cuda: the CTC run's losses and CER match the CPU run's (f32 summation orders).
TEST_F(AsrRun, CudaRunMatchesTheCpuRun) {
  std::string why_not;
  if (!test::cuda_for_test(why_not)) GTEST_SKIP() << why_not;
  std::ostringstream log;
  const std::vector<std::string> common = {"--optim.steps", "6", "--optim.lr", "0.01"};
  auto with = [&](const std::string& out, const char* device) {
    std::vector<std::string> v = common;
    v.insert(v.end(), {"--run.device", device});
    return options("speech_asr", out, v);
  };
  const SpeechAsrResult cpu = run_speech_asr(with("cpu", "cpu"), log);
  const SpeechAsrResult dev = run_speech_asr(with("dev", "cuda"), log);
  ASSERT_EQ(cpu.losses.size(), 6u) << log.str();
  ASSERT_EQ(dev.losses.size(), 6u) << log.str();
  for (size_t i = 0; i < cpu.losses.size(); ++i)
    EXPECT_NEAR(dev.losses[i], cpu.losses[i], 1e-3) << "step " << i + 1;
  ASSERT_EQ(dev.cer.size(), 1u);
  EXPECT_NEAR(dev.cer[0].second, cpu.cer[0].second, 0.02);
  EXPECT_TRUE(fs::exists(dev.tower));
}

TEST_F(AsrRun, SpeechTextRunStartsFromTheTower) {
  if (!data::try_find_minilm_dir())
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
  std::ostringstream log;
  const SpeechAsrResult asr = run_speech_asr(options("speech_asr", "asr", {"--optim.steps", "2"}), log);
  ASSERT_FALSE(asr.tower.empty()) << log.str();
  const fs::path st_corpus = dir_->path / "st_corpus";
  test::write_speech_text_corpus(st_corpus);
  TrainOptions o = options("speech_text", "st",
                           {"--optim.steps", "1", "--optim.warmup_steps", "0", "--optim.lr", "1e-12",
                            "--model.speech_init", asr.tower.string(), "--run.checkpoint_every", "1"});
  o.corpus = st_corpus.string();
  const TrainResult r = run_training(o, log);
  ASSERT_EQ(r.steps_done, 1) << log.str();
  EXPECT_NE(log.str().find("speech tower initialized from"), std::string::npos) << log.str();
  const auto ck = load_latest_checkpoint(dir_->path / "st" / "checkpoints");
  ASSERT_TRUE(ck.has_value());
  const auto saved = SafetensorsFile::open(asr.tower.string()).load_all(DType::F32);
  for (const auto& [name, t] : saved) {
    if (t.dim() < 2) continue;  // weights; BatchNorm's running statistics move with the step
    const auto a = ck->model.at("speech." + name).to_vector<float>(), b = t.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6) << name << " element " << i;
  }
}

}  // namespace
}  // namespace cw::train
