// CUDA vs CPU parity for creation, copies, random draws, unary and binary ops (with
// broadcasting and non-contiguous operands), where, and reductions, forward and backward.
// Tolerances: cuda_test_util.h (f32 1e-5 abs + 1e-5 rel, f64 1e-12 + 1e-11 rel) unless stated.
#include "core/backend.h"
#include "cuda_test_util.h"

namespace cw::test {
namespace {

class CudaParity : public CudaTest {};

TEST_F(CudaParity, CopiesConversionsAndFills) {
  const Tensor x = rnd({3, 4, 5}, DType::F64, -100, 100);
  // Strided copy (permute + step) and every dtype conversion.
  EXPECT_TRUE(forward_parity(
      [](auto& v) {
        return v[0].permute({2, 0, 1}).slice(2, 0, 4, 3).contiguous();
      },
      {x}, 0, 0));
  for (DType to : {DType::F32, DType::F64, DType::I64})
    for (DType from : {DType::F32, DType::F64, DType::I64}) {
      const Tensor src = x.to(from);
      EXPECT_TRUE(forward_parity([to](auto& v) { return v[0].transpose(0, 2).to(to); }, {src}, 0, 0))
          << dtype_name(from) << " -> " << dtype_name(to);
    }
  // Fill of a strided view; arange.
  EXPECT_TRUE(forward_parity(
      [](auto& v) {
        Tensor t = v[0].clone();
        Tensor view = t.narrow(1, 1, 2).transpose(0, 1);
        view.fill_(7.5);
        return t;
      },
      {x}, 0, 0));
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    const Tensor want = ops::arange(-3, 50, 0.5 * (dt != DType::I64) + (dt == DType::I64), dt);
    const Tensor got = ops::arange(-3, 50, 0.5 * (dt != DType::I64) + (dt == DType::I64), dt, gpu());
    EXPECT_TRUE(all_close(got.to(Device::cpu()), want, 0, 0)) << dtype_name(dt);
  }
  // copy_ with broadcasting into a strided destination.
  EXPECT_TRUE(forward_parity(
      [](auto& v) {
        Tensor t = ops::zeros({4, 3, 5}, DType::F64, v[0].device());
        t.transpose(0, 1).copy_(v[0].select(0, 0).select(0, 0));  // (5,) broadcast to (3, 4, 5)
        return t;
      },
      {x}, 0, 0));
}

TEST_F(CudaParity, RandomDrawsMatchCpuStream) {
  // Same (seed, offset) on both backends: same numbers (uniform f32 bit-exact; f64 to the last
  // bit where the CPU build also fuses the multiply-add, see cuda/copy_random.cu, so allowed one
  // ulp; normal through log/cos, whose device and glibc versions may differ in the last ulp).
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor c_u = ops::empty({1000, 33}, dt), g_u = ops::empty({1000, 33}, dt, gpu());
    backend_for(Device::cpu(), "t").uniform(c_u, 1234, 77, -2, 3);
    backend_for(gpu(), "t").uniform(g_u, 1234, 77, -2, 3);
    EXPECT_TRUE(
        all_close(g_u.to(Device::cpu()), c_u, dt == DType::F32 ? 0 : 1e-15, dt == DType::F32 ? 0 : 5e-16))
        << dtype_name(dt);
    Tensor c_n = ops::empty({1000, 33}, dt), g_n = ops::empty({1000, 33}, dt, gpu());
    backend_for(Device::cpu(), "t").normal(c_n, 99, 5, 1, 2);
    backend_for(gpu(), "t").normal(g_n, 99, 5, 1, 2);
    EXPECT_TRUE(all_close(g_n.to(Device::cpu()), c_n, 1e-6, dt == DType::F32 ? 1e-6 : 1e-13))
        << dtype_name(dt);
  }
}

TEST_F(CudaParity, DropoutMatchesCpuStreamAndBits) {
  // Same generator state on both backends: the same keep bits and outputs, bit for bit (the keep
  // decision is an integer compare, the scale one multiply), and the backward from those bits.
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = rnd({37, 29}, dt);  // 1073 elements: a partial last group of 64
    Generator gc(42), gg(42);
    const ops::DropoutResult c = ops::dropout(x, 0.35, gc);
    const ops::DropoutResult d = ops::dropout(x.to(gpu()), 0.35, gg);
    EXPECT_EQ(gc.offset(), gg.offset());
    EXPECT_TRUE(all_close(d.y.to(Device::cpu()), c.y, 0, 0)) << dtype_name(dt);
    EXPECT_EQ(d.mask.to(Device::cpu()).to_vector<int64_t>(), c.mask.to_vector<int64_t>()) << dtype_name(dt);
    const Tensor g = rnd({37, 29}, dt, -1, 1, 8);
    EXPECT_TRUE(all_close(ops::dropout_backward(g.to(gpu()), d.mask, 0.35).to(Device::cpu()),
                          ops::dropout_backward(g, c.mask, 0.35), 0, 0))
        << dtype_name(dt);
  }
}

