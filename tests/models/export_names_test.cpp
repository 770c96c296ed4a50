// The rename tables of models/export_names.h against the upstream libraries' own state dicts
// (fixtures by tools/make_export_fixture.py: torchaudio's Conformer, transformers' ViTModel; the
// tiny Hugging Face Whisper of tools/make_whisper_fixture.py): importing their names gives our
// towers the same outputs, exporting ours gives back their names and values bit for bit, every
// table round-trips, and a name no rule covers is an error naming it.
#include "models/export_names.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "models/conformer.h"
#include "models/vit.h"
#include "models/whisper_encoder.h"
#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using models::from_upstream;
using models::to_upstream;

using test::expect_error;

// The fixture's "state.*" tensors, named without the prefix, and its other tensors by name.
struct Fixture {
  std::map<std::string, Tensor> state, other;
};
Fixture load_fixture(const std::string& file) {
  const SafetensorsFile f = SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/" + file);
  Fixture x;
  for (const std::string& name : f.names()) {
    if (name.rfind("state.", 0) == 0)
      x.state[name.substr(6)] = f.load(name);
    else
      x.other[name] = f.load(name);
  }
  return x;
}

// Same names, dtypes, shapes and values, exactly; the first difference is named.
::testing::AssertionResult identical(const std::map<std::string, Tensor>& a,
                                     const std::map<std::string, Tensor>& b) {
  for (const auto& [name, t] : a)
    if (!b.count(name)) return ::testing::AssertionFailure() << "'" << name << "' only in the first";
  for (const auto& [name, t] : b) {
    if (!a.count(name)) return ::testing::AssertionFailure() << "'" << name << "' only in the second";
    const Tensor& u = a.at(name);
    if (u.dtype() != t.dtype() || u.shape() != t.shape())
      return ::testing::AssertionFailure() << "'" << name << "': " << describe(u) << " vs " << describe(t);
    if (u.to(DType::F64).to_vector<double>() != t.to(DType::F64).to_vector<double>())
      return ::testing::AssertionFailure() << "'" << name << "': values differ";
  }
  return ::testing::AssertionSuccess();
}

std::map<std::string, Tensor> as_f64(std::map<std::string, Tensor> m) {
  for (auto& [name, t] : m)
    if (t.dtype() == DType::F32) t = t.to(DType::F64);
  return m;
}

models::ConformerConfig fixture_conformer_config() {
  models::ConformerConfig c = models::ConformerConfig::tiny();  // d 8, 2 heads, ffn 16, 2 layers, kernel 7
  c.dropout = 0.0;
  return c;
}

TEST(ExportNames, TorchaudioConformerLoadsIntoOurBlocksAndExportsBackBitForBit) {
  const Fixture fx = load_fixture("export_torchaudio_conformer.safetensors");
  const std::map<std::string, Tensor> ours = from_upstream(models::torchaudio_conformer_names(), fx.state);
  // 2 layers x (in_proj_weight, in_proj_bias): each becomes query, key and value.
  EXPECT_EQ(ours.size(), fx.state.size() + 2 * 2 * 2);

  // Values: our blocks in f64 on the fixture's weights compute torchaudio's output.
  models::Conformer f64(fixture_conformer_config(), DType::F64);
  const nn::LoadReport rep =
      f64.layers->load_state_dict(as_f64(models::with_prefix_removed(ours, "layers.", "test")), true);
  ASSERT_TRUE(rep.ok()) << rep.str();
  f64.eval();
  NoGradGuard no_grad;
  Variable h(fx.other.at("x").to(DType::F64));
  for (auto& layer : *f64.layers) h = layer->forward(h);
  EXPECT_TRUE(test::all_close(h.data(), fx.other.at("y"), 1e-10, 1e-10));

  // Names and values: exporting our f32 tower gives torchaudio's state dict back exactly.
  models::Conformer f32(fixture_conformer_config());
  ASSERT_TRUE(f32.layers->load_state_dict(models::with_prefix_removed(ours, "layers.", "test"), true).ok());
  EXPECT_TRUE(identical(to_upstream(models::torchaudio_conformer_names(), f32.state_dict()), fx.state));
}

