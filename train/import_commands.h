// The subcommands of the `import` binary (train/import_main.cpp), which turns public data sets as
// downloaded into this project's corpora: one entry per data set in the table of import_main.cpp,
// each a function declared in a header of its family (this one: the speech corpora, defined in
// import_speech.cpp). A new family adds its header and its lines to that table; nothing else.
// Part of train/.
#pragma once

#include <iosfwd>

namespace cw::train {

// One `import <name> [options]` subcommand. `run` gets argv with argv[0] = "import <name>" and the
// subcommand's options after it, writes its log to `log`, and returns the exit status: 0 done. A
// bad option throws OptionError (exit 2), anything else that fails throws (exit 1).
struct ImportCommand {
  const char* name;
  const char* help;  // one line for `import --help`
  int (*run)(int argc, const char* const* argv, std::ostream& log);
};

// The speech corpora (import_speech.cpp): each writes its part of --out and composes the corpus.
int import_librispeech_main(int argc, const char* const* argv, std::ostream& log);
int import_common_voice_main(int argc, const char* const* argv, std::ostream& log);
int import_slurp_main(int argc, const char* const* argv, std::ostream& log);
int import_speech_commands_main(int argc, const char* const* argv, std::ostream& log);
int import_fsc_main(int argc, const char* const* argv, std::ostream& log);
// Composes the parts again, e.g. into a second folder with FSC as the intent test.
int import_compose_main(int argc, const char* const* argv, std::ostream& log);

}  // namespace cw::train
