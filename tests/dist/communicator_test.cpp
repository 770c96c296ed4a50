// dist/ in a single process: row shards, the single-process communicator (every collective the
// identity, counted in its stats), the differentiable gather in a world of one, the gradient
// buckets, and the process-wide communicator of a process that no MPI launcher started.
#include "dist/communicator.h"

#include <gtest/gtest.h>

#include "autograd/functions.h"
#include "dist/differentiable.h"
#include "dist/gradient_reducer.h"
#include "support/check.h"

namespace cw {
namespace {

TEST(Dist, ShardsAreContiguousAndCoverTheBatch) {
  for (int64_t total : {1, 7, 8, 10})
    for (int world = 1; world <= 4; ++world) {
      if (total < world) continue;
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        const dist::RowShard s = dist::shard_rows(total, r, world);
        EXPECT_EQ(s.offset, next) << total << " rows, rank " << r << " of " << world;
        EXPECT_GE(s.count, total / world);
        EXPECT_LE(s.count, total / world + 1);
        next += s.count;
      }
      EXPECT_EQ(next, total);
    }
  EXPECT_EQ(dist::shard_counts(10, 3), (std::vector<int64_t>{4, 3, 3}));
  EXPECT_THROW(dist::shard_rows(4, 2, 2), ValueError);
}

TEST(Dist, SingleProcessCollectivesAreTheIdentity) {
  dist::SingleProcessCommunicator c;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.world_size(), 1);
  Tensor t = test::f64({1, 2, 3}, {3});
  c.all_reduce(t, dist::ReduceOp::Avg);
  c.broadcast(t, 0);
  EXPECT_TRUE(test::all_close(t, test::f64({1, 2, 3}, {3}), 0, 0));
  const Tensor g = c.all_gather_rows(test::f64({1, 2, 3, 4}, {2, 2}), {2});
  EXPECT_TRUE(test::all_close(g, test::f64({1, 2, 3, 4}, {2, 2}), 0, 0));
  EXPECT_EQ(c.stats().calls, 3);
  EXPECT_EQ(c.stats().bytes, 3 * 8 + 3 * 8 + 4 * 8);
  EXPECT_THROW(c.all_gather_rows(test::f64({1, 2}, {1, 2}), {2}), ShapeError);
  EXPECT_THROW(c.all_gather_rows(test::f64({1, 2}, {1, 2}), {1, 1}), ShapeError);
  Tensor strided = test::f64({1, 2, 3, 4}, {2, 2}).t();
  EXPECT_THROW(c.all_reduce(strided), ValueError);
  c.reset_stats();
  EXPECT_EQ(c.stats().calls, 0);
}

TEST(Dist, DifferentiableGatherInAWorldOfOnePassesTheGradient) {
  dist::SingleProcessCommunicator c;
  const Variable x(test::f64({1, 2, 3, 4}, {2, 2}), true);
  const Variable y = dist::all_gather_rows(c, x, {2});
  ag::sum(ag::mul(y, y)).backward();
  EXPECT_TRUE(test::all_close(x.grad(), test::f64({2, 4, 6, 8}, {2, 2}), 0, 0));
  const Variable z(test::f64({1, 2}, {2}), true);
  ag::sum(ag::mul(dist::all_reduce_sum(c, z), 3.0)).backward();
  EXPECT_TRUE(test::all_close(z.grad(), test::f64({3, 3}, {2}), 0, 0));
}

TEST(Dist, GradientBucketsFollowTheSizeLimit) {
  dist::SingleProcessCommunicator c;
  std::vector<Variable> params;
  for (int64_t n : {100, 100, 300, 10}) params.emplace_back(ops::zeros({n}, DType::F32), true);
  params.emplace_back(ops::zeros({5}, DType::F64), true);  // another dtype: its own bucket
  dist::GradientReducer r(c, params, 800);                 // 200 f32 per bucket
  EXPECT_EQ(r.buckets(), 4);                               // {100, 100}, {300}, {10}, {5 f64}
  params[0].set_grad(ops::ones({100}, DType::F32));
  r.average();  // world of one: untouched
  EXPECT_EQ(params[0].grad().numel(), 100);
  EXPECT_FALSE(params[1].grad().defined());
  EXPECT_THROW(dist::GradientReducer(c, params, 0), ValueError);
}

TEST(Dist, WithoutALauncherTheWorldIsOneProcess) {
  if (dist::launched_by_mpi()) GTEST_SKIP() << "this test binary was started by an MPI launcher";
  dist::Communicator& w = dist::world("auto", 10);
  EXPECT_EQ(w.name(), "single");
  EXPECT_EQ(w.world_size(), 1);
  EXPECT_EQ(&dist::world("mpi", 5), &w);  // made once per process
}

}  // namespace
}  // namespace cw
