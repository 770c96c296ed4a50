// Row blocks of the fused contrastive losses' logit matrix S (rows [row0, row0 + rows) of an
// N x N matrix that is never formed whole): the block size, and GEMM and add into preallocated
// buffers. The O(N^2) passes over a block (row and column log-sum-exps, the gradient block) are
// core primitives, one kernel per backend (ops::xent_*). Part of losses/; the math is in
// contrastive_fused.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace cw::losses::blocks {

// Rows per block: about kBlockElements elements per (rows, N) buffer, at least 32 rows so the
// GEMMs stay efficient, and never more than N / buffers rows, so that all the buffers together
// hold at most one N x N matrix. `requested` > 0 overrides the heuristic (clamped to [1, N]).
constexpr int64_t kBlockElements = int64_t{1} << 23;
int64_t choose_block_rows(int64_t n, int64_t buffers, int64_t requested);

// out = a @ b into a preallocated contiguous `out` (no allocation per block). Shapes are the
// caller's responsibility; operands may be transposed views.
void gemm_into(const Tensor& a, const Tensor& b, Tensor& out);
// dst += src, both contiguous with the same shape, dtype and device.
void add_into(Tensor& dst, const Tensor& src);

}  // namespace cw::losses::blocks
