// Whole jobs under mpirun, started from this (single-process) test binary: a rank that is killed
// or hangs ends the job non-zero with a message within the collective timeout; and `train` on
// 2 ranks x B/2 gives the losses and weights of 1 rank x B (CWCL and InfoNCE, 20 steps, f32),
// also when a run is resumed with another number of ranks. Skipped with a message in a build
// without MPI (CW_MPI off) or without the MiniLM model.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.h"
#include "data/model_files.h"
#include "support/check.h"
#include "train/checkpoint.h"
#include "train/speech_text_test_corpus.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

struct Job {
  int code = -1;
  std::string output;
  double seconds = 0;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

#ifdef CW_MPIEXEC
// `cmd` with a hard wall-clock limit (coreutils timeout: exit 124 when it fires).
Job run_job(const std::string& cmd, int limit_s, const fs::path& log) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);  // CI containers run as root
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  const std::string full =
      "timeout -k 5 " + std::to_string(limit_s) + " " + cmd + " > '" + log.string() + "' 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(full.c_str());
  Job j;
  j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  j.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  j.output = read_all(log);
  return j;
}

std::string mpirun(int np) {
  return std::string(CW_MPIEXEC) + " -np " + std::to_string(np) + " " + CW_MPIEXEC_FLAGS + " ";
}
#endif

// Why multi-rank jobs cannot run here (empty: they can): a build without MPI, or an mpirun
// that cannot start a job at all (e.g. no loopback interface for its PMIx server).
std::string why_no_mpi() {
#ifdef CW_MPIEXEC
  static const std::string why = [] {
    const fs::path log =
        fs::temp_directory_path() / ("cw_mpirun_probe_" + std::to_string(::getpid()) + ".txt");
    const Job j = run_job(mpirun(1) + "true", 60, log);
    fs::remove(log);
    return j.code == 0 ? std::string() : "mpirun cannot start a job on this machine: " + j.output;
  }();
  return why;
#else
  return "built without MPI (CW_MPI off): multi-rank jobs not run";
#endif
}
bool mpi_built() { return why_no_mpi().empty(); }

#define CW_REQUIRE_MPI()                            \
  do {                                              \
    if (!mpi_built()) GTEST_SKIP() << why_no_mpi(); \
  } while (0)

class MpiJob : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<test::SpeechTempDir>(
        std::string("mpi_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  std::unique_ptr<test::SpeechTempDir> dir_;
};

TEST_F(MpiJob, KilledRankEndsTheJob) {
  CW_REQUIRE_MPI();
#ifdef CW_MPIEXEC
  const Job j = run_job(mpirun(2) + "'" + CW_DIST_PROBE + "' kill 20", 60, dir_->path / "log.txt");
  EXPECT_NE(j.code, 0) << j.output;
  EXPECT_NE(j.code, 124) << "the job hung until the test's limit:\n" << j.output;
  EXPECT_LT(j.seconds, 40) << j.output;
  // Open MPI names the dead process, or our timeout fires: either way the reason is printed.
  EXPECT_TRUE(j.output.find("signal 9") != std::string::npos ||
              j.output.find("did not complete within") != std::string::npos)
      << j.output;
  EXPECT_EQ(j.output.find("finished all iterations"), std::string::npos) << j.output;
#endif
}

TEST_F(MpiJob, HungRankEndsTheJobAfterTheTimeout) {
  CW_REQUIRE_MPI();
#ifdef CW_MPIEXEC
  const Job j = run_job(mpirun(2) + "'" + CW_DIST_PROBE + "' hang 3", 60, dir_->path / "log.txt");
  EXPECT_NE(j.code, 0) << j.output;
  EXPECT_NE(j.code, 124) << "the job hung until the test's limit:\n" << j.output;
  EXPECT_LT(j.seconds, 30) << j.output;
  EXPECT_NE(j.output.find("rank 0 of 2"), std::string::npos) << j.output;
  EXPECT_NE(j.output.find("all_reduce (4000 bytes) did not complete within 3 s"), std::string::npos)
      << j.output;
#endif
}

// ---- training equivalence

std::vector<double> loss_column(const fs::path& csv) {
  std::ifstream in(csv);
  std::vector<double> out;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream s(line);
    std::string cell;
    for (int c = 0; c < 3; ++c) std::getline(s, cell, ',');
    out.push_back(std::stod(cell));
  }
  return out;
}

