// The recipe of docs/REPRODUCE.md, run as written on tiny fake copies of the public archives
// (tests/data/import_test_layouts.h): the commands of its recipe block that call a binary
// ($BIN/import, $BIN/train, $BIN/eval) run here in order, with $DL pointing at the fake downloads.
// Every import runs; the first train command runs with a few overrides appended that shrink it to
// seconds (the tiny Conformer, 2 steps, the CPU) and the eval commands of its run folder run; the
// baseline's train command is resolved with --print-config (config and options checked, no
// training). So an edit to the recipe, the configs, the importers or the binaries that breaks the
// path from archives to the paper's tables fails this test. The frozen text tower is the real
// all-MiniLM-L6-v2: the recipe test skips where it is not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "data/import_test_layouts.h"
#include "data/model_files.h"

#if defined(CW_BIN_DIR) && defined(CW_SOURCE_DIR)
namespace cw {
namespace {

namespace fs = std::filesystem;

std::string slurp_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The shell lines between the recipe markers of docs/REPRODUCE.md that run a binary of $BIN,
// with backslash continuations joined.
std::vector<std::string> recipe_commands() {
  const std::string doc = slurp_file(fs::path(CW_SOURCE_DIR) / "docs" / "REPRODUCE.md");
  const size_t begin = doc.find("<!-- recipe: begin -->"), end = doc.find("<!-- recipe: end -->");
  EXPECT_NE(begin, std::string::npos) << "docs/REPRODUCE.md lost its recipe markers";
  EXPECT_NE(end, std::string::npos);
  std::vector<std::string> out;
  if (begin == std::string::npos || end == std::string::npos) return out;
  std::istringstream lines(doc.substr(begin, end - begin));
  std::string command;
  for (std::string line; std::getline(lines, line);) {
    const bool continued = !line.empty() && line.back() == '\\';
    if (continued) line.pop_back();
    command += line;
    if (continued) continue;
    const size_t start = command.find_first_not_of(' ');
    if (start != std::string::npos && command.compare(start, 5, "$BIN/") == 0)
      out.push_back(command.substr(start));
    command.clear();
  }
  return out;
}

// Runs one line under bash with the recipe's variables set; its exit status, output in *log.
int run_line(const fs::path& dir, const std::string& line, std::string* log) {
  const fs::path out = dir / "line_output.txt";
  const std::string script = "cd '" + dir.string() + "' && export BIN='" + std::string(CW_BIN_DIR) +
                             "' DL='" + (dir / "downloads").string() + "' && " + line;
  std::ofstream(dir / "line.sh") << script << "\n";
  const int rc = std::system(
      ("timeout 300 bash '" + (dir / "line.sh").string() + "' > '" + out.string() + "' 2>&1").c_str());
  *log = slurp_file(out);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct Scratch {
  fs::path path = fs::temp_directory_path() / ("cw_import_recipe_" + std::to_string(::getpid()));
  Scratch() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Scratch() { fs::remove_all(path); }
};

TEST(ImportRecipe, FromTheArchivesToThePapersTablesAsWritten) {
  if (!data::try_find_minilm_dir())
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed (tools/setup.sh installs it)";
  const std::vector<std::string> commands = recipe_commands();
  ASSERT_GE(commands.size(), 8u);
  Scratch dir;
  // The recipe runs from the checkout: configs/ as there, corpora/ and runs/ made by the recipe.
  fs::create_directory_symlink(fs::path(CW_SOURCE_DIR) / "configs", dir.path / "configs");
  // The archives as they unpack, under the names the recipe gives them.
  const fs::path dl = dir.path / "downloads";
  test::write_librispeech(dl / "librispeech", 12);
  test::write_common_voice(dl / "cv-corpus" / "en");
  test::write_slurp(dl / "slurp");
  test::write_speech_commands(dl / "speech_commands_v0.02");
  test::write_fsc(dl / "fluent_speech_commands_dataset");
  // What shrinks a full-scale run to seconds; appended, so they override the configs.
  const std::string tiny =
      " --model.speech_preset tiny --optim.steps 2 --optim.batch_size 8 --optim.warmup_steps 1"
      " --run.device cpu --run.eval_every 0 --run.checkpoint_every 2 --run.plots false --run.progress lines"
      " --data.loader_workers 1 --data.max_frames 200 --eval.batch_size 8 --run.threads 2";
  // The first train line (CWCL) trains, and the eval lines of its run folder run. Later train
  // lines (the InfoNCE baseline: the same launch with another config file) are resolved with
  // --print-config, which reads the config and checks every option without training, and the
  // eval lines of their folders are skipped: a minute saved, nothing of the recipe's text unread.
  auto word_after = [](const std::string& c, const std::string& flag) {
    const size_t at = c.find(flag + " ");
    return at == std::string::npos
               ? std::string()
               : c.substr(at + flag.size() + 1, c.find(' ', at + flag.size() + 1) - at - flag.size() - 1);
  };
  std::vector<std::string> trained;
  int imports = 0, trains = 0, resolved = 0, evals = 0;
  for (const std::string& c : commands) {
    const bool train = c.rfind("$BIN/train ", 0) == 0, eval = c.rfind("$BIN/eval ", 0) == 0;
    if (eval && std::find(trained.begin(), trained.end(), word_after(c, "--run")) == trained.end()) continue;
    const bool resolve_only = train && !trained.empty();
    std::string log;
    const int rc = run_line(dir.path, !train ? c : resolve_only ? c + " --print-config" : c + tiny, &log);
    ASSERT_EQ(rc, 0) << c << "\n" << log;
    if (c.rfind("$BIN/import ", 0) == 0) ++imports;
    if (resolve_only) {
      ++resolved;
      EXPECT_NE(log.find("corpus = corpora/speech\n"), std::string::npos) << c << "\n" << log;
    } else if (train) {
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
  EXPECT_GE(imports, 6);   // the five data sets and the FSC composition
  EXPECT_EQ(trains, 1);    // CWCL
  EXPECT_GE(resolved, 1);  // its InfoNCE baseline
  EXPECT_GE(evals, 2);     // CWCL on SLURP and on FSC
  // What the eval lines wrote: SLURP's 4 test recordings, FSC's 3.
  for (const auto& [file, n] : std::vector<std::pair<std::string, int>>{{"full_cwcl/eval_slurp.json", 4},
                                                                        {"full_cwcl/eval_fsc.json", 3}}) {
    const fs::path p = dir.path / "runs" / file;
    ASSERT_TRUE(fs::exists(p)) << p;
    const nlohmann::json j = nlohmann::json::parse(slurp_file(p));
    EXPECT_EQ(j["intent"]["n"], n) << file;
  }
}

// The binary's own errors: exit status 2 and a message naming the option or data set at fault;
// exit 1 and the file for bad data; `--help` lists every data set, the image ones included.
TEST(ImportRecipe, TheImportBinaryNamesWhatIsWrong) {
  Scratch dir;
  std::string log;
  EXPECT_EQ(run_line(dir.path, "$BIN/import imagenett --root . --out c", &log), 2) << log;
  EXPECT_NE(log.find("unknown data set 'imagenett' (known: librispeech, common_voice"), std::string::npos)
      << log;
  EXPECT_EQ(run_line(dir.path, "$BIN/import librispeech --root nowhere --out c", &log), 2) << log;
  EXPECT_NE(log.find("--root nowhere: no such folder"), std::string::npos) << log;
  EXPECT_EQ(run_line(dir.path, "$BIN/import speech_commands --root . --out c --list other.txt", &log), 2)
      << log;
  EXPECT_NE(log.find("--list must be testing_list.txt or validation_list.txt"), std::string::npos) << log;
  EXPECT_EQ(run_line(dir.path, "$BIN/import slurp --root . --out c", &log), 1) << log;
  EXPECT_NE(log.find("dataset/slurp/test.jsonl: no such file"), std::string::npos) << log;
  EXPECT_EQ(run_line(dir.path, "$BIN/import --help", &log), 0) << log;
  for (const char* name : {"librispeech", "common_voice", "slurp", "speech_commands", "fsc", "compose"})
    EXPECT_NE(log.find(std::string("\n  ") + name + " "), std::string::npos) << name << "\n" << log;
}

}  // namespace
}  // namespace cw
#endif
