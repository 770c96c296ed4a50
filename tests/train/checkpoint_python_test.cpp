// A checkpoint written by train::save_checkpoint loads in Python's `safetensors` (the library
// PyTorch users read checkpoints with): every model and optimizer tensor comes back with its name,
// dtype, shape and exact values, and the optimizer's step metadata. The Python side is
// tests/train/read_checkpoint.py; tools/setup.sh installs safetensors into .cache/python-test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nn/basic_layers.h"
#include "support/check.h"
#include "train/checkpoint.h"
#include "train/subprocess.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

void expect_same(const std::map<std::string, Tensor>& ours, const nlohmann::json& theirs, const char* file) {
  ASSERT_EQ(theirs.size(), ours.size()) << file;
  for (const auto& [name, t] : ours) {
    ASSERT_TRUE(theirs.contains(name)) << file << ": Python did not find " << name;
    const nlohmann::json& p = theirs.at(name);
    EXPECT_EQ(p.at("dtype").get<std::string>(), t.dtype() == DType::I64 ? "int64" : "float32") << name;
    EXPECT_EQ(p.at("shape").get<std::vector<int64_t>>(), t.shape()) << name;
    // f32 -> f64 is exact on both sides, so the values compare exactly.
    EXPECT_EQ(p.at("values").get<std::vector<double>>(), t.to_vector<double>()) << name;
  }
}

TEST(CheckpointPython, LoadsInPythonSafetensors) {
  const fs::path root = fs::path(CW_FIXTURE_DIR).parent_path().parent_path();
  const fs::path dir = fs::temp_directory_path() / ("cw_ckpt_py_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto model = std::make_shared<nn::Linear>(3, 2);
  train::AdamW opt(train::make_param_groups(model->named_parameters(), 0.1), train::AdamWOptions{});
  for (Variable& p : model->parameters()) p.set_grad(test::rand64(p.shape(), -1, 1, 7).to(DType::F32));
  opt.step(1e-2);
  std::map<std::string, Tensor> state = model->state_dict();
  state["counter"] = test::i64({3, -1, 1LL << 40}, {3});  // an i64 buffer too
  train::TrainerState ts;
  ts.step = 1;
  train::save_checkpoint(dir, state, opt, ts, 0);

  const fs::path step_dir = dir / "step-00000001", out = dir / "python.json";
  const int status = train::run_process(
      {"env", "PYTHONPATH=" + (root / ".cache/python-test").string(), "/usr/bin/python3",
       (root / "tests/train/read_checkpoint.py").string(), step_dir.string(), out.string()});
  if (status == 3 || status == -1) {
    fs::remove_all(dir);
    GTEST_SKIP() << "Python safetensors not available (tools/setup.sh installs it into .cache/python-test)";
  }
  ASSERT_EQ(status, 0) << "read_checkpoint.py failed on " << step_dir;
  nlohmann::json py;
  std::ifstream(out) >> py;
  const train::LoadedCheckpoint ck = train::load_checkpoint(step_dir);
  expect_same(state, py.at("model").at("tensors"), "model.safetensors");
  expect_same(ck.optimizer, py.at("optimizer").at("tensors"), "optimizer.safetensors");
  EXPECT_EQ(py.at("optimizer").at("metadata").at("step").get<std::string>(), "1");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cw
