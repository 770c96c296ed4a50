// The image tower file, image embeddings and their cache (see image_tower.h).
#include "train/image_tower.h"

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "train/frozen_text_cache.h"
#include "train/image_options.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

Json config_json(const models::ViTConfig& c) {
  return {{"image_size", c.image_size},
          {"patch_size", c.patch_size},
          {"in_channels", c.in_channels},
          {"hidden_dim", c.hidden_dim},
          {"num_layers", c.num_layers},
          {"num_heads", c.num_heads},
          {"mlp_dim", c.mlp_dim},
          {"embed_dim", c.embed_dim},
          {"representation_size", c.representation_size},
          {"layer_norm_eps", c.layer_norm_eps},
          {"pooling", c.pooling == models::ViTPooling::Mean ? "mean" : "class_token"}};
}

// The tower's configuration from its metadata. Bounds no ViT comes near keep every product of
// sizes below overflow; check_fits then holds the sizes to the tensors the file has.
models::ViTConfig config_from_json(const JsonReader& j) {
  models::ViTConfig c;
  j.expect(j.json().is_object(), "a JSON object");
  c.image_size = j.get_in("image_size", 1, 1 << 12);
  c.patch_size = j.get_in("patch_size", 1, c.image_size);
  c.in_channels = j.get_in("in_channels", 1, 64);
  c.hidden_dim = j.get_in("hidden_dim", 1, 1 << 16);
  c.num_layers = j.get_in("num_layers", 1, 1024);
  c.num_heads = j.get_in("num_heads", 1, c.hidden_dim);
  c.mlp_dim = j.get_in("mlp_dim", 1, 1 << 18);
  c.embed_dim = j.get_in("embed_dim", 1, 1 << 18);
  c.representation_size = j.get_in("representation_size", 0, 1 << 18);
  c.layer_norm_eps = j.get<double>("layer_norm_eps");
  if (!(c.layer_norm_eps >= 0 && c.layer_norm_eps < 1))
    j.at("layer_norm_eps").fail("expected a number in [0, 1), found ", c.layer_norm_eps);
  const std::string pooling = j.get<std::string>("pooling");
  j.at("pooling").expect(pooling == "mean" || pooling == "class_token", "\"mean\" or \"class_token\"");
  c.pooling = pooling == "mean" ? models::ViTPooling::Mean : models::ViTPooling::ClassToken;
  c.dropout = c.attention_dropout = 0.0;
  try {
    c.validate();
  } catch (const ValueError& e) {
    j.fail(e.what());
  }
  return c;
}

// The declared sizes against the tensors present, before a model of those sizes is built: a
// config declaring more layers or wider ones than the file holds would otherwise allocate them
// first (a hostile one, more memory than the machine has, or hours of initialization).
void check_fits(const models::ViTConfig& c, const SafetensorsFile& f, const std::string& where) {
  const auto expect = [&](const std::string& name, const Shape& shape) {
    CW_CHECK(f.contains(name) && f.info(name).shape == shape, ValueError, where, " declares tensor '", name,
             "' of ", shape_str(shape), ", the file has ",
             f.contains(name) ? shape_str(f.info(name).shape) : std::string("none"));
  };
  const int64_t D = c.hidden_dim, P = c.patch_size;
  expect("conv_proj.weight", {D, c.in_channels, P, P});
  expect("encoder.pos_embedding", {1, c.seq_length(), D});
  for (int64_t i = 0; i < c.num_layers; ++i)
    expect("encoder.layers.encoder_layer_" + std::to_string(i) + ".mlp.0.weight", {c.mlp_dim, D});
  if (c.representation_size > 0) expect("heads.pre_logits.weight", {c.representation_size, D});
  expect("heads.head.weight", {c.embed_dim, c.representation_size > 0 ? c.representation_size : D});
}

}  // namespace

models::ViTConfig image_tower_config(const ImageTrainOptions& o, int64_t in_channels) {
  models::ViTConfig c = models::ViTConfig::small28(o.ssl_proj_dim);
  if (o.image_preset == "micro28") {
    c.patch_size = 7;
    c.hidden_dim = 128;
    c.num_layers = 4;
    c.num_heads = 4;
    c.mlp_dim = 256;
  }
  if (o.image_patch) c.patch_size = o.image_patch;
  if (o.image_dim) c.hidden_dim = o.image_dim;
  if (o.image_layers) c.num_layers = o.image_layers;
  if (o.image_heads) c.num_heads = o.image_heads;
  if (o.image_mlp) c.mlp_dim = o.image_mlp;
  c.in_channels = in_channels;
  c.embed_dim = o.ssl_proj_dim;
  // SimCLR's projection head is an MLP; torchvision's heads give Linear -> tanh -> Linear.
  c.representation_size = c.hidden_dim;
  // Mean pooling of the patch tokens: no single token has to carry the image (MAE's global_pool).
  c.pooling = models::ViTPooling::Mean;
  CW_CHECK(c.hidden_dim % c.num_heads == 0, ValueError, "--model.image_dim (", c.hidden_dim,
           ") must be a multiple of --model.image_heads (", c.num_heads, ")");
  try {
    c.validate();
  } catch (const ValueError& e) {
    throw ValueError(std::string("--model.image_*: ") + e.what());
  }
  return c;
}

void save_image_tower(const fs::path& path, const models::VisionTransformer& model,
                      const std::vector<float>& mean, const std::vector<float>& std,
                      const std::string& dataset, int64_t steps) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::map<std::string, Tensor> state = model.state_dict();
  for (auto& [name, t] : state)
    t = t.to(Device::cpu());  // a tower trained on a GPU is saved from the host (a no-op on the CPU)
  save_safetensors(path.string(), state,
                   {{"format", "cw-image-tower-1"},
                    {"vit_config", config_json(model.config).dump()},
                    {"mean", Json(mean).dump()},
                    {"std", Json(std).dump()},
                    {"dataset", dataset},
                    {"steps", std::to_string(steps)}});
}

