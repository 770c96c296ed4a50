// The `train` binary's options (train/train_options.h): defaults, the --print-config round trip,
// config file + command line precedence, and every kind of bad input (unknown option, bad value,
// bad enum spelling, contradictions, malformed or missing config file) rejected with a
// cw::ValueError that names the option or the file.
#include "train/train_options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using train::ParsedTrainOptions;
using train::TrainOptions;

// parse_train_options on {"train", args...}; what it prints goes to *printed when given.
ParsedTrainOptions parse(const std::vector<std::string>& args, std::string* printed = nullptr) {
  std::vector<const char*> argv = {"train"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  ParsedTrainOptions p = train::parse_train_options(static_cast<int>(argv.size()), argv.data(), out);
  if (printed) *printed = out.str();
  return p;
}

// The message of the cw::ValueError that parsing `args` throws ("" and a test failure if none).
std::string parse_error(const std::vector<std::string>& args) {
  try {
    parse(args);
  } catch (const ValueError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected cw::ValueError, got another exception: " << e.what();
    return "";
  }
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  ADD_FAILURE() << "no error for: " << joined;
  return "";
}

#define EXPECT_REJECTED(args, needle)                              \
  do {                                                             \
    const std::string msg_ = parse_error(args);                    \
    EXPECT_NE(msg_.find(needle), std::string::npos)                \
        << "message: '" << msg_ << "' lacks '" << (needle) << "'"; \
  } while (0)

// Config files in a scratch folder removed at the end of the test.
class TrainOptionsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_train_options_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST(TrainOptions, DefaultsAreTheDocumentedExperiment) {
  const ParsedTrainOptions p = parse({});
  EXPECT_FALSE(p.exit_now);
  const TrainOptions& o = p.options;
  const TrainOptions d;  // the struct's own defaults
  EXPECT_EQ(o.to_ini(), d.to_ini());
  EXPECT_EQ(o.corpus, ".cache/speech/small");
  EXPECT_EQ(o.corpus_size, "small");
  EXPECT_EQ(o.speech_tower, "whisper");
  EXPECT_EQ(o.speech_train_layers, 0);
  EXPECT_FALSE(o.spec_augment);
  EXPECT_EQ(o.loss.loss, losses::LossKind::CWCL);
  EXPECT_EQ(o.loss.kernel, losses::WeightKernel::Exp);
  EXPECT_DOUBLE_EQ(o.loss.kernel_temperature, 0.1);
  EXPECT_EQ(o.loss.mask, losses::WeightMask::None);
  EXPECT_EQ(o.steps, 300);
  EXPECT_EQ(o.batch_size, 32);
  EXPECT_EQ(o.warmup_steps, 30);
  EXPECT_FALSE(o.bucket_by_length);
  EXPECT_DOUBLE_EQ(o.lr, 1e-3);
  EXPECT_DOUBLE_EQ(o.grad_clip, 1.0);
  EXPECT_EQ(o.device, "cpu");
  EXPECT_FALSE(o.resume);
  EXPECT_EQ(o.stop_after, 0);
  EXPECT_TRUE(o.plots);
}

// train_main.cpp picks the task before this table; naming the speech task explicitly is fine.
TEST(TrainOptions, ExplicitSpeechTaskIsAccepted) {
  EXPECT_EQ(parse({"--task", "speech_text"}).options.to_ini(), TrainOptions().to_ini());
}

TEST(TrainOptions, HelpListsEverySectionAndExits) {
  std::string help;
  const ParsedTrainOptions p = parse({"--help"}, &help);
  EXPECT_TRUE(p.exit_now);
  for (const char* s : {"Data [data]", "Model [model]", "Loss [loss]", "Optimization [optim]", "Run [run]",
                        "Evaluation [eval]", "--optim.lr", "--loss.kind", "--run.stop_after", "--config"})
    EXPECT_NE(help.find(s), std::string::npos) << "--help lacks " << s;
}

TEST_F(TrainOptionsFiles, PrintConfigReadsBackToTheSameOptions) {
  // Non-default values in every section, including the enums, a bool and a string with a space.
  std::string printed;
  const ParsedTrainOptions p = parse({"--print-config",
                                      "--model.speech_tower",
                                      "conformer",
                                      "--data.corpus",
                                      "some dir/corpus",
                                      "--data.spec_augment",
                                      "false",
                                      "--model.d_model",
                                      "96",
                                      "--model.dropout",
                                      "0.25",
                                      "--loss.kernel",
                                      "exp",
                                      "--loss.kernel_temperature",
                                      "0.3",
                                      "--loss.mask",
                                      "topk",
                                      "--loss.top_k",
                                      "3",
                                      "--loss.reverse",
                                      "infonce",
                                      "--loss.reduction",
                                      "sum",
                                      "--optim.lr",
                                      "3e-4",
                                      "--optim.steps",
                                      "1000",
                                      "--optim.eps",
                                      "1e-7",
                                      "--run.seed",
                                      "7",
                                      "--run.out",
                                      "runs/x",
                                      "--run.stop_after",
                                      "5",
                                      "--eval.max_items",
                                      "100"},
                                     &printed);
  ASSERT_TRUE(p.exit_now);
  EXPECT_EQ(printed, p.options.to_ini());
  EXPECT_NE(printed.find("[loss]\nkind = cwcl\nkernel = exp"), std::string::npos) << printed;

  const ParsedTrainOptions back = parse({"--config", write("printed.ini", printed)});
  EXPECT_FALSE(back.exit_now);
  EXPECT_EQ(back.options.to_ini(), printed);
  EXPECT_EQ(back.options.corpus, "some dir/corpus");
  EXPECT_FALSE(back.options.spec_augment);
  EXPECT_EQ(back.options.d_model, 96);
  EXPECT_EQ(back.options.loss.kernel, losses::WeightKernel::Exp);
  EXPECT_EQ(back.options.loss.mask, losses::WeightMask::TopK);
  EXPECT_EQ(back.options.loss.top_k, 3);
  EXPECT_EQ(back.options.loss.reverse, losses::ReverseDirection::InfoNCE);
  EXPECT_DOUBLE_EQ(back.options.lr, 3e-4);
  EXPECT_DOUBLE_EQ(back.options.eps, 1e-7);
  EXPECT_EQ(back.options.seed, 7u);
  EXPECT_EQ(back.options.stop_after, 5);
  EXPECT_EQ(back.options.eval_max_items, 100);

  // The defaults round-trip as well (empty strings included).
  const std::string defaults = TrainOptions{}.to_ini();
  EXPECT_EQ(parse({"--config", write("defaults.ini", defaults)}).options.to_ini(), defaults);
}

TEST_F(TrainOptionsFiles, CommandLineBeatsLaterFilesBeatEarlierFiles) {
  const std::string a =
      write("a.ini", "[optim]\nlr = 0.01\nsteps = 100\nwarmup_steps = 5\n[run]\nseed = 1\n");
  const std::string b = write("b.ini", "[optim]\nlr = 0.02\n[run]\nseed = 2\nout = runs/b\n");

  const TrainOptions ab = parse({"--config", a, "--config", b}).options;
  EXPECT_DOUBLE_EQ(ab.lr, 0.02);  // b overrides a
  EXPECT_EQ(ab.seed, 2u);         // b overrides a
  EXPECT_EQ(ab.steps, 100);       // only in a
  EXPECT_EQ(ab.warmup_steps, 5);  // only in a
  EXPECT_EQ(ab.out, "runs/b");    // only in b
  EXPECT_EQ(ab.batch_size, 32);   // in neither: the default

  const TrainOptions ba = parse({"--config", b, "--config", a}).options;
  EXPECT_DOUBLE_EQ(ba.lr, 0.01);  // now a is the later file
  EXPECT_EQ(ba.seed, 1u);
  EXPECT_EQ(ba.out, "runs/b");

  // The command line wins over both files, wherever it stands relative to --config.
  const TrainOptions cl =
      parse({"--optim.lr", "0.5", "--config", a, "--config", b, "--run.seed", "9"}).options;
  EXPECT_DOUBLE_EQ(cl.lr, 0.5);
  EXPECT_EQ(cl.seed, 9u);
  EXPECT_EQ(cl.steps, 100);
  EXPECT_EQ(cl.out, "runs/b");

  // A contradiction made of a file and the command line is still seen: warmup 5 from a.ini
  // against --optim.steps 5 on the command line.
  EXPECT_REJECTED((std::vector<std::string>{"--config", a, "--optim.steps", "5"}), "--optim.warmup_steps");
}

TEST(TrainOptions, BadValuesNameTheOption) {
  using V = std::vector<std::string>;
  EXPECT_REJECTED((V{"--no.such_option", "1"}), "no.such_option");
  EXPECT_REJECTED((V{"--optim.lr", "fast"}), "optim.lr");
  EXPECT_REJECTED((V{"--optim.steps"}), "optim.steps");  // value missing
  EXPECT_REJECTED((V{"--loss.kind", "foo"}), "--loss.kind");
  EXPECT_REJECTED((V{"--loss.kind", "foo"}), "foo");
  EXPECT_REJECTED((V{"--loss.kernel", "gauss"}), "--loss.kernel");
  EXPECT_REJECTED((V{"--loss.mask", "top5"}), "--loss.mask");
  EXPECT_REJECTED((V{"--loss.reverse", "both"}), "--loss.reverse");
  EXPECT_REJECTED((V{"--loss.reduction", "max"}), "--loss.reduction");
  EXPECT_REJECTED((V{"--loss.linear_weights", "fast"}), "--loss.linear_weights");
  EXPECT_REJECTED((V{"--loss.mask", "topk", "--loss.top_k", "0"}), "top_k");
  EXPECT_REJECTED((V{"--loss.init_temperature", "0"}), "init_temperature");
  EXPECT_REJECTED((V{"--optim.steps", "0"}), "--optim.steps");
  EXPECT_REJECTED((V{"--optim.steps", "10", "--optim.warmup_steps", "10"}), "--optim.warmup_steps");
  EXPECT_REJECTED((V{"--optim.warmup_steps", "-1"}), "--optim.warmup_steps");
  EXPECT_REJECTED((V{"--optim.batch_size", "1"}), "--optim.batch_size");
  EXPECT_REJECTED((V{"--optim.lr", "0"}), "--optim.lr");
  EXPECT_REJECTED((V{"--optim.min_lr_ratio", "1.5"}), "--optim.min_lr_ratio");
  EXPECT_REJECTED((V{"--optim.beta2", "1"}), "--optim.beta1 and --optim.beta2");
  EXPECT_REJECTED((V{"--optim.grad_clip", "-1"}), "--optim.grad_clip");
  EXPECT_REJECTED((V{"--data.corpus_size", "huge"}), "--data.corpus_size");
  EXPECT_REJECTED((V{"--data.max_frames", "8"}), "--data.max_frames");
  EXPECT_REJECTED((V{"--model.speech_preset", "large"}), "--model.speech_preset");
  EXPECT_REJECTED((V{"--model.conv_kernel", "4"}), "--model.conv_kernel");
  EXPECT_REJECTED((V{"--model.dropout", "1"}), "--model.dropout");
  EXPECT_REJECTED((V{"--run.progress", "fancy"}), "--run.progress");
  EXPECT_REJECTED((V{"--run.stop_after", "-2"}), "--run.stop_after");
  EXPECT_REJECTED((V{"--run.device", "tpu"}), "--run.device");
  EXPECT_REJECTED((V{"--run.out", ""}), "--run.out");
  // A value that is fine on its own is accepted (the checks above are not blanket rejections).
  EXPECT_NO_THROW(parse({"--optim.steps", "10", "--optim.warmup_steps", "9", "--run.stop_after", "3"}));
}

TEST(TrainOptions, ContradictionsAreRejected) {
  using V = std::vector<std::string>;
  EXPECT_REJECTED((V{"--loss.kind", "infonce", "--loss.kernel", "exp"}), "--loss.kernel is a CWCL option");
  EXPECT_REJECTED((V{"--loss.kind", "infonce", "--loss.mask", "topk"}), "--loss.mask is a CWCL option");
  EXPECT_REJECTED((V{"--loss.kind", "infonce", "--loss.threshold", "0.5"}), "--loss.threshold");
  EXPECT_REJECTED((V{"--loss.top_k", "4"}), "--loss.top_k is set but --loss.mask is not topk");
  EXPECT_REJECTED((V{"--loss.mask", "threshold", "--loss.top_k", "4"}), "--loss.top_k");
  EXPECT_REJECTED((V{"--loss.threshold", "0.2"}), "--loss.threshold is set but --loss.mask is not threshold");
  EXPECT_REJECTED((V{"--loss.kernel", "linear", "--loss.kernel_temperature", "0.5"}),
                  "--loss.kernel_temperature is set");
  EXPECT_REJECTED((V{"--run.device", "gpu"}), "--run.device must be cpu, cuda or cuda:N, got 'gpu'");
  EXPECT_REJECTED((V{"--run.device", "cuda:x"}), "--run.device must be cpu, cuda or cuda:N");
  EXPECT_REJECTED((V{"--run.conv", "fast"}), "--run.conv must be auto, cudnn or native, got 'fast'");
  EXPECT_REJECTED((V{"--run.device", "cuda", "--dist.backend", "nccl"}),
                  "--dist.backend nccl: the NCCL communicator is not wired into the trainer yet");
  // A well-spelled CUDA device parses anywhere (--print-config); the run checks the build and
  // the machine when it starts (DeviceSelect test).
  EXPECT_NO_THROW(parse({"--run.device", "cuda:1"}));
  const std::string cuda_ini =
      parse({"--run.device", "cuda", "--run.conv", "native", "--run.tf32", "true"}).options.to_ini();
  EXPECT_NE(cuda_ini.find("conv = native"), std::string::npos) << cuda_ini;
  EXPECT_NE(cuda_ini.find("tf32 = true"), std::string::npos) << cuda_ini;
  // The consistent spellings of the same settings pass.
  EXPECT_NO_THROW(parse({"--loss.kind", "infonce"}));
  EXPECT_NO_THROW(parse({"--loss.kernel", "exp", "--loss.kernel_temperature", "0.5"}));
  EXPECT_NO_THROW(parse({"--loss.mask", "topk", "--loss.top_k", "4"}));
  EXPECT_NO_THROW(parse({"--loss.mask", "threshold", "--loss.threshold", "0.2"}));
}

TEST_F(TrainOptionsFiles, BadConfigFilesNameTheFile) {
  const std::string missing = (dir_ / "missing.ini").string();
  EXPECT_REJECTED((std::vector<std::string>{"--config", missing}), "missing.ini");

  const std::string unknown = write("unknown.ini", "[optim]\nlr = 0.1\nlearning_rate = 0.1\n");
  std::string msg = parse_error({"--config", unknown});
  EXPECT_NE(msg.find("unknown.ini"), std::string::npos) << msg;
  EXPECT_NE(msg.find("learning_rate"), std::string::npos) << msg;

  const std::string syntax = write("syntax.ini", "[optim]\nlr 0.1\n");
  EXPECT_REJECTED((std::vector<std::string>{"--config", syntax}), "syntax.ini");

  const std::string bad_value = write("bad_value.ini", "[optim]\nsteps = many\n");
  msg = parse_error({"--config", bad_value});
  EXPECT_NE(msg.find("bad_value.ini"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optim.steps"), std::string::npos) << msg;

  // A bad enum spelling inside a file still names the option.
  const std::string bad_enum = write("bad_enum.ini", "[loss]\nkind = triplet\n");
  EXPECT_REJECTED((std::vector<std::string>{"--config", bad_enum}), "--loss.kind");
}

}  // namespace
}  // namespace cw
