// End-to-end runs of the trainer (train/trainer.h) on a miniature corpus written by the test:
// the loss goes down and every output file is written, a run stopped and resumed is identical to
// an uninterrupted one (losses and weights), the `eval` binary reproduces the run's final
// numbers, and the frozen text-embedding cache is read back on a second preparation. The frozen
// tower is the real all-MiniLM-L6-v2: the tests skip where it is not installed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "device_test_util.h"
#include "speech_text_test_corpus.h"
#include "train/checkpoint.h"
#include "train/device_select.h"
#include "train/frozen_text_cache.h"
#include "train/trainer.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using train::TrainOptions;
using train::TrainResult;

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// The `loss` column (3rd) of a metrics.csv.
std::vector<std::string> loss_column(const fs::path& csv) {
  std::vector<std::string> out;
  const auto lines = read_lines(csv);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::stringstream s(lines[i]);
    std::string cell;
    for (int c = 0; c < 3; ++c) std::getline(s, cell, ',');
    out.push_back(cell);
  }
  return out;
}

// max |a - b| over all elements, in f64 (0 for empty tensors).
double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0) return 0.0;
  return ops::amax(ops::abs(ops::sub(a.to(DType::F64), b.to(DType::F64)))).item();
}

class TrainingRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!data::try_find_minilm_dir())
      GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
    dir_ = std::make_unique<test::SpeechTempDir>(
        std::string("train_run_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    corpus_ = dir_->path / "corpus";
    test::write_speech_text_corpus(corpus_);
  }

  // The tiny configuration, through the real option parser; `extra` holds "--name", "value"
  // pairs that add to it or replace its values.
  TrainOptions options(const std::string& out, const std::vector<std::string>& extra = {}) const {
    std::vector<std::pair<std::string, std::string>> pairs = {{"--data.corpus", corpus_.string()},
                                                              {"--data.corpus_size", "none"},
                                                              {"--model.speech_tower", "conformer"},
                                                              {"--data.spec_augment", "true"},
                                                              {"--model.speech_preset", "tiny"},
                                                              {"--optim.batch_size", "8"},
                                                              {"--optim.steps", "6"},
                                                              {"--optim.warmup_steps", "1"},
                                                              {"--optim.lr", "0.01"},
                                                              {"--optim.weight_decay", "0"},
                                                              {"--run.out", (dir_->path / out).string()},
                                                              {"--run.eval_every", "0"},
                                                              {"--run.checkpoint_every", "3"},
                                                              {"--run.plots", "false"},
                                                              {"--run.progress", "lines"},
                                                              {"--eval.batch_size", "4"}};
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {
      std::erase_if(pairs, [&](const auto& p) { return p.first == extra[i]; });
      pairs.emplace_back(extra[i], extra[i + 1]);
    }
    std::vector<const char*> argv = {"train"};
    for (const auto& [k, v] : pairs) {
      argv.push_back(k.c_str());
      argv.push_back(v.c_str());
    }
    std::ostringstream ignored;
    return train::parse_train_options(static_cast<int>(argv.size()), argv.data(), ignored).options;
  }

  // run_training with its log kept, and printed when the test fails.
  TrainResult run(const TrainOptions& o) {
    std::ostringstream log;
    try {
      TrainResult r = train::run_training(o, log);
      logs_ += log.str();
      return r;
    } catch (...) {
      std::cerr << log.str();
      throw;
    }
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- trainer log\n" << logs_;
  }

  std::unique_ptr<test::SpeechTempDir> dir_;
  fs::path corpus_;
  std::string logs_;
};

