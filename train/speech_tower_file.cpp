// Speech tower files (see speech_tower_file.h).
#include "train/speech_tower_file.h"

#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/safetensors.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "cw-speech-tower-1";

// The shape-defining fields of a Conformer; dropout and eps are training-time choices.
nlohmann::json shape_json(const models::ConformerConfig& c) {
  return {{"n_mels", c.n_mels},   {"d_model", c.d_model},       {"num_heads", c.num_heads},
          {"ffn_dim", c.ffn_dim}, {"num_layers", c.num_layers}, {"conv_kernel_size", c.conv_kernel_size}};
}

bool is_head(const std::string& name) { return name.rfind("proj.", 0) == 0; }

}  // namespace

void save_speech_tower(const fs::path& path, const models::Conformer& tower, const CharVocab& vocab,
                       int64_t steps, double valid_cer) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : tower.state_dict())
    if (!is_head(name)) state[name] = t.device().is_cpu() ? t : t.to(Device::cpu());
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  save_safetensors(path.string(), state,
                   {{"format", kFormat},
                    {"conformer", shape_json(tower.config).dump()},
                    {"vocab", vocab.chars()},
                    {"steps", std::to_string(steps)},
                    {"valid_cer", std::to_string(valid_cer)}});
}

int64_t init_speech_tower(models::Conformer& tower, const fs::path& path) {
  CW_CHECK(fs::exists(path), ValueError, "--model.speech_init: '", path.string(), "' does not exist");
  const SafetensorsFile f = SafetensorsFile::open(path.string());
  const auto& meta = f.metadata();
  const auto format = meta.find("format");
  CW_CHECK(format != meta.end() && format->second == kFormat, ValueError, "--model.speech_init: '",
           path.string(), "' is not a speech tower file (metadata format should be ", kFormat,
           "; write one with train --task speech_asr)");
  const nlohmann::json have = nlohmann::json::parse(meta.at("conformer"));
  const nlohmann::json want = shape_json(tower.config);
  for (const auto& [key, value] : want.items())
    CW_CHECK(have.contains(key) && have.at(key) == value, ValueError, "--model.speech_init: '", path.string(),
             "' holds a Conformer with ", key, " ", have.contains(key) ? have.at(key).dump() : "(none)",
             ", this run's has ", value.dump(), " (set the [model] options to match)");
  const std::map<std::string, Tensor> state = f.load_all(DType::F32);
  const nn::LoadReport rep = tower.load_state_dict(state, false);
  std::vector<std::string> missing;
  for (const std::string& name : rep.missing)
    if (!is_head(name)) missing.push_back(name);
  CW_CHECK(missing.empty() && rep.unexpected.empty() && rep.mismatched.empty(), ValueError,
           "--model.speech_init: '", path.string(), "' does not fit the tower: ", rep.str());
  return static_cast<int64_t>(state.size());
}

}  // namespace cw::train
