// ContrastiveConfig: every option of the contrastive losses (CLIP/LiT InfoNCE and CWCL) in one
// struct, so the train binary can expose each one by name (the string parsers below map the
// command-line spellings to the enums). Part of losses/; the math is in contrastive_fused.h.
#pragma once

#include <cstdint>
#include <string>

namespace cw::losses {

// InfoNCE: the CLIP loss (LiT when the second tower is frozen); binary targets, the pair is the
// one positive. CWCL: soft targets from the frozen tower's similarities (PAPER.md, "Loss").
enum class LossKind { InfoNCE, CWCL };

// w_ij as a function of c_ij = <e_i, e_j>, the cosine between frozen-tower embeddings.
//   Linear: w = c/2 + 1/2, the paper's kernel, in [0, 1] with w_ii = 1.
//   Exp:    w = exp((c - 1) / kernel_temperature), also w_ii = 1; sharper for small temperatures,
//           the ablation PAPER.md suggests because linear targets get flat for large N.
enum class WeightKernel { Linear, Exp };

// Optional sparsification of W, applied after the kernel. The pair itself (i == j) is always kept.
//   TopK:      keep w_ij when j is among the top_k most similar to i, or i among j's (the
//              symmetrised k-NN graph, so W stays symmetric; ties at the k-th value are kept).
//   Threshold: keep w_ij when c_ij >= threshold (threshold > 1 leaves only the pairs: InfoNCE).
enum class WeightMask { None, TopK, Threshold };

// The columns of the logit matrix (frozen tower -> trained tower, L_{V->U} in PAPER.md):
//   Weighted: CWCL on the columns with the same W (column j's targets are row j of T, since W is
//             symmetric); InfoNCE: binary targets on the columns; None: rows only.
// For LossKind::InfoNCE, Weighted and InfoNCE are the same thing (CLIP's symmetric loss).
enum class ReverseDirection { Weighted, InfoNCE, None };

// How the two directions combine: Sum, or Mean = (L_rows + L_cols) / 2 as in CLIP. With
// ReverseDirection::None there is one direction and both give L_rows.
enum class DirectionReduction { Sum, Mean };

// How the linear kernel without mask is applied (results equal up to rounding): Factored uses
// W = (E E^T + 1 1^T) / 2 in O(N D^2) per step, Blockwise makes W's blocks like the other kernels
// in O(N^2 D); Auto picks Factored when N >= 2 D, where it is the cheaper.
enum class LinearWeightsForm { Auto, Factored, Blockwise };

struct ContrastiveConfig {
  LossKind loss = LossKind::CWCL;

  // ---- CWCL weights (ignored by InfoNCE)
  WeightKernel kernel = WeightKernel::Linear;
  double kernel_temperature = 0.1;  // Exp kernel only; > 0
  WeightMask mask = WeightMask::None;
  int64_t top_k = 8;       // TopK mask; >= 1, counts the pair itself
  double threshold = 0.5;  // Threshold mask, on the cosine

  // ---- directions
  ReverseDirection reverse = ReverseDirection::Weighted;
  DirectionReduction reduction = DirectionReduction::Mean;

  // ---- embeddings
  // true: the loss L2-normalizes P and Q itself (z / max(||z||, eps), as F.normalize), with the
  // normalization's backward fused in. false: the caller passes unit rows; the logits are then
  // the raw dot products. The CWCL weights always use normalized frozen embeddings.
  bool normalize = true;
  double normalize_eps = 1e-12;

  // ---- logit scale: scale = min(exp(t), max_logit_scale), t the parameter (CLIP). The gradient
  // w.r.t. t is zero while clamped. t starts at log(1 / init_temperature); a fixed scale is a t
  // that does not require grad (learn_temperature = false).
  double init_temperature = 0.07;
  bool learn_temperature = true;
  double max_logit_scale = 100.0;

  // ---- implementation (speed and memory only, not results beyond rounding).
  // When a gradient is wanted and one N x N matrix of p's dtype takes at most this many MiB, the
  // forward makes the logits whole in one buffer and the gradients with them, one GEMM fewer
  // than block mode (contrastive_fused.h); above it (or 0) it works in row blocks and keeps O(N).
  int64_t whole_matrix_max_mb = 256;
  // Rows of the logit matrix per block (0 = chosen from N, see choose_block_rows).
  int64_t block_rows = 0;
  LinearWeightsForm linear_weights = LinearWeightsForm::Auto;

  // Throws cw::ValueError naming the first bad option.
  void validate() const;
};

// Command-line spellings ("cwcl", "infonce"; "linear", "exp"; "none", "topk", "threshold";
// "weighted", "infonce", "none"; "sum", "mean"; "auto", "factored", "blockwise"). parse_* throw
// cw::ValueError listing the valid spellings.
const char* to_string(LossKind v);
const char* to_string(WeightKernel v);
const char* to_string(WeightMask v);
const char* to_string(ReverseDirection v);
const char* to_string(DirectionReduction v);
const char* to_string(LinearWeightsForm v);
LossKind parse_loss_kind(const std::string& s);
WeightKernel parse_weight_kernel(const std::string& s);
WeightMask parse_weight_mask(const std::string& s);
ReverseDirection parse_reverse_direction(const std::string& s);
DirectionReduction parse_direction_reduction(const std::string& s);
LinearWeightsForm parse_linear_weights_form(const std::string& s);

// Rows per block of an N x N matrix that is made block by block (logits, weights): about
// kBlockElements elements per (rows, N) buffer, at least 32 rows so the GEMMs stay efficient, and
// never more than N / buffers rows, so that all the buffers together hold at most one N x N
// matrix. `requested` > 0 (cfg.block_rows) overrides the heuristic (clamped to [1, N]).
constexpr int64_t kBlockElements = int64_t{1} << 23;
int64_t choose_block_rows(int64_t n, int64_t buffers, int64_t requested);

// One line naming every option and its value, for logs and run records.
std::string describe(const ContrastiveConfig& cfg);

}  // namespace cw::losses
