// Run under mpirun (-np 2 and -np 3, from ctest): the MPI communicator's collectives, the
// differentiable all-gather and all-reduce, the global-batch contrastive loss across real ranks
// (its gradient equals the single-process gradient, f64, every option of
// tests/dist/block_loss_cases.h) and synchronized batch norm (the global batch's statistics).
// Every rank runs every test; a failure on any rank fails the job.
#include <gtest/gtest.h>

#include <cmath>

#include "../dist/block_loss_cases.h"
#include "autograd/functions.h"
#include "dist/communicator.h"
#include "dist/differentiable.h"
#include "dist/gradient_reducer.h"
#include "losses/contrastive_block.h"
#include "losses/contrastive_loss.h"
#include "nn/batch_norm.h"
#include "support/check.h"
#include "support/emulated_device.h"

namespace cw {
namespace {

dist::Communicator& comm() { return dist::world("mpi", 60); }

TEST(MpiCollectives, ReduceBroadcastGatherScatter) {
  dist::Communicator& c = comm();
  const int r = c.rank(), w = c.world_size();
  ASSERT_GE(w, 2) << "run under mpirun -np 2 or more";
  Tensor t = test::f64({static_cast<double>(r), 1.0}, {2});
  c.all_reduce(t, dist::ReduceOp::Sum);
  EXPECT_TRUE(test::all_close(t, test::f64({w * (w - 1) / 2.0, static_cast<double>(w)}, {2}), 0, 0));
  Tensor a = test::f64({static_cast<double>(r)}, {1});
  c.all_reduce(a, dist::ReduceOp::Avg);
  EXPECT_DOUBLE_EQ(a.item(), (w - 1) / 2.0);
  Tensor b = ops::full({3}, r == 1 ? 7.0 : -1.0, DType::F32);
  c.broadcast(b, 1);
  EXPECT_TRUE(test::all_close(b, ops::full({3}, 7.0, DType::F32), 0, 0));
  // Uneven rows: rank k holds k + 1 rows of value k.
  std::vector<int64_t> counts;
  for (int k = 0; k < w; ++k) counts.push_back(k + 1);
  const Tensor g = c.all_gather_rows(ops::full({r + 1, 2}, r, DType::F64), counts);
  ASSERT_EQ(g.size(0), w * (w + 1) / 2);
  for (int k = 0, row = 0; k < w; ++k)
    for (int j = 0; j <= k; ++j, ++row) EXPECT_EQ(g.data<double>()[row * 2], k) << "row " << row;
  const Tensor s = c.reduce_scatter_rows(ops::ones({w * (w + 1) / 2, 2}, DType::F64), counts);
  EXPECT_TRUE(test::all_close(s, ops::full({r + 1, 2}, w, DType::F64), 0, 0));
  c.barrier();
}

TEST(MpiCollectives, GradientsAreAveragedInBuckets) {
  dist::Communicator& c = comm();
  std::vector<Variable> params = {Variable(ops::zeros({3}, DType::F32), true),
                                  Variable(ops::zeros({2, 2}, DType::F32), true)};
  params[0].set_grad(ops::full({3}, c.rank(), DType::F32));
  if (c.rank() == 0) params[1].set_grad(ops::full({2, 2}, 4.0 * c.world_size(), DType::F32));
  dist::GradientReducer r(c, params, 12);  // one tensor per bucket
  EXPECT_EQ(r.buckets(), 2);
  r.average();
  EXPECT_TRUE(test::all_close(params[0].grad(), ops::full({3}, (c.world_size() - 1) / 2.0, DType::F32)));
  EXPECT_TRUE(test::all_close(params[1].grad(), ops::full({2, 2}, 4.0, DType::F32)));  // undefined = 0
}

TEST(MpiGlobalBatchLoss, GradientEqualsTheSingleProcessGradient) {
  dist::Communicator& c = comm();
  const int64_t n = 10;  // uneven over 3 ranks: 4 + 3 + 3
  const std::vector<int64_t> counts = dist::shard_counts(n, c.world_size());
  const dist::RowShard s = dist::shard_rows(n, c.rank(), c.world_size());
  const test::BlockLossInputs in = test::block_loss_inputs(n);
  for (const auto& cs : test::block_loss_cases()) {
    SCOPED_TRACE(cs.name + ", rank " + std::to_string(c.rank()) + " of " + std::to_string(c.world_size()));
    const Tensor ws = cs.weight_source ? in.e : Tensor();
    // Single process, on every rank: the reference.
    const Variable p(in.p.clone(), true), q(in.q.clone(), cs.q_grad);
    const Variable t = losses::make_log_scale(cs.cfg, DType::F64);
    const losses::ContrastiveOutput ref = losses::contrastive_loss(p, q, t, cs.cfg, ws);
    ref.loss.backward();
    // This rank's rows only, gathered; its block of the loss.
    const Variable pl(in.p.narrow(0, s.offset, s.count).clone(), true);
    const Variable ql(in.q.narrow(0, s.offset, s.count).clone(), cs.q_grad);
    const Variable tl = losses::make_log_scale(cs.cfg, DType::F64);
    const Variable p_all = dist::all_gather_rows(c, pl, counts);
    const Variable q_all = cs.q_grad ? dist::all_gather_rows(c, ql, counts) : Variable(in.q);
    const losses::ContrastiveOutput out =
        losses::contrastive_loss_block(p_all, q_all, tl, cs.cfg, s.offset, s.count, ws);
    out.loss.backward();
    Tensor sums = test::f64({out.loss.item(), out.metrics.acc_p2q, tl.grad().item()}, {3});
    c.all_reduce(sums, dist::ReduceOp::Sum);
    EXPECT_NEAR(sums.data<double>()[0], ref.loss.item(), 1e-12);
    EXPECT_NEAR(sums.data<double>()[1], ref.metrics.acc_p2q, 1e-12);
    EXPECT_NEAR(sums.data<double>()[2], t.grad().item(), 1e-12);
    EXPECT_TRUE(test::all_close(pl.grad(), p.grad().narrow(0, s.offset, s.count), 1e-12, 1e-10));
    if (cs.q_grad) {
      EXPECT_TRUE(test::all_close(ql.grad(), q.grad().narrow(0, s.offset, s.count), 1e-12, 1e-10));
    }
  }
}

TEST(MpiSyncBatchNorm, StatisticsAndGradientsOfTheGlobalBatch) {
  dist::Communicator& c = comm();
  const int64_t n = 2 * c.world_size(), C = 3, T = 5;
  const dist::RowShard s = dist::shard_rows(n, c.rank(), c.world_size());
  const Tensor x = test::rand64({n, C, T}, -2, 2, 21);
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < n; ++b) lengths.push_back(2 + b % 4);
  Tensor mask = ops::zeros({n, T}, DType::F64);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t t = lengths[b]; t < T; ++t) mask.data<double>()[b * T + t] = 1;
  const Tensor w = test::rand64({n, C, T}, -1, 1, 22);  // a loss weight per element

