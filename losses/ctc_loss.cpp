// CTC loss (see ctc_loss.h). For row b with extended labels l' = (blank, l_1, blank, ..., l_L,
// blank), S = 2L + 1, and y_t(k) = exp(log_probs[t, b, k]):
//   alpha_t(s) = y_t(l'_s) (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [l'_s != blank, l'_s != l'_{s-2}]
//   alpha_{t-1}(s-2)) beta_t(s)  = y_t(l'_s) (beta_{t+1}(s)  + beta_{t+1}(s+1)  + [l'_s != blank, l'_s !=
//   l'_{s+2}] beta_{t+1}(s+2)) p = alpha_{T-1}(S-1) + alpha_{T-1}(S-2),   loss = -log p
// and alpha_t(s) beta_t(s) / y_t(l'_s) is the probability mass of the alignments through s at t,
// so d loss / d log_probs[t, b, k] = -(1/p) sum_{s: l'_s = k} alpha_t(s) beta_t(s) / y_t(k).
// All in log space. (PyTorch returns exp(log_probs) minus that mass, the gradient w.r.t. the
// logits in front of a log_softmax; after the log_softmax's backward both give the same.)
#include "losses/ctc_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/functions.h"
#include "core/error.h"
#include "core/ops.h"

namespace cw::losses {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double log_add(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

// One row: fills grad (T_b x C, row-major, zero elsewhere) with d(-log p)/d log_probs and
// returns -log p. lp(t, k) reads log_probs[t, b, k].
template <class LP>
double ctc_row(const LP& lp, int64_t T, int64_t C, const std::vector<int64_t>& target, int64_t blank,
               bool want_grad, std::vector<double>& grad) {
  const int64_t L = static_cast<int64_t>(target.size()), S = 2 * L + 1;
  auto label = [&](int64_t s) { return s % 2 == 0 ? blank : target[static_cast<size_t>(s / 2)]; };
  // s may skip back two states when it is a label that differs from the previous label.
  auto can_skip = [&](int64_t s) { return s % 2 == 1 && s >= 3 && label(s) != label(s - 2); };
  if (T == 0) return L == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  std::vector<double> alpha(static_cast<size_t>(T * S), kNegInf), beta(static_cast<size_t>(T * S), kNegInf);
  auto A = [&](int64_t t, int64_t s) -> double& { return alpha[static_cast<size_t>(t * S + s)]; };
  auto Bt = [&](int64_t t, int64_t s) -> double& { return beta[static_cast<size_t>(t * S + s)]; };
  A(0, 0) = lp(0, blank);
  if (S > 1) A(0, 1) = lp(0, label(1));
  for (int64_t t = 1; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) {
      double a = A(t - 1, s);
      if (s >= 1) a = log_add(a, A(t - 1, s - 1));
      if (can_skip(s)) a = log_add(a, A(t - 1, s - 2));
      A(t, s) = a == kNegInf ? kNegInf : a + lp(t, label(s));
    }
  const double log_p = S > 1 ? log_add(A(T - 1, S - 1), A(T - 1, S - 2)) : A(T - 1, S - 1);
  if (!want_grad || log_p == kNegInf) return -log_p;
  Bt(T - 1, S - 1) = lp(T - 1, blank);
  if (S > 1) Bt(T - 1, S - 2) = lp(T - 1, label(S - 2));
  for (int64_t t = T - 2; t >= 0; --t)
    for (int64_t s = 0; s < S; ++s) {
      double b = Bt(t + 1, s);
      if (s + 1 < S) b = log_add(b, Bt(t + 1, s + 1));
      if (s + 2 < S && can_skip(s + 2)) b = log_add(b, Bt(t + 1, s + 2));
      Bt(t, s) = b == kNegInf ? kNegInf : b + lp(t, label(s));
    }
  grad.assign(static_cast<size_t>(T * C), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) {
      const double ab = A(t, s) + Bt(t, s);
      if (ab == kNegInf) continue;
      const int64_t k = label(s);
      grad[static_cast<size_t>(t * C + k)] -= std::exp(ab - lp(t, k) - log_p);
    }
  return -log_p;
}

template <class T>
void run_rows(const Tensor& lp_host, const std::vector<std::vector<int64_t>>& targets,
              const std::vector<int64_t>& input_lengths, const CtcOptions& o, bool want_grad,
              std::vector<double>& losses, std::vector<std::vector<double>>& grads) {
  const int64_t B = lp_host.size(1), C = lp_host.size(2);
  const T* base = lp_host.data<T>();
  const int64_t st = lp_host.stride(0), sb = lp_host.stride(1), sc = lp_host.stride(2);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < B; ++b) {
    const auto lp = [&](int64_t t, int64_t k) { return static_cast<double>(base[t * st + b * sb + k * sc]); };
    const size_t i = static_cast<size_t>(b);
    losses[i] = ctc_row(lp, input_lengths[i], C, targets[i], o.blank, want_grad, grads[i]);
    if (!std::isfinite(losses[i]) && o.zero_infinity) grads[i].clear();
  }
}

}  // namespace

