// Reproducers (issue 24) for untrusted model folders: a config.json of the wrong shape threw
// nlohmann's text without the file, and one declaring more layers or wider ones than its weights
// hold built (allocated) the model before the weights were checked. Each is one error naming the
// file and the key or tensor, raised before anything of the declared size exists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json_read.h"
#include "core/safetensors.h"
#include "models/sentence_encoder.h"
#include "models/text_transformer.h"
#include "models/whisper_encoder.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

// A fresh folder under the temp dir, removed at scope exit.
struct TempDir {
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("cw_untrusted_config_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// A BERT folder (config.json, model.safetensors of a 2-layer model, vocab.txt) whose config.json
// is `config` with the given keys replaced.
Json tiny_bert_config() {
  return Json{{"vocab_size", 11},         {"hidden_size", 4},       {"num_hidden_layers", 2},
              {"num_attention_heads", 2}, {"intermediate_size", 6}, {"max_position_embeddings", 8},
              {"type_vocab_size", 2},     {"hidden_act", "gelu"}};
}
void write_bert_folder(const fs::path& dir, const Json& config) {
  write(dir / "config.json", tiny_bert_config().dump());
  const models::TextTransformer model(models::BertConfig::from_json_file(dir / "config.json"));
  save_safetensors((dir / "model.safetensors").string(), model.state_dict());
  write(dir / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\nf\n");
  write(dir / "config.json", config.dump());
}

TEST(UntrustedConfig, BertConfigNamesFileAndKey) {
  TempDir dir("bert");
  const fs::path file = dir.path / "config.json";
  auto error_with = [&](const std::string& text) {
    write(file, text);
    return error_of([&] { models::BertConfig::from_json_file(file); });
  };
  struct Case {
    std::string key, value, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"hidden_size", "\"384\"", "key 'hidden_size': expected a 64-bit integer, found \"384\""},
           {"num_hidden_layers", "1000000000", "key 'num_hidden_layers': expected an integer in [1, 1024]"},
           {"vocab_size", "-3", "key 'vocab_size': expected an integer in [1, "},
           {"layer_norm_eps", "\"tiny\"", "key 'layer_norm_eps': expected a number, found \"tiny\""},
           {"hidden_act", "[\"gelu\"]", "key 'hidden_act': expected a string, found an array of 1 values"},
           {"hidden_size", "5", "hidden_size 5 is not divisible by num_attention_heads 2"},
       }) {
    Json j = tiny_bert_config();
    j[c.key] = Json::parse(c.value);
    const std::string m = error_with(j.dump());
    EXPECT_NE(m.find(file.string()), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
  }
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  EXPECT_NE(error_with("{\"architectures\": " + deep + "}").find(file.string() + ": JSON nested deeper than"),
            std::string::npos);
}

// The config's sizes are held to the tensors present before the model is built.
TEST(UntrustedConfig, SentenceEncoderConfigMustFitItsWeights) {
  struct Case {
    std::string key;
    int64_t value;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {"num_hidden_layers", 1000,
            "declares tensor 'encoder.layer.2.intermediate.dense.weight' of (6, 4), "},
           {"vocab_size", 1 << 24, "declares tensor 'embeddings.word_embeddings.weight' of (16777216, 4), "},
           {"intermediate_size", 1 << 18, "'encoder.layer.0.intermediate.dense.weight' of (262144, 4), "},
       }) {
    TempDir dir("fit");
    Json j = tiny_bert_config();
    j[c.key] = c.value;
    write_bert_folder(dir.path, j);
    const std::string m = error_of([&] { models::SentenceEncoder::load(dir.path); });
    EXPECT_NE(m.find((dir.path / "config.json").string()), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
    EXPECT_NE(m.find((dir.path / "model.safetensors").string()), std::string::npos) << m;
  }
  TempDir dir("fits");
  write_bert_folder(dir.path, tiny_bert_config());
  EXPECT_EQ(error_of([&] { models::SentenceEncoder::load(dir.path); }), "no error");
  write(dir.path / "sentence_bert_config.json", "{\"max_seq_length\": \"256\"}");
  EXPECT_NE(error_of([&] {
              models::SentenceEncoder::load(dir.path);
            }).find("sentence_bert_config.json: key 'max_seq_length': expected a 64-bit integer"),
            std::string::npos);
}

TEST(UntrustedConfig, WhisperConfigMustFitItsWeights) {
  const fs::path fixture = fs::path(CW_FIXTURE_DIR) / "whisper_hf_tiny";
  const Json good = read_json_file(fixture / "config.json");
  TempDir dir("whisper");
  fs::copy_file(fixture / "model.safetensors", dir.path / "model.safetensors");
  const fs::path file = dir.path / "config.json";
  struct Case {
    std::string key, value, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"encoder_layers", "1000000", "key 'encoder_layers': expected an integer in [1, 1024]"},
           {"encoder_layers", "1000", "declares tensor 'encoder.layers.2.fc1.weight' of (32, 16), "},
           {"d_model", "65536", "declares tensor 'encoder.conv1.weight' of (65536, 8, 3), "},
           {"encoder_ffn_dim", "64", "declares tensor 'encoder.layers.0.fc1.weight' of (64, 16), "},
           {"max_source_positions", "100000", "'encoder.embed_positions.weight' of (100000, 16), "},
           {"encoder_attention_heads", "3", "d_model 16 is not divisible by encoder_attention_heads 3"},
           {"num_mel_bins", "\"8\"", "key 'num_mel_bins': expected a 64-bit integer, found \"8\""},
       }) {
    Json j = good;
    j[c.key] = Json::parse(c.value);
    write(file, j.dump());
    const std::string m = error_of([&] { models::read_whisper_hf(dir.path); });
    EXPECT_NE(m.find(file.string()), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
  }
  write(file, good.dump());
  EXPECT_EQ(error_of([&] { models::read_whisper_hf(dir.path); }), "no error");
}

}  // namespace
}  // namespace cw