ImageTower load_image_tower(const fs::path& path) {
  CW_CHECK(fs::exists(path), ValueError, "image tower '", path.string(),
           "' does not exist (write it with train --task image_ssl)");
  const SafetensorsFile f = SafetensorsFile::open(path.string());
  const auto& meta = f.metadata();
  auto field = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    CW_CHECK(it != meta.end(), ValueError, "image tower '", path.string(), "': no metadata '", key,
             "' (not a file written by train --task image_ssl)");
    return it->second;
  };
  CW_CHECK(field("format") == "cw-image-tower-1", ValueError, "image tower '", path.string(), "': format ",
           json_show(Json(field("format"))), " is not cw-image-tower-1");
  // Each metadata entry is a JSON string of its own, parsed with the nesting limit.
  const auto json_field = [&](const char* key) {
    return parse_json(field(key), detail::cat("image tower '", path.string(), "': metadata '", key, "'"));
  };
  const Json cfg_doc = json_field("vit_config"), mean_doc = json_field("mean"), std_doc = json_field("std");
  const std::string where = "image tower '" + path.string() + "': metadata";
  const models::ViTConfig cfg = config_from_json(JsonReader(cfg_doc, where + " 'vit_config'"));
  ImageTower t;
  t.mean = JsonReader(mean_doc, where + " 'mean'").get<std::vector<float>>();
  t.std = JsonReader(std_doc, where + " 'std'").get<std::vector<float>>();
  CW_CHECK(static_cast<int64_t>(t.mean.size()) == cfg.in_channels && t.std.size() == t.mean.size(),
           ValueError, "image tower '", path.string(), "': mean/std have ", t.mean.size(), "/", t.std.size(),
           " entries for ", cfg.in_channels, " channels");
  check_fits(cfg, f, where + " 'vit_config'");
  t.model = std::make_shared<models::VisionTransformer>(cfg);
  const nn::LoadReport rep = t.model->load_state_dict(f.load_all(DType::F32), false);
  CW_CHECK(rep.ok(), ValueError, "image tower '", path.string(),
           "' does not fit its own vit_config: ", rep.str());
  t.model->eval();
  t.model->requires_grad_(false);
  t.path = path;
  t.fingerprint = file_fingerprint(path);
  return t;
}

data::ImageLoaderOptions tower_loader_options(const models::ViTConfig& cfg, const data::ImageDataset& dataset,
                                              const std::vector<float>& mean, const std::vector<float>& std,
                                              int64_t batch_size) {
  CW_CHECK(dataset.channels() == cfg.in_channels, ShapeError, "data set ", dataset.name(), " has ",
           dataset.channels(), " channels, the image tower takes ", cfg.in_channels);
  data::ImageLoaderOptions lo = data::image_eval_options(batch_size);
  if (dataset.height() != cfg.image_size || dataset.width() != cfg.image_size)
    lo.resize_height = lo.resize_width = cfg.image_size;
  lo.mean = mean;
  lo.std = std;
  return lo;
}

Tensor embed_images(const ImageTower& tower, std::shared_ptr<const data::ImageDataset> dataset,
                    int64_t batch_size, int64_t max_rows) {
  NoGradGuard no_grad;
  const data::ImageDataset& d = *dataset;
  data::ImageLoader loader(dataset,
                           tower_loader_options(tower.model->config, d, tower.mean, tower.std, batch_size));
  std::vector<Tensor> parts;
  const int64_t n = max_rows > 0 ? std::min(max_rows, d.size()) : d.size();
  // Images go to the tower's device; the embeddings come back to the host for the metrics.
  const Device device = tower.model->device();
  for (int64_t b = 0; b * batch_size < n; ++b)
    parts.push_back(tower.model->forward_features(Variable(loader.batch(0, b).images.to(device)))
                        .data()
                        .to(Device::cpu()));  // (B, D)
  CW_CHECK(!parts.empty(), ValueError, "embed_images: data set ", d.name(), "/", d.split(), " is empty");
  const Tensor all = parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
  return all.size(0) == n ? all : all.narrow(0, 0, n).contiguous();
}

CachedImageEmbeddings embed_images_cached(const ImageTower& tower,
                                          std::shared_ptr<const data::ImageDataset> dataset,
                                          int64_t batch_size) {
  const auto t0 = Clock::now();
  CachedImageEmbeddings r;
  const uint64_t manifest = file_fingerprint(dataset->dir() / (dataset->split() + ".tsv"));
  const uint64_t key = tower.fingerprint * 1099511628211ull ^ manifest;
  const fs::path dir = tower.path.string() + ".cache";
  r.file = dir / (dataset->name() + "-" + dataset->split() + "-" + hex64(key) + ".safetensors");
  if (fs::exists(r.file)) {
    try {
      Tensor e = SafetensorsFile::open(r.file.string()).load_all(DType::F32).at("embeddings");
      if (e.dim() == 2 && e.size(0) == dataset->size() && e.size(1) == tower.dim()) {
        r.embeddings = e;
        r.from_cache = true;
      }
    } catch (const std::exception&) {
      // unreadable: recompute and replace it below
    }
  }
  if (!r.from_cache) {
    r.embeddings = embed_images(tower, dataset, batch_size);
    fs::create_directories(dir);
    save_safetensors(r.file.string(), {{"embeddings", r.embeddings}},
                     {{"tower", tower.path.filename().string()}});
  }
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace cw::train