  nn::BatchNorm1d ref(C, 1e-5, 0.1, true, DType::F64);
  const Variable xr(x.clone(), true);
  ag::sum(ag::mul(ref.forward(xr, mask), Variable(w))).backward();

  nn::BatchNorm1d bn(C, 1e-5, 0.1, true, DType::F64);
  nn::set_batch_norm_replica_sum([&c](const Variable& v) { return dist::all_reduce_sum(c, v); });
  const Variable xl(x.narrow(0, s.offset, s.count).clone(), true);
  const Variable y = bn.forward(xl, mask.narrow(0, s.offset, s.count).contiguous());
  ag::sum(ag::mul(y, Variable(w.narrow(0, s.offset, s.count).contiguous()))).backward();
  nn::set_batch_norm_replica_sum({});
  EXPECT_TRUE(test::all_close(xl.grad(), xr.grad().narrow(0, s.offset, s.count), 1e-12, 1e-10));
  EXPECT_TRUE(test::all_close(bn.running_mean(), ref.running_mean(), 1e-12, 1e-10));
  EXPECT_TRUE(test::all_close(bn.running_var(), ref.running_var(), 1e-12, 1e-10));
  Tensor gw = bn.weight.grad().clone();
  c.all_reduce(gw, dist::ReduceOp::Sum);
  EXPECT_TRUE(test::all_close(gw, ref.weight.grad(), 1e-12, 1e-10));
}

