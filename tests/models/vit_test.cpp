// The ViT image tower: a tiny model against torchvision 0.14's VisionTransformer with the same
// weights (tests/fixtures/vit_reference.safetensors, made by tools/make_vit_fixture.py): output,
// input gradient and every parameter gradient, in f64 and f32, class-token and mean pooling;
// preset names and shapes against torchvision's vit_b_16 / vit_l_16 state dicts; an f64
// gradient check of a whole tiny ViT; checkpoint loading and bad input.
#include "models/vit.h"

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "autograd/functions.h"
#include "core/safetensors.h"
#include "support/check.h"

namespace cw {
namespace {

using models::VisionTransformer;
using models::ViTConfig;
using models::ViTPooling;
using test::all_close;

const SafetensorsFile& fixture() {
  static const SafetensorsFile f =
      SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/vit_reference.safetensors");
  return f;
}

ViTConfig fixture_config() {
  const auto j = nlohmann::json::parse(fixture().metadata().at("config"));
  ViTConfig c;
  c.image_size = j.at("image_size");
  c.patch_size = j.at("patch_size");
  c.in_channels = 3;  // torchvision's conv_proj always takes RGB
  c.num_layers = j.at("num_layers");
  c.num_heads = j.at("num_heads");
  c.hidden_dim = j.at("hidden_dim");
  c.mlp_dim = j.at("mlp_dim");
  c.embed_dim = j.at("num_classes");
  return c;
}

// The fixture's parameters under their torchvision names (which are ours).
std::map<std::string, Tensor> fixture_params(DType dtype) {
  std::map<std::string, Tensor> state;
  for (const auto& name : fixture().names())
    if (name.rfind("param.", 0) == 0) state[name.substr(6)] = fixture().load(name, dtype);
  return state;
}

// Output, dx and (for the class-token case) every parameter gradient of loss = sum(y * r).
void check_against_torchvision(DType dtype, ViTPooling pooling, double atol, double rtol) {
  ViTConfig c = fixture_config();
  c.pooling = pooling;
  VisionTransformer model(c, dtype);
  model.eval();
  model.load_state_dict(fixture_params(dtype));
  const std::string k = pooling == ViTPooling::ClassToken ? "cls" : "mean";
  const Variable x(fixture().load("x", dtype), /*requires_grad=*/true);
  const Variable y = model.forward(x);
  EXPECT_TRUE(all_close(y.data(), fixture().load(k + ".y", dtype), atol, rtol)) << "y";
  ag::sum(y * Variable(fixture().load("r", dtype))).backward();
  EXPECT_TRUE(all_close(x.grad(), fixture().load(k + ".dx", dtype), atol, rtol)) << "dx";
  if (pooling != ViTPooling::ClassToken) return;
  int checked = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_TRUE(all_close(p.grad(), fixture().load("cls.grad." + name, dtype), atol, rtol))
        << "grad of " << name;
    ++checked;
  }
  EXPECT_EQ(checked, 4 + 12 * c.num_layers + 4);  // every tensor torchvision has, all checked
}

// f64 on both sides: they differ by summation order and libm's last bits (worst seen 2.3e-14, on
// the class-token gradient of magnitude 0.47); a wrong term would be O(0.1).
TEST(ViTReference, ClassTokenOutputAndGradientsMatchTorchvisionF64) {
  check_against_torchvision(DType::F64, ViTPooling::ClassToken, 1e-10, 1e-10);
}

TEST(ViTReference, MeanPoolingMatchesTorchvisionModulesF64) {
  check_against_torchvision(DType::F64, ViTPooling::Mean, 1e-10, 1e-10);
}

// f32 weights and inputs are the fixture's exactly (they were rounded to f32 there), so the
// difference from the f64 reference is f32 rounding through 2 layers: worst seen 3.0e-5 absolute
// (on a class-token gradient of 7.71) and 1.8e-5 on one of 0.47. torchvision itself, run in f32 on
// the same weights, is off its f64 result by up to 1.5e-5 (measured when making the fixture).
TEST(ViTReference, ClassTokenOutputAndGradientsMatchTorchvisionF32) {
  check_against_torchvision(DType::F32, ViTPooling::ClassToken, 5e-5, 1e-5);
}

TEST(ViTReference, TokensMatchTorchvisionEncoderOutput) {
  VisionTransformer model(fixture_config(), DType::F64);
  model.eval();
  model.load_state_dict(fixture_params(DType::F64));
  const Variable tokens = model.forward_tokens(Variable(fixture().load("x", DType::F64)));
  EXPECT_TRUE(all_close(tokens.data(), fixture().load("tokens", DType::F64), 1e-10, 1e-10));
}

// ---------------------------------------------------------------- presets and names

// Every name and shape of torchvision's vit_b_16() / vit_l_16() state dict (stored by the fixture
// script, not the weights) against the preset. Building ViT-L costs 1.2 GB, so the module is
// built with one layer and every other layer's names are checked against layer 0's.
void check_preset_names(const ViTConfig& preset, const std::string& key) {
  const auto theirs = nlohmann::json::parse(fixture().metadata().at(key));
  int64_t their_count = 0;
  for (const auto& [name, shape] : theirs.items()) {
    int64_t n = 1;
    for (const auto& d : shape) n *= d.get<int64_t>();
    their_count += n;
  }
  EXPECT_EQ(preset.num_parameters(), their_count) << key;

  ViTConfig one_layer = preset;
  one_layer.num_layers = 1;
  const VisionTransformer model(one_layer);
  std::set<std::string> expected_names;
  for (const auto& [name, t] : model.state_dict()) {
    const std::string layer0 = "encoder.layers.encoder_layer_0.";
    const bool per_layer = name.rfind(layer0, 0) == 0;
    for (int64_t i = 0; i < (per_layer ? preset.num_layers : 1); ++i) {
      const std::string their_name =
          per_layer ? "encoder.layers.encoder_layer_" + std::to_string(i) + "." + name.substr(layer0.size())
                    : name;
      expected_names.insert(their_name);
      ASSERT_TRUE(theirs.contains(their_name)) << key << ": torchvision has no " << their_name;
      EXPECT_EQ(theirs.at(their_name).get<std::vector<int64_t>>(), t.shape()) << key << ": " << their_name;
    }
  }
  EXPECT_EQ(expected_names.size(), theirs.size()) << key << ": torchvision has tensors the preset lacks";
}

TEST(ViTPresets, B16NamesAndShapesAreTorchvisionVitB16) {
  EXPECT_EQ(ViTConfig::b16().num_parameters(), 86567656);  // torchvision's documented count
  check_preset_names(ViTConfig::b16(), "b16");
}

TEST(ViTPresets, L16NamesAndShapesAreTorchvisionVitL16) {
  EXPECT_EQ(ViTConfig::l16().num_parameters(), 304326632);
  check_preset_names(ViTConfig::l16(), "l16");
}

TEST(ViTPresets, ParameterCountsOfBuiltModels) {
  for (ViTConfig c : {ViTConfig::tiny(), fixture_config()}) {
    EXPECT_EQ(VisionTransformer(c).num_parameters(), c.num_parameters());
    c.representation_size = 5;  // torchvision's pre_logits
    EXPECT_EQ(VisionTransformer(c).num_parameters(), c.num_parameters());
  }
  const VisionTransformer m(ViTConfig::small28());
  EXPECT_EQ(m.num_parameters(), 2756736);
  EXPECT_EQ(ViTConfig::small28().num_parameters(), 2756736);
  EXPECT_EQ(m.forward(Variable(ops::zeros({3, 1, 28, 28}))).shape(), (Shape{3, 384}));
  EXPECT_EQ(m.forward_tokens(Variable(ops::zeros({3, 1, 28, 28}))).shape(), (Shape{3, 50, 192}));
}

// ---------------------------------------------------------------- gradient check

// The whole tiny ViT in f64, loss = sum(y * r): the gradient of every parameter (1.6k entries,
// each perturbed both ways) and of the input images, with mean pooling and a pre_logits + tanh
// head so that both optional paths are covered too (the class-token path is covered by the
// torchvision fixture above).
TEST(ViTGradcheck, WholeTinyModelF64) {
  ViTConfig c = ViTConfig::tiny();
  c.pooling = ViTPooling::Mean;
  c.representation_size = 5;
  VisionTransformer model(c, DType::F64);
  model.eval();
  // Random, non-default values everywhere (LayerNorm ones, zero biases and class token hide errors).
  uint64_t seed = 11;
  for (auto& [name, t] : model.state_dict()) t.copy_(test::rand64(t.shape(), -0.6, 0.6, seed++));
  const Tensor x = test::rand64({2, 2, 8, 8}, -1, 1, 3);
  const Variable r(test::rand64({2, 6}, -1, 1, 4));
  EXPECT_TRUE(test::gradcheck_params([&] { return ag::sum(model.forward(Variable(x)) * r); },
                                     model.parameters(), 1e-6, 1e-7, 1e-5));
  EXPECT_TRUE(test::gradcheck([&](const std::vector<Variable>& in) { return model.forward(in[0]); }, {x},
                              1e-6, 1e-7, 1e-5));
}

// ---------------------------------------------------------------- dropout

TEST(ViTDropout, ActiveInTrainingOnlyAndReproducibleInEval) {
  ViTConfig c = ViTConfig::tiny();
  c.dropout = 0.3;
  c.attention_dropout = 0.3;
  VisionTransformer model(c, DType::F64);
  const Variable x(test::rand64({2, 2, 8, 8}));
  model.eval();
  const Tensor a = model.forward(x).data(), b = model.forward(x).data();
  EXPECT_TRUE(all_close(a, b, 0, 0));
  model.train();
  const Tensor t1 = model.forward(x).data(), t2 = model.forward(x).data();
  EXPECT_FALSE(all_close(t1, a, 1e-9, 0));
  EXPECT_FALSE(all_close(t1, t2, 1e-9, 0));
}

// ---------------------------------------------------------------- bad input

template <class E, class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "no error";
}