CtcOutput ctc_loss(const Variable& log_probs, const std::vector<std::vector<int64_t>>& targets,
                   const std::vector<int64_t>& input_lengths, const CtcOptions& o) {
  const Tensor& lp = log_probs.data();
  CW_CHECK(lp.defined() && lp.dim() == 3, ShapeError, "ctc_loss: log_probs must be (T, B, C), got ",
           describe(lp));
  CW_CHECK(lp.dtype() == DType::F32 || lp.dtype() == DType::F64, DTypeError,
           "ctc_loss: log_probs must be f32 or f64, got ", describe(lp));
  const int64_t T = lp.size(0), B = lp.size(1), C = lp.size(2);
  CW_CHECK(static_cast<int64_t>(targets.size()) == B && static_cast<int64_t>(input_lengths.size()) == B,
           ShapeError, "ctc_loss: ", targets.size(), " targets and ", input_lengths.size(),
           " input lengths for a batch of ", B);
  CW_CHECK(o.blank >= 0 && o.blank < C, ValueError, "ctc_loss: blank ", o.blank, " outside [0, ", C, ")");
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = input_lengths[static_cast<size_t>(b)];
    CW_CHECK(n >= 0 && n <= T, ValueError, "ctc_loss: input length ", n, " of row ", b, " outside [0, ", T,
             "]");
    for (const int64_t k : targets[static_cast<size_t>(b)])
      CW_CHECK(k >= 0 && k < C && k != o.blank, IndexError, "ctc_loss: target label ", k, " of row ", b,
               " must be in [0, ", C, ") and not the blank ", o.blank);
  }
  const Tensor host = lp.to(Device::cpu());  // the recursions run on the host (no copy on the CPU)
  const bool want_grad = log_probs.requires_grad();
  CtcOutput out;
  out.row_losses.assign(static_cast<size_t>(B), 0.0);
  auto grads = std::make_shared<std::vector<std::vector<double>>>(static_cast<size_t>(B));
  if (lp.dtype() == DType::F32)
    run_rows<float>(host, targets, input_lengths, o, want_grad, out.row_losses, *grads);
  else
    run_rows<double>(host, targets, input_lengths, o, want_grad, out.row_losses, *grads);

  // Row weights of the reduction: d loss / d row_loss_b.
  auto weights = std::make_shared<std::vector<double>>(static_cast<size_t>(B), 1.0);
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    const size_t i = static_cast<size_t>(b);
    double w = 1.0;
    if (o.reduction == CtcReduction::Mean)
      w = 1.0 / (static_cast<double>(std::max<size_t>(targets[i].size(), 1)) * static_cast<double>(B));
    const bool zeroed = o.zero_infinity && !std::isfinite(out.row_losses[i]);
    (*weights)[i] = zeroed ? 0.0 : w;
    total += zeroed ? 0.0 : w * out.row_losses[i];
  }
  const Tensor value = ops::full({}, total, lp.dtype(), lp.device());
  out.loss = ag::record("ctc_loss", value, {log_probs},
                        [grads, weights, T, B, C, dtype = lp.dtype(), device = lp.device()](
                            const Grads& g, const std::vector<bool>&) {
                          const double up = g[0].to(Device::cpu()).to(DType::F64).item();
                          std::vector<double> d(static_cast<size_t>(T * B * C), 0.0);  // (T, B, C)
                          for (int64_t b = 0; b < B; ++b) {
                            const auto& gb = (*grads)[static_cast<size_t>(b)];
                            const double w = up * (*weights)[static_cast<size_t>(b)];
                            if (w == 0.0) continue;
                            const int64_t Tb = static_cast<int64_t>(gb.size()) / std::max<int64_t>(C, 1);
                            for (int64_t t = 0; t < Tb; ++t)
                              for (int64_t k = 0; k < C; ++k)
                                d[static_cast<size_t>((t * B + b) * C + k)] =
                                    w * gb[static_cast<size_t>(t * C + k)];
                          }
                          return Grads{ops::from_vector(d, {T, B, C}).to(dtype).to(device)};
                        });
  return out;
}

}  // namespace cw::losses
