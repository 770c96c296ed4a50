// BERT-family model folders as the ecosystem saves them (tests/fixtures/bert_variants/, made by
// tools/make_bert_variants_fixture.py): BertModel names or the "bert." prefix of the task models,
// with or without the pooler, model.safetensors or only pytorch_model.bin, and the
// sentence-transformers head of each (cls / max / cls+mean pooling, Normalize or not; a plain HF
// folder). Each must give sentence-transformers 2.7.0's embeddings; a head we cannot reproduce is
// an error naming the file and key, never a silent mean.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "models/sentence_encoder.h"
#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

const fs::path kVariants = fs::path(CW_FIXTURE_DIR) / "bert_variants";

struct Variant {
  const char* name;
  nn::PoolingModes pooling;
  bool normalize, pooler;
};
nn::PoolingModes modes(bool cls, bool max, bool mean) {
  nn::PoolingModes m;
  m.cls_token = cls;
  m.max_tokens = max;
  m.mean_tokens = mean;
  return m;
}

TEST(BertVariants, EveryFolderGivesSentenceTransformersEmbeddings) {
  const SafetensorsFile ref =
      SafetensorsFile::open((fs::path(CW_FIXTURE_DIR) / "bert_variants_reference.safetensors").string());
  const auto sentences =
      nlohmann::json::parse(ref.metadata().at("sentences")).get<std::vector<std::string>>();
  const Variant variants[] = {
      {"cls_normalize", modes(true, false, false), true, true},   // safetensors, BertModel names
      {"max_prefix", modes(false, true, false), false, false},    // safetensors, "bert.", no pooler
      {"cls_mean_bin", modes(true, false, true), true, false},    // pytorch_model.bin, no pooler
      {"plain_hf_bin", modes(false, false, true), false, true}};  // .bin, "bert.", no modules.json
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    const auto enc = models::SentenceEncoder::load(kVariants / v.name);
    EXPECT_EQ(enc.pooling.describe(), v.pooling.describe());
    EXPECT_EQ(enc.normalize, v.normalize);
    EXPECT_EQ(enc.model->pooler != nullptr, v.pooler);
    const Tensor expected = ref.load(std::string(v.name) + ".embeddings");
    EXPECT_EQ(enc.embedding_dim(), expected.size(1));
    EXPECT_TRUE(test::all_close(enc.encode(sentences, 2), expected, 1e-5, 1e-4));
  }
}

// A copy of a fixture folder under the temp dir, removed at scope exit.
struct FolderCopy {
  explicit FolderCopy(const char* variant)
      : path(fs::temp_directory_path() /
             ("cw_bert_variant_" + std::string(variant) + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::copy(kVariants / variant, path, fs::copy_options::recursive);
  }
  ~FolderCopy() { fs::remove_all(path); }
  void write(const fs::path& rel, const std::string& text) const { std::ofstream(path / rel) << text; }
  fs::path path;
};

std::string load_error(const fs::path& dir) {
  try {
    models::SentenceEncoder::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(BertVariants, HeadsWeCannotReproduceAreErrorsNamingFileAndKey) {
  const FolderCopy d("cls_normalize");
  const auto expect_error = [&](const std::string& needle1, const std::string& needle2) {
    const std::string m = load_error(d.path);
    EXPECT_NE(m.find(needle1), std::string::npos) << m;
    EXPECT_NE(m.find(needle2), std::string::npos) << m;
  };
  const std::string modules = R"([{"type": "sentence_transformers.models.Transformer", "path": ""},
                                  {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}, )";
  d.write("modules.json", modules + R"({"type": "sentence_transformers.models.Dense", "path": "2_Dense"}])");
  expect_error("modules.json", "sentence_transformers.models.Dense");
  d.write("modules.json", modules + R"({"type": "sentence_transformers.models.Normalize", "path": "../x"}])");
  expect_error("modules.json", "path");
  d.write("modules.json", R"([{"type": "sentence_transformers.models.Transformer", "path": ""}])");
  expect_error("modules.json", "Pooling");
  d.write("modules.json",
          modules + R"({"type": "sentence_transformers.models.Normalize", "path": "2_Normalize"}])");
  d.write("1_Pooling/config.json", R"({"pooling_mode_mean_tokens": false, "pooling_mode_lasttoken": true})");
  expect_error("1_Pooling/config.json", "pooling_mode_lasttoken");
  d.write("1_Pooling/config.json", R"({"pooling_mode_mean_tokens": false})");
  expect_error("1_Pooling/config.json", "no pooling mode");
  d.write("1_Pooling/config.json", R"({"word_embedding_dimension": 384})");
  expect_error("1_Pooling/config.json", "word_embedding_dimension");
  d.write("1_Pooling/config.json", R"({"pooling_mode_max_tokens": true})");
  EXPECT_EQ(load_error(d.path), "no error");  // mean stays on by default, as in sentence-transformers
  EXPECT_EQ(models::SentenceEncoder::load(d.path).pooling.describe(), "max+mean");
  fs::remove(d.path / "model.safetensors");
  expect_error("no model.safetensors or pytorch_model.bin", d.path.string());
}

}  // namespace
}  // namespace cw
