// Speech tower files (see speech_tower_file.h).
#include "train/speech_tower_file.h"

#include <map>

#include "core/error.h"
#include "core/json_read.h"
#include "core/safetensors.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "cw-speech-tower-1";

// The shape-defining fields of a Conformer; dropout and eps are training-time choices.
Json shape_json(const models::ConformerConfig& c) {
  return {{"n_mels", c.n_mels},   {"d_model", c.d_model},       {"num_heads", c.num_heads},
          {"ffn_dim", c.ffn_dim}, {"num_layers", c.num_layers}, {"conv_kernel_size", c.conv_kernel_size}};
}

bool is_head(const std::string& name) { return name.rfind("proj.", 0) == 0; }

}  // namespace

void save_speech_tower(const fs::path& path, const models::Conformer& tower, const CharVocab& vocab,
                       int64_t steps, double valid_cer) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : tower.state_dict())
    if (!is_head(name)) state[name] = t.to(Device::cpu());  // no copy when already there
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
  const auto conformer = meta.find("conformer");
  CW_CHECK(conformer != meta.end(), ValueError, "--model.speech_init: '", path.string(),
           "' has no metadata 'conformer' (the tower's shape)");
  const std::string where = "--model.speech_init: '" + path.string() + "': metadata 'conformer'";
  const Json have_doc = parse_json(conformer->second, where);
  const JsonReader have(have_doc, where);
  // The tower is built from this run's options (so a mismatch is the options' ValueError); the
  // file must declare the same shape, field by field, and hold tensors of it (load_state_dict).
  const Json want = shape_json(tower.config);
  for (const auto& [key, value] : want.items()) {
    const int64_t declared = have.get<int64_t>(key);
    CW_CHECK(declared == value.get<int64_t>(), ValueError, "--model.speech_init: '", path.string(),
             "' holds a Conformer with ", key, " ", declared, ", this run's has ", value.get<int64_t>(),
             " (set the [model] options to match)");
  }
  // Every tensor of the file is one of the tower's, of its shape, before any byte is read.
  const std::map<std::string, Tensor> own = tower.state_dict();
  for (const std::string& name : f.names()) {
    const auto it = own.find(name);
    CW_CHECK(it != own.end() && it->second.shape() == f.info(name).shape, ValueError,
             "--model.speech_init: '", path.string(), "': tensor '", name, "' ",
             it == own.end()
                 ? std::string("is not one of the tower's")
                 : "is " + shape_str(f.info(name).shape) + ", the tower's " + shape_str(it->second.shape()));
  }
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
