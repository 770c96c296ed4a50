// Option table of the image tasks of `train` (see image_options.h). Each option is declared once,
// bound to its ImageTrainOptions field; loss enums are read as strings and parsed by
// losses/contrastive_config.h.
#include "train/image_options.h"

#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "train/device_select.h"
#include "train/loss_options.h"
#include "train/option_default.h"
#include "train/option_reading.h"
#include "train/train_options.h"

namespace cw::train {
namespace po = boost::program_options;

std::string ImageTrainOptions::to_ini() const {
  std::ostringstream s;
  s.precision(10);
  s << "task = " << task << "\n\n[data]\ndataset = " << dataset << "\neval_dataset = " << eval_dataset
    << "\nimage_root = " << image_root << "\nloader_workers = " << loader_workers
    << "\n\n[model]\nimage_preset = " << image_preset << "\nimage_patch = " << image_patch
    << "\nimage_dim = " << image_dim << "\nimage_layers = " << image_layers
    << "\nimage_heads = " << image_heads << "\nimage_mlp = " << image_mlp
    << "\nssl_proj_dim = " << ssl_proj_dim << "\nimage_tower = " << image_tower
    << "\ntext_model = " << text_model << "\ntext_train_layers = " << text_train_layers
    << "\n\n[ssl]\ncrop_min_scale = " << crop_min_scale << "\nbrightness = " << brightness
    << "\ncontrast = " << contrast << "\nnoise_std = " << noise_std << "\ntemperature = " << ssl_temperature
    << "\nknn_k = " << knn_k << "\nknn_memory = " << knn_memory << "\n\n";
  write_loss_ini(s, loss);
  write_loop_ini(s, *this);
  return s.str();
}

ImageTrainOptions ImageTrainOptions::with_absolute_paths() const {
  ImageTrainOptions a = *this;
  for (std::string* p : {&a.image_root, &a.image_tower, &a.text_model}) *p = absolute_path(*p);
  return a;
}

namespace {

void add_image_options(po::options_description& data, po::options_description& model,
                       po::options_description& ssl, ImageTrainOptions& o) {
  data.add_options()("data.dataset", with_default(&o.dataset),
                     "fashion_mnist | digits | shapes, or a corpus written by `import imagenet|webdataset`")(
      "data.eval_dataset", with_default(&o.eval_dataset),
      "image_text: the data set of the zero-shot test split (empty: --data.dataset; e.g. imagenet while "
      "training on webdataset pairs)")(
      "data.image_root", with_default(&o.image_root),
      "folder of the image data sets (empty: .cache/images/default or $CW_IMAGE_DATA)")(
      "data.loader_workers", with_default(&o.loader_workers), "background batch threads");

  model.add_options()("model.image_preset", with_default(&o.image_preset),
                      "image tower preset: micro28 | small28 (image_ssl)")(
      "model.image_patch", with_default(&o.image_patch), "override (0: preset's)")(
      "model.image_dim", with_default(&o.image_dim), "override (0: preset's)")(
      "model.image_layers", with_default(&o.image_layers), "override (0: preset's)")(
      "model.image_heads", with_default(&o.image_heads), "override (0: preset's)")(
      "model.image_mlp", with_default(&o.image_mlp), "override (0: preset's)")(
      "model.ssl_proj_dim", with_default(&o.ssl_proj_dim), "SimCLR projection head width")(
      "model.image_tower", with_default(&o.image_tower),
      "frozen image tower file written by --task image_ssl (image_text)")(
      "model.text_model", with_default(&o.text_model),
      "MiniLM folder the text tower starts from (empty: the installed all-MiniLM-L6-v2)")(
      "model.text_train_layers", with_default(&o.text_train_layers),
      "top MiniLM layers trained (-1: all, embeddings included; 0: projection and scale only)");

  ssl.add_options()("ssl.crop_min_scale", with_default(&o.crop_min_scale),
                    "random resized crop: smallest area fraction")(
      "ssl.brightness", with_default(&o.brightness), "brightness jitter (0: off)")(
      "ssl.contrast", with_default(&o.contrast), "contrast jitter (0: off)")(
      "ssl.noise_std", with_default(&o.noise_std), "Gaussian pixel noise")(
      "ssl.temperature", with_default(&o.ssl_temperature), "fixed temperature of the view-to-view InfoNCE")(
      "ssl.knn_k", with_default(&o.knn_k), "k of the k-NN check")(
      "ssl.knn_memory", with_default(&o.knn_memory), "training images in the k-NN memory (0: all)");
}

// The [data], [model] and [ssl] checks, each error an OptionError naming its option.
void check_image_options(const ImageTrainOptions& o, bool print_only) {
  CW_CHECK(o.task == "image_ssl" || o.task == "image_text", OptionError,
           "--task must be image_ssl or image_text here, got '", o.task, "'");
  // A folder name under --data.image_root: the three generated sets or an imported corpus.
  auto folder_name = [](const std::string& v) {
    return !v.empty() && v != "." && v != ".." && v.find_first_of("/\\ \t") == std::string::npos;
  };
  CW_CHECK(folder_name(o.dataset), OptionError,
           "--data.dataset must name a folder under --data.image_root (fashion_mnist, digits, shapes or an "
           "imported corpus), got '",
           o.dataset, "'");
  CW_CHECK(o.eval_dataset.empty() || folder_name(o.eval_dataset), OptionError,
           "--data.eval_dataset must be empty or name a folder under --data.image_root, got '",
           o.eval_dataset, "'");
  check_count("data.loader_workers", o.loader_workers, 0, kMaxWorkers,
              "0: on the training thread; more threads than any machine has cores");
  CW_CHECK(o.image_preset == "micro28" || o.image_preset == "small28", OptionError,
           "--model.image_preset must be micro28 or small28, got '", o.image_preset, "'");
  check_count("model.image_patch", o.image_patch, 0, 256,
              "pixels; 0 keeps the preset's; larger than any image here");
  check_count("model.image_dim", o.image_dim, 0, kMaxWidth,
              "0 keeps the preset's; one 65536^2 f32 matrix is 16 GiB");
  check_count("model.image_mlp", o.image_mlp, 0, kMaxWidth,
              "0 keeps the preset's; one 65536^2 f32 matrix is 16 GiB");
  check_count("model.image_layers", o.image_layers, 0, kMaxLayers,
              "0 keeps the preset's; deeper than any published encoder");
  check_count("model.image_heads", o.image_heads, 0, kMaxHeads,
              "0 keeps the preset's; more than any published model");
  check_count("model.ssl_proj_dim", o.ssl_proj_dim, 1, kMaxWidth,
              "projection width; one 65536^2 f32 matrix is 16 GiB");
  // --print-config only shows the options: the tower file is needed when the run starts.
  CW_CHECK(o.task != "image_text" || !o.image_tower.empty() || print_only, OptionError,
           "--task image_text needs --model.image_tower (the file written by --task image_ssl)");
  check_count("model.text_train_layers", o.text_train_layers, -1, kMaxLayers,
              "-1: all; deeper than any published encoder");
  CW_CHECK(o.crop_min_scale > 0 && o.crop_min_scale <= 1, OptionError,
           "--ssl.crop_min_scale must be in (0, 1] (an area fraction), got ", o.crop_min_scale);
  CW_CHECK(o.brightness >= 0 && o.brightness < 1 && o.contrast >= 0 && o.contrast < 1 && o.noise_std >= 0 &&
               o.noise_std <= 1,
           OptionError,
           "--ssl.brightness and --ssl.contrast must be in [0, 1), --ssl.noise_std in [0, 1] (pixel units)");
  CW_CHECK(std::isfinite(o.ssl_temperature) && o.ssl_temperature > 0, OptionError,
           "--ssl.temperature must be finite and > 0, got ", o.ssl_temperature);
  check_count("ssl.knn_k", o.knn_k, 1, 10000, "neighbours voting; 10000 is no longer a local vote");
  check_count("ssl.knn_memory", o.knn_memory, 0, kMaxItems, "0: all; more than any data set here");
}

}  // namespace

ParsedImageTrainOptions parse_image_train_options(int argc, const char* const* argv, std::ostream& out) {
  ParsedImageTrainOptions parsed;
  ImageTrainOptions& o = parsed.options;
  LossSpelling ls(o.loss);
  GeneralOptions g;
  int64_t seed = static_cast<int64_t>(o.seed);  // read signed, as in parse_train_options
  po::options_description general("General"), data("Data [data]"), model("Model [model]"),
      ssl("Self-supervised pretraining [ssl] (image_ssl)"), loss("Loss [loss] (image_text)"),
      optim("Optimization [optim]"), run("Run [run]"),
      dist("Data-parallel training [dist] (the image tasks run as one process)"), eval("Evaluation [eval]");
  add_general_options(general, g, o.task, "image_ssl | image_text (speech_text: the speech task)");
  add_image_options(data, model, ssl, o);
  add_loss_options(loss, o.loss, ls);
  add_loop_options(o, seed, optim, run, dist, eval);
  po::options_description all("train --task image_ssl | image_text: the image-text experiment");
  all.add(general).add(data).add(model).add(ssl).add(loss).add(optim).add(run).add(dist).add(eval);

  parse_options(argc, argv, all, g, "see train --task image_text --help");
  if (g.help) {
    out << all << "\n";
    parsed.exit_now = true;
    return parsed;
  }
  read_loss_options(o.loss, ls, ImageTrainOptions().loss, g.command_line);
  check_image_options(o, g.print_config);
  check_loop_options(o, seed);
  if (g.print_config) {
    out << o.to_ini();
    parsed.exit_now = true;
  }
  return parsed;
}

std::string requested_task(int argc, const char* const* argv) {
  std::string task;
  std::vector<std::string> configs;
  po::options_description d;
  d.add_options()("task", po::value(&task))("config,c", po::value(&configs)->composing());
  po::variables_map vm;
  try {
    // Only --task and --config are read here; every other option waits for the strict parser.
    store_command_line(argc, argv, d, vm, true);
    if (vm.count("config")) store_config_files(vm["config"].as<std::vector<std::string>>(), d, vm, true);
    po::notify(vm);
  } catch (const po::error&) {
    return "speech_text";  // the strict parser reports the problem
  } catch (const OptionError&) {
    return "speech_text";
  }
  return task.empty() ? "speech_text" : task;
}

}  // namespace cw::train
