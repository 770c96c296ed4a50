// CWCL's intra-modal weights W (N x N) from the frozen tower's unit embeddings E: the kernel
// (linear as in the paper, or exp), the optional top-k / threshold sparsification, and the
// low-rank form of the linear kernel that lets the fused loss use W without forming it:
//   W = (E E^T + 1 1^T) / 2,  so  W Y = (E (E^T Y) + 1 (1^T Y)) / 2  in O(N D^2).
// W is symmetric for every option (see WeightMask) up to rounding; the column direction
// normalizes W's columns by their own sums, so it does not rely on exact symmetry.
// Part of losses/.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "losses/contrastive_config.h"

namespace cw::losses {

// Dense W and row-normalized targets T = W / rowsum(W) from embeddings e (N, D), normalized
// here. For inspection and tests (they form N x N); the loss itself works blockwise.
Tensor cwcl_weights(const Tensor& e, const ContrastiveConfig& cfg);
Tensor cwcl_targets(const Tensor& e, const ContrastiveConfig& cfg);

namespace weights {

struct WeightSpec {
  WeightKernel kernel = WeightKernel::Linear;
  double temperature = 0.1;
  WeightMask mask = WeightMask::None;
  int64_t top_k = 1;
  double threshold = 0.5;
};
WeightSpec spec_of(const ContrastiveConfig& cfg);

// True when W has the low-rank form above (linear kernel, no mask).
inline bool is_low_rank(const WeightSpec& s) {
  return s.kernel == WeightKernel::Linear && s.mask == WeightMask::None;
}

// The symmetrised top-k graph as sorted adjacency lists: row i keeps the columns
// index[offsets[i] .. offsets[i+1]), which are j in i's top k, or i in j's top k, and i itself.
// Kept as lists rather than per-row cosine thresholds so the mask is symmetric by construction:
// comparing c_ji with a threshold taken from row i would depend on the last bit of two GEMM
// entries that are equal only in exact arithmetic.
struct Neighbours {
  std::vector<int64_t> offsets, index;
};
// Top k of each row of E E^T (the pair counts; ties broken by the lower index), block by block.
Neighbours topk_neighbours(const Tensor& e_unit, int64_t k, int64_t block_rows);

// In place on a block of cosines c (rows x n, rows [row0, row0 + rows)): c_ij -> w_ij.
// nb is the TopK graph (null for the other masks).
template <class T>
void cosines_to_weights(T* c, int64_t rows, int64_t n, int64_t row0, const WeightSpec& s,
                        const Neighbours* nb);

// W's rows [row0, row0 + rows) (rows, N) from unit rows e as core ops, on e's device: one GEMM,
// the kernel, the threshold mask; the same numbers as cosines_to_weights. The top-k mask is not
// supported (its graph is host lists; see topk_neighbours).
Tensor weight_rows(const Tensor& e_unit, const WeightSpec& s, int64_t row0, int64_t rows);

// W's row and column sums (equal up to rounding, W being symmetric), by a pass over W's blocks;
// for the linear kernel without mask, by the closed form below (no pass).
struct WeightSums {
  std::vector<double> rows, cols;
};
WeightSums weight_sums(const Tensor& e_unit, const WeightSpec& s, const Neighbours* nb, int64_t block_rows);

// Low-rank linear kernel: W Y for Y (N, D'), and W's row sums (N) = W 1.
Tensor linear_weights_times(const Tensor& e_unit, const Tensor& y);
Tensor linear_weights_row_sums(const Tensor& e_unit);

// Where a loss on E's device gets W's row blocks. The weight code above is host code: on the CPU
// each block is written in place into the caller's buffer; on another device the kernels and the
// threshold mask are core ops there (weight_rows), and the top-k mask, whose graph is host lists,
// makes its blocks on the host from E's copy and copies them over.
struct WeightBlocks {
  Tensor e;       // (N, D') unit rows on the loss's device
  Tensor e_host;  // the same rows on the host (CPU or top-k only), also for topk_neighbours
  const WeightSpec* spec = nullptr;
  const Neighbours* nb = nullptr;  // the top-k graph (TopK only; may be filled after construction)

  bool on_host() const { return e.device().is_cpu() || spec->mask == WeightMask::TopK; }
  // W's rows [row0, row0 + buf.size(0)) (rows, N): written into buf, or returned as a new tensor.
  Tensor block(int64_t row0, Tensor& buf) const;
  // W's row and column sums (N) f64 on the loss's device, by one pass over W's blocks.
  std::pair<Tensor, Tensor> sums(int64_t block_rows) const;
};
// e_unit on the loss's device; spec and nb must outlive the result.
WeightBlocks weight_blocks(const Tensor& e_unit, const WeightSpec& spec, const Neighbours* nb);

}  // namespace weights
}  // namespace cw::losses
