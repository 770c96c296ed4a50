// The recipe of docs/REPRODUCE.md, run as written on tiny fake copies of the public archives
// (tests/data/import_test_layouts.h): every line of its recipe block runs here in order, with $DL
// pointing at the fake downloads: each import; each train line (CWCL and its InfoNCE baseline)
// with a few overrides appended that shrink it to seconds (the tiny Conformer, 2 steps, the CPU);
// and each eval line on the run folder its train line wrote. The launch lines of section 3
// (mpirun on 8 GPUs, srun under SLURM) are parse-only: this machine has neither GPUs nor a
// launcher, so their `$BIN/train ...` part is resolved with --print-config (config file and every
// option checked, no training). So an edit to the recipe, the configs, the importers or the
// binaries that breaks the path from archives to the paper's tables fails this test. The frozen
// text tower is the real all-MiniLM-L6-v2: the recipe test skips where it is not installed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/import_test_layouts.h"
#include "data/model_files.h"

#if defined(CW_BIN_DIR) && defined(CW_SOURCE_DIR)
#include "recipe_test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using test::runs_binary;
using test::word_after;

const fs::path kDoc = fs::path(CW_SOURCE_DIR) / "docs" / "REPRODUCE.md";

// What shrinks a full-scale speech run to seconds; appended, so they override the configs.
const std::string kTinySpeechRun =
    " --model.speech_preset tiny --optim.steps 2 --optim.batch_size 8 --optim.warmup_steps 1"
    " --run.device cpu --run.eval_every 0 --run.checkpoint_every 2 --run.plots false --run.progress lines"
    " --data.loader_workers 1 --data.max_frames 200 --eval.batch_size 8 --run.threads 2";

TEST(ImportRecipe, FromTheArchivesToThePapersTablesAsWritten) {
  if (!data::try_find_minilm_dir())
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
  const std::vector<std::string> lines = test::marked_block_lines(kDoc, "recipe");
  test::RecipeScratch dir("import_recipe");
  // The recipe runs from the checkout: configs/ as there, corpora/ and runs/ made by the recipe.
  fs::create_directory_symlink(fs::path(CW_SOURCE_DIR) / "configs", dir.path / "configs");
  // The archives as they unpack, under the names the recipe gives them.
  const fs::path dl = dir.path / "downloads";
  test::write_librispeech(dl / "librispeech", 12);
  test::write_common_voice(dl / "cv-corpus" / "en");
  test::write_slurp(dl / "slurp");
  test::write_speech_commands(dl / "speech_commands_v0.02");
  test::write_fsc(dl / "fluent_speech_commands_dataset");
  const std::map<std::string, std::string> env = {{"DL", dl.string()}};

  std::vector<std::string> trained;  // the --run.out of each train line run so far
  int imports = 0, trains = 0, evals = 0;
  for (const std::string& c : lines) {
    if (c.rfind("BIN=", 0) == 0) continue;  // the reader's own settings; the test sets BIN and DL
    const bool import = runs_binary(c, "import"), train = runs_binary(c, "train"),
               eval = runs_binary(c, "eval");
    // A line of another kind would go untested: say so rather than skip it.
    ASSERT_TRUE(import || train || eval) << "a recipe line this test does not know how to run: " << c;
    // An eval line must come after the train line of its run folder, as a reader runs them.
    if (eval) {
      EXPECT_NE(std::find(trained.begin(), trained.end(), word_after(c, "--run")), trained.end())
          << "evaluates a run no earlier line trained: " << c;
    }
    std::string log;
    const int rc = test::run_recipe_line(dir.path, train ? c + kTinySpeechRun : c, env, &log);
    ASSERT_EQ(rc, 0) << c << "\n" << log;
    if (import) ++imports;
    if (train) {
      ++trains;
      trained.push_back(word_after(c, "--run.out"));
      EXPECT_NE(log.find("step 2/2"), std::string::npos) << c << "\n" << log;
    }
    if (eval) {
      ++evals;
      // The tables' rows: intent and keyword accuracy with the test's own counts.
      EXPECT_NE(log.find("intent"), std::string::npos) << log;
      EXPECT_NE(log.find("keywords (all)       n=4"), std::string::npos) << c << "\n" << log;
    }
  }
  EXPECT_EQ(imports, 6);  // the five data sets and the FSC composition
  EXPECT_EQ(trains, 2);   // CWCL and its InfoNCE baseline
  EXPECT_EQ(evals, 4);    // each on SLURP and on FSC
  // Each train line trained the loss its config names (the baseline's config includes CWCL's and
  // overrides [loss] kind only).
  for (const auto& [run, kind] :
       std::vector<std::pair<std::string, std::string>>{{"full_cwcl", "cwcl"}, {"full_infonce", "infonce"}}) {
    const std::string config = test::slurp_file(dir.path / "runs" / run / "config.ini");
    EXPECT_NE(config.find("[loss]\nkind = " + kind + "\n"), std::string::npos) << run << "\n" << config;
  }
  // What the eval lines wrote: SLURP's 4 test recordings, FSC's 3.
  for (const auto& [file, n] : std::vector<std::pair<std::string, int>>{{"full_cwcl/eval_slurp.json", 4},
                                                                        {"full_cwcl/eval_fsc.json", 3},
                                                                        {"full_infonce/eval_slurp.json", 4},
                                                                        {"full_infonce/eval_fsc.json", 3}}) {
    const fs::path p = dir.path / "runs" / file;
    ASSERT_TRUE(fs::exists(p)) << p;
    const nlohmann::json j = nlohmann::json::parse(test::slurp_file(p));
    EXPECT_EQ(j["intent"]["n"], n) << file;
  }

  // Section 3's launch lines, parse-only (see the top of this file): the `$BIN/train ...` part of
  // each, after the launcher, with --print-config. SLURM_CPUS_PER_TASK is what srun would set.
  const std::vector<std::string> launches = test::marked_block_lines(kDoc, "launch");
  int resolved = 0;
  for (const std::string& c : launches) {
    const size_t at = c.find("$BIN/train ");
    ASSERT_NE(at, std::string::npos) << "a launch line that does not run $BIN/train: " << c;
    std::string log;
    const int rc = test::run_recipe_line(dir.path, c.substr(at) + " --print-config",
                                         {{"DL", dl.string()}, {"SLURM_CPUS_PER_TASK", "4"}}, &log);
    ASSERT_EQ(rc, 0) << c << "\n" << log;
    EXPECT_NE(log.find("corpus = corpora/speech\n"), std::string::npos) << c << "\n" << log;
    if (c.find("--run.threads") != std::string::npos) {
      EXPECT_NE(log.find("threads = 4\n"), std::string::npos) << c << "\n" << log;
    }
    ++resolved;
  }
  EXPECT_EQ(resolved, 3);  // one GPU, one node of 8 GPUs (mpirun), 4 nodes under SLURM (srun)
}

