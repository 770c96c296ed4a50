// The image tower file, image embeddings and their cache (see image_tower.h).
#include "train/image_tower.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "train/frozen_text_cache.h"
#include "train/image_options.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

nlohmann::json config_json(const models::ViTConfig& c) {
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

models::ViTConfig config_from_json(const nlohmann::json& j) {
  models::ViTConfig c;
  c.image_size = j.at("image_size").get<int64_t>();
  c.patch_size = j.at("patch_size").get<int64_t>();
  c.in_channels = j.at("in_channels").get<int64_t>();
  c.hidden_dim = j.at("hidden_dim").get<int64_t>();
  c.num_layers = j.at("num_layers").get<int64_t>();
  c.num_heads = j.at("num_heads").get<int64_t>();
  c.mlp_dim = j.at("mlp_dim").get<int64_t>();
  c.embed_dim = j.at("embed_dim").get<int64_t>();
  c.representation_size = j.at("representation_size").get<int64_t>();
  c.layer_norm_eps = j.at("layer_norm_eps").get<double>();
  const std::string pooling = j.at("pooling").get<std::string>();
  CW_CHECK(pooling == "mean" || pooling == "class_token", ValueError, "pooling '", pooling, "' is unknown");
  c.pooling = pooling == "mean" ? models::ViTPooling::Mean : models::ViTPooling::ClassToken;
  c.dropout = c.attention_dropout = 0.0;
  return c;
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
    if (!t.device().is_cpu()) t = t.to(Device::cpu());  // a tower trained on a GPU is saved from the host
  save_safetensors(path.string(), state,
                   {{"format", "cw-image-tower-1"},
                    {"vit_config", config_json(model.config).dump()},
                    {"mean", nlohmann::json(mean).dump()},
                    {"std", nlohmann::json(std).dump()},
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
  CW_CHECK(field("format") == "cw-image-tower-1", ValueError, "image tower '", path.string(), "': format '",
           field("format"), "' is not cw-image-tower-1");
  ImageTower t;
  models::ViTConfig cfg;
  try {
    cfg = config_from_json(nlohmann::json::parse(field("vit_config")));
    t.mean = nlohmann::json::parse(field("mean")).get<std::vector<float>>();
    t.std = nlohmann::json::parse(field("std")).get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(detail::cat("image tower '", path.string(), "': malformed metadata: ", e.what()));
  }
  CW_CHECK(static_cast<int64_t>(t.mean.size()) == cfg.in_channels && t.std.size() == t.mean.size(),
           ValueError, "image tower '", path.string(), "': mean/std have ", t.mean.size(), "/", t.std.size(),
           " entries for ", cfg.in_channels, " channels");
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

ImageLoaderOptions tower_loader_options(const models::ViTConfig& cfg, const ImageDataset& dataset,
                                        const std::vector<float>& mean, const std::vector<float>& std,
                                        int64_t batch_size) {
  CW_CHECK(dataset.channels() == cfg.in_channels, ShapeError, "data set ", dataset.name(), " has ",
           dataset.channels(), " channels, the image tower takes ", cfg.in_channels);
  ImageLoaderOptions lo = image_eval_options(batch_size);
  if (dataset.height() != cfg.image_size || dataset.width() != cfg.image_size)
    lo.resize_height = lo.resize_width = cfg.image_size;
  lo.mean = mean;
  lo.std = std;
  return lo;
}

Tensor embed_images(const ImageTower& tower, std::shared_ptr<const ImageDataset> dataset, int64_t batch_size,
                    int64_t max_rows) {
  NoGradGuard no_grad;
  const ImageDataset& d = *dataset;
  ImageLoader loader(dataset,
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
                                          std::shared_ptr<const ImageDataset> dataset, int64_t batch_size) {
  const auto t0 = std::chrono::steady_clock::now();
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
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace cw::train
