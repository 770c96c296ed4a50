// The contrastive losses in f32 against PyTorch (fixture from tools/make_loss_fixture.py: losses,
// gradients and metrics computed in float64 from the same f32 inputs), to 1e-5, in whole-matrix
// mode and in block mode with 5-row blocks.
#include <cmath>
#include <set>
#include <string>

#include "loss_reference.h"
#include "losses/contrastive_loss.h"
#include "support/check.h"
#include "support/fixture.h"

namespace cw {
namespace {

using test::all_close;

losses::ContrastiveConfig config_of(const Tensor& opts, const Tensor& fopts) {
  const auto o = opts.to_vector<int64_t>();
  const auto f = fopts.to_vector<double>();
  losses::ContrastiveConfig c;
  c.loss = o[0] == 0 ? losses::LossKind::InfoNCE : losses::LossKind::CWCL;
  c.kernel = o[1] == 0 ? losses::WeightKernel::Linear : losses::WeightKernel::Exp;
  c.mask = o[2] == 0 ? losses::WeightMask::None
                     : (o[2] == 1 ? losses::WeightMask::TopK : losses::WeightMask::Threshold);
  c.reverse = o[3] == 0 ? losses::ReverseDirection::Weighted
                        : (o[3] == 1 ? losses::ReverseDirection::InfoNCE : losses::ReverseDirection::None);
  c.reduction = o[4] == 0 ? losses::DirectionReduction::Sum : losses::DirectionReduction::Mean;
  c.normalize = o[5] != 0;
  c.top_k = o[6];
  c.kernel_temperature = f[0];
  c.threshold = f[1];
  c.max_logit_scale = f[2];
  return c;
}

TEST(ContrastiveFixture, MatchesPyTorch) {
  const auto fx = test::load_fixture("loss_contrastive.txt");
  std::set<std::string> cases;
  for (const auto& [name, t] : fx) cases.insert(name.substr(0, name.find('.')));
  ASSERT_GE(cases.size(), 10u);
  for (const std::string& c : cases) {
    const auto at = [&](const char* field) { return fx.at(c + "." + field); };
    for (const test::Mode& mode : {test::kWhole, test::Mode{"blocks of 5", 0, 5}}) {
      const losses::ContrastiveConfig cfg = mode.apply(config_of(at("opts"), at("fopts")));
      Variable p(at("p").clone(), true), q(at("q").clone(), true), t(at("t").clone(), true);
      const losses::ContrastiveOutput out = losses::contrastive_loss(p, q, t, cfg);
      const std::string where = c + " " + mode.name;
      EXPECT_EQ(out.loss.dtype(), DType::F32) << where;
      EXPECT_TRUE(all_close(out.loss.data(), at("loss"), 1e-5, 1e-5)) << where;
      out.loss.backward();
      EXPECT_TRUE(all_close(p.grad(), at("dp"), 1e-5, 1e-5)) << where << " dp";
      EXPECT_TRUE(all_close(q.grad(), at("dq"), 1e-5, 1e-5)) << where << " dq";
      EXPECT_TRUE(all_close(t.grad(), at("dt"), 1e-5, 1e-5)) << where << " dt";
      const auto m = at("metrics").to_vector<double>();
      const losses::ContrastiveMetrics& got = out.metrics;
      EXPECT_NEAR(got.loss_p2q, m[0], 1e-5 * (1 + std::abs(m[0]))) << where;
      EXPECT_EQ(got.acc_p2q, m[1]) << where;
      EXPECT_EQ(got.acc_q2p, m[2]) << where;
      EXPECT_NEAR(got.pos_sim, m[3], 1e-5) << where;
      EXPECT_NEAR(got.neg_sim, m[4], 1e-5) << where;
      if (fx.count(c + ".loss_cols"))
        EXPECT_NEAR(got.loss_q2p, at("loss_cols").item(), 1e-5 * (1 + std::abs(at("loss_cols").item())))
            << where;
      else
        EXPECT_TRUE(std::isnan(got.loss_q2p)) << where;
    }
  }
}

}  // namespace
}  // namespace cw
