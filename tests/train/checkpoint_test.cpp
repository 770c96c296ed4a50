// Checkpoints: a full round trip (model, optimizer, trainer state), keep_last_k pruning, what a
// killed writer leaves behind and its removal, no checkpoint of non-finite values, and clear
// errors for corrupt or hostile pointers and files.
#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "nn/basic_layers.h"
#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using test::all_close;
using train::AdamW;
using train::TrainerState;

// A fresh empty directory per test, removed afterwards.
class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cw_ckpt_" + std::to_string(::getpid()) + "_" + std::string(info->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A model, an optimizer that has taken `steps` steps on it, and a trainer state.
  struct Run {
    std::shared_ptr<nn::Linear> model = std::make_shared<nn::Linear>(3, 2);
    std::unique_ptr<AdamW> opt;
    TrainerState state;
  };
  static std::unique_ptr<Run> make_run(int steps) {
    auto run = std::make_unique<Run>();
    run->opt = std::make_unique<AdamW>(train::make_param_groups(run->model->named_parameters(), 0.1),
                                       train::AdamWOptions{});
    for (int k = 0; k < steps; ++k) {
      for (Variable& p : run->model->parameters())
        p.set_grad(test::rand64(p.shape(), -1, 1, 10 + k).to(DType::F32));
      run->opt->step(1e-2);
    }
    run->state.step = steps;
    run->state.epoch = 2;
    run->state.batch_in_epoch = 17;
    run->state.seed = std::numeric_limits<uint64_t>::max();  // survives JSON exactly
    run->state.rng_offset = 123456789012345ull;
    run->state.config_text = "lr = 1e-3\n[model]\nname = \"tiny\"\n";
    run->state.extra = {{"best_acc", 0.625}, {"history", {1, 2, 3}}};
    return run;
  }
  void save(const Run& run, int keep) {
    train::save_checkpoint(dir_, run.model->state_dict(), *run.opt, run.state, keep);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  static void write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }

  fs::path dir_;
};

void expect_same(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(all_close(b.at(name), t, 0, 0)) << name;
  }
}

TEST_F(CheckpointTest, RoundTrip) {
  const auto run = make_run(3);
  save(*run, 0);
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "step-00000003"}));
  const auto loaded = train::load_latest_checkpoint(dir_);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->path, dir_ / "step-00000003");
  expect_same(run->model->state_dict(), loaded->model);
  expect_same(run->opt->state_tensors(), loaded->optimizer);
  EXPECT_EQ(loaded->optimizer_step, 3);
  EXPECT_EQ(loaded->state.step, 3);
  EXPECT_EQ(loaded->state.epoch, 2);
  EXPECT_EQ(loaded->state.batch_in_epoch, 17);
  EXPECT_EQ(loaded->state.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(loaded->state.rng_offset, 123456789012345ull);
  EXPECT_EQ(loaded->state.config_text, run->state.config_text);
  EXPECT_EQ(loaded->state.extra, run->state.extra);

  // And it restores into fresh objects: the same model and optimizer state as the original.
  auto fresh = make_run(0);
  fresh->model->load_state_dict(loaded->model);
  fresh->opt->load_state_tensors(loaded->optimizer, loaded->optimizer_step);
  expect_same(run->model->state_dict(), fresh->model->state_dict());
  expect_same(run->opt->state_tensors(), fresh->opt->state_tensors());
  EXPECT_EQ(fresh->opt->step_count(), 3);
}

TEST_F(CheckpointTest, NothingThere) {
  EXPECT_FALSE(train::load_latest_checkpoint(dir_).has_value());
  fs::create_directories(dir_);
  EXPECT_FALSE(train::load_latest_checkpoint(dir_).has_value());
}

TEST_F(CheckpointTest, KeepLastK) {
  auto run = make_run(1);
  for (int step = 1; step <= 5; ++step) {
    run->state.step = step;
    save(*run, 2);
  }
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "step-00000004", "step-00000005"}));
  EXPECT_EQ(train::load_latest_checkpoint(dir_)->state.step, 5);
  // Re-saving an existing step replaces it.
  run->state.epoch = 9;
  save(*run, 2);
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "step-00000004", "step-00000005"}));
  EXPECT_EQ(train::load_latest_checkpoint(dir_)->state.epoch, 9);
}

