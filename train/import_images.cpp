// `import imagenet` and `import webdataset`; see import_images.h. Both write a corpus folder that
// `train --task image_ssl|image_text` reads with --data.image_root <parent> --data.dataset <folder>
// (and --data.eval_dataset for a separate zero-shot set); docs/REPRODUCE_IMAGES.md has the recipe.
#include "train/import_images.h"

#include <boost/program_options.hpp>
#include <filesystem>
#include <memory>
#include <ostream>
#include <thread>

#include "core/error.h"
#include "data/import_image_folder.h"
#include "data/import_image_webdataset.h"
#include "train/option_default.h"
#include "train/option_reading.h"
#include "train/progress.h"

namespace cw::train {
namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace {

struct CommonArgs {
  std::string out;
  int64_t size = 64, resize = 0;
  int64_t jobs = std::max(1u, std::thread::hardware_concurrency());
};

void add_common(po::options_description& d, CommonArgs& a) {
  d.add_options()("help,h", "print this help")(
      "out", po::value(&a.out)->required(),
      "the corpus folder (dataset.json, <split>.tsv, <split>-images-idx4-ubyte, import.json); train reads it "
      "with --data.image_root <its parent> --data.dataset <its name>")(
      "size", with_default(&a.size),
      "stored images are size x size x 3 (CenterCrop); the loader holds a split's pixels in memory")(
      "resize", with_default(&a.resize),
      "Resize of the shorter side before the crop (0: --size, CLIP's; 73 for 64 is ImageNet's 256 -> 224 "
      "ratio)")("jobs", with_default(&a.jobs), "chunks (class folders, shards) decoded in parallel");
}

bool parse(int argc, const char* const* argv, const po::options_description& d, std::ostream& log,
           const char* hint) {
  po::variables_map vm;
  store_command_line(argc, argv, d, vm, false, hint);
  if (vm.count("help")) {
    log << d << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

// The options both importers share, checked; progress lines on the binary's log (progress.h).
void fill(data::ImageImportOptions& o, const CommonArgs& a, const std::string& what) {
  check_count("size", a.size, 1, 4096, "pixels");
  CW_CHECK(a.resize == 0 || (a.resize >= a.size && a.resize <= 8192), OptionError,
           "--resize must be 0 or in [--size, 8192], got ", a.resize);
  check_count("jobs", a.jobs, 1, kMaxWorkers, "threads");
  o.image_size = a.size;
  o.resize = a.resize;
  o.jobs = static_cast<int>(a.jobs);
  auto meter = std::make_shared<std::unique_ptr<ProgressMeter>>();
  auto last = std::make_shared<int64_t>(0);
  o.progress = [meter, last, what](int64_t done, int64_t total) {
    if (!*meter) {  // the first call reports the chunks reused from an interrupted run
      *meter = std::make_unique<ProgressMeter>(what, "chunks", total);
      *last = 0;
    }
    (*meter)->add(done - *last);
    *last = done;
  };
}

int finish(const data::ImageImportSummary& s, const fs::path& out, std::ostream& log) {
  log << s.text() << s.importer << ": " << (s.up_to_date ? "corpus in " : "corpus written to ")
      << fs::absolute(out).string() << "\n";
  return 0;
}

}  // namespace

int import_imagenet_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  std::string root, classes, name = "imagenet";
  po::options_description d("import imagenet: ImageNet-style class folders as a zero-shot evaluation corpus");
  d.add_options()("root", po::value(&root)->required(),
                  "the folder holding train/ and val/ class folders (n01440764/...), or the class folders "
                  "themselves (then one split, test)")(
      "classes", with_default(&classes),
      "class names: lines '<folder> <name>' or one name per line in sorted folder order (default: "
      "LOC_synset_mapping.txt in --root or above it, else the folder names)")(
      "name", with_default(&name), "the corpus name in dataset.json");
  add_common(d, a);
  if (!parse(argc, argv, d, log, "root")) return 0;
  CW_CHECK(fs::is_directory(root), OptionError, "--root ", root, ": no such folder");
  CW_CHECK(classes.empty() || fs::is_regular_file(classes), OptionError, "--classes ", classes,
           ": no such file");
  data::ImageFolderImportOptions o;
  fill(o, a, "imagenet: class folders");
  o.classes_file = classes;
  o.name = name;
  log << "imagenet: reading " << fs::absolute(root).string() << " (" << o.jobs << " threads, images "
      << o.image_size << " x " << o.image_size << ")\n";
  return finish(data::import_image_folder(fs::absolute(root), fs::absolute(a.out), o), a.out, log);
}

int import_webdataset_main(int argc, const char* const* argv, std::ostream& log) {
  CommonArgs a;
  std::vector<std::string> shards;
  std::string split = "train", name = "webdataset";
  po::options_description d(
      "import webdataset: WebDataset shards of (jpg, txt) pairs as an image-text corpus");
  d.add_options()("shards", po::value(&shards)->multitoken()->required(),
                  "shard files, brace patterns allowed: 'DIR/{00000..00331}.tar' (quote it: the shell must "
                  "not expand it); .tar or .tar.gz")("split", with_default(&split),
                                                     "the split the shards become")(
      "name", with_default(&name), "the corpus name in dataset.json (e.g. cc3m)");
  add_common(d, a);
  if (!parse(argc, argv, d, log, "shards")) return 0;
  CW_CHECK(!split.empty() && split.find_first_of("/\\ \t") == std::string::npos, OptionError,
           "--split must be a plain name, got '", split, "'");
  data::WebDatasetImportOptions o;
  fill(o, a, "webdataset: shards");
  o.split = split;
  o.name = name;
  log << "webdataset: " << shards.size() << " shard pattern(s) (" << o.jobs << " threads, images "
      << o.image_size << " x " << o.image_size << ")\n";
  return finish(data::import_webdataset(shards, fs::absolute(a.out), o), a.out, log);
}

}  // namespace cw::train
