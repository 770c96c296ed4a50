// Weighted k-NN accuracy (see image_knn.h).
#include "train/image_knn.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "train/zero_shot.h"

namespace cw::train {

double knn_accuracy(const Tensor& memory, const std::vector<int64_t>& memory_labels, const Tensor& queries,
                    const std::vector<int64_t>& query_labels, int64_t k, int64_t num_classes,
                    double temperature) {
  CW_CHECK(memory.dim() == 2 && queries.dim() == 2 && memory.size(1) == queries.size(1), ShapeError,
           "knn_accuracy: memory ", describe(memory), " and queries ", describe(queries),
           " must be (M, D), (N, D)");
  CW_CHECK(static_cast<int64_t>(memory_labels.size()) == memory.size(0) &&
               static_cast<int64_t>(query_labels.size()) == queries.size(0),
           ShapeError, "knn_accuracy: ", memory_labels.size(), " memory labels for ", memory.size(0),
           " rows, ", query_labels.size(), " query labels for ", queries.size(0), " rows");
  CW_CHECK(k >= 1 && num_classes >= 1 && memory.size(0) >= 1, ValueError,
           "knn_accuracy: k and num_classes must be >= 1 and the memory non-empty");
  for (const int64_t lab : memory_labels)
    CW_CHECK(lab >= 0 && lab < num_classes, IndexError, "knn_accuracy: memory label ", lab, " outside [0, ",
             num_classes, ")");
  const int64_t M = memory.size(0), N = queries.size(0), kk = std::min(k, M);
  const Tensor mem = unit_rows(memory.to(DType::F32)).contiguous();
  const Tensor q = unit_rows(queries.to(DType::F32)).contiguous();
  int64_t correct = 0;
  const int64_t chunk = 512;  // queries per similarity block: (512, M) floats
  for (int64_t at = 0; at < N; at += chunk) {
    const int64_t n = std::min(chunk, N - at);
    const Tensor s = ops::matmul(q.narrow(0, at, n), mem.t()).to(DType::F32).contiguous();  // (n, M)
    const Tensor top = ops::row_topk(s, kk);  // (n, kk) i64: each query's kk nearest, unordered
    const float* sp = s.data<float>();
    const int64_t* tp = top.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = sp + i * M;
      // Nearest first (ties to the lower index), so the votes add up in one fixed order.
      std::vector<int64_t> idx(tp + i * kk, tp + (i + 1) * kk);
      std::sort(idx.begin(), idx.end(),
                [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      std::vector<double> votes(static_cast<size_t>(num_classes), 0.0);
      for (const int64_t j : idx)
        votes[static_cast<size_t>(memory_labels[static_cast<size_t>(j)])] += std::exp(row[j] / temperature);
      const auto best = std::max_element(votes.begin(), votes.end()) - votes.begin();
      if (best == query_labels[static_cast<size_t>(at + i)]) ++correct;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(N);
}

}  // namespace cw::train