// Device tensors (here the emulated device of tests/support/emulated_device.h, which keeps
// device rules on the CPU): the collectives copy them through the host and leave the results on
// the device; the gradient reducer packs on the device; the global-batch loss's gradient across
// ranks equals the single-process one as on the CPU.
TEST(MpiDeviceTensors, CollectivesReducerAndGlobalLossKeepTheDevice) {
  test::install_emulated_cuda();
  const Device dev = Device::cuda(0);
  dist::Communicator& c = comm();
  const int r = c.rank(), w = c.world_size();
  Tensor t = test::f64({static_cast<double>(r), 1.0}, {2}).to(dev);
  c.all_reduce(t, dist::ReduceOp::Avg);
  ASSERT_EQ(t.device(), dev);
  EXPECT_TRUE(test::all_close(t.to(Device::cpu()), test::f64({(w - 1) / 2.0, 1.0}, {2}), 0, 0));
  Tensor b = ops::full({3}, r == 1 ? 7.0 : -1.0, DType::F32, dev);
  c.broadcast(b, 1);
  EXPECT_TRUE(test::all_close(b.to(Device::cpu()), ops::full({3}, 7.0, DType::F32), 0, 0));
  std::vector<int64_t> counts;
  for (int k = 0; k < w; ++k) counts.push_back(k + 1);
  const Tensor g = c.all_gather_rows(ops::full({r + 1, 2}, r, DType::F64, dev), counts);
  ASSERT_EQ(g.device(), dev);
  EXPECT_EQ(g.to(Device::cpu()).data<double>()[(w * (w + 1) / 2 - 1) * 2], w - 1);  // the last rank's row
  const Tensor sc = c.reduce_scatter_rows(ops::ones({w * (w + 1) / 2, 2}, DType::F64, dev), counts);
  ASSERT_EQ(sc.device(), dev);
  EXPECT_TRUE(test::all_close(sc.to(Device::cpu()), ops::full({r + 1, 2}, w, DType::F64), 0, 0));

  std::vector<Variable> params = {Variable(ops::zeros({3}, DType::F32, dev), true),
                                  Variable(ops::zeros({2, 2}, DType::F32, dev), true)};
  params[0].set_grad(ops::full({3}, r, DType::F32, dev));
  if (r == 0) params[1].set_grad(ops::full({2, 2}, 4.0 * w, DType::F32, dev));
  dist::GradientReducer red(c, params, 1 << 20);  // one bucket for both
  red.average();
  ASSERT_EQ(params[1].grad().device(), dev);
  EXPECT_TRUE(test::all_close(params[0].grad().to(Device::cpu()), ops::full({3}, (w - 1) / 2.0, DType::F32)));
  EXPECT_TRUE(test::all_close(params[1].grad().to(Device::cpu()), ops::full({2, 2}, 4.0, DType::F32)));

  // One case of the global-batch loss, CWCL with the exp kernel, every tensor on the device.
  const int64_t n = 10;
  const std::vector<int64_t> rows = dist::shard_counts(n, w);
  const dist::RowShard s = dist::shard_rows(n, r, w);
  const test::BlockLossInputs in = test::block_loss_inputs(n);
  losses::ContrastiveConfig cfg;
  cfg.kernel = losses::WeightKernel::Exp;
  const Variable p(in.p.clone(), true), q(in.q.clone());
  const losses::ContrastiveOutput ref =
      losses::contrastive_loss(p, q, losses::make_log_scale(cfg, DType::F64), cfg);
  ref.loss.backward();
  const Variable pl(in.p.narrow(0, s.offset, s.count).contiguous().to(dev), true);
  const Variable p_all = dist::all_gather_rows(c, pl, rows);
  const Variable tl(ops::scalar(std::log(1 / cfg.init_temperature), DType::F64, dev), true);
  const losses::ContrastiveOutput out =
      losses::contrastive_loss_block(p_all, Variable(in.q.to(dev)), tl, cfg, s.offset, s.count);
  out.loss.backward();
  Tensor total = out.loss.data().to(Device::cpu()).clone();
  c.all_reduce(total, dist::ReduceOp::Sum);
  EXPECT_NEAR(total.item(), ref.loss.item(), 1e-12);
  ASSERT_EQ(pl.grad().device(), dev);
  EXPECT_TRUE(
      test::all_close(pl.grad().to(Device::cpu()), p.grad().narrow(0, s.offset, s.count), 1e-12, 1e-10));
}

}  // namespace
}  // namespace cw
