// Reproducers (issue 24) for untrusted tower files: an image tower whose vit_config declares a
// huge layer count gave no answer in 60 s (the model was built before the weights were looked
// at); metadata JSON nested 300,000 deep or of the wrong shape crashed or threw nlohmann's text
// without the file. Each is one error naming the file, the metadata entry and the key or tensor,
// raised before anything of a declared size is built.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "train/image_tower.h"
#include "train/speech_tower_file.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

class UntrustedTowerFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::temp_directory_path() / ("cw_untrusted_tower_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  template <class Fn>
  static std::string error_of(Fn&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  static void expect_has(const std::string& m, const std::vector<std::string>& parts) {
    for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << m << "\n  lacks: " << p;
  }

  fs::path dir_;
};

// A real tiny tower file, then copies of it with one metadata entry replaced.
TEST_F(UntrustedTowerFile, ImageTowerMetadataIsCheckedBeforeBuilding) {
  const fs::path good = dir_ / "tower.safetensors";
  train::save_image_tower(good, models::VisionTransformer(models::ViTConfig::tiny()), {0.5f, 0.5f},
                          {0.25f, 0.25f}, "tiny", 1);
  const SafetensorsFile f = SafetensorsFile::open(good.string());
  const auto tensors = f.load_all();
  const Json config = Json::parse(f.metadata().at("vit_config"));
  const fs::path bad = dir_ / "bad.safetensors";
  auto load_with = [&](const std::string& key, const std::string& value) {
    auto meta = f.metadata();
    meta[key] = value;
    save_safetensors(bad.string(), tensors, meta);
    return error_of([&] { train::load_image_tower(bad); });
  };
  auto config_with = [&](const std::string& key, const std::string& value) {
    Json j = config;
    if (value.empty())
      j.erase(key);
    else
      j[key] = Json::parse(value);
    return load_with("vit_config", j.dump());
  };
  const std::string vit = "image tower '" + bad.string() + "': metadata 'vit_config'";
  struct Case {
    std::string key, value, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"num_layers", "1000000000",
            ": key 'num_layers': expected an integer in [1, 1024], found 1000000000"},
           {"num_layers", "1000",
            " declares tensor 'encoder.layers.encoder_layer_2.mlp.0.weight' of (16, 8), "
            "the file has none"},
           {"hidden_dim", "65536",
            " declares tensor 'conv_proj.weight' of (65536, 2, 4, 4), the file has (8, 2, 4, 4)"},
           {"image_size", "4096", " declares tensor 'encoder.pos_embedding' of (1, 1048577, 8)"},
           {"mlp_dim", "262144",
            " declares tensor 'encoder.layers.encoder_layer_0.mlp.0.weight' of (262144, 8), the file has "
            "(16, 8)"},
           {"num_heads", "\"2\"", ": key 'num_heads': expected a 64-bit integer, found \"2\""},
           {"num_heads", "3", ": ViTConfig: hidden_dim 8 is not divisible by num_heads 3"},
           {"pooling", "\"max\"", ": key 'pooling': expected \"mean\" or \"class_token\", found \"max\""},
           {"pooling", "", ": key 'pooling' is missing"},
       })
    expect_has(config_with(c.key, c.value), {vit + c.expect});

  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  expect_has(load_with("vit_config", "{\"num_layers\": " + deep + "}"),
             {vit + ": JSON nested deeper than 64 levels"});
  expect_has(load_with("mean", deep), {"metadata 'mean': JSON nested deeper than 64 levels"});
  expect_has(
      load_with("mean", "[0.5, \"x\"]"),
      {"image tower '" + bad.string() + "': metadata 'mean': key '[1]': expected a number in float range"});
  expect_has(load_with("std", "{}"), {"metadata 'std': expected an array, found an object with 0 keys"});
  EXPECT_EQ(error_of([&] { train::load_image_tower(good); }), "no error");
}

TEST_F(UntrustedTowerFile, SpeechTowerMetadataAndTensorsAreCheckedBeforeLoading) {
  models::Conformer tower(models::ConformerConfig::tiny());
  const fs::path good = dir_ / "speech.safetensors";
  train::save_speech_tower(good, tower, train::CharVocab::from_chars("ab c"), 1, 0.5);
  const SafetensorsFile f = SafetensorsFile::open(good.string());
  auto tensors = f.load_all();
  const fs::path bad = dir_ / "bad.safetensors";
  auto init_with = [&](const std::string& conformer) {
    auto meta = f.metadata();
    if (conformer.empty())
      meta.erase("conformer");
    else
      meta["conformer"] = conformer;
    save_safetensors(bad.string(), tensors, meta);
    return error_of([&] { train::init_speech_tower(tower, bad); });
  };
  const std::string where = "--model.speech_init: '" + bad.string() + "'";
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  expect_has(init_with("{\"d_model\": " + deep + "}"),
             {where + ": metadata 'conformer': JSON nested deeper than 64 levels"});
  Json shape = Json::parse(f.metadata().at("conformer"));
  shape["num_layers"] = "2";
  expect_has(init_with(shape.dump()),
             {where + ": metadata 'conformer': key 'num_layers': expected a 64-bit integer, found \"2\""});
  expect_has(init_with(""), {where + " has no metadata 'conformer'"});
  // A tensor the tower does not have, or of another shape, is refused before any is read.
  tensors["evil"] = ops::zeros({1000});
  expect_has(init_with(f.metadata().at("conformer")), {where + ": tensor 'evil' is not one of the tower's"});
  tensors.erase("evil");
  const std::string name = tensors.begin()->first;
  const Shape was = tensors.begin()->second.shape();
  tensors.begin()->second = ops::zeros({3, 3});
  expect_has(init_with(f.metadata().at("conformer")),
             {where + ": tensor '" + name + "' is (3, 3), the tower's " + shape_str(was)});
  EXPECT_NO_THROW(train::init_speech_tower(tower, good));
}

}  // namespace
}  // namespace cw
