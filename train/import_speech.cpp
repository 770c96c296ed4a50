// The speech subcommands of `import` (see import_commands.h): options, progress lines and the
// summary around the importers of data/import_*.h. Each writes its part of --out
// (data/import_part.h), then composes the corpus from every part there (data/import_compose.h),
// so that the last import of a recipe leaves a corpus `train --data.corpus` reads as it is.
// Part of train/.
#include <boost/program_options.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "data/import_common_voice.h"
#include "data/import_compose.h"
#include "data/import_fsc.h"
#include "data/import_librispeech.h"
#include "data/import_part.h"
#include "data/import_slurp.h"
#include "data/import_speech_commands.h"
#include "train/import_commands.h"
#include "train/option_default.h"
#include "train/option_reading.h"
#include "train/progress.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace {

// The options every speech importer shares; the limits are train's --data.* ones, same defaults.
struct CommonArgs {
  std::string root, out, check = "full";
  int64_t jobs = std::max(1u, std::thread::hardware_concurrency());
  double max_audio_seconds = 3600.0;
  int64_t min_audio_rate = 4000, max_audio_rate = 384000;
};

void add_common(po::options_description& d, CommonArgs& a, const char* root_help) {
  d.add_options()("help,h", "print this help")("root", po::value(&a.root)->required(), root_help)(
      "out", po::value(&a.out)->required(),
      "the corpus folder: the part goes to <out>/parts/<data set>/, the corpus manifests to <out>/")(
      "jobs", with_default(&a.jobs), "audio files checked in parallel")(
      "check", with_default(&a.check),
      "full: decode every audio file (finds truncated files); header: read headers only (faster)")(
      "max_audio_seconds", with_default(&a.max_audio_seconds),
      "longer files are dropped (train's --data.max_audio_seconds)")(
      "min_audio_rate", with_default(&a.min_audio_rate), "files at lower sample rates are dropped")(
      "max_audio_rate", with_default(&a.max_audio_rate), "files at higher sample rates are dropped");
}

// Parses argv into the bound variables; false when --help was printed.
bool parse(int argc, const char* const* argv, const po::options_description& d, std::ostream& log) {
  po::variables_map vm;
  store_command_line(argc, argv, d, vm, false, "root");
  if (vm.count("help")) {
    log << d << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

data::ImportOptions import_options(const CommonArgs& a, std::ostream& log) {
  check_count("jobs", a.jobs, 1, kMaxWorkers, "threads checking audio files");
  CW_CHECK(a.check == "full" || a.check == "header", OptionError, "--check must be full or header, got '",
           a.check, "'");
  CW_CHECK(a.max_audio_seconds > 0 && a.max_audio_seconds <= 86400, OptionError,
           "--max_audio_seconds must be in (0, 86400], got ", a.max_audio_seconds);
  check_count("min_audio_rate", a.min_audio_rate, 1, a.max_audio_rate, "Hz, at most --max_audio_rate");
  check_count("max_audio_rate", a.max_audio_rate, 1, 10'000'000, "Hz");
  CW_CHECK(fs::is_directory(a.root), OptionError, "--root ", a.root, ": no such folder");
  data::ImportOptions o;
  o.root = fs::absolute(a.root);
  o.out = fs::absolute(a.out);
  o.threads = static_cast<int>(a.jobs);
  o.decode_audio = a.check == "full";
  o.limits.max_seconds = a.max_audio_seconds;
  o.limits.min_rate = a.min_audio_rate;
  o.limits.max_rate = a.max_audio_rate;
  o.log = &log;
  // Progress lines with an ETA on the binary's log (train/progress.h), one meter per phase.
  o.progress = [](const std::string& what, int64_t total) {
    auto meter = std::make_shared<ProgressMeter>(what, "files", total);
    return std::function<void(int64_t)>([meter](int64_t n) { meter->add(n); });
  };
  return o;
}

void print_compose(const data::ComposeResult& r, std::ostream& log) { log << r.text; }

// The steps every importer shares: run it, write its part, print what was kept and dropped, and
// compose the corpus from every part of --out.
int run_import(const std::string& name, const CommonArgs& a, std::ostream& log,
               const std::function<data::ImportPart(const data::ImportOptions&)>& importer) {
  const data::ImportOptions o = import_options(a, log);
  const auto t0 = Clock::now();
  log << name << ": reading " << o.root.string() << " (audio checks: " << a.check << ", " << o.threads
      << " threads)\n";
  const data::ImportPart part = importer(o);
  data::write_part(part, o.out);
  log << part.summary.text(name) << name << ": part written to "
      << data::part_dir(o.out, part.source).string() << " in " << seconds_since(t0) << " s\n";
  print_compose(data::compose_corpus({o.out, {}, "auto"}), log);
  return 0;
}

std::vector<std::string> comma_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int import_librispeech_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  std::string train = "train-clean-100,train-clean-360,train-other-500", valid = "dev-clean",
              test = "test-clean";
  po::options_description d("import librispeech: LibriSpeech (openslr.org/12) as training pairs");
  add_common(d, a, "the folder holding LibriSpeech/ (or the subsets themselves), as the archives unpack");
  d.add_options()("train", with_default(&train), "subsets of the train split (comma separated)")(
      "valid", with_default(&valid), "subsets of the valid split")("test", with_default(&test),
                                                                   "subsets of the retrieval test");
  if (!parse(argc, argv, d, log)) return 0;
  data::LibriSpeechOptions lo;
  lo.train = comma_list(train);
  lo.valid = comma_list(valid);
  lo.retrieval = comma_list(test);
  return run_import("librispeech", a, log,
                    [&](const data::ImportOptions& o) { return data::import_librispeech(o, lo); });
}

int import_common_voice_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  data::CommonVoiceOptions co;
  po::options_description d("import common_voice: Mozilla Common Voice as training pairs");
  add_common(d, a,
             "a locale folder of the archive, e.g. cv-corpus-17.0-2024-03-15/en (holds clips/, train.tsv)");
  d.add_options()("train_list", with_default(&co.train_list),
                  "train.tsv (Common Voice's training list) or validated.tsv (every validated clip whose "
                  "sentence is not in dev.tsv or test.tsv)");
  if (!parse(argc, argv, d, log)) return 0;
  return run_import("common_voice", a, log,
                    [&](const data::ImportOptions& o) { return data::import_common_voice(o, co); });
}

