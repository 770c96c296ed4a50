// k-nearest-neighbour classification on embeddings: the cheap check that a self-supervised tower
// learned something (Wu et al. 2018's weighted k-NN monitor, as DINO and MoCo report it): each
// query's k most cosine-similar memory rows vote for their labels with weight exp(cos / T).
// Part of train/.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace cw::train {

// memory (M, D) with labels (M), queries (N, D) with labels (N), labels in [0, num_classes).
// Returns the fraction of queries whose weighted vote (ties: the lower label) is their label.
double knn_accuracy(const Tensor& memory, const std::vector<int64_t>& memory_labels, const Tensor& queries,
                    const std::vector<int64_t>& query_labels, int64_t k, int64_t num_classes,
                    double temperature = 0.07);

}  // namespace cw::train
