// What the recipe tests (import_recipe_test.cpp: docs/REPRODUCE.md, image_recipe_test.cpp:
// docs/REPRODUCE_IMAGES.md) share: reading a document's shell block between its markers, and
// running one of its lines under bash with the recipe's variables set, the way a reader pastes it.
// The lines are read from the Markdown itself, not copied into the tests, so the document cannot
// drift from what is tested. CW_BIN_DIR (the folder of the import, train and eval binaries) is
// defined by tests/CMakeLists.txt on the files that include this.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cw::test {

namespace fs = std::filesystem;

inline std::string slurp_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Every line between `<!-- <marker>: begin -->` and `<!-- <marker>: end -->` of `doc` (a shell
// block, or a block of a command's output), with backslash continuations joined and leading spaces
// dropped; blank lines, shell comment lines and the Markdown fence are left out. Throws when the
// markers are missing, so a document that loses them fails its test instead of testing nothing.
inline std::vector<std::string> marked_block_lines(const fs::path& doc, const std::string& marker) {
  const std::string text = slurp_file(doc);
  const std::string open = "<!-- " + marker + ": begin -->", close = "<!-- " + marker + ": end -->";
  const size_t begin = text.find(open), end = text.find(close);
  if (begin == std::string::npos || end == std::string::npos || end < begin)
    throw std::runtime_error(doc.string() + " lost its markers " + open + " ... " + close);
  std::istringstream lines(text.substr(begin + open.size(), end - begin - open.size()));
  std::vector<std::string> out;
  std::string command;
  for (std::string line; std::getline(lines, line);) {
    const bool continued = !line.empty() && line.back() == '\\';
    if (continued) line.pop_back();
    command += line;
    if (continued) continue;
    const size_t start = command.find_first_not_of(' ');
    if (start != std::string::npos && command[start] != '#' && command.compare(start, 3, "```") != 0)
      out.push_back(command.substr(start));
    command.clear();
  }
  return out;
}

// Whether a recipe line runs one of the binaries (`$BIN/import ...`, `$BIN/train ...`).
inline bool runs_binary(const std::string& line, const std::string& binary) {
  return line.rfind("$BIN/" + binary + " ", 0) == 0;
}

// The word after `flag ` in a command line ("" if absent): `--run.out runs/x` -> "runs/x".
inline std::string word_after(const std::string& line, const std::string& flag) {
  const size_t at = line.find(flag + " ");
  if (at == std::string::npos) return "";
  const size_t from = at + flag.size() + 1;
  return line.substr(from, line.find(' ', from) - from);
}

// Runs one line under bash in `dir` with BIN set to the built binaries and the variables of `env`
// exported (DL, IMG, ...); returns its exit status and puts its output (stdout and stderr) in
// *log. A line that hangs is killed after 300 s instead of hanging the suite.
inline int run_recipe_line(const fs::path& dir, const std::string& line,
                           const std::map<std::string, std::string>& env, std::string* log) {
  std::string exports = "export BIN='" + std::string(CW_BIN_DIR) + "'";
  for (const auto& [name, value] : env) exports += " " + name + "='" + value + "'";
  std::ofstream(dir / "line.sh") << "cd '" << dir.string() << "' && " << exports << " && " << line << "\n";
  const fs::path out = dir / "line_output.txt";
  const int rc = std::system(
      ("timeout 300 bash '" + (dir / "line.sh").string() + "' > '" + out.string() + "' 2>&1").c_str());
  *log = slurp_file(out);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A fresh scratch folder under the system's temp folder, removed at the end of the test; the pid
// keeps parallel ctest runs apart.
struct RecipeScratch {
  fs::path path;
  explicit RecipeScratch(const std::string& name)
      : path(fs::temp_directory_path() / ("cw_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~RecipeScratch() { fs::remove_all(path); }
  RecipeScratch(const RecipeScratch&) = delete;
  RecipeScratch& operator=(const RecipeScratch&) = delete;
};

}  // namespace cw::test
