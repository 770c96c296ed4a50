// The Conformer speech tower: the block against torchaudio 0.13's ConformerLayer and the whole
// tiny tower against the same computation composed in PyTorch (tests/fixtures/conformer_block.txt
// and conformer_model.txt, made by tools/make_conformer_fixture.py); an f64 gradient check of a
// tiny tower on a padded batch; padding invariance in eval and training mode; lengths, presets
// and bad input; the tower's model FLOPs (core/flop_counter.h) against PyTorch's count.
#include "models/conformer.h"

#include <map>
#include <stdexcept>
#include <string>

#include "core/flop_counter.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/module_parity.h"

namespace cw {
namespace {

using models::Conformer;
using models::ConformerConfig;
using test::all_close;
using test::Fixture;

// f64 on both sides; they differ by summation order and libm's last bits (worst seen: 5.3e-15 on
// a parameter gradient of magnitude ~10). A wrong term would be O(0.1).
constexpr double kTol = 1e-10;

using test::check_module_case;
using test::with_prefix;
const Tensor& get(const Fixture& fx, const std::string& name) { return test::fixture_get(fx, name); }

template <class Forward>
void check_case(const Fixture& fx, const std::string& c, nn::Module& m, Forward forward) {
  check_module_case(fx, c, m, forward, kTol);
}

ConformerConfig block_config(const Fixture& fx, const std::string& c) {
  const auto k = get(fx, c + ".config").to_vector<int64_t>();  // d_model, heads, ffn, kernel
  ConformerConfig cfg;
  cfg.d_model = k[0];
  cfg.num_heads = k[1];
  cfg.ffn_dim = k[2];
  cfg.conv_kernel_size = k[3];
  cfg.dropout = 0.0;
  return cfg;
}

// torchaudio's block takes no positions (its Conformer has none): the block is compared as is,
// on inputs that already carry them (ours adds them once, after subsampling). In the padded
// cases the reference zeroes padded frames before the depthwise conv, and in training mode
// takes BatchNorm statistics over real frames, as ours (see the fixture script).
TEST(ConformerReference, BlockMatchesTorchaudioConformerLayer) {
  const Fixture fx = test::load_fixture("conformer_block.txt");
  for (const std::string c : {"block_train", "block_eval_pad", "block_train_pad"}) {
    models::ConformerBlock block(block_config(fx, c), DType::F64);
    block.train(c != "block_eval_pad");
    const Tensor mask = fx.count(c + ".mask") ? get(fx, c + ".mask") : Tensor();
    check_case(fx, c, block, [&](const Variable& x) { return block.forward(x, mask); });
  }
}

// The tiny tower (eval mode, padded batch of 3) against torch.nn Conv2d/Linear + torchaudio
// ConformerLayers composed in the fixture script: subsampling layout, positions, length formula,
// masks, pooling and head, and gradients w.r.t. the features and every parameter.
ConformerConfig tiny_tower_config(const Fixture& fx) {
  const auto k =
      get(fx, "model.config").to_vector<int64_t>();  // n_mels, d, heads, ffn, layers, kernel, embed
  ConformerConfig cfg;
  cfg.n_mels = k[0];
  cfg.d_model = k[1];
  cfg.num_heads = k[2];
  cfg.ffn_dim = k[3];
  cfg.num_layers = k[4];
  cfg.conv_kernel_size = k[5];
  cfg.embed_dim = k[6];
  cfg.dropout = 0.0;
  return cfg;
}

TEST(ConformerReference, TinyTowerMatchesPyTorch) {
  const Fixture fx = test::load_fixture("conformer_model.txt");
  Conformer model(tiny_tower_config(fx), DType::F64);
  model.eval();
  const Tensor& lengths = get(fx, "model.lengths");
  check_case(fx, "model", model, [&](const Variable& x) { return model.forward(x, lengths); });
  NoGradGuard ng;
  const auto frames = model.forward_frames(Variable(get(fx, "model.x")), lengths);
  EXPECT_TRUE(all_close(frames.lengths, get(fx, "model.out_lengths"), 0, 0));
}

// The same tower and batch: model FLOPs of the forward and of the backward (gradients for the
// features and every parameter), exactly as tools/torch_flops.py counted PyTorch's GEMMs and
// convolutions (subsampling convs, attention, feed-forwards, pointwise and depthwise convs).
TEST(ConformerReference, FlopCountMatchesPyTorch) {
  const Fixture fx = test::load_fixture("conformer_model.txt");
  Conformer model(tiny_tower_config(fx), DType::F64);
  model.eval();
  const Variable x(get(fx, "model.x"), /*requires_grad=*/true);
  const auto want = get(fx, "model.flops").to_vector<int64_t>();  // forward, backward
  Variable y;
  {
    FlopCounter fc;
    y = model.forward(x, get(fx, "model.lengths"));
    EXPECT_EQ(fc.total(), want[0]);
  }
  FlopCounter fc;
  y.backward(get(fx, "model.r"));
  EXPECT_EQ(fc.total(), want[1]);
}

// Tiny tower with a padded batch in training mode (masked BatchNorm statistics), all parameters
// in one Jacobian; and the frame output w.r.t. the features in eval mode.
TEST(ConformerGrad, TinyTowerWithPaddedBatch) {
  manual_seed(5);
  ConformerConfig cfg = ConformerConfig::tiny();
  cfg.num_layers = 1;  // the second block adds time, not coverage
  cfg.n_mels = 7;
  cfg.d_model = 4;
  cfg.ffn_dim = 6;
  cfg.conv_kernel_size = 3;
  cfg.embed_dim = 3;
  Conformer model(cfg, DType::F64);
  const Tensor feats = test::rand64({2, 15, 7}, -1, 1, 9);
  const Tensor lengths = test::i64({15, 11}, {2});  // 3 and 2 frames after subsampling
  EXPECT_TRUE(test::gradcheck_params([&] { return model.forward(Variable(feats), lengths); },
                                     model.parameters(), 1e-6, 1e-7, 1e-5));
  model.eval();
  EXPECT_TRUE(test::gradcheck([&](const std::vector<Variable>& v) { return model.forward(v[0], lengths); },
                              {feats}, 1e-6, 1e-7, 1e-5));
}

// An utterance alone and padded inside a batch give the same embedding and the same real frames.
// Eval mode: BatchNorm uses running statistics, so any batch works. Training mode: batch
// statistics depend on the batch's utterances by design, but never on its padding, so the
// same utterances with more padding (and other values in it) give the same result.
class ConformerPadding : public ::testing::Test {
 protected:
  void SetUp() override {
    manual_seed(8);
    cfg_ = ConformerConfig::tiny();
    model_ = std::make_shared<Conformer>(cfg_, DType::F32);
    // A few training steps so the running statistics are not the trivial (0, 1).
    for (uint64_t s = 0; s < 3; ++s)
      model_->forward(Variable(ops::randn({3, 30, cfg_.n_mels})), test::i64({30, 22, 13}, {3}));
    utt_ = ops::randn({1, 29, cfg_.n_mels});
    other_ = ops::randn({2, 41, cfg_.n_mels});
  }
  // utt and the two others in one batch of T frames; padding filled with `fill`.
  Tensor batch(int64_t T, double fill) const {
    Tensor x = ops::full({3, T, cfg_.n_mels}, fill);
    x.narrow(0, 1, 1).narrow(1, 0, 29).copy_(utt_);
    x.narrow(0, 0, 1).narrow(1, 0, 41).copy_(other_.narrow(0, 0, 1));
    x.narrow(0, 2, 1).narrow(1, 0, 17).copy_(other_.narrow(0, 1, 1).narrow(1, 0, 17));
    return x;
  }
  ConformerConfig cfg_;
  std::shared_ptr<Conformer> model_;
  Tensor utt_, other_;
  const Tensor lengths_ = test::i64({41, 29, 17}, {3});
};

TEST_F(ConformerPadding, EvalModeAloneEqualsPaddedInABatch) {
  model_->eval();
  NoGradGuard ng;
  const auto alone = model_->forward_frames(Variable(utt_), test::i64({29}, {1}));
  const auto inside = model_->forward_frames(Variable(batch(47, 3.0)), lengths_);
  const int64_t L = alone.lengths.to_vector<int64_t>()[0];
  EXPECT_EQ(L, 6);
  EXPECT_EQ(inside.lengths.to_vector<int64_t>(), (std::vector<int64_t>{9, 6, 3}));
  EXPECT_TRUE(all_close(inside.hidden.data().narrow(0, 1, 1).narrow(1, 0, L), alone.hidden.data(), 1e-5, 0));
  const Tensor e_alone = model_->forward(Variable(utt_), test::i64({29}, {1})).data();
  const Tensor e_inside = model_->forward(Variable(batch(47, -2.0)), lengths_).data();
  EXPECT_TRUE(all_close(e_inside.narrow(0, 1, 1), e_alone, 1e-5, 0));
  // Padded frames of the output are zero.
  EXPECT_EQ(ops::amax(ops::abs(inside.hidden.data().narrow(0, 2, 1).narrow(1, 3, 8))).item(), 0.0);
}

TEST_F(ConformerPadding, TrainModeIgnoresHowMuchPaddingABatchCarries) {
  model_->train();
  const auto running_mean = [&] {
    return model_->layers->operator[](1).conv_module->batch_norm->running_mean().clone();
  };
  const Tensor m0 = running_mean();
  const Tensor a = model_->forward(Variable(batch(41, 0.0)), lengths_).data();
  const Tensor m1 = running_mean();
  const Tensor b = model_->forward(Variable(batch(60, 5.0)), lengths_).data();
  const Tensor m2 = running_mean();
  EXPECT_TRUE(all_close(b, a, 1e-5, 0));
  // Both steps averaged in the same batch mean s: m1 = 0.9 m0 + 0.1 s and m2 = 0.9 m1 + 0.1 s
  // give m2 - m1 = 0.9 (m1 - m0).
  EXPECT_TRUE(all_close(ops::sub(m2, m1), ops::mul(ops::sub(m1, m0), 0.9), 1e-6, 0));
  // Alone in training mode equals a batch of one with extra padding.
  const Tensor alone = model_->forward(Variable(utt_), test::i64({29}, {1})).data();
  Tensor padded = ops::full({1, 40, cfg_.n_mels}, 7.0);
  padded.narrow(1, 0, 29).copy_(utt_);
  EXPECT_TRUE(all_close(model_->forward(Variable(padded), test::i64({29}, {1})).data(), alone, 1e-5, 0));
}

TEST(Conformer, LengthsPositionsAndPresets) {
  for (int64_t L = 7; L < 300; ++L) EXPECT_EQ(models::subsampled_length(L), ((L - 1) / 2 - 1) / 2) << L;
  EXPECT_EQ(models::subsampled_length(6), 0);
  models::Conv2dSubsampling sub(10, 4, 0.0, DType::F32);
  for (int64_t T : {7, 8, 10, 31, 100})
    EXPECT_EQ(sub.forward(Variable(ops::zeros({1, T, 10}))).size(1), models::subsampled_length(T)) << T;
  EXPECT_TRUE(all_close(models::lengths_to_padding_mask(test::i64({3, 1}, {2}), 4),
                        test::i64({0, 0, 0, 1, 0, 1, 1, 1}, {2, 4}), 0, 0));
  const Tensor pe = models::sinusoidal_positions(5, 4, DType::F64);
  EXPECT_NEAR(pe.to_vector<double>()[4 * 3 + 0], std::sin(3.0), 1e-15);
  EXPECT_NEAR(pe.to_vector<double>()[4 * 3 + 3], std::cos(3.0 / 100.0), 1e-15);  // 10000^(2/4) = 100
  // The small preset: Gulati et al.'s Conformer (S) encoder with a 384-d head.
  Conformer small(ConformerConfig::small());
  EXPECT_EQ(small.num_parameters(), 8409408);
  EXPECT_EQ(small.layers->size(), 16u);
  const auto state = small.state_dict();
  for (const char* name :
       {"subsampling.conv1.weight", "subsampling.out.weight", "layers.15.ffn1.linear1.weight",
        "layers.0.self_attn.query.weight", "layers.0.conv_module.depthwise_conv.weight",
        "layers.0.conv_module.batch_norm.num_batches_tracked", "proj.weight"})
    EXPECT_EQ(state.count(name), 1u) << name;
  EXPECT_EQ(state.at("layers.0.conv_module.depthwise_conv.weight").shape(), (Shape{144, 1, 31}));
  EXPECT_EQ(state.at("subsampling.out.weight").shape(), (Shape{144, 144 * 19}));
}

TEST(Conformer, BadInputNamesTheProblem) {
  Conformer model(ConformerConfig::tiny());
  const Variable x(ops::zeros({2, 20, 10}));
  EXPECT_THROW(model.forward(Variable(ops::zeros({2, 20, 9})), test::i64({20, 20}, {2})), ShapeError);
  EXPECT_THROW(model.forward(x, test::i64({20}, {1})), ShapeError);      // one length for two
  EXPECT_THROW(model.forward(x, test::f32({20, 20}, {2})), ShapeError);  // not i64
  EXPECT_THROW(model.forward(x, test::i64({21, 20}, {2})), ValueError);  // longer than T
  EXPECT_THROW(model.forward(x, test::i64({20, 6}, {2})), ValueError);   // no output frame
  EXPECT_THROW(Conformer(ConformerConfig{.d_model = 10, .num_heads = 4}), ValueError);
  auto state = model.state_dict();
  state.erase("layers.1.conv_module.batch_norm.running_var");
  try {
    model.load_state_dict(state);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.conv_module.batch_norm.running_var"), std::string::npos);
  }
}

}  // namespace
}  // namespace cw