TEST_F(CudaParity, UnaryForwardAndBackward) {
  const std::vector<UnaryOp> ops_all = {UnaryOp::Neg,     UnaryOp::Exp,      UnaryOp::Log,     UnaryOp::Sqrt,
                                        UnaryOp::Rsqrt,   UnaryOp::Tanh,     UnaryOp::Sigmoid, UnaryOp::Relu,
                                        UnaryOp::GeluErf, UnaryOp::GeluTanh, UnaryOp::Silu,    UnaryOp::Abs,
                                        UnaryOp::Pow};
  for (DType dt : {DType::F32, DType::F64})
    for (UnaryOp op : ops_all) {
      const bool positive =
          op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Pow;
      // Kinks (relu, abs at 0) have probability ~0 with uniform draws.
      const Tensor x = positive ? rnd({6, 7, 5}, dt, 0.2, 3) : rnd({6, 7, 5}, dt, -3, 3);
      const double p = 1.7;
      auto f = [op, p](const std::vector<Variable>& v) {
        const Variable xt = ag::transpose(v[0], 0, 2);  // non-contiguous input
        switch (op) {
          case UnaryOp::Neg: return ag::neg(xt);
          case UnaryOp::Exp: return ag::exp(xt);
          case UnaryOp::Log: return ag::log(xt);
          case UnaryOp::Sqrt: return ag::sqrt(xt);
          case UnaryOp::Rsqrt: return ag::rsqrt(xt);
          case UnaryOp::Tanh: return ag::tanh(xt);
          case UnaryOp::Sigmoid: return ag::sigmoid(xt);
          case UnaryOp::Relu: return ag::relu(xt);
          case UnaryOp::GeluErf: return ag::gelu(xt);
          case UnaryOp::GeluTanh: return ag::gelu(xt, ops::GeluApprox::Tanh);
          case UnaryOp::Silu: return ag::silu(xt);
          case UnaryOp::Abs: return ag::abs(xt);
          case UnaryOp::Pow: return ag::pow(xt, p);
        }
        return xt;
      };
      EXPECT_TRUE(grad_parity(f, {x}, atol_for(dt), rtol_for(dt) * 4))
          << unary_op_name(op) << " " << dtype_name(dt);
    }
  // Integer neg / abs.
  const Tensor ids = ops::from_vector<int64_t>({-3, 0, 5, -7}, {2, 2});
  EXPECT_TRUE(forward_parity([](auto& v) { return ops::abs(ops::neg(v[0].t())); }, {ids}, 0, 0));
}

TEST_F(CudaParity, BinaryBroadcastForwardAndBackward) {
  for (DType dt : {DType::F32, DType::F64}) {
    // a and b are divisors below: kept away from 0, where 1/b^2 gradients would cancel in sums.
    const Tensor a = rnd({4, 1, 5}, dt, 0.5, 2, 1), b = rnd({3, 5}, dt, 0.5, 2, 2),
                 c = rnd({5, 3, 4}, dt, -2, 2, 3);
    using Op = Variable (*)(const Variable&, const Variable&);
    const std::vector<std::pair<const char*, Op>> ops_diff = {
        {"add", ag::add}, {"sub", ag::sub},         {"mul", ag::mul},
        {"div", ag::div}, {"maximum", ag::maximum}, {"minimum", ag::minimum}};
    for (const auto& [name, op] : ops_diff) {
      // broadcast (4, 1, 5) with (3, 5) -> (4, 3, 5)
      EXPECT_TRUE(grad_parity([op](auto& v) { return op(v[0], v[1]); }, {a, b}, atol_for(dt), rtol_for(dt)))
          << name << " " << dtype_name(dt);
      // non-contiguous operand: c (5, 3, 4) permuted to (4, 3, 5)
      EXPECT_TRUE(grad_parity(
          [op](auto& v) {
            return op(ag::permute(v[1], {2, 1, 0}), v[0]);
          },
          {a, c}, atol_for(dt), rtol_for(dt)))
          << name << " strided " << dtype_name(dt);
    }
    // Comparisons on small integers (so that ties occur), in every dtype incl. i64.
    for (DType cdt : {dt, DType::I64}) {
      const Tensor ia = rnd({4, 1, 5}, DType::F64, -3, 3, 4).to(DType::I64).to(cdt);
      const Tensor ib = rnd({3, 5}, DType::F64, -3, 3, 5).to(DType::I64).to(cdt);
      for (BinaryOp op : {BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt, BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge,
                          BinaryOp::Add, BinaryOp::Mul, BinaryOp::Maximum})
        EXPECT_TRUE(forward_parity([op](auto& v) { return ops::binary(op, v[0], v[1]); }, {ia, ib}, 0, 0))
            << binary_op_name(op) << " " << dtype_name(cdt);
    }
  }
}