int import_slurp_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  data::SlurpOptions so;
  std::vector<std::string> audio;
  po::options_description d("import slurp: SLURP as the zero-shot intent test");
  add_common(d, a,
             "the clone of github.com/pswietojanski/slurp (dataset/slurp/*.jsonl) with audio/slurp_real");
  d.add_options()("split", with_default(&so.split), "dataset/slurp/<split>.jsonl: test or devel")(
      "audio", po::value(&audio)->multitoken(),
      "folders holding the FLAC recordings (default: <root>/audio/slurp_real, <root>/slurp_real, and the "
      "slurp_synth ones)");
  if (!parse(argc, argv, d, log)) return 0;
  CW_CHECK(so.split == "test" || so.split == "devel", OptionError, "--split must be test or devel, got '",
           so.split, "' (SLURP's train lists are training data, not a zero-shot test)");
  for (const std::string& dir : audio) {
    CW_CHECK(fs::is_directory(dir), OptionError, "--audio ", dir, ": no such folder");
    so.audio_dirs.push_back(fs::absolute(dir));
  }
  return run_import("slurp", a, log, [&](const data::ImportOptions& o) { return data::import_slurp(o, so); });
}

int import_speech_commands_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  data::SpeechCommandsOptions so;
  po::options_description d("import speech_commands: Speech Commands v2 as the zero-shot keyword test");
  add_common(d, a, "the unpacked speech_commands_v0.02 folder (a folder per word, testing_list.txt)");
  d.add_options()("list", with_default(&so.list),
                  "the rows of the test: testing_list.txt or validation_list.txt");
  if (!parse(argc, argv, d, log)) return 0;
  CW_CHECK(so.list == "testing_list.txt" || so.list == "validation_list.txt", OptionError,
           "--list must be testing_list.txt or validation_list.txt, got '", so.list, "'");
  return run_import("speech_commands", a, log,
                    [&](const data::ImportOptions& o) { return data::import_speech_commands(o, so); });
}

int import_fsc_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  data::FscOptions fo;
  po::options_description d("import fsc: Fluent Speech Commands as a second zero-shot intent test");
  add_common(d, a, "the unpacked fluent_speech_commands_dataset folder (data/, wavs/)");
  d.add_options()("split", with_default(&fo.split), "data/<split>_data.csv: test or valid");
  if (!parse(argc, argv, d, log)) return 0;
  CW_CHECK(fo.split == "test" || fo.split == "valid", OptionError, "--split must be test or valid, got '",
           fo.split, "'");
  return run_import("fsc", a, log, [&](const data::ImportOptions& o) { return data::import_fsc(o, fo); });
}

int import_compose_main(int argc, const char* const* argv, std::ostream& log) {
  std::string out, from, intent = "auto";
  po::options_description d("import compose: assemble the imported parts into a corpus");
  d.add_options()("help,h", "print this help")("out", po::value(&out)->required(),
                                               "the corpus folder written")(
      "from", po::value(&from),
      "the corpus folder whose parts/ are used (default: --out); another folder gets links to its caches")(
      "intent", with_default(&intent), "the intent test: slurp, fsc or auto (slurp when imported, else fsc)");
  if (!parse(argc, argv, d, log)) return 0;
  CW_CHECK(intent == "auto" || intent == "slurp" || intent == "fsc", OptionError,
           "--intent must be slurp, fsc or auto, got '", intent, "'");
  CW_CHECK(from.empty() || fs::is_directory(fs::path(from) / "parts"), OptionError, "--from ", from,
           ": no parts/ folder (import into it first)");
  const data::ComposeResult r =
      data::compose_corpus({fs::absolute(out), from.empty() ? fs::path() : fs::absolute(from), intent});
  print_compose(r, log);
  return 0;
}

}  // namespace cw::train
