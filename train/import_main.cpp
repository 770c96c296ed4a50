// `import`: turns public data sets, as downloaded and unpacked, into this project's corpora.
// `import <data set> --root DIR --out DIR [options]`; `import --help` lists the data sets and
// `import <data set> --help` their options. The subcommands live in their own files; this file is
// only the table and the dispatch. Exit status: 0 done, 2 a bad option, 1 any other error.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "train/import_commands.h"
#include "train/import_images.h"
#include "train/option_reading.h"
#include "train/progress.h"

namespace {

using cw::train::ImportCommand;

// One line per data set. Another family of importers adds its lines here (and its header above).
const std::vector<ImportCommand>& commands() {
  static const std::vector<ImportCommand> table = {
      {"librispeech", "LibriSpeech (FLAC + *.trans.txt): training pairs, valid, retrieval test",
       cw::train::import_librispeech_main},
      {"common_voice", "Mozilla Common Voice locale folder (MP3 + train/dev.tsv): training pairs, valid",
       cw::train::import_common_voice_main},
      {"slurp", "SLURP (dataset/slurp/*.jsonl + slurp_real FLAC): zero-shot intent test",
       cw::train::import_slurp_main},
      {"speech_commands", "Speech Commands v2 (a folder per word + testing_list.txt): zero-shot keyword test",
       cw::train::import_speech_commands_main},
      {"fsc", "Fluent Speech Commands (data/*_data.csv + WAV): a second zero-shot intent test",
       cw::train::import_fsc_main},
      {"compose", "assemble the imported parts into a corpus again (e.g. --intent fsc into another folder)",
       cw::train::import_compose_main},
      {"imagenet",
       "ImageNet-style class folders (train/ val/ + LOC_synset_mapping.txt): zero-shot image test",
       cw::train::import_imagenet_main},
      {"webdataset", "WebDataset shards of jpg + txt pairs (CC3M/CC12M via img2dataset): image-text training",
       cw::train::import_webdataset_main},
  };
  return table;
}

void print_usage(std::ostream& out) {
  out << "import: public data sets, as downloaded, into this project's corpora (docs/REPRODUCE.md)\n"
         "usage: import <data set> --root DIR --out DIR [options]    (import <data set> --help)\n\n";
  for (const ImportCommand& c : commands()) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size() + 2, 18), ' ');
    out << "  " << name << c.help << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a redirected log shows each line as it is written
  cw::train::set_progress_log(&std::cout);
  try {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
      print_usage(argc < 2 ? std::cerr : std::cout);
      return argc < 2 ? 2 : 0;
    }
    for (const ImportCommand& c : commands())
      if (argv[1] == std::string(c.name)) {
        const std::string self = std::string("import ") + c.name;
        std::vector<const char*> args = {self.c_str()};
        for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
        return c.run(static_cast<int>(args.size()), args.data(), std::cout);
      }
    std::string names;
    for (const ImportCommand& c : commands()) names += (names.empty() ? "" : ", ") + std::string(c.name);
    throw cw::OptionError(std::string("unknown data set '") + argv[1] + "' (known: " + names +
                          "; see --help)");
  } catch (...) {
    return cw::train::report_error("import", std::cerr);
  }
}