class MpiTraining : public MpiJob {
 protected:
  void SetUp() override {
    if (!mpi_built()) GTEST_SKIP() << why_no_mpi();
    if (!data::try_find_minilm_dir())
      GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
    MpiJob::SetUp();
    test::write_speech_text_corpus(dir_->path / "corpus");
  }
  // `train` on the tiny configuration of tests/train (batch 8, 20 steps), one OpenMP thread per rank.
  Job train(int np, const std::string& out, const std::string& extra, const char* binary = nullptr) {
#ifdef CW_MPIEXEC
    std::string cmd = np > 0 ? mpirun(np) : std::string();
    cmd += std::string("'") + (binary ? binary : CW_TRAIN_BINARY) + "' --data.corpus '" +
           (dir_->path / "corpus").string() +
           "' --data.corpus_size none --model.speech_tower conformer --data.spec_augment true "
           "--model.speech_preset tiny "
           "--optim.batch_size 8 --optim.steps 20"
           " --optim.warmup_steps 2 --optim.lr 0.01 --optim.weight_decay 0 --run.eval_every 0"
           " --run.checkpoint_every 10 --run.plots false --run.progress lines --eval.batch_size 4"
           " --eval.max_items 4 --run.threads 1 --dist.timeout 60 --run.out '" +
           (dir_->path / out).string() + "' " + extra;
    Job j = run_job(cmd, 240, dir_->path / (out + ".log"));
    if (j.code != 0) ADD_FAILURE() << cmd << "\nexit " << j.code << "\n" << j.output;
    return j;
#else
    (void)np, (void)out, (void)extra, (void)binary;
    return {};
#endif
  }
  // Losses and final weights of two runs within rtol (atol 1e-6 for losses near 0, kWeightAtol
  // for weights). The weights' atol is wider because AdamW divides by sqrt(v): for a component
  // whose gradient is small, the rounding noise of summing in another order becomes a step
  // difference of order lr * 1e-4, and 20 steps at lr 0.01 leave up to a few 1e-6 (seen:
  // 2.3e-6 on a GLU gate bias). A wrong reduction moves them by far more: a BatchNorm backward
  // that skipped the replica sum left weights 0.01-0.12 apart.
  static constexpr double kWeightAtol = 1e-5;
  void expect_same(const std::string& a, const std::string& b, double rtol) {
    const auto la = loss_column(dir_->path / a / "metrics.csv"),
               lb = loss_column(dir_->path / b / "metrics.csv");
    ASSERT_EQ(la.size(), 20u);
    ASSERT_EQ(la.size(), lb.size());
    for (size_t i = 0; i < la.size(); ++i)
      EXPECT_NEAR(la[i], lb[i], 1e-6 + rtol * std::abs(lb[i])) << "loss of step " << i + 1;
    const auto ca = train::load_latest_checkpoint(dir_->path / a / "checkpoints");
    const auto cb = train::load_latest_checkpoint(dir_->path / b / "checkpoints");
    ASSERT_TRUE(ca && cb);
    EXPECT_EQ(ca->state.step, 20);
    ASSERT_EQ(ca->model.size(), cb->model.size());
    // Skipped: parameters whose gradient is zero in exact arithmetic, where AdamW turns the
    // rounding noise of a zero gradient (different summation orders on 1 and 2 ranks) into
    // steps of about lr: the depthwise conv's bias (BatchNorm subtracts it again), the key bias
    // (softmax over keys is invariant to it) and BatchNorm's running mean, which follows that
    // bias. They change no output: the losses above and every other tensor agree.
    auto null_gradient = [](const std::string& name) {
      for (const char* s : {"depthwise_conv.bias", "self_attn.key.bias", "batch_norm.running_mean"})
        if (name.find(s) != std::string::npos) return true;
      return false;
    };
    double worst = 0;
    std::string worst_name;
    for (const auto& [name, t] : ca->model) {
      if (t.dtype() == DType::I64 || null_gradient(name)) continue;  // num_batches_tracked: equal steps
      EXPECT_TRUE(test::all_close(t, cb->model.at(name), kWeightAtol, rtol)) << name;
      const Tensor d = ops::div(ops::abs(ops::sub(t.to(DType::F64), cb->model.at(name).to(DType::F64))),
                                ops::add(ops::abs(cb->model.at(name).to(DType::F64)), 1e-3));
      const double w = ops::amax(d).item();
      if (w > worst) worst = w, worst_name = name;
    }
    double loss_worst = 0;
    for (size_t i = 0; i < la.size(); ++i)
      loss_worst = std::max(loss_worst, std::abs(la[i] - lb[i]) / std::abs(lb[i]));
    std::cout << "[ compare  ] " << a << " vs " << b << ": worst relative loss difference " << loss_worst
              << ", worst |diff| / (|w| + 1e-3) over the weights " << worst << " (" << worst_name << ")\n";
  }
};

