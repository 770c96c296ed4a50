// The text tower against the reference: all-MiniLM-L6-v2 loaded from the installed package must
// reproduce Hugging Face transformers + sentence-transformers (tests/fixtures/
// minilm_reference.safetensors, made by tools/make_minilm_fixture.py): token ids, every layer's
// hidden states, and the sentence embeddings. Plus f64 gradient checks of a tiny model.
#include <nlohmann/json.hpp>

#include "core/flop_counter.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "models/sentence_encoder.h"
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;

// Largest |a - b| over the positions where mask (B, T) is 1; a, b (B, T, H).
double max_abs_diff_on_tokens(const Tensor& a, const Tensor& b, const Tensor& mask) {
  const Tensor m = mask.to(DType::F32).unsqueeze(-1);
  return ops::amax(ops::mul(ops::abs(ops::sub(a, b)), m)).item();
}

class MiniLM : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = data::try_find_minilm_dir();
    if (!dir) return;
    encoder_ = new models::SentenceEncoder(models::SentenceEncoder::load(*dir));
    fixture_ = new SafetensorsFile(
        SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/minilm_reference.safetensors"));
  }
  static void TearDownTestSuite() {
    delete encoder_;
    delete fixture_;
    encoder_ = nullptr;
    fixture_ = nullptr;
  }
  void SetUp() override {
    if (!encoder_) GTEST_SKIP() << "all-MiniLM-L6-v2 is not installed (run tools/setup.sh)";
  }
  static models::SentenceEncoder* encoder_;
  static SafetensorsFile* fixture_;
};
models::SentenceEncoder* MiniLM::encoder_ = nullptr;
SafetensorsFile* MiniLM::fixture_ = nullptr;

TEST_F(MiniLM, LoadsStrictlyWithTheCheckpointsNames) {
  EXPECT_EQ(encoder_->model->num_parameters(), 22713216);  // all-MiniLM-L6-v2: 22.7M parameters
  EXPECT_EQ(encoder_->max_seq_length, 256);
}

TEST_F(MiniLM, TokenizesTheFixtureSentencesAsHuggingFace) {
  const auto sentences =
      nlohmann::json::parse(fixture_->metadata().at("sentences")).get<std::vector<std::string>>();
  data::EncodeOptions opt;
  opt.max_length = encoder_->max_seq_length;
  const data::BatchEncoding b = encoder_->tokenizer->encode_batch(sentences, opt);
  EXPECT_TRUE(all_close(b.input_ids, fixture_->load("input_ids"), 0, 0));
  EXPECT_TRUE(all_close(b.attention_mask, fixture_->load("attention_mask"), 0, 0));
}

TEST_F(MiniLM, EveryLayerMatchesTheReference) {
  NoGradGuard ng;
  std::vector<Variable> hidden;
  encoder_->model->forward(fixture_->load("single.input_ids"), fixture_->load("single.attention_mask"),
                           fixture_->load("single.token_type_ids"), &hidden);
  ASSERT_EQ(hidden.size(), 7u);
  for (size_t i = 0; i < hidden.size(); ++i)
    EXPECT_TRUE(all_close(hidden[i].data(), fixture_->load("hidden_states." + std::to_string(i)), 1e-4, 0))
        << "hidden state " << i;
}

TEST_F(MiniLM, SentenceEmbeddingsMatchSentenceTransformers) {
  NoGradGuard ng;
  data::BatchEncoding b{fixture_->load("input_ids"), fixture_->load("attention_mask"),
                        fixture_->load("token_type_ids")};
  const Tensor hidden = encoder_->model->forward(b.input_ids, b.attention_mask, b.token_type_ids).data();
  // Padded positions hold whatever each implementation computes there; compare real tokens.
  EXPECT_LT(max_abs_diff_on_tokens(hidden, fixture_->load("last_hidden_state"), b.attention_mask), 1e-4);
  const Tensor emb = encoder_->forward(b).data();
  EXPECT_TRUE(all_close(emb, fixture_->load("sentence_embeddings"), 1e-4, 0));
  // And end to end from text.
  const auto sentences =
      nlohmann::json::parse(fixture_->metadata().at("sentences")).get<std::vector<std::string>>();
  EXPECT_TRUE(all_close(encoder_->encode(sentences, 7), fixture_->load("sentence_embeddings"), 1e-4, 0));
}

models::BertConfig tiny_config() {
  models::BertConfig c;
  c.vocab_size = 11;
  c.hidden_size = 4;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 6;
  c.max_position_embeddings = 8;
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0.0;
  return c;
}

TEST(TextTransformer, TinyModelGradCheck) {
  manual_seed(3);
  models::TextTransformer model(tiny_config(), DType::F64);
  const Tensor ids = test::i64({2, 5, 7, 1, 3, 3}, {2, 3});
  const Tensor mask = test::i64({1, 1, 1, 1, 1, 0}, {2, 3});
  // Check every parameter except the pooler (unused by forward) in one Jacobian.
  std::vector<Variable> params;
  for (auto& [name, p] : model.named_parameters())
    if (name.rfind("pooler", 0) != 0) params.push_back(p);
  EXPECT_TRUE(test::gradcheck_params([&] { return model.forward(ids, mask); }, params));
  // Through the pooling and normalization of the sentence encoder as well.
  EXPECT_TRUE(test::gradcheck_params(
      [&] { return models::l2_normalize(models::masked_mean_pool(model.forward(ids, mask), mask)); },
      params));
}

// The forward's model FLOPs (core/flop_counter.h) equal the analytic count that MFU figures for
// BERT-family encoders use: per token and layer 4H^2 (q, k, v, output projections) + 2HF
// (feed-forward) + 2TH (scores and context) multiply-adds, i.e. 8H^2 + 4HF + 4TH FLOPs;
// embeddings are lookups. (This test found the GPU check's formula counting each FLOP twice.)
TEST(TextTransformer, FlopCountIsTheAnalyticCount) {
  const models::BertConfig c = tiny_config();
  models::TextTransformer model(c, DType::F64);
  const int64_t B = 2, T = 3, H = c.hidden_size, F = c.intermediate_size;
  FlopCounter fc;
  NoGradGuard no_grad;
  model.forward(test::i64({2, 5, 7, 1, 3, 3}, {B, T}));
  EXPECT_EQ(fc.total(), (8 * H * H + 4 * H * F + 4 * T * H) * c.num_hidden_layers * B * T);
}

TEST(TextTransformer, BadInputsNameTheCulprit) {
  models::TextTransformer model(tiny_config());
  EXPECT_THROW(model.forward(test::i64({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 9})), ShapeError);  // > 8 positions
  EXPECT_THROW(model.forward(test::i64({1, 2}, {1, 2}), test::i64({1}, {1, 1})), ShapeError);
  EXPECT_THROW(model.forward(test::i64({11}, {1, 1})), IndexError);  // id outside the vocabulary
  auto state = model.state_dict();
  state.erase("encoder.layer.1.output.dense.weight");
  try {
    model.load_state_dict(state);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.1.output.dense.weight"), std::string::npos);
  }
  EXPECT_THROW(models::BertConfig::from_json_file("no/such/config.json"), ValueError);
}

}  // namespace
}  // namespace cw
