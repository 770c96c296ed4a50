// CUDA vs CPU parity for the fused softmax cross-entropy passes (ops::xent_*: row log-sum-exps
// and first argmax, the online column state over several row blocks and slabs, the gradient
// block) and for the contrastive losses built on them, over the whole option grid of
// tests/losses/loss_reference.h, in whole-matrix and block mode: loss, metrics and gradients.
#include <cmath>
#include <limits>
#include <string>

#include "cuda_test_util.h"
#include "losses/contrastive_block.h"
#include "losses/contrastive_loss.h"
#include "losses/loss_reference.h"

namespace cw::test {
namespace {

class CudaXentParity : public CudaTest {};

// An (n, n) logit matrix with ties that the first-argmax rule must break as the CPU does: some
// rows repeat their pair's value at an earlier column (and that value is the row's max), some
// columns repeat it at an earlier row, across row blocks.
Tensor logits_with_ties(int64_t n, DType dt) {
  Tensor s = rnd({n, n}, dt, -4, 4, 21).to(DType::F64).contiguous();
  double* p = s.data<double>();
  for (int64_t i = 5; i < n; i += 7) p[i * n + i] = p[i * n + 2] = 9.0;    // row i: column 2 wins
  for (int64_t j = 90; j < n; j += 11) p[j * n + j] = p[3 * n + j] = 9.5;  // column j: row 3 wins
  return s.to(dt);
}

struct PassResults {
  std::vector<XentRowTotals> rows;
  std::vector<XentGradTotals> grads;
  Tensor lse, r, grad;
  XentColumnState st;
};

// Row and column passes over row blocks [0, 70), [70, 200), [200, n) (the middle one spans three
// column slabs), then the gradient of each block, on `device`.
PassResults run_passes(const Tensor& s_host, const Tensor& w_host, Device device, const XentGradCoeffs& c) {
  const int64_t n = s_host.size(0);
  const DType dt = s_host.dtype();
  PassResults out;
  out.lse = ops::zeros({n}, DType::F64, device);
  out.r = ops::zeros({n}, DType::F64, device);
  out.st = ops::xent_column_state(n, true, device);
  const int64_t cuts[] = {0, 70, 200, n};
  for (int b = 0; b < 3; ++b) {
    const Tensor s = s_host.narrow(0, cuts[b], cuts[b + 1] - cuts[b]).contiguous().to(device);
    const Tensor w = w_host.narrow(0, cuts[b], cuts[b + 1] - cuts[b]).contiguous().to(device);
    out.rows.push_back(ops::xent_row_pass(s, w, cuts[b], true, out.lse, out.r));
    ops::xent_column_pass(s, w, cuts[b], true, true, out.st);
  }
  const Tensor clse = ops::add(out.st.max, ops::log(out.st.sum)).to(dt);
  const Tensor cinv = ops::div(1.0, out.st.wsum).to(dt);
  std::vector<Tensor> g;
  for (int b = 0; b < 3; ++b) {
    // clone: on the CPU .to() would hand back s_host's own rows, which the pass overwrites.
    Tensor s = s_host.narrow(0, cuts[b], cuts[b + 1] - cuts[b]).clone().to(device);
    const Tensor w = w_host.narrow(0, cuts[b], cuts[b + 1] - cuts[b]).contiguous().to(device);
    out.grads.push_back(ops::xent_gradient_(s, w, cuts[b], c, out.lse, clse, out.r, cinv));
    g.push_back(s.to(Device::cpu()));
  }
  out.grad = ops::concat(g, 0);
  return out;
}

TEST_F(CudaXentParity, RowColumnAndGradientPassesMatchTheCpu) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double at = dt == DType::F32 ? 1e-5 : 1e-12, rt = dt == DType::F32 ? 1e-5 : 1e-11;
    const int64_t n = 300;  // not a multiple of a warp or of the block width
    const Tensor s = logits_with_ties(n, dt), w = rnd({n, n}, dt, 0, 1, 22);
    XentGradCoeffs c;
    c.alpha = 0.7 / n;
    c.beta = 0.3 / n;
    c.diag = 0.2 / n;
    c.weighted_rows = c.weighted_cols = c.target_terms = true;
    const PassResults cpu = run_passes(s, w, Device::cpu(), c);
    const PassResults dev = run_passes(s, w, gpu(), c);
    const std::string where = std::string(dtype_name(dt));
    for (int b = 0; b < 3; ++b) {
      EXPECT_EQ(dev.rows[b].correct, cpu.rows[b].correct) << where << " block " << b;
      EXPECT_NEAR(dev.rows[b].diag, cpu.rows[b].diag, at * n) << where << " block " << b;
      EXPECT_NEAR(dev.rows[b].total, cpu.rows[b].total, at * n * n) << where << " block " << b;
      EXPECT_NEAR(dev.rows[b].target_term, cpu.rows[b].target_term, at * n) << where << " block " << b;
      EXPECT_NEAR(dev.grads[b].gs, cpu.grads[b].gs, at * n) << where << " block " << b;
      EXPECT_NEAR(dev.grads[b].row_term, cpu.grads[b].row_term, at * n) << where << " block " << b;
      EXPECT_NEAR(dev.grads[b].col_term, cpu.grads[b].col_term, at * n) << where << " block " << b;
    }
    EXPECT_TRUE(all_close(dev.lse.to(Device::cpu()), cpu.lse, at, rt)) << where << " lse";
    EXPECT_TRUE(all_close(dev.r.to(Device::cpu()), cpu.r, at * n, rt)) << where << " r";
    EXPECT_TRUE(all_close(dev.st.max.to(Device::cpu()), cpu.st.max, 0, 0)) << where << " column max";
    EXPECT_TRUE(all_close(dev.st.argmax.to(Device::cpu()), cpu.st.argmax, 0, 0)) << where << " column argmax";
    EXPECT_TRUE(all_close(dev.st.sum.to(Device::cpu()), cpu.st.sum, at, rt)) << where << " column sum";
    EXPECT_TRUE(all_close(dev.st.wdot.to(Device::cpu()), cpu.st.wdot, at * n, rt)) << where << " column wdot";
    EXPECT_TRUE(all_close(dev.st.wsum.to(Device::cpu()), cpu.st.wsum, at * n, rt)) << where << " column wsum";
    EXPECT_TRUE(all_close(dev.grad, cpu.grad, at, rt)) << where << " gradient block";
  }
}

