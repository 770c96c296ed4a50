// CWCL's intra-modal weights W (N x N) from the frozen tower's unit embeddings E: the kernel
// (linear as in the paper, or exp), the optional top-k / threshold sparsification, and the
// low-rank form of the linear kernel that lets the fused loss use W without forming it:
//   W = (E E^T + 1 1^T) / 2,  so  W Y = (E (E^T Y) + 1 (1^T Y)) / 2  in O(N D^2).
// W is symmetric for every option (see WeightMask) up to rounding; the column direction
// normalizes W's columns by their own sums, so it does not rely on exact symmetry.
// W's blocks are made on E's device: one GEMM for the cosines, then core's kernel for the weight
// function and the mask (ops::xent_weights_), so every backend makes the same W. The dense,
// readable construction is contrastive_reference.h's dense_cwcl_weights. Part of losses/.
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
// entries that are equal only in exact arithmetic. The lists are built on the host; the weight
// kernel reads them as i64 tensors on E's device.
struct Neighbours {
  std::vector<int64_t> offsets, index;
  Tensor offsets_on_device, index_on_device;
};
// Top k of each row of E E^T (the pair counts; ties broken by the lower index), block by block
// on E's device (ops::row_topk); the lists are then symmetrised on the host.
Neighbours topk_neighbours(const Tensor& e_unit, int64_t k, int64_t block_rows);

// W's rows [row0, row0 + rows) (rows, N) from unit rows e on e's device. The top-k mask needs
// its graph (nb); without one it is refused (NotImplementedError).
Tensor weight_rows(const Tensor& e_unit, const WeightSpec& s, int64_t row0, int64_t rows,
                   const Neighbours* nb = nullptr);

// Low-rank linear kernel: W Y for Y (N, D'), and W's row sums (N) = W 1.
Tensor linear_weights_times(const Tensor& e_unit, const Tensor& y);
Tensor linear_weights_row_sums(const Tensor& e_unit);

// Where a loss gets W's row blocks, on E's device.
struct WeightBlocks {
  Tensor e;  // (N, D') unit rows on the loss's device
  const WeightSpec* spec = nullptr;
  const Neighbours* nb = nullptr;  // the top-k graph (TopK only; may be filled after construction)

  // W's rows [row0, row0 + buf.size(0)) (rows, N), written into buf (contiguous), which is returned.
  Tensor block(int64_t row0, Tensor& buf) const;
  // W's row and column sums (N) f64 (equal up to rounding, W being symmetric): by one pass over
  // W's blocks, or for the linear kernel without mask by the closed form (no pass).
  std::pair<Tensor, Tensor> sums(int64_t block_rows) const;
};
// e_unit on the loss's device; spec and nb must outlive the result.
WeightBlocks weight_blocks(const Tensor& e_unit, const WeightSpec& spec, const Neighbours* nb);

}  // namespace weights
}  // namespace cw::losses