TEST_F(CudaParity, WhereAndMaskedFill) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor cond = ops::gt(rnd({4, 1, 5}, dt, -1, 1, 11), 0.0);
    const Tensor a = rnd({3, 5}, dt, -1, 1, 12), b = rnd({4, 3, 1}, dt, -1, 1, 13);
    const Tensor cpu_cond = cond;
    EXPECT_TRUE(grad_parity([cpu_cond](auto& v) { return ag::where(cpu_cond.to(v[0].device()), v[0], v[1]); },
                            {a, b}, atol_for(dt), rtol_for(dt)));
    // The mask (4, 1, 5) broadcasts to the input (4, 3, 5).
    EXPECT_TRUE(
        grad_parity([cpu_cond](auto& v) { return ag::masked_fill(v[0], cpu_cond.to(v[0].device()), -1e9); },
                    {rnd({4, 3, 5}, dt, -1, 1, 14)}, atol_for(dt), rtol_for(dt)));
  }
  // An i64 condition.
  const Tensor icond = ops::from_vector<int64_t>({1, 0, 0, 1, 1, 0}, {2, 3});
  EXPECT_TRUE(forward_parity([](auto& v) { return ops::where(v[0], v[1], v[2]); },
                             {icond, rnd({2, 3}), rnd({1, 3}, DType::F32, -1, 1, 3)}, 0, 0));
}

TEST_F(CudaParity, ReductionsForwardAndBackward) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double at = atol_for(dt) * 10, rt = rtol_for(dt) * 10;  // long sums: order differs
    // Row path (last dim), column path (dim 0 of a tall matrix: the split pass), middle dim,
    // several dims, non-contiguous input, and the full sum of a long vector (split rows).
    const Tensor x = rnd({6, 50, 7}, dt);
    for (const std::vector<int64_t>& dims : {std::vector<int64_t>{2}, {0}, {1}, {0, 2}, {}, {1, 2}}) {
      EXPECT_TRUE(grad_parity([dims](auto& v) { return ag::sum(v[0], dims); }, {x}, at, rt)) << "sum";
      EXPECT_TRUE(grad_parity([dims](auto& v) { return ag::mean(v[0], dims, true); }, {x}, at, rt)) << "mean";
      EXPECT_TRUE(
          grad_parity([dims](auto& v) { return ag::amax(ag::transpose(v[0], 0, 1), dims); }, {x}, at, rt))
          << "amax";
      EXPECT_TRUE(forward_parity([dims](auto& v) { return ops::amin(v[0], dims); }, {x}, at, rt)) << "amin";
    }
    const Tensor tall = rnd({20000, 5}, dt);  // column reduction split over r
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::sum(v[0], {0}); }, {tall}, at * 10, rt * 10));
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::amax(v[0], {0}); }, {tall}, 0, 0));
    const Tensor longv = rnd({300001}, dt, 0, 1);  // one long row split into chunks
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::sum(v[0]); }, {longv}, at * 100, rt * 10));
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::mean(v[0]); }, {longv}, at, rt * 10));
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::amin(v[0]); }, {longv}, 0, 0));
    EXPECT_TRUE(forward_parity([](auto& v) { return ops::var(v[0], {1}); }, {x}, at, rt));
    // argmax with ties (first maximum wins) along rows and columns.
    const Tensor ties = rnd({40, 30}, DType::F64, 0, 4, 21).to(DType::I64).to(dt);
    for (int64_t d : {0, 1}) {
      EXPECT_TRUE(forward_parity([d](auto& v) { return ops::argmax(v[0], d); }, {ties}, 0, 0))
          << "argmax " << d;
    }
  }
  // Integer sums and bounds.
  const Tensor ids = rnd({30, 20}, DType::F64, -100, 100, 5).to(DType::I64);
  EXPECT_TRUE(forward_parity([](auto& v) { return ops::sum(v[0], {0}); }, {ids}, 0, 0));
  EXPECT_TRUE(forward_parity([](auto& v) { return ops::amax(v[0]); }, {ids}, 0, 0));
  EXPECT_TRUE(forward_parity([](auto& v) { return ops::argmax(v[0], 1); }, {ids}, 0, 0));
}

}  // namespace
}  // namespace cw::test