// The losses end to end: loss, metrics and the gradients of p, q and the log scale, CUDA vs CPU,
// for every option of the grid, whole-matrix and block mode (three row blocks), f32 and f64.
TEST_F(CudaXentParity, ContrastiveLossesMatchTheCpu) {
  const int64_t n = 70, d = 12;
  for (DType dt : {DType::F32, DType::F64}) {
    // f32: GEMMs in another summation order, then exp and long sums: 1e-4 on values of ~1-5.
    const double tol = dt == DType::F32 ? 1e-4 : 1e-10;
    const Tensor zp = rnd({n, d}, dt, -1, 1, 31), zq = rnd({n, d}, dt, -1, 1, 32);
    const Tensor source = rnd({n, d + 3}, dt, -1, 1, 33);
    for (const auto& [name, base] : option_grid()) {
      for (bool whole : {true, false}) {
        losses::ContrastiveConfig cfg = base;
        if (!whole) {
          cfg.whole_matrix_max_mb = 0;
          cfg.block_rows = 30;
        }
        const std::string where = name + (whole ? " whole" : " blocks") + " " + dtype_name(dt);
        auto run = [&](Device dev, std::vector<Tensor>& grads) {
          Variable p(zp.to(dev), true), q(zq.to(dev), true);
          Variable t(ops::scalar(std::log(1 / 0.07), dt).to(dev), true);
          const Tensor ws = cfg.loss == losses::LossKind::CWCL ? source.to(dev) : Tensor();
          const losses::ContrastiveOutput o = losses::contrastive_loss(p, q, t, cfg, ws);
          o.loss.backward();
          grads = {p.grad().to(Device::cpu()), q.grad().to(Device::cpu()), t.grad().to(Device::cpu())};
          return std::make_pair(o.loss.data().to(Device::cpu()).to(DType::F64).item(), o.metrics);
        };
        std::vector<Tensor> g_cpu, g_dev;
        const auto [l_cpu, m_cpu] = run(Device::cpu(), g_cpu);
        const auto [l_dev, m_dev] = run(gpu(), g_dev);
        EXPECT_NEAR(l_dev, l_cpu, tol) << where;
        EXPECT_NEAR(m_dev.loss_p2q, m_cpu.loss_p2q, tol) << where;
        EXPECT_EQ(std::isnan(m_dev.loss_q2p), std::isnan(m_cpu.loss_q2p)) << where;
        if (!std::isnan(m_cpu.loss_q2p)) {
          EXPECT_NEAR(m_dev.loss_q2p, m_cpu.loss_q2p, tol) << where;
        }
        EXPECT_EQ(m_dev.acc_p2q, m_cpu.acc_p2q) << where;
        EXPECT_EQ(m_dev.acc_q2p, m_cpu.acc_q2p) << where;
        EXPECT_NEAR(m_dev.pos_sim, m_cpu.pos_sim, tol) << where;
        EXPECT_NEAR(m_dev.neg_sim, m_cpu.neg_sim, tol) << where;
        for (int k = 0; k < 3; ++k)
          EXPECT_TRUE(all_close(g_dev[k], g_cpu[k], tol, tol)) << where << " input " << k;
      }
    }
  }
}

