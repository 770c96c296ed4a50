// Reading options as untrusted input (see option_reading.h).
#include "train/option_reading.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <sstream>

#include "train/option_default.h"

namespace cw::train {
namespace po = boost::program_options;

namespace {

namespace fs = std::filesystem;

// Boost.Program_options 1.74 fills its error messages by replacing each %name% placeholder until
// none is left, so an option or value that holds one (--%canonical_option%, --optim.lr %value%)
// loops forever as soon as the error is printed. Such text is refused before Boost sees it.
void refuse_placeholders(const std::string& text, const std::string& where) {
  for (size_t i = text.find('%'); i != std::string::npos; i = text.find('%', i + 1)) {
    size_t j = i + 1;
    while (j < text.size() && (std::islower(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
    CW_CHECK(j == i + 1 || j == text.size() || text[j] != '%', OptionError, where, ": '",
             text.substr(i, j + 1 - i),
             "' is refused: a %word% in an option or value hangs Boost.Program_options' error messages");
  }
}

constexpr size_t kMaxConfigBytes = size_t{1} << 20;  // a config file is a few KiB
constexpr int kMaxConfigFiles = 64;                  // files read in all: a tree of includes stays small

// Reads config files and their includes depth first (see store_config_files).
struct ConfigReader {
  const po::options_description& desc;
  po::variables_map& vm;
  bool allow_unregistered;
  std::vector<std::pair<fs::path, std::string>> chain;  // open files: canonical path, as named
  int files_read = 0;

  std::string chain_str(const std::string& last) const {
    std::string s;
    for (const auto& c : chain) s += "'" + c.second + "' -> ";
    return s + "'" + last + "'";
  }

  void read(const fs::path& file) {
    const std::string name = file.string();
    const std::string where =
        "config file '" + name + "'" + (chain.empty() ? "" : " (included by '" + chain.back().second + "')");
    CW_CHECK(static_cast<int>(chain.size()) < kMaxConfigDepth, OptionError, where,
             ": includes nest deeper than ", kMaxConfigDepth, " files: ", chain_str(name));
    CW_CHECK(++files_read <= kMaxConfigFiles, OptionError, where, ": more than ", kMaxConfigFiles,
             " config files read in all (includes of includes?)");
    std::error_code ec;
    const fs::path key = fs::weakly_canonical(file, ec);
    for (const auto& c : chain)
      CW_CHECK(c.first != key, OptionError, where,
               ": config files include each other in a cycle: ", chain_str(name));
    CW_CHECK(!fs::is_directory(file, ec), OptionError, where, " is a folder, not a config file");
    std::ifstream in(file, std::ios::binary);
    CW_CHECK(in.good(), OptionError, where, ": cannot open it");
    std::string text(kMaxConfigBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    CW_CHECK(text.size() <= kMaxConfigBytes, OptionError, where, " is larger than 1 MiB: not a config file");
    std::istringstream lines(text);
    int line_no = 0;
    for (std::string line; std::getline(lines, line);)  // Boost drops a line's text from '#' on
      refuse_placeholders(line.substr(0, line.find('#')), where + " line " + std::to_string(++line_no));

    std::vector<std::string> includes;
    try {
      std::istringstream is(text);
      po::parsed_options parsed = po::parse_config_file(is, desc, allow_unregistered);
      // Includes are read below, not stored: vm["config"] keeps the command line's files.
      auto& opts = parsed.options;
      for (auto it = opts.begin(); it != opts.end();) {
        if (it->string_key != "config") {
          ++it;
          continue;
        }
        includes.insert(includes.end(), it->value.begin(), it->value.end());
        it = opts.erase(it);
      }
      po::store(parsed, vm);
    } catch (const po::error& e) {
      throw OptionError(where + ": " + e.what());
    }
    // The including file's own lines were stored first, so they win over its includes; the
    // includes go last-to-first, so a later one wins over an earlier one.
    chain.emplace_back(key, name);
    for (auto it = includes.rbegin(); it != includes.rend(); ++it) {
      const fs::path inc(*it);
      read(inc.is_absolute() ? inc : file.parent_path() / inc);
    }
    chain.pop_back();
  }
};

}  // namespace

std::vector<std::string> store_command_line(int argc, const char* const* argv,
                                            const po::options_description& desc, po::variables_map& vm,
                                            bool allow_unregistered, const char* positional_hint) {
  for (int i = 1; i < argc; ++i) refuse_placeholders(argv[i], std::string("command line '") + argv[i] + "'");
  po::command_line_parser parser(argc, argv);
  parser.options(desc).style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing);
  if (allow_unregistered) parser.allow_unregistered();
  const po::parsed_options parsed = parser.run();
  // Without a positional table Boost keeps a bare word (`train configs/mini_cwcl.ini`) as an
  // option with no name, and po::store drops it: the run would silently ignore it.
  if (!allow_unregistered)
    for (const auto& opt : parsed.options) {
      if (!opt.string_key.empty()) continue;
      const std::string word =
          (opt.original_tokens.empty() ? std::string() : opt.original_tokens.front()).substr(0, 200);
      throw OptionError("unexpected argument '" + word + "': every option is named (--section.option value)" +
                        (positional_hint
                             ? std::string("; did you mean --") + positional_hint + " " + word + "?"
                             : std::string()));
    }
  po::store(parsed, vm);
  std::vector<std::string> names;
  for (const auto& opt : parsed.options) names.push_back(opt.string_key);
  return names;
}

std::string absolute_path(const std::string& path) {
  return path.empty() ? path : fs::absolute(path).string();
}

std::string shortest_decimal(double v) {
  char text[64];
  const auto r = std::to_chars(text, text + sizeof text, v);  // shortest that reads back exactly
  std::string s(text, r.ptr);
  // The exponent as a person writes it: 1e-4, 1e20 (to_chars writes 1e-04, 1e+20).
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    size_t digits = e + 1;
    if (s[digits] == '+') s.erase(digits, 1);
    if (s[digits] == '-') ++digits;
    while (digits + 1 < s.size() && s[digits] == '0') s.erase(digits, 1);
  }
  return s;
}

void store_config_files(const std::vector<std::string>& files, const po::options_description& desc,
                        po::variables_map& vm, bool allow_unregistered) {
  ConfigReader reader{desc, vm, allow_unregistered, {}, 0};
  // po::store keeps the first value stored for an option: last file first.
  for (auto it = files.rbegin(); it != files.rend(); ++it) reader.read(*it);
}

void check_count(const char* option, int64_t value, int64_t lo, int64_t hi, const char* why) {
  CW_CHECK(value >= lo && value <= hi, OptionError, "--", option, " must be in [", lo, ", ", hi, "] (", why,
           "), got ", value);
}

void add_general_options(po::options_description& section, GeneralOptions& g, std::string& task,
                         const char* task_help) {
  section.add_options()("help,h", "print this help and exit")(
      "config,c", po::value(&g.config_files)->composing(),
      "INI config file (repeatable; later files override earlier ones, the command line overrides all)")(
      "print-config", "print the resolved configuration as INI and exit")(
      // Read by train_main.cpp before the tables (requested_task); accepted here so that an
      // explicit --task, or `task = ...` in a config file, is not an error.
      "task", with_default(&task), task_help);
}

void parse_options(int argc, const char* const* argv, const po::options_description& all, GeneralOptions& g,
                   const char* hint) {
  po::variables_map vm;
  try {
    // po::store keeps the first value stored for an option: the command line goes first so it
    // wins over every config file.
    g.command_line = store_command_line(argc, argv, all, vm);
    if (vm.count("config")) store_config_files(vm["config"].as<std::vector<std::string>>(), all, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw OptionError(std::string(e.what()) + " (" + hint + ")");
  }
  g.help = vm.count("help") > 0;
  g.print_config = vm.count("print-config") > 0;
}

int report_error(const char* binary, std::ostream& err) {
  try {
    throw;
  } catch (const OptionError& e) {
    err << binary << ": error: " << e.what() << "\n";
    return 2;
  } catch (const po::error& e) {
    err << binary << ": error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::bad_alloc&) {
    err << binary << ": error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    err << binary << ": error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    err << binary << ": error: an unknown exception\n";
    return 1;
  }
}

}  // namespace cw::train