// A writer killed mid-save leaves a *.tmp-<pid> directory with a half-written file and maybe a
// temporary pointer: the loader still returns the previous complete checkpoint, and the next
// save removes the leftovers once their process is gone.
TEST_F(CheckpointTest, KilledWriterLeavesPreviousCheckpoint) {
  auto run = make_run(2);
  save(*run, 0);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  const std::string suffix = ".tmp-" + std::to_string(dead);
  fs::create_directories(dir_ / ("step-00000003" + suffix));
  write(dir_ / ("step-00000003" + suffix) / "model.safetensors", std::string("\x40\x00\x00\x00", 4));
  write(dir_ / ("latest" + suffix), "step-0000");

  const auto loaded = train::load_latest_checkpoint(dir_);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->state.step, 2);
  expect_same(run->model->state_dict(), loaded->model);

  // Killed after the directory rename but before the pointer update (simulated: pointer gone):
  // the newest complete directory is used.
  fs::remove(dir_ / "latest");
  EXPECT_EQ(train::load_latest_checkpoint(dir_)->state.step, 2);

  run->state.step = 4;
  save(*run, 0);
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "step-00000002", "step-00000004"}));
}

TEST_F(CheckpointTest, CorruptPointerNamesTheFile) {
  save(*make_run(1), 0);
  auto expect_error = [&](const std::string& needle) {
    try {
      train::load_latest_checkpoint(dir_);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  write(dir_ / "latest", "garbage\n");
  expect_error((dir_ / "latest").string() + " is corrupt");
  write(dir_ / "latest", "step-00000042\n");
  expect_error("names step-00000042, which does not exist");
}

TEST_F(CheckpointTest, CorruptFilesNameTheFile) {
  save(*make_run(1), 0);
  const fs::path step = dir_ / "step-00000001";
  auto expect_error = [&](const std::string& needle) {
    try {
      train::load_latest_checkpoint(dir_);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string json = [&] {
    std::ifstream in(step / "trainer_state.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  write(step / "trainer_state.json", json.substr(0, json.size() / 2));
  expect_error((step / "trainer_state.json").string() + ": not valid JSON");
  write(step / "trainer_state.json", "{\"format\": 1, \"step\": 1}");
  expect_error((step / "trainer_state.json").string() + ": key 'epoch' is missing");
  write(step / "trainer_state.json", json);
  EXPECT_NO_THROW(train::load_latest_checkpoint(dir_));

  fs::resize_file(step / "model.safetensors", fs::file_size(step / "model.safetensors") - 3);
  expect_error((step / "model.safetensors").string());
  save(*make_run(1), 0);  // whole again
  fs::remove(step / "optimizer.safetensors");
  EXPECT_THROW(train::load_checkpoint(step), Error);
  expect_error("missing file " + (step / "optimizer.safetensors").string());
}

// Reproducer (issue 24): trainer_state.json with `extra` nested 300,000 deep crashed
// `train --run.resume true` and `eval --run` (exit 139); wrong types threw nlohmann's text
// without the file. Each is one cw::Error naming the file and the key.
TEST_F(CheckpointTest, UntrustedStateNamesFileAndKey) {
  save(*make_run(1), 0);
  const fs::path state = dir_ / "step-00000001" / "trainer_state.json";
  const std::string good = [&] {
    std::ifstream in(state);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  auto error_of = [&](const std::string& json) {
    write(state, json);
    try {
      train::load_latest_checkpoint(dir_);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // `good` with one field replaced by `value`.
  auto with = [&](const std::string& key, const std::string& value) {
    Json j = Json::parse(good);
    j[key] = Json::parse(value);
    return j.dump();
  };
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  std::string m = error_of(good.substr(0, good.rfind('}')) + ", \"deep\": " + deep + "}");
  EXPECT_NE(m.find(state.string() + ": JSON nested deeper than 64 levels"), std::string::npos) << m;
  struct Case {
    std::string key, value, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"epoch", "\"2\"", "key 'epoch': expected a 64-bit integer, found \"2\""},
           {"step", "-1", "key 'step': expected an integer in [0, "},
           {"seed", "-5", "key 'seed': expected a non-negative integer, found -5"},
           {"config_text", "[1, [2]]", "key 'config_text': expected a string, found an array of 2 values"},
           {"format", "2", "key 'format': this build reads format 1, found 2"},
       }) {
    m = error_of(with(c.key, c.value));
    EXPECT_NE(m.find(state.string()), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
  }
  m = error_of("[" + good + "]");
  EXPECT_NE(m.find(state.string() + ": expected a JSON object, found an array of 1 values"),
            std::string::npos)
      << m;
  // A `latest` pointer the size of a disk is refused before it is read.
  write(state, good);
  write(dir_ / "latest", std::string(1 << 20, 's'));
  m = error_of(good);
  EXPECT_NE(m.find((dir_ / "latest").string()), std::string::npos) << m;
  EXPECT_NE(m.find("bytes, more than the 4096"), std::string::npos) << m;
  write(dir_ / "latest", "step-00000001\n");
  EXPECT_EQ(error_of(good), "no error");
}

// Directory names no writer makes, with numbers past int64 (std::stoll used to throw
// std::out_of_range on them): neither a checkpoint nor a leftover, and no crash.
TEST_F(CheckpointTest, CraftedNamesAreIgnored) {
  auto run = make_run(1);
  save(*run, 0);
  fs::create_directories(dir_ / "step-99999999999999999999999");
  fs::create_directories(dir_ / "step-00000002.tmp-99999999999999999999");
  fs::remove(dir_ / "latest");
  EXPECT_EQ(train::load_latest_checkpoint(dir_)->state.step, 1);
  run->state.step = 2;
  EXPECT_NO_THROW(save(*run, 1));
  EXPECT_NO_THROW(train::remove_checkpoint_leftovers(dir_));
  EXPECT_EQ(entries(),
            (std::vector<std::string>{"latest", "step-00000002", "step-00000002.tmp-99999999999999999999",
                                      "step-99999999999999999999999"}));
}

// Reproducer (issue 24): with --optim.lr inf every value is non-finite after the first update,
// yet that step was saved and named as the last good checkpoint. A state holding a NaN or an
// infinity is not written: `latest` keeps naming the last finite one.
TEST_F(CheckpointTest, NonFiniteStateIsNeverSaved) {
  auto run = make_run(1);
  ASSERT_TRUE(train::save_checkpoint(dir_, run->model->state_dict(), *run->opt, run->state, 0));
  run->state.step = 2;
  Tensor w = run->model->weight.data();
  w.data<float>()[3] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(train::save_checkpoint(dir_, run->model->state_dict(), *run->opt, run->state, 1));
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "step-00000001"}));
  EXPECT_EQ(train::load_latest_checkpoint(dir_)->state.step, 1);

  // The optimizer's moments count too (a NaN gradient lands there first).
  w.data<float>()[3] = 0.5f;
  Tensor moment = run->opt->state_tensors().begin()->second;  // shares the optimizer's storage
  moment.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(train::save_checkpoint(dir_, run->model->state_dict(), *run->opt, run->state, 1));
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "step-00000001"}));
}

// A killed run leaves step-*.tmp-<pid> folders (a whole checkpoint's worth of bytes, maybe) and
// temporary pointers. remove_checkpoint_leftovers, called where a run or a resume starts, removes
// those of dead processes and those carrying this process's own pid (a restarted container's run
// often gets the killed run's pid); a live writer's stay, and checkpoints are never touched.
TEST_F(CheckpointTest, LeftoversAreRemovedWhenARunStarts) {
  save(*make_run(2), 0);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  const std::string own = std::to_string(::getpid()), live = std::to_string(::getppid());
  for (const std::string& pid : {std::to_string(dead), own, live}) {
    fs::create_directories(dir_ / ("step-00000003.tmp-" + pid));
    write(dir_ / ("step-00000003.tmp-" + pid) / "model.safetensors", "partial");
    write(dir_ / ("latest.tmp-" + pid), "step-0000");
  }
  fs::create_directories(dir_ / ("step-00000002.old-" + std::to_string(dead)));
  train::remove_checkpoint_leftovers(dir_);
  EXPECT_EQ(entries(), (std::vector<std::string>{"latest", "latest.tmp-" + live, "step-00000002",
                                                 "step-00000003.tmp-" + live}));
  EXPECT_EQ(train::load_latest_checkpoint(dir_)->state.step, 2);
  EXPECT_NO_THROW(train::remove_checkpoint_leftovers(dir_ / "absent"));
}

}  // namespace
}  // namespace cw
