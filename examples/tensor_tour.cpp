// A first program: build tensors, take views, run ops, and fit a tiny two-layer network with
// autograd and plain gradient descent. The quick start runs it to show the build works end to
// end; reading it is a ten-minute tour of core/ and autograd/.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"

using namespace cw;

int main() {
  manual_seed(0);

  // Tensors are handles; views share storage.
  Tensor a = ops::arange(0, 6).view({2, 3});
  std::cout << "a =\n" << a << "\n";
  std::cout << "a.t() (a view, strides " << shape_str(a.t().strides()) << ") =\n" << a.t() << "\n";
  std::cout << "softmax(a, -1) =\n" << ops::softmax(a, -1) << "\n";

  // Fit y = sin(3x) on [-1, 1] with a 1-32-1 tanh network.
  const int64_t n = 256, hidden = 32;
  Tensor x = ops::uniform({n, 1}, -1.0, 1.0);
  std::vector<float> ys = x.to_vector<float>();
  for (float& v : ys) v = std::sin(3.0f * v);
  Tensor y = ops::from_vector(ys, {n, 1});
  Variable w1(ops::mul(ops::randn({1, hidden}), 1.0), true);
  Variable b1(ops::zeros({hidden}), true);
  Variable w2(ops::mul(ops::randn({hidden, 1}), 1.0 / std::sqrt(double(hidden))), true);
  Variable b2(ops::zeros({1}), true);
  const Variable X(x), Y(y);
  const double lr = 0.1;
  double loss_value = 0;
  for (int step = 0; step <= 2000; ++step) {
    Variable h = ag::tanh(ag::matmul(X, w1) + b1);
    Variable pred = ag::matmul(h, w2) + b2;
    Variable diff = pred - Y;
    Variable loss = ag::mean(diff * diff);
    for (Variable* p : {&w1, &b1, &w2, &b2}) p->zero_grad();
    loss.backward();
    {
      NoGradGuard no_grad;  // the update itself is not part of the model
      for (Variable* p : {&w1, &b1, &w2, &b2})
        *p = Variable(ops::sub(p->data(), ops::mul(p->grad(), lr)), true);
    }
    loss_value = loss.item();
    if (step % 500 == 0) std::printf("step %4d  mse %.5f\n", step, loss_value);
  }
  std::printf("final mse %.5f (target: below 0.01)\n", loss_value);
  return loss_value < 0.01 ? 0 : 1;
}