TEST_F(TrainingRun, LossDecreasesAndTheRunIsWritten) {
  // The whole training set (24 pairs) in each step and no augmentation, so the loss of every step
  // is over the same pairs and must go down. InfoNCE, whose targets are the pairs themselves: a
  // loss below ln 24 (uniform guessing) means the tower tells the 24 sounds apart. (CWCL's soft
  // targets on these near-unrelated sentences are close to uniform, so its loss can only fall to
  // about ln 24; the resume test below trains with CWCL.)
  const TrainOptions o = options("run", {"--optim.batch_size", "24", "--data.spec_augment", "false",
                                         "--loss.kind", "infonce", "--optim.lr", "0.03"});
  const TrainResult r = run(o);
  ASSERT_FALSE(r.stopped_on_nan);
  EXPECT_EQ(r.first_step, 0);
  EXPECT_EQ(r.steps_done, 6);
  ASSERT_EQ(r.losses.size(), 6u);
  const double first = (r.losses[0] + r.losses[1]) / 2, last = (r.losses[4] + r.losses[5]) / 2;
  EXPECT_LT(last, first - 0.2) << "losses " << ::testing::PrintToString(r.losses);
  EXPECT_LT(r.losses[5], std::log(24.0)) << "losses " << ::testing::PrintToString(r.losses);

  const fs::path out = dir_->path / "run";
  for (const char* f :
       {"config.ini", "metrics.csv", "metrics.jsonl", "eval.csv", "eval.jsonl", "eval_final.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_FALSE(fs::exists(out / "loss.png"));  // --run.plots false
  {
    std::ifstream in(out / "config.ini");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, o.to_ini());
  }
  const auto csv = read_lines(out / "metrics.csv");
  ASSERT_EQ(csv.size(), 7u);  // header + one row per step
  EXPECT_EQ(csv[0].rfind("step,epoch,loss,", 0), 0u) << csv[0];
  const auto losses = loss_column(out / "metrics.csv");
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(std::stod(losses[i]), r.losses[i], 1e-6) << "step " << i + 1;
  EXPECT_EQ(read_lines(out / "metrics.jsonl").size(), 6u);
  EXPECT_EQ(read_lines(out / "eval.csv").size(), 2u);  // header + the final evaluation (eval_every 0)

  // Checkpoints at steps 3 and 6, latest = 6.
  const auto ck = train::load_latest_checkpoint(out / "checkpoints");
  ASSERT_TRUE(ck.has_value());
  EXPECT_EQ(ck->state.step, 6);
  EXPECT_EQ(ck->state.config_text, o.to_ini());
  EXPECT_TRUE(fs::exists(out / "checkpoints" / "latest"));

  // eval_final.json: every benchmark with every key.
  std::ifstream in(out / "eval_final.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["step"], 6);
  EXPECT_EQ(j["config"], o.to_ini());
  for (const char* bench : {"intent", "keywords", "keywords_synthetic", "keywords_human"}) {
    ASSERT_TRUE(j.contains(bench)) << bench;
    for (const char* k : {"n", "ensemble_accuracy", "per_template", "template_mean", "template_std",
                          "template_min", "template_max"})
      EXPECT_TRUE(j[bench].contains(k)) << bench << "." << k;
    const double acc = j[bench]["ensemble_accuracy"];
    EXPECT_TRUE(acc >= 0 && acc <= 1) << bench << " " << acc;
  }
  EXPECT_EQ(j["intent"]["n"], 6);
  EXPECT_EQ(j["intent"]["per_template"].size(), train::intent_templates().size());
  EXPECT_EQ(j["keywords"]["n"], 6);
  EXPECT_EQ(j["keywords"]["per_template"].size(), train::keyword_templates().size());
  EXPECT_EQ(j["keywords_synthetic"]["n"], 4);
  EXPECT_EQ(j["keywords_human"]["n"], 2);
  EXPECT_EQ(j["retrieval"]["n"], 6);
  for (const char* dir : {"speech_to_text", "text_to_speech"})
    for (const char* k : {"R@1", "R@5", "R@10"})
      EXPECT_TRUE(j["retrieval"][dir].contains(k)) << dir << " " << k;
  EXPECT_DOUBLE_EQ(j["retrieval"]["speech_to_text"]["R@10"].get<double>(), 1.0);  // 6 candidates
  ASSERT_TRUE(j.contains("structure_correlation"));
  const double corr = j["structure_correlation"];
  EXPECT_TRUE(corr >= -1 && corr <= 1) << corr;
  EXPECT_DOUBLE_EQ(j["intent"]["ensemble_accuracy"].get<double>(), r.final_eval.intent.ensemble_accuracy);

#ifdef CW_EVAL_BINARY
  // The `eval` binary on the run folder prints the same numbers (its last line is the JSON).
  const fs::path eval_out = dir_->path / "eval_stdout.txt";
  // CW_KEEP_BLAS_CORE: eval keeps this process's GEMM kernels (core/cpu/blas_kernels.h), so its
  // numbers are bit for bit the run's.
  const std::string cmd = std::string("CW_KEEP_BLAS_CORE=1 '") + CW_EVAL_BINARY + "' --run '" + out.string() +
                          "' --batch-size 4 --json '" + (dir_->path / "eval.json").string() + "' > '" +
                          eval_out.string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << ::testing::PrintToString(read_lines(eval_out));
  std::ifstream ej(dir_->path / "eval.json");
  const nlohmann::json e = nlohmann::json::parse(ej);
  EXPECT_EQ(e["step"], 6);
  for (const char* k : {"intent", "keywords", "keywords_synthetic", "keywords_human", "retrieval"})
    EXPECT_EQ(e[k], j[k]) << k;
  EXPECT_DOUBLE_EQ(e["structure_correlation"].get<double>(), j["structure_correlation"].get<double>());
  const auto printed = read_lines(eval_out);
  ASSERT_FALSE(printed.empty());
  EXPECT_EQ(nlohmann::json::parse(printed.back())["intent"], j["intent"]);
#endif
}

TEST_F(TrainingRun, ResumedRunEqualsUninterruptedRun) {
  // Dropout, SpecAugment and a background loader thread are on, so the RNG state, the loader
  // position and the augmentation keys all have to come back from the checkpoint. Batches of 8
  // from 24 utterances: the stop at step 3 falls on an epoch boundary, the resumed steps run in
  // the second epoch.
  const std::vector<std::string> common = {"--model.dropout",       "0.1", "--data.spec_augment", "true",
                                           "--data.loader_workers", "1"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), common.begin(), common.end());
    return more;
  };
  const TrainResult a = run(options("a", with({})));
  ASSERT_EQ(a.losses.size(), 6u);

  const TrainResult b1 = run(options("b", with({"--run.stop_after", "3"})));
  EXPECT_EQ(b1.steps_done, 3);
  ASSERT_EQ(b1.losses.size(), 3u);
  EXPECT_FALSE(fs::exists(dir_->path / "b" / "eval_final.json"));  // not finished: no final evaluation
  const auto stopped = train::load_latest_checkpoint(dir_->path / "b" / "checkpoints");
  ASSERT_TRUE(stopped.has_value());
  EXPECT_EQ(stopped->state.step, 3);

  const TrainResult b2 = run(options("b", with({"--run.resume", "true"})));
  EXPECT_EQ(b2.first_step, 3);
  EXPECT_EQ(b2.steps_done, 6);
  ASSERT_EQ(b2.losses.size(), 3u);

  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b1.losses[i], a.losses[i]) << "step " << i + 1;
    EXPECT_EQ(b2.losses[i], a.losses[i + 3]) << "step " << i + 4 << " (resumed)";
  }
  // The logs of the resumed run read like the uninterrupted run's.
  EXPECT_EQ(loss_column(dir_->path / "b" / "metrics.csv"), loss_column(dir_->path / "a" / "metrics.csv"));

  // Final weights and optimizer moments are the same.
  const auto ca = train::load_latest_checkpoint(dir_->path / "a" / "checkpoints");
  const auto cb = train::load_latest_checkpoint(dir_->path / "b" / "checkpoints");
  ASSERT_TRUE(ca && cb);
  EXPECT_EQ(ca->state.step, 6);
  EXPECT_EQ(cb->state.step, 6);
  EXPECT_EQ(ca->state.epoch, cb->state.epoch);
  EXPECT_EQ(ca->state.batch_in_epoch, cb->state.batch_in_epoch);
  EXPECT_EQ(ca->state.rng_offset, cb->state.rng_offset);
  for (const auto* maps : {&ca->model, &ca->optimizer}) {
    const auto& other = maps == &ca->model ? cb->model : cb->optimizer;
    ASSERT_EQ(maps->size(), other.size());
    for (const auto& [name, t] : *maps) {
      ASSERT_TRUE(other.count(name)) << name;
      ASSERT_EQ(t.shape(), other.at(name).shape()) << name;
      const double worst = max_abs_diff(t, other.at(name));
      EXPECT_EQ(worst, 0.0) << name << " differs by up to " << worst;
    }
  }
  // Both finished runs evaluated the same weights to the same numbers.
  EXPECT_EQ(a.final_eval.to_json().dump(), [&] {
    nlohmann::json j = b2.final_eval.to_json();
    j["seconds"] = a.final_eval.seconds;
    return j.dump();
  }()) << "final evaluations differ";
}

