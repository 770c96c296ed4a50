// A program of another project that uses cwcl as a library (see CMakeLists.txt beside it): it
// builds a tensor, runs a Linear layer with autograd and checks the gradient against its closed
// form. tests/CMakeLists.txt builds and runs it through find_package(cwcl) and add_subdirectory().
#include <cmath>
#include <cstdio>
#include <vector>

#include "autograd/functions.h"
#include "core/ops.h"
#include "nn/basic_layers.h"

int main() {
  cw::manual_seed(0);
  const cw::Tensor x = cw::ops::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});  // (B, in)
  cw::nn::Linear layer(3, 2);
  const cw::Variable y = layer.forward(cw::Variable(x));  // (B, out)
  const cw::Variable loss = cw::ag::sum(y);
  loss.backward();
  // d sum(x W^T + b) / dW[o, i] = sum_b x[b, i]: every row of the gradient is x's column sums.
  const std::vector<float> grad = layer.weight.grad().to_vector<float>();
  const std::vector<float> expected = {5, 7, 9, 5, 7, 9};
  double worst = 0;
  for (size_t i = 0; i < grad.size(); ++i) worst = std::fmax(worst, std::fabs(grad[i] - expected[i]));
  std::printf("loss %.4f, dloss/dW = [%g %g %g; %g %g %g], worst error %g\n", loss.item(), grad[0], grad[1],
              grad[2], grad[3], grad[4], grad[5], worst);
  if (grad.size() != expected.size() || worst > 1e-5) {
    std::printf("consumer: FAILED\n");
    return 1;
  }
  std::printf("consumer: ok\n");
  return 0;
}