TEST_F(MpiTraining, TwoRanksOfHalfTheBatchTrainAsOneRankCwcl) {
  if (!train(0, "one", "--loss.kind cwcl").code && !train(2, "two", "--loss.kind cwcl").code) {
    const std::string log = read_all(dir_->path / "two.log");
    EXPECT_NE(log.find("dist: 2 ranks (mpi), global batch 8 = 4 + 4 rows per rank"), std::string::npos)
        << log;
    EXPECT_NE(log.find("dist: rank 0 spent"), std::string::npos) << log;
    expect_same("two", "one", 1e-5);
  }
}

TEST_F(MpiTraining, TwoRanksOfHalfTheBatchTrainAsOneRankInfoNce) {
  if (!train(0, "one", "--loss.kind infonce").code && !train(2, "two", "--loss.kind infonce").code)
    expect_same("two", "one", 1e-5);
}

// --run.device cuda with 2 ranks: one device per rank (local ranks 0 and 1), the collectives
// staged through the host. On the emulated device (CPU kernels under device rules) the run must
// train as the same 2 ranks on the CPU; a GPU run adds only the kernels' rounding.
TEST_F(MpiTraining, TwoRanksOnDevicesTrainAsTwoRanksOnTheCpu) {
#ifdef CW_TRAIN_EMULATED_BINARY
  if (!train(2, "cpu2", "--loss.kind cwcl").code &&
      !train(2, "dev2", "--loss.kind cwcl --run.device cuda", CW_TRAIN_EMULATED_BINARY).code)
    expect_same("dev2", "cpu2", 1e-6);
#endif
}

TEST_F(MpiTraining, ResumesWithAnotherNumberOfRanks) {
  // 2 ranks stop after 10 steps; 1 rank finishes the run: as 1 rank all along.
  if (train(0, "one", "").code) return;
  if (train(2, "mixed", "--run.stop_after 10").code) return;
  if (train(0, "mixed", "--run.resume true").code) return;
  expect_same("mixed", "one", 1e-5);
}

TEST_F(MpiTraining, KilledRankStopsTrainingAndTheLastCheckpointStaysValid) {
#ifdef CW_MPIEXEC
  // A long 2-rank run with a checkpoint every 2 steps; once one exists, one rank is killed
  // (SIGKILL, a child of mpirun). The job must end non-zero within the timeout, the latest
  // checkpoint must load, and a 1-rank run must resume from it.
  const fs::path out = dir_->path / "killed";
  // (ostringstream rather than a chain of std::string +, on which GCC 12 warns falsely: -Wrestrict)
  std::ostringstream script;
  script << mpirun(2) << "'" << CW_TRAIN_BINARY << "' --data.corpus '" << (dir_->path / "corpus").string()
         << "' --data.corpus_size none --model.speech_tower conformer --data.spec_augment true "
            "--model.speech_preset tiny "
            "--optim.batch_size 8 --optim.steps 5000"
            " --optim.warmup_steps 2 --optim.lr 0.01 --run.eval_every 0 --run.checkpoint_every 2 --run.plots "
            "false"
            " --run.progress lines --run.threads 1 --dist.timeout 20 --run.out '"
         << out.string() << "' > '" << (dir_->path / "killed.log").string()
         << "' 2>&1 & job=$!; i=0; while [ ! -e '" << (out / "checkpoints" / "latest").string()
         << "' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; sleep 0.3; "
            "kill -9 $(pgrep -P $job | tail -n 1); wait $job\n";
  const fs::path script_file = dir_->path / "kill.sh";
  std::ofstream(script_file) << script.str();
  const Job j = run_job("sh '" + script_file.string() + "'", 180, dir_->path / "kill_driver.log");
  const std::string log = read_all(dir_->path / "killed.log");
  EXPECT_NE(j.code, 0) << log;
  EXPECT_NE(j.code, 124) << "the job hung until the test's limit:\n" << log;
  EXPECT_TRUE(log.find("signal 9") != std::string::npos ||
              log.find("did not complete within") != std::string::npos)
      << log;
  const auto ck = train::load_latest_checkpoint(out / "checkpoints");
  ASSERT_TRUE(ck.has_value()) << log;
  EXPECT_GE(ck->state.step, 2);
  EXPECT_LT(ck->state.step, 5000);
  std::ostringstream resume;
  resume << "'" << CW_TRAIN_BINARY << "' --config '" << (out / "config.ini").string()
         << "' --run.resume true --run.stop_after 2";
  const Job resumed = run_job(resume.str(), 120, dir_->path / "resumed.log");
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resume: "), std::string::npos) << resumed.output;
#endif
}

}  // namespace
}  // namespace cw
