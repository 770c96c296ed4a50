// InfoNCE and CWCL as one autograd node each (see contrastive_loss.h): input checks, the L2
// normalization and the logit scale around the fused kernel of contrastive_fused.cpp, the
// metrics, and ag::record with the hand-written backward.
#include "losses/contrastive_loss.h"

#include <cmath>
#include <string>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "losses/contrastive_fused.h"
#include "losses/l2_normalize.h"

namespace cw::losses {
namespace {

// NaN or Inf would otherwise flow silently into every row's log-sum-exp and every gradient:
// stop at the input and say which tensor and which element.
void check_finite(const Tensor& t, const char* name) {
  // Off the CPU, one reduction decides (x - x is 0 for every finite x, NaN otherwise), so a good
  // batch costs one scalar read, not a copy of the tensor; the copy below only finds the culprit.
  if (!t.device().is_cpu() && std::isfinite(ops::sum(ops::sub(t, t)).to(Device::cpu()).to(DType::F64).item()))
    return;
  const Tensor c = t.to(Device::cpu()).contiguous();
  int64_t bad = -1;
  dispatch_float(c.dtype(), "contrastive_loss", [&]<class T>() {
    const T* x = c.data<T>();
    const int64_t n = c.numel();
    for (int64_t i = 0; i < n && bad < 0; ++i)
      if (!std::isfinite(x[i])) bad = i;
  });
  if (bad < 0) return;
  std::string where;
  for (int64_t d = c.dim() - 1, rem = bad; d >= 0; --d) {
    where = std::to_string(rem % c.size(d)) + (where.empty() ? "" : ", ") + where;
    rem /= c.size(d);
  }
  throw ValueError(detail::cat("contrastive_loss: ", name, " contains NaN or Inf (first at [", where, "], ",
                               describe(t), ")"));
}

void check_embeddings(const Tensor& t, const char* name, const Tensor& p) {
  CW_CHECK(t.dim() == 2, ShapeError, "contrastive_loss: ", name, " must be (N, D), got ", describe(t));
  CW_CHECK(is_floating(t.dtype()), DTypeError, "contrastive_loss: ", name, " must be f32 or f64, got ",
           describe(t));
  CW_CHECK(t.dtype() == p.dtype(), DTypeError, "contrastive_loss: ", name, " is ", describe(t), " but p is ",
           describe(p));
  CW_CHECK(t.device() == p.device(), DeviceError, "contrastive_loss: ", name, " is on ", t.device().str(),
           " but p is on ", p.device().str());
  CW_CHECK(t.size(0) == p.size(0), ShapeError, "contrastive_loss: ", name, " has ", t.size(0),
           " rows but p has ", p.size(0), " (one row per pair)");
}

}  // namespace

ContrastiveOutput contrastive_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                                   const ContrastiveConfig& cfg, const Tensor& weight_source) {
  cfg.validate();
  CW_CHECK(p.defined() && q.defined() && log_scale.defined(), ValueError,
           "contrastive_loss: p, q and log_scale must all be defined");
  const Tensor& pt = p.data();
  check_embeddings(pt, "p", pt);
  check_embeddings(q.data(), "q", pt);
  CW_CHECK(q.size(1) == p.size(1), ShapeError, "contrastive_loss: p ", describe(pt), " and q ",
           describe(q.data()), " must have the same width");
  CW_CHECK(p.size(0) >= 1, ValueError, "contrastive_loss: empty batch (N = 0)");
  CW_CHECK(log_scale.numel() == 1 && is_floating(log_scale.dtype()), ShapeError,
           "contrastive_loss: log_scale must be one floating-point value, got ", describe(log_scale.data()));
  const bool cwcl = cfg.loss == LossKind::CWCL;
  if (cwcl && weight_source.defined()) check_embeddings(weight_source, "weight_source", pt);
  check_finite(pt, "p (trained-tower embeddings)");
  check_finite(q.data(), "q (frozen-tower embeddings)");
  check_finite(log_scale.data(), "log_scale");
  if (cwcl && weight_source.defined()) check_finite(weight_source, "weight_source");

  // scale = min(exp(t), max): CLIP's learnable temperature with its clamp at 100.
  const double t = log_scale.data().to(Device::cpu()).to(DType::F64).item(), raw_scale = std::exp(t);
  const bool clamped = raw_scale > cfg.max_logit_scale;
  const double scale = clamped ? cfg.max_logit_scale : raw_scale;

  NormalizedRows np, nq;
  fused::Inputs in;
  if (cfg.normalize) {
    np = l2_normalize_rows(pt, cfg.normalize_eps);
    nq = l2_normalize_rows(q.data(), cfg.normalize_eps);
    in.p = np.unit;
    in.q = nq.unit;
  } else {
    in.p = pt.contiguous();
    in.q = q.data().contiguous();
  }
  if (cwcl) {
    // The weights are cosines of the frozen tower, whatever cfg.normalize says.
    if (weight_source.defined())
      in.e = l2_normalize_rows(weight_source, cfg.normalize_eps).unit;
    else
      in.e = cfg.normalize ? nq.unit : l2_normalize_rows(q.data(), cfg.normalize_eps).unit;
  }
  in.scale = scale;

  // Whole-matrix mode when a gradient will be wanted and N x N fits the budget (config.h).
  const int64_t n_rows = p.size(0);
  const bool grad_wanted =
      GradMode::is_enabled() && (p.requires_grad() || q.requires_grad() || log_scale.requires_grad());
  const double whole_bytes =
      static_cast<double>(n_rows) * static_cast<double>(n_rows) * dtype_size(pt.dtype());
  const bool whole =
      grad_wanted && whole_bytes <= static_cast<double>(cfg.whole_matrix_max_mb) * 1024.0 * 1024.0;
  const fused::TargetPlan plan = fused::make_plan(cfg, n_rows, in.e.defined() ? in.e.size(1) : 0, whole);
  fused::Forward fwd =
      whole ? fused::forward_whole(in, plan, cfg.block_rows, p.requires_grad(), q.requires_grad())
            : fused::forward(in, plan, cfg.block_rows);

  ContrastiveOutput out;
  const double n = static_cast<double>(p.size(0));
  ContrastiveMetrics& m = out.metrics;
  m.loss_p2q = fwd.loss_rows;
  m.loss_q2p = fwd.loss_cols;
  m.acc_p2q = static_cast<double>(fwd.correct_rows) / n;
  m.acc_q2p = static_cast<double>(fwd.correct_cols) / n;
  // Mean cosine of the pairs and of the rest, from the logits' sums the row pass made (s = scale
  // times the cosine, or the raw dot product when the rows are not normalized).
  m.pos_sim = fwd.diag_sum / scale / n;
  m.neg_sim = n > 1 ? (fwd.total_sum - fwd.diag_sum) / scale / (n * (n - 1)) : 0.0;
  m.logit_scale = scale;

  const char* name = cwcl ? "cwcl_loss" : "info_nce_loss";
  // After the whole-matrix forward the gradients are made: keep them, not the inputs.
  if (fwd.saved.eager) in = fused::Inputs{Tensor(), Tensor(), Tensor(), scale};
  out.loss =
      ag::record(name, ops::scalar(fwd.loss, pt.dtype(), pt.device()), {p, q, log_scale},
                 [in, plan, saved = std::move(fwd.saved), np, nq, normalize = cfg.normalize, clamped, scale,
                  ls = log_scale.data()](const Grads& grads, const std::vector<bool>& need) {
                   const double upstream = grads[0].to(Device::cpu()).to(DType::F64).item();
                   fused::Grads g = fused::backward(in, plan, saved, upstream, need[0], need[1], need[2]);
                   Grads r(3);
                   if (need[0]) r[0] = normalize ? l2_normalize_rows_backward(g.p, np) : g.p;
                   if (need[1]) r[1] = normalize ? l2_normalize_rows_backward(g.q, nq) : g.q;
                   // dL/dt = dL/dscale * dscale/dt = dL/dscale * exp(t), or 0 on the clamp.
                   if (need[2])
                     r[2] = ops::full(ls.shape(), clamped ? 0.0 : g.scale * scale, ls.dtype(), ls.device());
                   return r;
                 });
  return out;
}

ContrastiveOutput info_nce_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                                const ContrastiveConfig& cfg) {
  ContrastiveConfig c = cfg;
  c.loss = LossKind::InfoNCE;
  return contrastive_loss(p, q, log_scale, c);
}

ContrastiveOutput cwcl_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                            const ContrastiveConfig& cfg, const Tensor& weight_source) {
  ContrastiveConfig c = cfg;
  c.loss = LossKind::CWCL;
  return contrastive_loss(p, q, log_scale, c, weight_source);
}

Variable make_log_scale(const ContrastiveConfig& cfg, DType dtype) {
  cfg.validate();
  return Variable(ops::scalar(std::log(1.0 / cfg.init_temperature), dtype), cfg.learn_temperature);
}

}  // namespace cw::losses
