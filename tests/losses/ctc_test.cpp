// The CTC loss (losses/ctc_loss.h): against PyTorch's F.ctc_loss (tests/fixtures/ctc.txt, made by
// tools/make_ctc_fixture.py: mean and sum, repeated labels, an empty target, short inputs, an
// infeasible target with zero_infinity), against a brute-force sum over every alignment path, an
// f64 gradient check, and the errors bad input gets.
#include <cmath>
#include <functional>

#include "autograd/functions.h"
#include "losses/ctc_loss.h"
#include "support/check.h"
#include "support/fixture.h"

namespace cw {
namespace {

using losses::ctc_loss;
using losses::CtcOptions;
using losses::CtcReduction;

std::vector<std::vector<int64_t>> unpad(const Tensor& padded) {  // (B, S), -1 after each row's labels
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(padded.size(0)));
  const auto v = padded.to_vector<int64_t>();
  for (int64_t b = 0; b < padded.size(0); ++b)
    for (int64_t s = 0; s < padded.size(1); ++s)
      if (const int64_t k = v[static_cast<size_t>(b * padded.size(1) + s)]; k >= 0)
        rows[static_cast<size_t>(b)].push_back(k);
  return rows;
}

TEST(Ctc, MatchesPyTorch) {
  const auto fx = test::load_fixture("ctc.txt");
  for (const std::string c : {"basic", "repeats_sum", "empty_and_short", "infeasible_zeroed"}) {
    SCOPED_TRACE(c);
    const auto opts = fx.at(c + ".opts").to_vector<int64_t>();
    CtcOptions o;
    o.reduction = opts[0] == 0 ? CtcReduction::Mean : CtcReduction::Sum;
    o.zero_infinity = opts[1] != 0;
    const Variable logits(fx.at(c + ".logits"), true);
    const losses::CtcOutput out = ctc_loss(ag::log_softmax(logits, -1), unpad(fx.at(c + ".targets")),
                                           fx.at(c + ".input_lengths").to_vector<int64_t>(), o);
    EXPECT_NEAR(out.loss.data().item(), fx.at(c + ".loss").item(), 1e-10);
    const auto want_rows = fx.at(c + ".row_losses").to_vector<double>();
    ASSERT_EQ(out.row_losses.size(), want_rows.size());
    for (size_t b = 0; b < want_rows.size(); ++b) {
      if (want_rows[b] < 0)
        EXPECT_TRUE(std::isinf(out.row_losses[b])) << "row " << b;
      else
        EXPECT_NEAR(out.row_losses[b], want_rows[b], 1e-10) << "row " << b;
    }
    out.loss.backward();
    EXPECT_TRUE(test::all_close(logits.grad(), fx.at(c + ".grad"), 1e-10, 1e-10));
  }
}

// p(target) = the sum, over all C^T frame labelings that collapse (merge repeats, drop blanks)
// to the target, of their probability: an independent definition of what the recursions compute.
TEST(Ctc, EqualsTheSumOverEveryAlignment) {
  const int64_t T = 5, C = 3;
  const Tensor lp = ops::log_softmax(test::rand64({T, 1, C}, -2, 2, 4), -1);
  const auto v = lp.to_vector<double>();
  for (const std::vector<int64_t>& target :
       {std::vector<int64_t>{}, {1}, {1, 2}, {2, 2}, {1, 2, 1}, {1, 1, 2}, {2, 2, 2}}) {
    double p = 0;
    std::vector<int64_t> path(T, 0);
    for (int64_t code = 0; code < 243; ++code) {  // 3^5 labelings
      int64_t rest = code;
      double logp = 0;
      for (int64_t t = 0; t < T; ++t) {
        path[static_cast<size_t>(t)] = rest % C;
        rest /= C;
        logp += v[static_cast<size_t>(t * C + path[static_cast<size_t>(t)])];
      }
      std::vector<int64_t> collapsed;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t k = path[static_cast<size_t>(t)];
        if (k != 0 && (t == 0 || k != path[static_cast<size_t>(t - 1)])) collapsed.push_back(k);
      }
      if (collapsed == target) p += std::exp(logp);
    }
    CtcOptions o;
    o.reduction = CtcReduction::Sum;
    const auto out = ctc_loss(Variable(lp), {target}, {T}, o);
    ASSERT_GT(p, 0.0);  // every target here fits in 5 frames ({2, 2, 2} needs exactly 5)
    EXPECT_NEAR(out.row_losses[0], -std::log(p), 1e-12) << target.size() << " labels";
  }
}

TEST(Ctc, GradientCheck) {
  const std::vector<std::vector<int64_t>> targets = {{1, 3}, {2, 2}, {}};
  for (const CtcReduction r : {CtcReduction::Mean, CtcReduction::Sum}) {
    CtcOptions o;
    o.reduction = r;
    EXPECT_TRUE(test::gradcheck(
        [&](const std::vector<Variable>& in) {
          return ctc_loss(ag::log_softmax(in[0], -1), targets, {6, 5, 3}, o).loss;
        },
        {test::rand64({6, 3, 4}, -1, 1, 8)}));
    // Straight on log_probs too (not only through a log_softmax): the true gradient, not PyTorch's.
    EXPECT_TRUE(test::gradcheck(
        [&](const std::vector<Variable>& in) {
          return ctc_loss(in[0], targets, {6, 5, 3}, o).loss;
        },
        {test::rand64({6, 3, 4}, -3, -0.5, 9)}));
  }
}

TEST(Ctc, BadInputNamesTheProblem) {
  const Variable lp(ops::log_softmax(test::rand64({4, 2, 3}), -1));
  EXPECT_THROW(ctc_loss(Variable(test::rand64({4, 3})), {{1}}, {4}), ShapeError);
  EXPECT_THROW(ctc_loss(lp, {{1}}, {4, 4}), ShapeError);       // one target for two rows
  EXPECT_THROW(ctc_loss(lp, {{1}, {1}}, {4, 5}), ValueError);  // longer than T
  EXPECT_THROW(ctc_loss(lp, {{1}, {0}}, {4, 4}), IndexError);  // the blank as a label
  try {
    ctc_loss(lp, {{1}, {3}}, {4, 4});
    FAIL() << "label 3 of 3 classes accepted";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cw