TEST(ViTBadInput, WrongImageSizeChannelsOrRankNameTheShape) {
  const VisionTransformer model(ViTConfig::tiny());  // (batch, 2, 8, 8)
  for (const Shape& bad : {Shape{2, 3, 8, 8}, Shape{2, 2, 12, 12}, Shape{2, 2, 8, 4}, Shape{2, 8, 8}}) {
    const std::string msg = error_of<ShapeError>([&] { model.forward(Variable(ops::zeros(bad))); });
    EXPECT_NE(msg.find(shape_str(bad)), std::string::npos) << msg;
    EXPECT_NE(msg.find("(batch, 2, 8, 8)"), std::string::npos) << msg;
  }
  EXPECT_NE(error_of<ShapeError>([&] {
              model.forward(Variable(ops::zeros({0, 2, 8, 8})));
            }).find("empty batch"),
            std::string::npos);
}

TEST(ViTBadInput, BadConfigsNameTheField) {
  ViTConfig c = ViTConfig::tiny();
  c.image_size = 10;  // patch 4
  EXPECT_NE(error_of<ValueError>([&] {
              VisionTransformer m(c);
            }).find("image_size 10 is not divisible by patch_size 4"),
            std::string::npos);
  c = ViTConfig::tiny();
  c.num_heads = 3;  // dim 8
  EXPECT_NE(error_of<ValueError>([&] {
              VisionTransformer m(c);
            }).find("hidden_dim 8 is not divisible by num_heads 3"),
            std::string::npos);
}

