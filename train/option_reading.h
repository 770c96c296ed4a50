// Reading options as untrusted input, shared by every option table (the speech and image tasks of
// `train`, `eval`) so that each gets the same guards: the command line without abbreviations,
// config files with includes, the ranges of size and count options, and the exit status of an
// error. Part of train/.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/error.h"

namespace boost::program_options {
class options_description;
class variables_map;
}  // namespace boost::program_options

namespace cw::train {

// Stores argv[1..] into vm without Boost's abbreviations (--optim.l is not --optim.lr: a later
// option sharing the prefix would silently change its meaning). Returns the option names given.
// allow_unregistered: other options are skipped (requested_task's first look at argv).
// A bare word (no --name before it) is an OptionError that suggests `--<positional_hint> word`
// when a hint is given: `train configs/x.ini` silently ran the default job before.
std::vector<std::string> store_command_line(int argc, const char* const* argv,
                                            const boost::program_options::options_description& desc,
                                            boost::program_options::variables_map& vm,
                                            bool allow_unregistered = false,
                                            const char* positional_hint = "config");

// Stores INI config files into vm so that a later file overrides an earlier one and none
// overrides what vm already holds (the command line). A `config = <file>` line (before any
// [section]) includes a file, relative to the including one, read as if it stood before the
// including file's own lines. Throws OptionError naming the file (and the chain of includes) for
// a file that cannot be read, is a folder or is over 1 MiB, a bad line, an include cycle, or
// includes nested deeper than kMaxConfigDepth (a base config and a variant or two need 3).
inline constexpr int kMaxConfigDepth = 8;
void store_config_files(const std::vector<std::string>& files,
                        const boost::program_options::options_description& desc,
                        boost::program_options::variables_map& vm, bool allow_unregistered = false);

// A path option as a run folder records it: absolute, so that it means the same file from any
// folder; "" (the option's default search) stays "".
std::string absolute_path(const std::string& path);

// Ranges of the size and count options, shared by the option tables. Each is far above what
// this code trains and low enough that products of them (parameter counts, the N x N logits,
// step arithmetic) neither overflow nor ask for an absurd allocation.
inline constexpr int64_t kMaxWidth = 65536;  // d_model, ffn_dim, ...: one 65536 x 65536 f32 matrix is 16 GiB
inline constexpr int64_t kMaxLayers = 256;   // blocks of a tower: no published encoder has more
inline constexpr int64_t kMaxHeads = 256;    // attention heads: more than any published model
inline constexpr int64_t kMaxConvKernel = 255;    // a depthwise kernel of 2.5 s of 10 ms frames
inline constexpr int64_t kMaxFrames = 100000;     // 1000 s of 10 ms frames, longer than any utterance
inline constexpr int64_t kMaxBatch = 65536;       // pairs per step: the N x N f32 logits are then 16 GiB
inline constexpr int64_t kMaxSteps = 1000000000;  // steps and step intervals: 30 years at 1 step/s
inline constexpr int64_t kMaxItems = 1000000000;  // items of a data set
inline constexpr int64_t kMaxWorkers = 64;        // loader threads / corpus processes
// OpenMP threads: above any machine's cores; OpenMP's runtime crashes creating 100000.
inline constexpr int64_t kMaxThreads = 1024;

// Throws OptionError "--<option> must be in [lo, hi] (<why>), got <value>" unless lo <= value <= hi.
void check_count(const char* option, int64_t value, int64_t lo, int64_t hi, const char* why);

// Runs f, rethrowing a ValueError from it (a parser of a spelling: device, loss kind) as an
// OptionError with the same message: it came from an option.
template <class F>
void as_option_error(F&& f) {
  try {
    f();
  } catch (const OptionError&) {
    throw;
  } catch (const ValueError& e) {
    throw OptionError(e.what());
  }
}

// The General section every table of `train` starts with: --help, --config (repeatable),
// --print-config and --task (bound to `task`, described by task_help).
struct GeneralOptions {
  std::vector<std::string> config_files;
  bool help = false, print_config = false;
  std::vector<std::string> command_line;  // the option names given on the command line
};
void add_general_options(boost::program_options::options_description& section, GeneralOptions& g,
                         std::string& task, const char* task_help);

// Reads argv, then the --config files (with their includes), into the variables `all` is bound
// to. A Boost error becomes an OptionError ending with `hint` (e.g. "see --help"). Fills g.
void parse_options(int argc, const char* const* argv, const boost::program_options::options_description& all,
                   GeneralOptions& g, const char* hint);

// The exit status of a binary for the exception being handled (call it in a catch block), after
// printing "<binary>: error: <what>" on err: 2 for a bad option (OptionError or a
// Boost.Program_options error), 1 for anything else (bad data, out of memory, ...).
int report_error(const char* binary, std::ostream& err);

}  // namespace cw::train
