// The global-batch ("local") contrastive loss of losses/contrastive_block.h, split into row blocks
// inside one process: the blocks' losses sum to the single-process loss of contrastive_loss.h,
// the sum of their gradients with respect to the gathered P (what the all-gather's backward
// makes on each rank) is the single-process gradient, and so are Q's and the scale's. Runs
// without MPI; tests/dist_mpi repeats it across real ranks.
#include <gtest/gtest.h>

#include "block_loss_cases.h"
#include "dist/communicator.h"
#include "losses/contrastive_block.h"
#include "losses/contrastive_loss.h"

namespace cw {
namespace {

// Sums over blocks of {loss, dP, dQ, dt} against the single-process values, for one split.
void check_split(const test::BlockLossCase& c, int64_t n, int world) {
  SCOPED_TRACE(c.name + ", N = " + std::to_string(n) + ", " + std::to_string(world) + " blocks");
  const test::BlockLossInputs in = test::block_loss_inputs(n);
  const Tensor ws = c.weight_source ? in.e : Tensor();
  const Variable p(in.p.clone(), true), q(in.q.clone(), c.q_grad);
  const Variable t = losses::make_log_scale(c.cfg, DType::F64);
  const losses::ContrastiveOutput ref = losses::contrastive_loss(p, q, t, c.cfg, ws);
  ref.loss.backward();

  double loss = 0, loss_rows = 0, acc_rows = 0, acc_cols = 0, pos = 0, neg = 0;
  Tensor dp = ops::zeros({n, 6}, DType::F64), dq = ops::zeros({n, 6}, DType::F64);
  double dt = 0;
  for (int r = 0; r < world; ++r) {
    const dist::RowShard s = dist::shard_rows(n, r, world);
    const Variable pb(in.p.clone(), true), qb(in.q.clone(), c.q_grad);
    const Variable tb = losses::make_log_scale(c.cfg, DType::F64);
    const losses::ContrastiveOutput out =
        losses::contrastive_loss_block(pb, qb, tb, c.cfg, s.offset, s.count, ws);
    out.loss.backward();
    loss += out.loss.item();
    loss_rows += out.metrics.loss_p2q;
    acc_rows += out.metrics.acc_p2q;
    acc_cols += out.metrics.acc_q2p;
    pos += out.metrics.pos_sim;
    neg += out.metrics.neg_sim;
    dp = ops::add(dp, pb.grad());
    if (c.q_grad) dq = ops::add(dq, qb.grad());
    dt += tb.grad().item();
  }
  EXPECT_NEAR(loss, ref.loss.item(), 1e-12);
  EXPECT_NEAR(loss_rows, ref.metrics.loss_p2q, 1e-12);
  EXPECT_NEAR(acc_rows, ref.metrics.acc_p2q, 1e-12);
  EXPECT_NEAR(acc_cols, ref.metrics.acc_q2p, 1e-12);
  EXPECT_NEAR(pos, ref.metrics.pos_sim, 1e-12);
  EXPECT_NEAR(neg, ref.metrics.neg_sim, 1e-12);
  EXPECT_TRUE(test::all_close(dp, p.grad(), 1e-12, 1e-10));
  if (c.q_grad) {
    EXPECT_TRUE(test::all_close(dq, q.grad(), 1e-12, 1e-10));
  }
  EXPECT_NEAR(dt, t.grad().item(), 1e-12);
}

TEST(BlockLoss, BlocksSumToTheSingleProcessLossAndGradient) {
  for (const auto& c : test::block_loss_cases())
    for (int world : {1, 2, 3, 4}) check_split(c, 10, world);
}

TEST(BlockLoss, ClampedScaleHasNoGradient) {
  for (const auto& c : test::block_loss_cases()) {
    if (c.name != "cwcl_unnormalized_clamped") continue;
    const test::BlockLossInputs in = test::block_loss_inputs(6);
    const Variable p(in.p, true), t = losses::make_log_scale(c.cfg, DType::F64);
    losses::contrastive_loss_block(p, Variable(in.q), t, c.cfg, 0, 3).loss.backward();
    EXPECT_EQ(t.grad().item(), 0.0);
  }
}

TEST(BlockLoss, BadBlocksAndInputsAreNamed) {
  const test::BlockLossInputs in = test::block_loss_inputs(4);
  const losses::ContrastiveConfig cfg;
  const Variable p(in.p, true), q(in.q), t = losses::make_log_scale(cfg, DType::F64);
  for (auto [row0, rows] : {std::pair<int64_t, int64_t>{3, 2}, {-1, 1}, {0, 0}}) {
    try {
      (void)losses::contrastive_loss_block(p, q, t, cfg, row0, rows);
      ADD_FAILURE() << "block [" << row0 << ", " << row0 + rows << ") accepted";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("block ["), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)losses::contrastive_loss_block(p, Variable(in.q.narrow(0, 0, 3)), t, cfg, 0, 2),
               ShapeError);
  Tensor bad = in.p.clone();
  bad.data<double>()[5] = NAN;
  try {
    (void)losses::contrastive_loss_block(Variable(bad, true), q, t, cfg, 0, 2);
    ADD_FAILURE() << "NaN accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cw
