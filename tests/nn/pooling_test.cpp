// Sequence pooling (nn/pooling.h): values against closed forms (sentence-transformers' rules:
// padding ignored, an all-padding row, modes concatenated in its order) and f64 full-Jacobian
// gradient checks of every pooling. The comparison with sentence-transformers itself is
// tests/models/bert_variants_test.cpp.
#include "nn/pooling.h"

#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::f64;
using test::i64;
using test::rand64;

// hidden (2, 3, 2); row 0 has 2 tokens, row 1 all 3.
const Tensor kHidden = f64({1, 2, 3, -4, 100, 100, /**/ -1, 0, 5, 1, 2, 2}, {2, 3, 2});
const Tensor kMask = i64({1, 1, 0, 1, 1, 1}, {2, 3});

TEST(Pooling, ValuesIgnorePadding) {
  NoGradGuard ng;
  const Variable h(kHidden);
  EXPECT_TRUE(all_close(nn::masked_mean_pool(h, kMask).data(), f64({2, -1, 2, 1}, {2, 2})));
  EXPECT_TRUE(all_close(nn::masked_max_pool(h, kMask).data(), f64({3, 2, 5, 2}, {2, 2})));
  EXPECT_TRUE(all_close(nn::cls_pool(h).data(), f64({1, 2, -1, 0}, {2, 2})));
  EXPECT_TRUE(all_close(
      nn::masked_mean_sqrt_len_pool(h, kMask).data(),
      f64({4 / std::sqrt(2.0), -2 / std::sqrt(2.0), 6 / std::sqrt(3.0), 3 / std::sqrt(3.0)}, {2, 2})));
  EXPECT_TRUE(
      all_close(nn::l2_normalize(Variable(f64({3, 4, 0, 0}, {2, 2}))).data(), f64({0.6, 0.8, 0, 0}, {2, 2})));
}

TEST(Pooling, AllPaddingRowsAreFinite) {
  NoGradGuard ng;
  const Tensor none = i64({0, 0, 0, 1, 1, 1}, {2, 3});
  EXPECT_TRUE(
      all_close(nn::masked_mean_pool(Variable(kHidden), none).data().narrow(0, 0, 1), f64({0, 0}, {1, 2})));
  // sentence-transformers fills padding with -1e9 before the max.
  EXPECT_TRUE(all_close(nn::masked_max_pool(Variable(kHidden), none).data().narrow(0, 0, 1),
                        f64({-1e9, -1e9}, {1, 2})));
}

TEST(Pooling, ModesConcatenateInSentenceTransformersOrder) {
  NoGradGuard ng;
  nn::PoolingModes m;
  m.cls_token = m.max_tokens = m.mean_tokens = true;
  EXPECT_EQ(m.count(), 3);
  EXPECT_EQ(m.describe(), "cls+max+mean");
  const Tensor out = nn::pool(Variable(kHidden), kMask, m).data();
  EXPECT_TRUE(all_close(out, f64({1, 2, 3, 2, 2, -1, /**/ -1, 0, 5, 2, 2, 1}, {2, 6})));
  m = nn::PoolingModes{};
  EXPECT_EQ(m.describe(), "mean");
  m.mean_tokens = false;
  EXPECT_THROW(nn::pool(Variable(kHidden), kMask, m), ValueError);
}

TEST(Pooling, GradientsMatchCentralDifferences) {
  const Tensor mask = i64({1, 1, 1, 0, 1, 1, 0, 0}, {2, 4});
  const Tensor x = rand64({2, 4, 3}, -1, 1, 5);  // distinct values: no ties at the max
  EXPECT_TRUE(test::gradcheck([&](const auto& v) { return nn::masked_mean_pool(v[0], mask); }, {x}));
  EXPECT_TRUE(test::gradcheck([&](const auto& v) { return nn::masked_mean_sqrt_len_pool(v[0], mask); }, {x}));
  EXPECT_TRUE(test::gradcheck([&](const auto& v) { return nn::masked_max_pool(v[0], mask); }, {x}));
  EXPECT_TRUE(test::gradcheck([&](const auto& v) { return nn::cls_pool(v[0]); }, {x}));
  EXPECT_TRUE(
      test::gradcheck([&](const auto& v) { return nn::l2_normalize(v[0]); }, {rand64({3, 4}, -1, 1, 6)}));
  nn::PoolingModes all;
  all.cls_token = all.max_tokens = all.mean_sqrt_len_tokens = true;
  EXPECT_TRUE(
      test::gradcheck([&](const auto& v) { return nn::l2_normalize(nn::pool(v[0], mask, all)); }, {x}));
}

TEST(Pooling, BadShapesNameBoth) {
  const Variable h(kHidden);
  try {
    nn::masked_mean_pool(h, i64({1, 1}, {1, 2}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3, 2)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::masked_max_pool(Variable(f64({1, 2}, {2})), kMask), ShapeError);
  EXPECT_THROW(nn::cls_pool(Variable(f64({1, 2}, {1, 2}))), ShapeError);
}

}  // namespace
}  // namespace cw
