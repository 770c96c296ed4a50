// Collectives as autograd ops, for losses and layers whose forward needs other ranks' values:
//   all_gather_rows: forward concatenates every rank's rows (the global batch); backward sums
//     the gradient of the gathered tensor over ranks and returns this rank's rows
//     (reduce-scatter), since every rank's loss may depend on every row;
//   all_reduce_sum: forward sums over ranks; backward sums the gradient over ranks (each rank's
//     loss depends on the global sum), e.g. the statistics of synchronized batch norm.
// Both assume every rank runs the same graph, so the backward collectives meet in the same
// order on every rank. Part of dist/.
#pragma once

#include <vector>

#include "autograd/variable.h"
#include "dist/communicator.h"

namespace cw::dist {

// local (counts[rank], ...) -> (sum of counts, ...).
Variable all_gather_rows(Communicator& comm, const Variable& local, const std::vector<int64_t>& counts);

// x -> sum over ranks of x (same shape).
Variable all_reduce_sum(Communicator& comm, const Variable& x);

}  // namespace cw::dist