TEST(ExportNames, HfViTLoadsIntoOurViTAndExportsBackBitForBit) {
  const Fixture fx = load_fixture("export_hf_vit.safetensors");
  models::ViTConfig c =
      models::ViTConfig::tiny();  // image 8, patch 4, 2 channels, dim 8, 2 layers, 2 heads, MLP 16
  const std::map<std::string, Tensor> ours = from_upstream(models::hf_vit_names(), fx.state);

  models::VisionTransformer f64(c, DType::F64);
  const nn::LoadReport rep = f64.load_state_dict(as_f64(ours), false);
  ASSERT_TRUE(rep.unexpected.empty() && rep.mismatched.empty()) << rep.str();
  for (const std::string& name : rep.missing)
    EXPECT_EQ(name.rfind("heads.", 0), 0u) << name;  // only our SSL head
  f64.eval();
  NoGradGuard no_grad;
  const Variable tokens = f64.forward_tokens(Variable(fx.other.at("x").to(DType::F64)));
  EXPECT_TRUE(test::all_close(tokens.data(), fx.other.at("y"), 1e-10, 1e-10));

  models::VisionTransformer f32(c);
  ASSERT_TRUE(f32.load_state_dict(ours, false).unexpected.empty());
  EXPECT_TRUE(identical(to_upstream(models::hf_vit_names(), f32.state_dict()), fx.state));
}

TEST(ExportNames, HfWhisperEncoderNamesAreTheCheckpointsOwn) {
  const fs::path dir = fs::path(CW_FIXTURE_DIR) / "whisper_hf_tiny";
  const models::WhisperWeights w = models::read_whisper_hf(dir);
  models::WhisperEncoder encoder(w.config);
  ASSERT_TRUE(encoder.load_state_dict(w.encoder, true).ok());
  // The file's encoder.* tensors, as transformers saved them.
  const SafetensorsFile f = SafetensorsFile::open((dir / "model.safetensors").string());
  std::map<std::string, Tensor> theirs;
  for (const std::string& name : f.names())
    if (name.rfind("encoder.", 0) == 0) theirs[name] = f.load(name);
  EXPECT_TRUE(identical(to_upstream(models::hf_whisper_encoder_names(), encoder.state_dict()), theirs));
  // A whole WhisperModel's decoder is skipped on import, not an error.
  std::map<std::string, Tensor> whole;
  for (const std::string& name : f.names()) whole[name] = f.load(name);
  EXPECT_TRUE(identical(from_upstream(models::hf_whisper_encoder_names(), whole), encoder.state_dict()));
}

TEST(ExportNames, EveryTableRoundTrips) {
  manual_seed(5);
  models::Conformer conformer(models::ConformerConfig::tiny());
  const auto state = conformer.state_dict();
  std::map<std::string, Tensor> back = from_upstream(
      models::torchaudio_conformer_names(), to_upstream(models::torchaudio_conformer_names(), state));
  for (auto& [name, t] : from_upstream(models::espnet_subsampling_names(),
                                       to_upstream(models::espnet_subsampling_names(), state)))
    back[name] = t;
  for (const auto& [name, t] : state)
    if (name.rfind("proj.", 0) == 0) back[name] = t;  // the head travels in heads.safetensors
  EXPECT_TRUE(identical(back, state));

  models::VisionTransformer vit(models::ViTConfig::tiny());
  std::map<std::string, Tensor> vit_state = vit.state_dict();
  const std::map<std::string, Tensor> vit_back =
      from_upstream(models::hf_vit_names(), to_upstream(models::hf_vit_names(), vit_state));
  std::erase_if(vit_state, [](const auto& kv) { return kv.first.rfind("heads.", 0) == 0; });
  EXPECT_TRUE(identical(vit_back, vit_state));
}

TEST(ExportNames, ANameNoRuleCoversIsAnErrorNamingIt) {
  const std::map<std::string, Tensor> stray = {{"layers.0.ffn1.extra.weight", ops::zeros({2})}};
  expect_error<ValueError>([&] { to_upstream(models::torchaudio_conformer_names(), stray); },
                           {"torchaudio.models.Conformer", "layers.0.ffn1.extra.weight", "(2,)"});
  // A packed group with a member missing names the missing tensor.
  const std::map<std::string, Tensor> partial = {{"layers.3.self_attn.query.weight", ops::zeros({2, 2})},
                                                 {"layers.3.self_attn.value.weight", ops::zeros({2, 2})}};
  expect_error<ValueError>([&] { to_upstream(models::torchaudio_conformer_names(), partial); },
                           {"layers.3.self_attn.key.weight", "missing"});
  // A packed tensor that does not split evenly.
  const std::map<std::string, Tensor> odd = {
      {"encoder.layers.encoder_layer_0.self_attention.in_proj_bias", ops::zeros({7})}};
  expect_error<ValueError>([&] { to_upstream(models::hf_vit_names(), odd); },
                           {"in_proj_bias", "3 equal parts"});
}

}  // namespace
}  // namespace cw