// ---------------------------------------------------------------- checkpoints

class ViTCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cw_vit_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ViTCheckpoint, TorchvisionNamesOldAndNewLoadAndReproduceTheOutput) {
  // The fixture's weights as a checkpoint file, once with the current names and once with the
  // pre-0.14 MLP names (mlp.linear_1 / mlp.linear_2) of the released torchvision weights.
  std::map<std::string, Tensor> state = fixture_params(DType::F32), legacy;
  for (const auto& [name, t] : state) {
    std::string k = name;
    for (const auto& [a, b] :
         {std::pair{".mlp.0.", ".mlp.linear_1."}, std::pair{".mlp.3.", ".mlp.linear_2."}}) {
      const size_t at = k.find(a);
      if (at != std::string::npos) k.replace(at, std::string(a).size(), b);
    }
    legacy[k] = t;
  }
  ASSERT_TRUE(legacy.count("encoder.layers.encoder_layer_1.mlp.linear_2.bias"));
  save_safetensors((dir_ / "new.safetensors").string(), state);
  save_safetensors((dir_ / "old.safetensors").string(), legacy);
  for (const char* file : {"new.safetensors", "old.safetensors"}) {
    VisionTransformer model(fixture_config(), DType::F64);
    model.eval();
    EXPECT_TRUE(models::load_vit_safetensors(model, dir_ / file).ok()) << file;
    const Variable y = model.forward(Variable(fixture().load("x", DType::F64)));
    EXPECT_TRUE(all_close(y.data(), fixture().load("cls.y", DType::F64), 2e-5, 1e-5)) << file;
  }
}

TEST_F(ViTCheckpoint, ForeignHeadIsSkippedOnRequest) {
  // A 10-class checkpoint into a model with a 7-d projection: wrong shape unless heads are skipped.
  save_safetensors((dir_ / "w.safetensors").string(), fixture_params(DType::F32));
  ViTConfig c = fixture_config();
  c.embed_dim = 7;
  VisionTransformer model(c);
  const Tensor head_before = model.heads->head->weight.data().clone();
  const std::string msg =
      error_of<ValueError>([&] { models::load_vit_safetensors(model, dir_ / "w.safetensors"); });
  EXPECT_NE(msg.find("w.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("heads.head.weight: checkpoint (10, 32) vs module (7, 32)"), std::string::npos) << msg;
  EXPECT_TRUE(models::load_vit_safetensors(model, dir_ / "w.safetensors", true, /*skip_heads=*/true).ok());
  EXPECT_TRUE(all_close(model.heads->head->weight.data(), head_before, 0, 0));
  EXPECT_TRUE(all_close(model.encoder->ln->weight.data(), fixture().load("param.encoder.ln.weight"), 0, 0));
}

TEST_F(ViTCheckpoint, MissingAndWrongShapedTensorsAreNamed) {
  std::map<std::string, Tensor> state = fixture_params(DType::F32);
  state.erase("encoder.layers.encoder_layer_1.ln_2.bias");
  state["encoder.pos_embedding"] = ops::zeros({1, 5, 32});  // positions of another image size
  save_safetensors((dir_ / "bad.safetensors").string(), state);
  VisionTransformer model(fixture_config());
  const std::string msg =
      error_of<ValueError>([&] { models::load_vit_safetensors(model, dir_ / "bad.safetensors"); });
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("encoder.layers.encoder_layer_1.ln_2.bias (32,)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("encoder.pos_embedding: checkpoint (1, 5, 32) vs module (1, 17, 32)"), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace cw