// The binary's own errors: exit status 2 and a message naming the option or data set at fault;
// exit 1 and the file for bad data; `--help` lists every data set, the image ones included.
TEST(ImportRecipe, TheImportBinaryNamesWhatIsWrong) {
  test::RecipeScratch dir("import_errors");
  auto run_line = [&](const std::string& line, std::string* log) {
    return test::run_recipe_line(dir.path, line, {}, log);
  };
  std::string log;
  EXPECT_EQ(run_line("$BIN/import imagenett --root . --out c", &log), 2) << log;
  EXPECT_NE(log.find("unknown data set 'imagenett' (known: librispeech, common_voice"), std::string::npos)
      << log;
  EXPECT_EQ(run_line("$BIN/import librispeech --root nowhere --out c", &log), 2) << log;
  EXPECT_NE(log.find("--root nowhere: no such folder"), std::string::npos) << log;
  EXPECT_EQ(run_line("$BIN/import speech_commands --root . --out c --list other.txt", &log), 2) << log;
  EXPECT_NE(log.find("--list must be testing_list.txt or validation_list.txt"), std::string::npos) << log;
  EXPECT_EQ(run_line("$BIN/import slurp --root . --out c", &log), 1) << log;
  EXPECT_NE(log.find("dataset/slurp/test.jsonl: no such file"), std::string::npos) << log;
  EXPECT_EQ(run_line("$BIN/import --help", &log), 0) << log;
  for (const char* name : {"librispeech", "common_voice", "slurp", "speech_commands", "fsc", "compose"})
    EXPECT_NE(log.find(std::string("\n  ") + name + " "), std::string::npos) << name << "\n" << log;
}

}  // namespace
}  // namespace cw
#endif