// A non-finite embedding on the device is refused as on the CPU, naming the tensor and element.
TEST_F(CudaXentParity, NonFiniteInputsAreNamed) {
  Tensor zp = rnd({6, 4}, DType::F32, -1, 1, 51).contiguous();
  zp.data<float>()[2 * 4 + 3] = std::numeric_limits<float>::infinity();
  const Variable p(zp.to(gpu()), true), q(rnd({6, 4}, DType::F32, -1, 1, 52).to(gpu()));
  const Variable t(ops::scalar(2.0).to(gpu()), true);
  try {
    losses::contrastive_loss(p, q, t, {});
    ADD_FAILURE() << "accepted an infinite embedding";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("p (trained-tower embeddings) contains NaN or Inf (first at [2, 3]"),
              std::string::npos)
        << e.what();
  }
}

// The data-parallel row-block loss (one rank's rows against the gathered batch), CUDA vs CPU.
TEST_F(CudaXentParity, BlockLossMatchesTheCpu) {
  const int64_t n = 40, d = 8, row0 = 10, rows = 15;
  const Tensor zp = rnd({n, d}, DType::F64, -1, 1, 41), zq = rnd({n, d}, DType::F64, -1, 1, 42);
  for (const auto& [name, cfg] : option_grid()) {
    auto run = [&](Device dev, std::vector<Tensor>& grads) {
      Variable p(zp.to(dev), true), q(zq.to(dev), true), t(ops::scalar(2.0, DType::F64).to(dev), true);
      const losses::ContrastiveOutput o = losses::contrastive_loss_block(p, q, t, cfg, row0, rows);
      o.loss.backward();
      grads = {p.grad().to(Device::cpu()), q.grad().to(Device::cpu()), t.grad().to(Device::cpu())};
      return o.loss.data().to(Device::cpu()).item();
    };
    std::vector<Tensor> g_cpu, g_dev;
    const double l_cpu = run(Device::cpu(), g_cpu), l_dev = run(gpu(), g_dev);
    EXPECT_NEAR(l_dev, l_cpu, 1e-10) << name;
    for (int k = 0; k < 3; ++k)
      EXPECT_TRUE(all_close(g_dev[k], g_cpu[k], 1e-10, 1e-10)) << name << " input " << k;
  }
}

}  // namespace
}  // namespace cw::test