TEST_F(TrainingRun, FrozenTextEmbeddingsAreCachedOnDisk) {
  const train::FrozenTextTower tower = train::FrozenTextTower::load(data::find_minilm_dir());
  const fs::path cache = dir_->path / "text_cache";
  const std::vector<std::string> sentences = {"turn on the lights", "what is the weather", "play music"};

  const train::CachedEmbeddings first = train::embed_with_cache(tower, sentences, cache, "demo");
  EXPECT_FALSE(first.from_cache);
  ASSERT_TRUE(fs::exists(first.file));
  EXPECT_EQ(first.embeddings.shape(), (std::vector<int64_t>{3, 384}));
  const train::CachedEmbeddings second = train::embed_with_cache(tower, sentences, cache, "demo");
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.file, first.file);
  EXPECT_EQ(max_abs_diff(first.embeddings, second.embeddings), 0.0);

  // Other sentences: another key, another file, computed.
  const train::CachedEmbeddings other =
      train::embed_with_cache(tower, {"turn on the lights", "what is the weather"}, cache, "demo");
  EXPECT_FALSE(other.from_cache);
  EXPECT_NE(other.file, first.file);

  // A damaged file is recomputed (and rewritten), never trusted.
  std::ofstream(first.file, std::ios::trunc) << "not a safetensors file";
  const train::CachedEmbeddings repaired = train::embed_with_cache(tower, sentences, cache, "demo");
  EXPECT_FALSE(repaired.from_cache);
  EXPECT_LT(max_abs_diff(first.embeddings, repaired.embeddings), 1e-6);
  EXPECT_TRUE(train::embed_with_cache(tower, sentences, cache, "demo").from_cache);

  // The trainer's data preparation: the second time, features and every frozen embedding table
  // come from the caches, with the same values.
  const TrainOptions o = options("unused");
  std::ostringstream log1, log2;
  const train::SpeechTextData d1 = train::prepare_speech_text_data(o, tower, log1);
  const train::SpeechTextData d2 = train::prepare_speech_text_data(o, tower, log2);
  EXPECT_NE(log1.str().find("train: (24, 384), computed"), std::string::npos) << log1.str();
  for (const char* split : {"train", "valid", "retrieval_test"})
    EXPECT_NE(log2.str().find(std::string("embeddings of ") + split + ": "), std::string::npos) << log2.str();
  EXPECT_EQ(log2.str().find("computed"), std::string::npos) << log2.str();
  EXPECT_EQ(max_abs_diff(d1.train_text.all(), d2.train_text.all()), 0.0);
  EXPECT_EQ(max_abs_diff(d1.intent_classes.embeddings[3], d2.intent_classes.embeddings[3]), 0.0);
  EXPECT_EQ(d2.intent_classes.embeddings.size(), train::intent_templates().size());
  EXPECT_EQ(d2.kws_classes.embeddings[0].shape(), (std::vector<int64_t>{3, 384}));
  EXPECT_EQ(d2.intent.labels, (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
}

// Each distinct text is embedded once, in the order first seen; every sentence gets its text's row.
TEST(FrozenTextCache, DistinctSentencesKeepFirstSeenOrder) {
  const train::DistinctSentences d = train::distinct_sentences({"b", "a", "b", "c", "a", "b"});
  EXPECT_EQ(d.texts, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(d.index_of, (std::vector<int64_t>{0, 1, 0, 2, 1, 0}));
}

// The sentences of a corpus with repeated transcripts: distinct texts of different lengths (so the
// padding of a batch differs between the two ways of embedding them), each read several times.
std::vector<std::string> repeated_transcripts() {
  const std::vector<std::string> texts = {"turn on the lights", "what is the weather like in paris tomorrow",
                                          "play music", "set an alarm for seven",
                                          "how many kilometres is it from here to the nearest station"};
  std::vector<std::string> s;
  for (int r = 0; r < 5; ++r)
    for (size_t i = 0; i < texts.size(); ++i)
      if ((r + i) % 3 != 2) s.push_back(texts[(i * 3 + static_cast<size_t>(r)) % texts.size()]);
  return s;
}

TEST_F(TrainingRun, DedupedTextEmbeddingsEqualPerSentenceEmbeddings) {
  const train::FrozenTextTower tower = train::FrozenTextTower::load(data::find_minilm_dir());
  const std::vector<std::string> sentences = repeated_transcripts();
  const int64_t n = static_cast<int64_t>(sentences.size());
  ASSERT_LT(train::distinct_sentences(sentences).texts.size(), sentences.size());
  // Batches of 4: the deduplicated batches and the per-sentence ones hold different sentences.
  const Tensor dedup = train::embed_sentences(tower, sentences, 4);  // (N, D)
  const Tensor every = tower.encoder.encode(sentences, 4);           // (N, D)
  ASSERT_EQ(dedup.shape(), (std::vector<int64_t>{n, 384}));
  EXPECT_LT(max_abs_diff(dedup, every), 1e-5);
  // A repeated text's rows are the same vector, bit for bit.
  const train::DistinctSentences d = train::distinct_sentences(sentences);
  for (int64_t i = 1; i < n; ++i) {
    if (d.index_of[static_cast<size_t>(i)] == d.index_of[0]) {
      EXPECT_EQ(max_abs_diff(dedup.narrow(0, i, 1), dedup.narrow(0, 0, 1)), 0.0) << "row " << i;
    }
  }
}

// The training split's table on disk: the rows of a batch equal the whole table's rows and the
// in-memory cache's, over several shards; a second open reads every shard; another sentence list
// has another key.
TEST_F(TrainingRun, TextEmbeddingRowsRoundTripThroughShards) {
  const train::FrozenTextTower tower = train::FrozenTextTower::load(data::find_minilm_dir());
  const fs::path cache = dir_->path / "text_rows";
  const std::vector<std::string> sentences = repeated_transcripts();
  const int64_t n = static_cast<int64_t>(sentences.size());
  const int64_t two_rows = 2 * 384 * static_cast<int64_t>(sizeof(float));  // 2 distinct texts a shard

  const train::CachedEmbeddingRows first =
      train::embed_rows_with_cache(tower, sentences, cache, "train", 4, two_rows);
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.table.size(), n);
  EXPECT_EQ(first.table.dim(), 384);
  EXPECT_EQ(first.table.distinct(), 5);
  EXPECT_EQ(first.table.shards().num_shards(), 3);
  const Tensor whole =
      train::embed_with_cache(tower, sentences, cache, "train_memory", 4).embeddings;  // (N, D)
  EXPECT_EQ(max_abs_diff(first.table.all(), whole), 0.0);

  const std::vector<int64_t> batch = {n - 1, 0, 3, 3, 7};
  const Tensor rows = first.table.rows(batch);  // (5, D)
  const Tensor expected = ops::index_select(whole, 0, ops::from_vector(batch, {5}));
  EXPECT_EQ(max_abs_diff(rows, expected), 0.0);
  EXPECT_THROW(first.table.rows({n}), IndexError);

  const train::CachedEmbeddingRows second =
      train::embed_rows_with_cache(tower, sentences, cache, "train", 4, two_rows);
  EXPECT_TRUE(second.from_cache);
  EXPECT_TRUE(second.repaired.empty()) << second.repaired;
  EXPECT_EQ(max_abs_diff(second.table.rows(batch), expected), 0.0);

  std::vector<std::string> other = sentences;
  other.back() = "a sentence the first list does not have";
  const train::CachedEmbeddingRows third =
      train::embed_rows_with_cache(tower, other, cache, "train", 4, two_rows);
  EXPECT_FALSE(third.from_cache);
  EXPECT_NE(third.table.shards().spec().prefix, first.table.shards().spec().prefix);
}

// A truncated or corrupted shard is found on open, named, and rewritten (the shards before it are
// kept); a shard that shrinks under an open table is an error naming its file.
TEST_F(TrainingRun, DamagedTextEmbeddingShardsAreRewrittenOrNamed) {
  const train::FrozenTextTower tower = train::FrozenTextTower::load(data::find_minilm_dir());
  const fs::path cache = dir_->path / "text_rows";
  const std::vector<std::string> sentences = repeated_transcripts();
  const int64_t two_rows = 2 * 384 * static_cast<int64_t>(sizeof(float));
  const train::CachedEmbeddingRows built =
      train::embed_rows_with_cache(tower, sentences, cache, "train", 4, two_rows);
  const Tensor expected = built.table.all();
  const fs::path shard1 = built.table.shards().file(1);

  // The rewritten rows are batched from the first missing row on, so they equal the first build's
  // up to float rounding (a batch's padding length changes the order of the sums).
  fs::resize_file(shard1, fs::file_size(shard1) - 100);  // truncated
  const train::CachedEmbeddingRows repaired =
      train::embed_rows_with_cache(tower, sentences, cache, "train", 4, two_rows);
  EXPECT_FALSE(repaired.from_cache);
  EXPECT_NE(repaired.repaired.find(shard1.string()), std::string::npos) << repaired.repaired;
  EXPECT_LT(max_abs_diff(repaired.table.all(), expected), 1e-5);

  std::ofstream(shard1, std::ios::trunc) << "not a safetensors file";  // corrupted
  const train::CachedEmbeddingRows again =
      train::embed_rows_with_cache(tower, sentences, cache, "train", 4, two_rows);
  EXPECT_NE(again.repaired.find(shard1.string()), std::string::npos) << again.repaired;
  EXPECT_LT(max_abs_diff(again.table.all(), expected), 1e-5);
  EXPECT_TRUE(train::embed_rows_with_cache(tower, sentences, cache, "train", 4, two_rows).from_cache);

  // Shrunk while open: the descriptor reads short, and the error names the file.
  fs::resize_file(again.table.shards().file(2), 64);
  try {
    again.table.all();
    ADD_FAILURE() << "a shrunk shard was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(again.table.shards().file(2).string()), std::string::npos)
        << e.what();
  }
}

// --run.device cuda: 20 steps on the GPU give the CPU run's losses to 1e-3 (the bar; f32
// summation orders differ, dropout draws the same Philox numbers on both). Skips where the build
// has no CUDA backend or the machine no GPU, saying which.
TEST_F(TrainingRun, CudaRunMatchesTheCpuRun) {
  std::string why_not;
  if (!test::cuda_for_test(why_not)) GTEST_SKIP() << why_not;
  const std::vector<std::string> common = {"--optim.steps",       "20",   "--model.dropout",        "0.1",
                                           "--data.spec_augment", "true", "--run.checkpoint_every", "10"};
  auto with = [&](const std::string& out, const std::string& device) {
    std::vector<std::string> v = common;
    v.insert(v.end(), {"--run.device", device});
    return options(out, v);
  };
  const TrainResult cpu = run(with("cpu", "cpu"));
  const TrainResult gpu = run(with("gpu", "cuda"));
  ASSERT_EQ(cpu.losses.size(), 20u);
  ASSERT_EQ(gpu.losses.size(), 20u);
  for (size_t i = 0; i < cpu.losses.size(); ++i)
    EXPECT_NEAR(gpu.losses[i], cpu.losses[i], 1e-3) << "step " << i + 1;
  // The checkpoint is written from the device (copied to the host) and loads like any other.
  const auto ck = train::load_latest_checkpoint(dir_->path / "gpu" / "checkpoints");
  ASSERT_TRUE(ck.has_value());
  EXPECT_EQ(ck->state.step, 20);
}

TEST(DeviceSelect, SpellingsAndMissingBackendsAreNamed) {
  EXPECT_EQ(train::parse_device("cpu"), Device::cpu());
  EXPECT_EQ(train::parse_device("cuda"), Device::cuda(0));
  EXPECT_EQ(train::parse_device("cuda:3"), Device::cuda(3));
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "cuda:123456789"}) {
    try {
      train::parse_device(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("--run.device"), std::string::npos) << e.what();
    }
  }
  // Without a backend, or without such a device (no machine has 100 GPUs): one DeviceError
  // naming the flag, before any work.
  try {
    train::select_device("cuda:99");
    ADD_FAILURE() << "cuda:99 was accepted";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("--run.device cuda:99"), std::string::npos) << e.what();
  }
}

TEST(DeviceSelect, DeviceMemoryLineIsForCudaRunsOnly) {
  EXPECT_EQ(train::device_memory_line(Device::cpu()), "");
  if (train::built_with_cuda()) {  // the allocator's counters; no device is touched
    const std::string line = train::device_memory_line(Device::cuda(0));
    EXPECT_EQ(line.rfind("device cuda:0: peak allocated ", 0), 0u) << line;
    EXPECT_NE(line.find("cudaMalloc calls"), std::string::npos) << line;
  }
}

TEST(DeviceSelect, ConvEngineSpellingsAreNamedAndTheCpuIgnoresIt) {
  for (const char* good : {"auto", "cudnn", "native"}) {
    EXPECT_NO_THROW(train::parse_conv_engine(good));
    EXPECT_NO_THROW(train::apply_cuda_options(Device::cpu(), good, true)) << good;  // CPU runs have no engine
  }
  for (const char* bad : {"", "cuDNN", "im2col", "Auto"}) {
    try {
      train::apply_cuda_options(Device::cpu(), bad, false);
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("--run.conv must be auto, cudnn or native"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace cw
