// Options are untrusted input (issue 24): each reproducer found by review, as a regression test.
// Every bad option of `train` (both option tables) and `eval` is a cw::OptionError naming the
// option, or the config file and its chain of includes; nothing crashes, hangs or is silently
// reinterpreted; the binaries exit 2 for a bad option and 1 for anything else.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/program_options/errors.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "option_test_util.h"
#include "train/image_options.h"
#include "train/train_options.h"

namespace cw::train {
namespace {

namespace fs = std::filesystem;
using test::Args;
using test::argv_of;

TrainOptions parse(const Args& args) {
  std::ostringstream out;
  const auto argv = argv_of(args);
  return parse_train_options(static_cast<int>(argv.size()), argv.data(), out).options;
}

ImageTrainOptions parse_image(const Args& args) {
  std::ostringstream out;
  const auto argv = argv_of(args);
  return parse_image_train_options(static_cast<int>(argv.size()), argv.data(), out).options;
}

// The image table with --task image_ssl (image_text would also need --model.image_tower).
ImageTrainOptions parse_ssl(const Args& args) {
  Args with_task = {"--task", "image_ssl"};
  with_task.insert(with_task.end(), args.begin(), args.end());
  return parse_image(with_task);
}

std::string task_of(const Args& args) {
  const auto argv = argv_of(args);
  return requested_task(static_cast<int>(argv.size()), argv.data());
}

// The message of the OptionError that parse(args) throws ("" and a test failure if none).
template <class Parse>
std::string option_error(Parse parse, const Args& args) {
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  try {
    parse(args);
  } catch (const OptionError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected cw::OptionError for " << joined << ", got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error for: " << joined;
  return "";
}

// Both option tables refuse args with an OptionError holding needle.
#define EXPECT_BOTH_REJECT(args, needle)                                                       \
  do {                                                                                         \
    for (const std::string& msg_ : {option_error(parse, args), option_error(parse_ssl, args)}) \
      EXPECT_NE(msg_.find(needle), std::string::npos)                                          \
          << "message: '" << msg_ << "' lacks '" << (needle) << "'";                           \
  } while (0)

class UntrustedOptionFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_untrusted_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

// Reproducer 1: --model.ffn_dim 4611686018427387904 overflowed an element count and wrote out of
// bounds. Every size and count option has a range that says why.
TEST(UntrustedOptions, SizesAndCountsHaveRanges) {
  const std::string conformer = "--model.speech_tower=conformer";
  for (const char* o : {"d_model", "ffn_dim"})
    EXPECT_NE(option_error(parse, {conformer, std::string("--model.") + o, "4611686018427387904"})
                  .find(std::string("--model.") + o + " must be in [0, 65536]"),
              std::string::npos);
  EXPECT_NE(option_error(parse, {conformer, "--model.num_layers", "100000"}).find("--model.num_layers"),
            std::string::npos);
  EXPECT_NE(option_error(parse, {conformer, "--model.num_heads", "100000"}).find("--model.num_heads"),
            std::string::npos);
  EXPECT_NE(option_error(parse, {"--data.max_frames", "1000000000"}).find("--data.max_frames"),
            std::string::npos);
  EXPECT_NE(option_error(parse, {"--data.corpus_jobs", "-1"}).find("--data.corpus_jobs"), std::string::npos);
  EXPECT_NE(option_error(parse, {"--loss.block_rows", "1000000000"}).find("--loss.block_rows"),
            std::string::npos);
  EXPECT_NE(option_error(parse_ssl, {"--model.image_dim", "4611686018427387904"}).find("--model.image_dim"),
            std::string::npos);
  EXPECT_NE(option_error(parse_ssl, {"--model.image_layers", "1000"}).find("--model.image_layers"),
            std::string::npos);
  EXPECT_BOTH_REJECT((Args{"--optim.batch_size", "1000000"}), "--optim.batch_size must be in [2, 65536]");
  EXPECT_BOTH_REJECT((Args{"--optim.steps", "9223372036854775807"}), "--optim.steps");
  EXPECT_BOTH_REJECT((Args{"--eval.batch_size", "0"}), "--eval.batch_size");
  // Values inside the ranges pass.
  EXPECT_EQ(parse({conformer, "--model.ffn_dim", "65536"}).ffn_dim, 65536);
  EXPECT_EQ(parse_ssl({"--optim.batch_size", "65536"}).batch_size, 65536);
}

// Reproducer 3: --run.threads 100000 crashed OpenMP.
TEST(UntrustedOptions, ThreadsHaveARange) {
  EXPECT_BOTH_REJECT((Args{"--run.threads", "100000"}), "--run.threads must be in [0, 1024]");
  EXPECT_BOTH_REJECT((Args{"--run.threads", "-1"}), "--run.threads");
  EXPECT_EQ(parse({"--run.threads", "1024"}).threads, 1024);
}

// Reproducer 4: --optim.lr inf passed validation; inf and nan are refused for every real option.
TEST(UntrustedOptions, RealOptionsMustBeFinite) {
  // One token (--o=v): "-inf" on its own would read as an option.
  auto arg = [](const char* option, const char* value) { return std::string(option) + "=" + value; };
  for (const char* v : {"inf", "nan", "-inf"}) {
    for (const char* o : {"--optim.lr", "--optim.weight_decay", "--optim.eps", "--optim.grad_clip",
                          "--optim.min_lr_ratio", "--optim.beta1", "--optim.beta2"})
      EXPECT_BOTH_REJECT((Args{arg(o, v)}), o);
    EXPECT_NE(option_error(parse, {"--model.speech_tower=conformer", arg("--model.dropout", v)})
                  .find("--model.dropout"),
              std::string::npos);
    for (const char* o : {"--dist.timeout", "--dist.bucket_mb"})
      EXPECT_NE(option_error(parse, {arg(o, v)}).find(o), std::string::npos) << o << " " << v;
    EXPECT_NE(option_error(parse, {arg("--loss.init_temperature", v)}).find("init_temperature"),
              std::string::npos);
    for (const char* o : {"--ssl.temperature", "--ssl.noise_std", "--ssl.crop_min_scale"})
      EXPECT_NE(option_error(parse_ssl, {arg(o, v)}).find(o), std::string::npos) << o << " " << v;
  }
  EXPECT_BOTH_REJECT((Args{"--optim.lr", "2"}), "--optim.lr must be in (0, 1]");
}

// Reproducer 5: --run.seed -1 became 2^64 - 1.
// The audio limits (data/audio_io.h AudioLimits) are options, since a legitimate user can reach
// them (long recordings, unusual rates); they reach the feature cache's reader.
TEST(UntrustedOptions, AudioLimitsAreOptionsWithRanges) {
  const TrainOptions d = parse({});
  EXPECT_EQ(d.max_audio_seconds, 3600.0);
  EXPECT_EQ(d.min_audio_rate, 4000);
  EXPECT_EQ(d.max_audio_rate, 384000);
  const TrainOptions o = parse({"--data.max_audio_seconds", "7200", "--data.min_audio_rate", "1000",
                                "--data.max_audio_rate", "768000"});
  EXPECT_EQ(o.max_audio_seconds, 7200.0);
  EXPECT_EQ(o.min_audio_rate, 1000);
  EXPECT_EQ(o.max_audio_rate, 768000);
  for (const char* v : {"0", "-1", "inf", "nan", "1e9"})
    EXPECT_NE(
        option_error(parse, {std::string("--data.max_audio_seconds=") + v}).find("--data.max_audio_seconds"),
        std::string::npos)
        << v;
  EXPECT_NE(option_error(parse, {"--data.min_audio_rate", "48000", "--data.max_audio_rate", "16000"})
                .find("--data.min_audio_rate"),
            std::string::npos);
  EXPECT_NE(option_error(parse, {"--data.max_audio_rate", "100000000"}).find("--data.max_audio_rate"),
            std::string::npos);
}

TEST(UntrustedOptions, NegativeSeedIsRefused) {
  EXPECT_BOTH_REJECT((Args{"--run.seed", "-1"}), "--run.seed must be >= 0");
  EXPECT_EQ(parse({"--run.seed", "9223372036854775807"}).seed, 9223372036854775807u);
  EXPECT_EQ(parse_ssl({"--run.seed", "5"}).seed, 5u);
}

// Reproducer 6: --optim.l was taken for --optim.lr.
TEST_F(UntrustedOptionFiles, AbbreviationsAreRefused) {
  EXPECT_BOTH_REJECT((Args{"--optim.l", "0.1"}), "optim.l");
  EXPECT_BOTH_REJECT((Args{"--run.thr", "2"}), "run.thr");
  EXPECT_BOTH_REJECT((Args{"--print-conf"}), "print-conf");
  // requested_task does not guess either: --ta is no --task.
  EXPECT_EQ(task_of({"--ta", "image_ssl"}), "speech_text");
  // Config files never guessed; they still do not.
  EXPECT_BOTH_REJECT((Args{"--config", write("abbrev.ini", "[optim]\nl = 0.1\n")}), "optim.l");
}

// Reproducer 7: a folder given to --config counted as an empty config.
TEST_F(UntrustedOptionFiles, FolderAsConfigIsRefused) {
  EXPECT_BOTH_REJECT((Args{"--config", dir_.string()}), "is a folder, not a config file");
  EXPECT_BOTH_REJECT((Args{"--config", write("inc_dir.ini", "config = .\n")}), "is a folder");
}

// Reproducer 8: --%canonical_option% hung both binaries (Boost 1.74 substitutes placeholders in
// its error messages until none is left). A value holding one hung them as well.
TEST_F(UntrustedOptionFiles, BoostPlaceholdersAreRefusedNotHung) {
  for (const Args& args : {Args{"--%canonical_option%"}, Args{"--%canonical_option%", "1"},
                           Args{"-%canonical_option%"}, Args{"--optim.lr", "%value%"},
                           Args{"--optim.lr=%value%"}, Args{"--%original_token%", "1"}, Args{"--%prefix%"}}) {
    EXPECT_BOTH_REJECT(args, "hangs Boost.Program_options");
    EXPECT_EQ(task_of(args), "speech_text");  // returns; the strict parser reports it
  }
  const std::string file = write("placeholder.ini", "[optim]\nlr = %value%\n");
  EXPECT_BOTH_REJECT((Args{"--config", file}), "placeholder.ini' line 2");
  EXPECT_BOTH_REJECT((Args{"--config", write("key.ini", "%canonical_option% = 1\n")}), "hangs");
  // A lone '%' and a placeholder in a comment are fine.
  EXPECT_EQ(parse({"--run.out", "runs/100%"}).out, "runs/100%");
  EXPECT_EQ(parse({"--config", write("comment.ini", "# 100%value% sure\n[run]\nout = a%20b\n")}).out,
            "a%20b");
}

// Reproducer 2: a `config = <file>` line crashed train (image_options' include loop iterated a
// list growing under it) and was silently ignored otherwise. Includes now work in both tables.
TEST_F(UntrustedOptionFiles, ConfigIncludesAreReadRelativeToTheIncludingFile) {
  write("sub/base.ini", "task = image_ssl\n[optim]\nlr = 0.01\nsteps = 100\n[run]\nseed = 3\n");
  const std::string top = write("sub/top.ini", "config = base.ini\n[optim]\nlr = 0.02\n");
  EXPECT_EQ(task_of({"--config", top}), "image_ssl");  // read through the include
  const ImageTrainOptions img = parse_image({"--config", top});
  EXPECT_EQ(img.task, "image_ssl");
  EXPECT_DOUBLE_EQ(img.lr, 0.02);  // the including file wins over what it includes
  EXPECT_EQ(img.steps, 100);       // only in the include
  EXPECT_EQ(img.seed, 3u);
  EXPECT_DOUBLE_EQ(parse_image({"--config", top, "--optim.lr", "0.5"}).lr, 0.5);  // the command line wins

  write("speech_base.ini", "[optim]\nlr = 0.01\nsteps = 100\n[run]\nseed = 3\n");
  const std::string speech = write("speech.ini", "config = speech_base.ini\n[run]\nseed = 4\n");
  const TrainOptions o = parse({"--config", speech});
  EXPECT_DOUBLE_EQ(o.lr, 0.01);
  EXPECT_EQ(o.steps, 100);
  EXPECT_EQ(o.seed, 4u);
  // A later --config file still beats an earlier one and what that one includes.
  EXPECT_DOUBLE_EQ(parse({"--config", speech, "--config", write("later.ini", "[optim]\nlr = 0.2\n")}).lr,
                   0.2);
  // A bad line in an include names the file and who included it.
  write("bad_base.ini", "[optim]\nsteps = many\n");
  const std::string msg = option_error(parse, {"--config", write("uses_bad.ini", "config = bad_base.ini\n")});
  EXPECT_NE(msg.find("bad_base.ini' (included by '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optim.steps"), std::string::npos) << msg;
  EXPECT_BOTH_REJECT((Args{"--config", write("missing_inc.ini", "config = nowhere.ini\n")}), "nowhere.ini");
}

TEST_F(UntrustedOptionFiles, IncludeCyclesAndDeepNestingAreRefused) {
  write("a.ini", "config = b.ini\n");
  write("b.ini", "config = ./a.ini\n");
  EXPECT_BOTH_REJECT((Args{"--config", (dir_ / "a.ini").string()}), "include each other in a cycle");
  const std::string msg = option_error(parse, {"--config", (dir_ / "a.ini").string()});
  EXPECT_NE(msg.find("a.ini' -> '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("b.ini' -> '"), std::string::npos) << msg;
  EXPECT_BOTH_REJECT((Args{"--config", write("self.ini", "config = self.ini\n")}), "cycle");
  EXPECT_EQ(task_of({"--config", (dir_ / "a.ini").string()}), "speech_text");  // returns

  // A chain of kMaxConfigDepth files is fine, one more is refused.
  auto d = [](int i) { return "d" + std::to_string(i).append(".ini"); };
  for (int i = 0; i + 1 < kMaxConfigDepth; ++i) write(d(i), std::string("config = ").append(d(i + 1)));
  write(d(kMaxConfigDepth - 1), "[run]\nseed = 8\n");
  EXPECT_EQ(parse({"--config", (dir_ / "d0.ini").string()}).seed, 8u);
  write("deeper.ini", "config = d0.ini\n");
  EXPECT_BOTH_REJECT((Args{"--config", (dir_ / "deeper.ini").string()}), "includes nest deeper than 8 files");

  // The same file included twice (not a cycle) is fine.
  write("leaf.ini", "[run]\nseed = 6\n");
  EXPECT_EQ(parse({"--config", write("twice.ini", "config = leaf.ini\nconfig = leaf.ini\n")}).seed, 6u);
}

// Reproducer 9: one exit status for a bad option in every binary (2), 1 for anything else.
TEST(UntrustedOptions, ExitStatusSaysWhetherTheOptionsOrTheDataWereBad) {
  auto status_of = [](auto thrower, std::string* printed = nullptr) {
    std::ostringstream err;
    int status = -1;
    try {
      thrower();
    } catch (...) {
      status = report_error("prog", err);
    }
    if (printed) *printed = err.str();
    return status;
  };
  std::string printed;
  EXPECT_EQ(status_of([] { throw OptionError("--optim.lr must be ..."); }, &printed), 2);
  EXPECT_EQ(printed, "prog: error: --optim.lr must be ...\n");
  EXPECT_EQ(status_of([] { throw boost::program_options::unknown_option("--x"); }), 2);
  EXPECT_EQ(status_of([] { throw ValueError("corpus: bad wav header"); }), 1);
  EXPECT_EQ(status_of([] { throw std::bad_alloc(); }, &printed), 1);
  EXPECT_EQ(printed, "prog: error: out of memory\n");
  EXPECT_EQ(status_of([] { throw 42; }), 1);
  // Every option error of the tables is an OptionError (option_error fails the test otherwise).
  option_error(parse, {"--no.such", "1"});
  option_error(parse, {"--loss.kind", "foo"});
  option_error(parse, {"--run.device", "tpu"});
  option_error(parse_ssl, {"--run.conv", "fast"});
  option_error(parse_ssl, {"--loss.mask", "top5"});
}

#ifdef CW_EVAL_BINARY
// The eval binary: bad options exit 2 (they exited 1), placeholders do not hang it (the timeout
// only guards the suite against a regression), abbreviations are refused.
TEST_F(UntrustedOptionFiles, EvalExitsTwoForBadOptions) {
  const std::string err = (dir_ / "err.txt").string();
  auto eval_status = [&](const std::string& args) {
    const std::string cmd = std::string("timeout 120 '") + CW_EVAL_BINARY + "' " + args + " 2> '" + err + "'";
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  // The error line (eval may first say that it restarts with faster BLAS kernels, "cwcl: ...").
  auto first_line = [&] {
    std::ifstream in(err);
    std::string line;
    while (std::getline(in, line) && line.rfind("cwcl: ", 0) == 0) {
    }
    return line;
  };
  const std::string run = "--run '" + dir_.string() + "'";
  EXPECT_EQ(eval_status("--%canonical_option%"), 2) << first_line();
  EXPECT_EQ(eval_status(run + " --batch-size 0"), 2) << first_line();
  EXPECT_NE(first_line().find("--batch-size must be in [1, 65536]"), std::string::npos) << first_line();
  EXPECT_EQ(eval_status(run + " --batch 4"), 2) << first_line();  // an abbreviation of --batch-size
  EXPECT_EQ(eval_status(run + " --baseline best"), 2) << first_line();
  EXPECT_EQ(eval_status(run), 2) << first_line();  // no config.ini: --run names no run folder
  EXPECT_NE(first_line().find("no config.ini"), std::string::npos) << first_line();
}
#endif

}  // namespace
}  // namespace cw::train
