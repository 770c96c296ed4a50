// The command-line traps of issue 22, one test each: a bare word is refused with the option it
// probably meant, --help shows defaults as a person writes them, the image task's --print-config
// needs no tower file, a run folder records absolute paths, a resume keeps config.ini and appends
// to config_history.ini, eval spells its batch size as train does, and `eval --wav` classifies
// audio files with a trained run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "option_test_util.h"
#include "speech_text_test_corpus.h"
#include "train/image_options.h"
#include "train/option_default.h"
#include "train/progress.h"
#include "train/run_loop.h"
#include "train/train_options.h"
#include "train/trainer.h"

namespace cw::train {
namespace {

namespace fs = std::filesystem;
using test::Args;
using test::argv_of;

ParsedTrainOptions parse(const Args& args, std::string* printed = nullptr) {
  std::ostringstream out;
  const auto argv = argv_of(args);
  ParsedTrainOptions p = parse_train_options(static_cast<int>(argv.size()), argv.data(), out);
  if (printed) *printed = out.str();
  return p;
}

ParsedImageTrainOptions parse_image(const Args& args, std::string* printed = nullptr) {
  std::ostringstream out;
  const auto argv = argv_of(args);
  ParsedImageTrainOptions p = parse_image_train_options(static_cast<int>(argv.size()), argv.data(), out);
  if (printed) *printed = out.str();
  return p;
}

template <class F>
std::string option_error(F f) {
  try {
    f();
  } catch (const OptionError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no OptionError";
  return "";
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_cli_traps_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// `train configs/mini_cwcl.ini` silently ran the default job: Boost drops a bare word.
TEST(CliTraps, BareWordsAreRefusedWithAHint) {
  const std::string speech = option_error([] { parse({"configs/mini_cwcl.ini"}); });
  EXPECT_NE(speech.find("unexpected argument 'configs/mini_cwcl.ini'"), std::string::npos) << speech;
  EXPECT_NE(speech.find("did you mean --config configs/mini_cwcl.ini?"), std::string::npos) << speech;
  const std::string image = option_error([] {
    parse_image({"--task", "image_ssl", "--optim.steps", "3", "mini.ini"});
  });
  EXPECT_NE(image.find("did you mean --config mini.ini?"), std::string::npos) << image;
  // A value after its option is not a bare word.
  EXPECT_EQ(parse({"--run.seed", "7"}).options.seed, 7u);
}

TEST(CliTraps, HelpShowsDefaultsAsAPersonWritesThem) {
  EXPECT_EQ(shortest_decimal(0.1), "0.1");
  EXPECT_EQ(shortest_decimal(1e-3), "0.001");
  EXPECT_EQ(shortest_decimal(1e-8), "1e-8");
  EXPECT_EQ(shortest_decimal(1e-4), "1e-4");
  EXPECT_EQ(shortest_decimal(2.5e20), "2.5e20");
  EXPECT_EQ(shortest_decimal(0.07), "0.07");
  EXPECT_EQ(shortest_decimal(300), "300");
  EXPECT_EQ(std::stod(shortest_decimal(1.0 / 3)), 1.0 / 3);  // still reads back exactly
  std::string speech, image;
  parse({"--help"}, &speech);
  parse_image({"--task", "image_ssl", "--help"}, &image);
  for (const std::string* help : {&speech, &image}) {
    EXPECT_EQ(help->find("0000000"), std::string::npos) << *help;  // no 0.10000000000000001
    EXPECT_EQ(help->find("9999999"), std::string::npos) << *help;
    EXPECT_NE(help->find("--run.plots arg (=true)"), std::string::npos) << *help;
    EXPECT_NE(help->find("--run.resume arg (=false)"), std::string::npos) << *help;
  }
  EXPECT_NE(image.find("--ssl.brightness arg (=0.4)"), std::string::npos) << image;
  EXPECT_NE(speech.find("--optim.lr arg (=0.001)"), std::string::npos) << speech;
}

// The tower file is needed to run image_text, not to print its configuration.
TEST(CliTraps, ImageTextPrintConfigNeedsNoTower) {
  std::string printed;
  const ParsedImageTrainOptions p = parse_image({"--task", "image_text", "--print-config"}, &printed);
  EXPECT_TRUE(p.exit_now);
  EXPECT_EQ(printed.rfind("task = image_text\n", 0), 0u) << printed;
  // Running still needs it.
  const std::string run = option_error([] { parse_image({"--task", "image_text"}); });
  EXPECT_NE(run.find("--model.image_tower"), std::string::npos) << run;
}

// config.ini records absolute paths, so `eval --run DIR` reads the same files from any folder.
TEST(CliTraps, RunFoldersRecordAbsolutePaths) {
  TrainOptions o = parse({"--data.corpus", "data/corpus", "--model.text_model", "models/minilm"}).options;
  const TrainOptions a = o.with_absolute_paths();
  EXPECT_EQ(a.corpus, (fs::current_path() / "data/corpus").string());
  EXPECT_EQ(a.text_model, (fs::current_path() / "models/minilm").string());
  EXPECT_EQ(a.feature_cache, "");  // empty: <corpus>/features, which follows the corpus
  EXPECT_EQ(a.speech_init, "");
  EXPECT_EQ(a.with_absolute_paths().to_ini(), a.to_ini());  // absolute paths stay as they are
  ImageTrainOptions img = parse_image({"--task", "image_text", "--model.image_tower", "t.safetensors",
                                       "--data.image_root", "imgs"})
                              .options.with_absolute_paths();
  EXPECT_EQ(img.image_tower, (fs::current_path() / "t.safetensors").string());
  EXPECT_EQ(img.image_root, (fs::current_path() / "imgs").string());
}

// A resume appends its options to config_history.ini; config.ini keeps the first start's.
TEST_F(ScratchDir, ResumesAppendToAConfigHistory) {
  LoopOptions o;
  o.out = (dir_ / "run").string();
  o.dist_backend = "none";
  std::ostringstream log;
  start_run(o, "first\n", false, log);
  EXPECT_EQ(read_text(dir_ / "run/config.ini"), "first\n");
  EXPECT_FALSE(fs::exists(dir_ / "run/config_history.ini"));
  o.resume = true;
  start_run(o, "second\n", false, log);
  start_run(o, "third\n", false, log);
  EXPECT_EQ(read_text(dir_ / "run/config.ini"), "first\n");
  EXPECT_EQ(read_text(dir_ / "run/config_history.ini"), "# resume 1\nsecond\n\n# resume 2\nthird\n\n");
  // A fresh start of the folder starts a fresh record.
  o.resume = false;
  start_run(o, "fresh\n", false, log);
  EXPECT_EQ(read_text(dir_ / "run/config.ini"), "fresh\n");
  EXPECT_FALSE(fs::exists(dir_ / "run/config_history.ini"));
}

// Long phases print "what: done/total unit, ETA m:ss" to the run's log, at most once per interval,
// and nothing once the phase is done or while no log is set.
TEST(CliTraps, ProgressLinesCarryAnEta) {
  EXPECT_EQ(eta_string(45), "0:45");
  EXPECT_EQ(eta_string(3725), "62:05");
  EXPECT_EQ(eta_string(-1), "?");
  std::ostringstream log;
  {
    ProgressMeter quiet("features: train", "utterances", 10, 0.0);
    quiet.add(2);  // no log set: nothing, and no crash
  }
  set_progress_log(&log);
  ProgressMeter every_time("features: train", "utterances", 10, 0.0), hourly("eval", "utterances", 10, 3600);
  every_time.add(4);
  hourly.add(4);
  every_time.add(6);  // done: the phase's own line says so
  set_progress_log(nullptr);
  const std::string text = log.str();
  EXPECT_EQ(text.rfind("features: train: 4/10 utterances, ETA ", 0), 0u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

#ifdef CW_EVAL_BINARY
// Runs the eval binary; its exit status, stdout in *out and the error line in *err.
int run_eval(const fs::path& dir, const std::string& args, std::string* out = nullptr,
             std::string* err = nullptr) {
  const fs::path out_file = dir / "eval_out.txt", err_file = dir / "eval_err.txt";
  const std::string cmd = std::string("timeout 300 '") + CW_EVAL_BINARY + "' " + args + " > '" +
                          out_file.string() + "' 2> '" + err_file.string() + "'";
  const int rc = std::system(cmd.c_str());
  if (out) *out = read_text(out_file);
  if (err) {  // without the "cwcl: ..." note of a restart with faster BLAS kernels
    std::istringstream lines(read_text(err_file));
    err->clear();
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("cwcl: ", 0) != 0) *err += line + "\n";
  }
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// One spelling per option across the binaries: eval reads --eval.batch_size as train does; the
// old --batch-size still works with a note; both at once, or a bare word, are refused.
TEST_F(ScratchDir, EvalSpellsOptionsAsTrainDoes) {
  std::string err;
  const std::string run = "--run '" + dir_.string() + "'";
  EXPECT_EQ(run_eval(dir_, run + " --eval.batch_size 0", nullptr, &err), 2) << err;
  EXPECT_NE(err.find("--eval.batch_size must be in [1, 65536]"), std::string::npos) << err;
  EXPECT_EQ(run_eval(dir_, run + " --batch-size 8", nullptr, &err), 2) << err;  // no config.ini here
  EXPECT_NE(err.find("--batch-size is deprecated; use --eval.batch_size"), std::string::npos) << err;
  EXPECT_EQ(run_eval(dir_, run + " --batch-size 8 --eval.batch_size 8", nullptr, &err), 2) << err;
  EXPECT_NE(err.find("give --eval.batch_size only"), std::string::npos) << err;
  EXPECT_EQ(run_eval(dir_, "runs/default", nullptr, &err), 2) << err;
  EXPECT_NE(err.find("did you mean --run runs/default?"), std::string::npos) << err;
  EXPECT_EQ(run_eval(dir_, run + " --embeddings e.npy", nullptr, &err), 2) << err;
  EXPECT_NE(err.find("give --wav too"), std::string::npos) << err;
}

// `eval --run R --wav a.wav b.flac`: each file's top intents and keywords, and its embedding in
// a .npy or .safetensors file, from a tiny run trained here on generated audio.
TEST(CliTraps, EvalClassifiesYourOwnAudio) {
  if (!data::try_find_minilm_dir())
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
  test::SpeechTempDir dir("eval_wav");
  const fs::path corpus = dir.path / "corpus", out = dir.path / "run";
  test::write_speech_text_corpus(corpus);
  const Args args = {"--data.corpus",
                     corpus.string(),
                     "--data.corpus_size",
                     "none",
                     "--model.speech_tower",
                     "conformer",
                     "--model.speech_preset",
                     "tiny",
                     "--optim.batch_size",
                     "8",
                     "--optim.steps",
                     "2",
                     "--optim.warmup_steps",
                     "1",
                     "--run.out",
                     out.string(),
                     "--run.plots",
                     "false",
                     "--run.progress",
                     "lines",
                     "--eval.batch_size",
                     "4"};
  std::ostringstream log;
  ASSERT_TRUE(run_training(parse(args).options, log).finished) << log.str();
  // Files of other formats and rates than the corpus's: the front end resamples.
  data::write_audio(dir.path / "a.wav", test::synthetic_sound(300, 3, 0.6, 1), 1, 16000,
                    data::SampleFormat::PCM_16);
  data::write_audio(dir.path / "b.wav", test::synthetic_sound(500, 2, 0.8, 2), 1, 22050,
                    data::SampleFormat::Float32);
  data::write_audio(dir.path / "c.wav", test::synthetic_sound(700, 4, 0.5, 3), 1, 8000,
                    data::SampleFormat::PCM_24);
  const std::string files = "--wav '" + (dir.path / "a.wav").string() + "' '" +
                            (dir.path / "b.wav").string() + "' '" + (dir.path / "c.wav").string() + "'";
  std::string printed, err;
  // From another folder: config.ini holds absolute paths, and eval never generates a corpus.
  const std::string run = "--run '" + out.string() + "' --top 2 ";
  ASSERT_EQ(run_eval(dir.path,
                     run + files + " --embeddings '" + (dir.path / "e.npy").string() + "' --json '" +
                         (dir.path / "w.json").string() + "'",
                     &printed, &err),
            0)
      << err << printed;
  for (const char* file : {"a.wav", "b.wav", "c.wav"})
    EXPECT_NE(printed.find(file), std::string::npos) << printed;
  EXPECT_NE(printed.find("intents: "), std::string::npos) << printed;
  const nlohmann::json j = nlohmann::json::parse(read_text(dir.path / "w.json"));
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["intents"].size(), 2u);
  EXPECT_EQ(j[2]["keywords"].size(), 2u);
  EXPECT_GE(j[0]["intents"][0]["cosine"].get<double>(), j[0]["intents"][1]["cosine"].get<double>());
  // The .npy: magic, a header naming (3, D) f32, then 3 * D floats.
  const std::string npy = read_text(dir.path / "e.npy");
  ASSERT_GT(npy.size(), 128u);
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  const size_t header = static_cast<unsigned char>(npy[8]) | static_cast<unsigned char>(npy[9]) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);
  EXPECT_NE(npy.find("'shape': (3, "), std::string::npos);
  // The same embeddings as safetensors.
  ASSERT_EQ(run_eval(dir.path, run + files + " --embeddings '" + (dir.path / "e.safetensors").string() + "'",
                     &printed, &err),
            0)
      << err;
  const Tensor e =
      SafetensorsFile::open((dir.path / "e.safetensors").string()).load("embeddings", DType::F32);
  ASSERT_EQ(e.dim(), 2);
  EXPECT_EQ(e.size(0), 3);
  EXPECT_EQ(npy.size() - 10 - header, static_cast<size_t>(e.numel()) * 4);
  EXPECT_EQ(std::memcmp(npy.data() + 10 + header, e.data<float>(), npy.size() - 10 - header), 0);
  // A missing file is named.
  EXPECT_EQ(run_eval(dir.path, run + "--wav '" + (dir.path / "none.wav").string() + "'", nullptr, &err), 2);
  EXPECT_NE(err.find("none.wav"), std::string::npos) << err;
}
#endif

}  // namespace
}  // namespace cw::train
