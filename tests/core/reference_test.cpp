// Core ops against PyTorch 1.13: forward values, and the hand-written backward of layer norm and
// convolution. Inputs and expected outputs both come from tests/fixtures/*.txt, made by
// tools/make_fixtures.py (see its docstring for the record names). One TEST per op family.
#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/check.h"
#include "support/fixture.h"

namespace cw {
namespace {

using Fixture = std::map<std::string, Tensor>;

// f64: both sides compute in double; summation order and last-ulp differences of libm separate
// them, far below 1e-12 at these sizes. f32: PyTorch's own float rounding sets the floor (its f32
// bias gradient, summed in float over 60 terms, is 3e-6 off the exact sum, which ours, summing
// in double, hits; its f32 gelu loses 2e-7 to cancellation in 1 + erf(x) at x ~ -3).
constexpr double kTol64 = 1e-12;
constexpr double kAtol32 = 1e-5, kRtol32 = 1e-5;

bool has(const Fixture& fx, const std::string& name) { return fx.count(name) != 0; }

// The tensor `name`; a missing one throws, which gtest reports as a failure naming it.
const Tensor& get(const Fixture& fx, const std::string& name) {
  const auto it = fx.find(name);
  if (it == fx.end()) throw std::runtime_error("fixture has no tensor '" + name + "'");
  return it->second;
}
Tensor get_or_undefined(const Fixture& fx, const std::string& name) {
  return has(fx, name) ? get(fx, name) : Tensor();
}
int64_t get_int(const Fixture& fx, const std::string& name) {
  return static_cast<int64_t>(get(fx, name).item());
}
std::vector<int64_t> get_ints(const Fixture& fx, const std::string& name) {
  return get(fx, name).to_vector<int64_t>();
}

// The case prefixes "<family>.0", "<family>.1", ... for which "<prefix>.<field>" exists.
std::vector<std::string> cases(const Fixture& fx, const std::string& family, const std::string& field) {
  std::vector<std::string> out;
  for (int k = 0; has(fx, family + "." + std::to_string(k) + "." + field); ++k)
    out.push_back(family + "." + std::to_string(k));
  return out;
}

// Same dtype, and all_close with the tolerance of that dtype (times `scale` where a case is
// ill-conditioned on purpose); integers must be equal.
::testing::AssertionResult matches(const Tensor& actual, const Tensor& expected, double scale = 1.0) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "actual is undefined";
  if (actual.dtype() != expected.dtype())
    return ::testing::AssertionFailure()
           << "dtype " << dtype_name(actual.dtype()) << " != expected " << dtype_name(expected.dtype());
  switch (expected.dtype()) {
    case DType::F64: return test::all_close(actual, expected, kTol64 * scale, kTol64 * scale);
    case DType::F32: return test::all_close(actual, expected, kAtol32 * scale, kRtol32 * scale);
    default: return test::all_close(actual, expected, 0.0, 0.0);
  }
}

using Unary = std::function<Tensor(const Tensor&)>;
using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;

TEST(Reference, Unary) {
  const Fixture fx = test::load_fixture("unary.txt");
  const std::vector<std::pair<std::string, Unary>> on_x = {
      {"neg", [](const Tensor& x) { return ops::neg(x); }},
      {"exp", [](const Tensor& x) { return ops::exp(x); }},
      {"tanh", [](const Tensor& x) { return ops::tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return ops::sigmoid(x); }},
      {"relu", [](const Tensor& x) { return ops::relu(x); }},
      {"gelu", [](const Tensor& x) { return ops::gelu(x, ops::GeluApprox::None); }},
      {"gelu_tanh", [](const Tensor& x) { return ops::gelu(x, ops::GeluApprox::Tanh); }},
      {"silu", [](const Tensor& x) { return ops::silu(x); }},
      {"abs", [](const Tensor& x) { return ops::abs(x); }},
      {"pow2", [](const Tensor& x) { return ops::pow(x, 2.0); }},
      {"pow3", [](const Tensor& x) { return ops::pow(x, 3.0); }},
  };
  const std::vector<std::pair<std::string, Unary>> on_xpos = {
      {"log", [](const Tensor& x) { return ops::log(x); }},
      {"sqrt", [](const Tensor& x) { return ops::sqrt(x); }},
      {"rsqrt", [](const Tensor& x) { return ops::rsqrt(x); }},
      {"pow0.5", [](const Tensor& x) { return ops::pow(x, 0.5); }},
      {"pow-1.5", [](const Tensor& x) { return ops::pow(x, -1.5); }},
  };
  for (const std::string prefix : {"", "f32."}) {
    for (const auto& [inputs, table] : {std::pair{"x", &on_x}, std::pair{"xpos", &on_xpos}}) {
      const Tensor& x = get(fx, prefix + inputs);
      for (const auto& [name, fn] : *table) {
        if (!has(fx, prefix + name)) continue;  // the f32 set is a subset
        EXPECT_TRUE(matches(fn(x), get(fx, prefix + name))) << prefix << name;
      }
    }
  }
}

TEST(Reference, BinaryBroadcast) {
  const Fixture fx = test::load_fixture("binary.txt");
  const std::vector<std::pair<std::string, Binary>> ops_table = {
      {"add", [](const Tensor& a, const Tensor& b) { return ops::add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return ops::sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return ops::mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return ops::div(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return ops::maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return ops::minimum(a, b); }},
      {"eq", [](const Tensor& a, const Tensor& b) { return ops::eq(a, b); }},
      {"lt", [](const Tensor& a, const Tensor& b) { return ops::lt(a, b); }},
      {"gt", [](const Tensor& a, const Tensor& b) { return ops::gt(a, b); }},
  };
  std::vector<std::string> all = cases(fx, "bin", "a");
  const std::vector<std::string> cmp = cases(fx, "cmp", "a");
  ASSERT_GE(all.size(), 5u);
  ASSERT_EQ(cmp.size(), all.size());
  all.insert(all.end(), cmp.begin(), cmp.end());
  all.push_back("f32");
  for (const std::string& c : all) {
    const Tensor& a = get(fx, c + ".a");
    const Tensor& b = get(fx, c + ".b");
    int checked = 0;
    for (const auto& [name, fn] : ops_table) {
      if (!has(fx, c + "." + name)) continue;
      EXPECT_TRUE(matches(fn(a, b), get(fx, c + "." + name)))
          << c << "." << name << ": " << shape_str(a.shape()) << " with " << shape_str(b.shape());
      ++checked;
    }
    EXPECT_GE(checked, 3) << c;
  }
}

TEST(Reference, ScalarOperand) {
  const Fixture fx = test::load_fixture("binary.txt");
  const Tensor& x = get(fx, "scal.x");
  const double s = get(fx, "scal.s").item();
  const std::vector<std::pair<std::string, Tensor>> got = {
      {"add", ops::add(x, s)},         {"sub", ops::sub(x, s)},         {"rsub", ops::sub(s, x)},
      {"mul", ops::mul(x, s)},         {"div", ops::div(x, s)},         {"rdiv", ops::div(s, x)},
      {"maximum", ops::maximum(x, s)}, {"minimum", ops::minimum(x, s)}, {"gt", ops::gt(x, s)},
      {"lt", ops::lt(x, s)},           {"eq", ops::eq(x, s)},
  };
  for (const auto& [name, y] : got) EXPECT_TRUE(matches(y, get(fx, "scal." + name))) << name;
}

TEST(Reference, WhereAndMaskedFill) {
  const Fixture fx = test::load_fixture("binary.txt");
  const auto where_cases = cases(fx, "where", "out");
  ASSERT_EQ(where_cases.size(), 2u);
  for (const std::string& c : where_cases) {
    const Tensor y = ops::where(get(fx, c + ".cond"), get(fx, c + ".a"), get(fx, c + ".b"));
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
  const auto fill_cases = cases(fx, "masked_fill", "out");
  ASSERT_EQ(fill_cases.size(), 2u);
  for (const std::string& c : fill_cases) {
    const Tensor y = ops::masked_fill(get(fx, c + ".x"), get(fx, c + ".mask"), get(fx, c + ".value").item());
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
}

TEST(Reference, Reductions) {
  const Fixture fx = test::load_fixture("reduce.txt");
  const Tensor& x = get(fx, "x");  // (2, 3, 4, 5)
  const auto all = cases(fx, "red", "sum");
  ASSERT_GE(all.size(), 10u);
  for (const std::string& c : all) {
    const std::vector<int64_t> dims = get_ints(fx, c + ".dims");
    const bool keepdim = get_int(fx, c + ".keepdim") != 0;
    SCOPED_TRACE(c + ": dims " + shape_str(dims) + (keepdim ? " keepdim" : ""));
    EXPECT_TRUE(matches(ops::sum(x, dims, keepdim), get(fx, c + ".sum"))) << "sum";
    EXPECT_TRUE(matches(ops::mean(x, dims, keepdim), get(fx, c + ".mean"))) << "mean";
    EXPECT_TRUE(matches(ops::amax(x, dims, keepdim), get(fx, c + ".amax"))) << "amax";
    EXPECT_TRUE(matches(ops::amin(x, dims, keepdim), get(fx, c + ".amin"))) << "amin";
    EXPECT_TRUE(matches(ops::var(x, dims, 0, keepdim), get(fx, c + ".var0"))) << "var, correction 0";
    EXPECT_TRUE(matches(ops::var(x, dims, 1, keepdim), get(fx, c + ".var1"))) << "var, correction 1";
  }
  // Mean 1e4, spread 1e-3: a one-pass E[x^2] - E[x]^2 would lose every digit here, while two
  // passes stay accurate (a rounded mean shifts the sum of squares only to second order).
  EXPECT_TRUE(matches(ops::var(get(fx, "offset.x"), {1}), get(fx, "offset.var1")));

  const Tensor& x32 = get(fx, "f32.x");
  EXPECT_TRUE(matches(ops::sum(x32, {1}), get(fx, "f32.sum1")));
  EXPECT_TRUE(matches(ops::sum(x32), get(fx, "f32.sum_all")));
  EXPECT_TRUE(matches(ops::mean(x32, {0, 2}), get(fx, "f32.mean02")));
  EXPECT_TRUE(matches(ops::var(x32, {1}), get(fx, "f32.var1")));
}

TEST(Reference, Argmax) {
  const Fixture fx = test::load_fixture("reduce.txt");
  const auto all = cases(fx, "argmax", "out");
  ASSERT_EQ(all.size(), 5u);
  for (const std::string& c : all) {
    const Tensor& x = get(fx, get_int(fx, c + ".src_is_ties") ? "ties" : "x");
    const Tensor y = ops::argmax(x, get_int(fx, c + ".dim"), get_int(fx, c + ".keepdim") != 0);
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
}

TEST(Reference, Matmul) {
  const Fixture fx = test::load_fixture("matmul.txt");
  const auto all = cases(fx, "mm", "out");
  ASSERT_EQ(all.size(), 12u);
  for (const std::string& c : all) {
    Tensor a = get(fx, c + ".a"), b = get(fx, c + ".b");
    if (get_int(fx, c + ".ta")) a = a.transpose(-1, -2);  // a strided view, read in place
    if (get_int(fx, c + ".tb")) b = b.transpose(-1, -2);
    EXPECT_TRUE(matches(ops::matmul(a, b), get(fx, c + ".out")))
        << c << ": " << describe(a) << " @ " << describe(b);
  }
}

TEST(Reference, Softmax) {
  const Fixture fx = test::load_fixture("softmax.txt");
  const auto all = cases(fx, "sm", "x");
  ASSERT_EQ(all.size(), 10u);
  for (const std::string& c : all) {
    const Tensor& x = get(fx, c + ".x");
    const int64_t dim = get_int(fx, c + ".dim");
    SCOPED_TRACE(c + ": " + describe(x) + " over dim " + std::to_string(dim));
    EXPECT_TRUE(matches(ops::softmax(x, dim), get(fx, c + ".softmax"))) << "softmax";
    EXPECT_TRUE(matches(ops::log_softmax(x, dim), get(fx, c + ".log_softmax"))) << "log_softmax";
  }
}

TEST(Reference, LayerNorm) {
  const Fixture fx = test::load_fixture("layer_norm.txt");
  const auto all = cases(fx, "ln", "x");
  ASSERT_EQ(all.size(), 7u);
  for (const std::string& c : all) {
    const Tensor& x = get(fx, c + ".x");
    const Tensor w = get_or_undefined(fx, c + ".w"), b = get_or_undefined(fx, c + ".b");
    const int64_t nd = get_int(fx, c + ".nd");
    const double eps = get(fx, c + ".eps").item();
    std::ostringstream trace;
    trace << c << ": " << describe(x) << ", last " << nd << " dims, eps " << eps
          << (w.defined() ? "" : ", no affine");
    SCOPED_TRACE(trace.str());
    // The rounding of the mean (|mean| * 2^-52) is scaled by rstd in xhat = (x - mean) * rstd, in
    // PyTorch and in ours alike: rows with a large mean relative to their spread (case ln.4,
    // |mean| * rstd = 1e4, checked against exact rational arithmetic) get a tolerance scaled by
    // that condition number. A one-pass variance would still be off by 1e-8 there, and fail.
    const double kappa = ops::amax(ops::mul(ops::abs(get(fx, c + ".mean")), get(fx, c + ".rstd"))).item();
    const double scale = std::max(1.0, kappa / 10);
    const ops::LayerNormOutput o = ops::layer_norm(x, nd, w, b, eps);
    EXPECT_TRUE(matches(o.y, get(fx, c + ".y"), scale)) << "y";
    EXPECT_TRUE(matches(o.mean, get(fx, c + ".mean"))) << "mean";
    EXPECT_TRUE(matches(o.rstd, get(fx, c + ".rstd"))) << "rstd";
    const ops::LayerNormGrads g =
        ops::layer_norm_backward(get(fx, c + ".gy"), x, nd, o.mean, o.rstd, w, w.defined(), b.defined());
    EXPECT_TRUE(matches(g.x, get(fx, c + ".dx"), scale)) << "dx";
    if (w.defined()) {
      EXPECT_TRUE(matches(g.weight, get(fx, c + ".dw"), scale)) << "dweight";
    }
    if (b.defined()) {
      EXPECT_TRUE(matches(g.bias, get(fx, c + ".db"))) << "dbias";
    }
  }
}

TEST(Reference, IndexSelectAndGather) {
  const Fixture fx = test::load_fixture("index.txt");
  const auto selects = cases(fx, "index_select", "out");
  ASSERT_EQ(selects.size(), 4u);
  for (const std::string& c : selects) {
    const Tensor y = ops::index_select(get(fx, c + ".x"), get_int(fx, c + ".dim"), get(fx, c + ".index"));
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
  const auto gathers = cases(fx, "gather", "out");
  ASSERT_EQ(gathers.size(), 4u);
  for (const std::string& c : gathers) {
    const Tensor y = ops::gather(get(fx, c + ".x"), get_int(fx, c + ".dim"), get(fx, c + ".index"));
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
  EXPECT_TRUE(matches(ops::embedding(get(fx, "embedding.weight"), get(fx, "embedding.ids")),
                      get(fx, "embedding.out")));
}

TEST(Reference, ScatterAddAndIndexAdd) {
  const Fixture fx = test::load_fixture("index.txt");
  const auto scatters = cases(fx, "scatter_add", "out");
  ASSERT_EQ(scatters.size(), 3u);
  for (const std::string& c : scatters) {
    const Tensor y = ops::scatter_add(get(fx, c + ".x"), get_int(fx, c + ".dim"), get(fx, c + ".index"),
                                      get(fx, c + ".src"));
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
  const auto adds = cases(fx, "index_add", "out");
  ASSERT_EQ(adds.size(), 3u);
  for (const std::string& c : adds) {
    const Tensor y = ops::index_add(get(fx, c + ".x"), get_int(fx, c + ".dim"), get(fx, c + ".index"),
                                    get(fx, c + ".src"));
    EXPECT_TRUE(matches(y, get(fx, c + ".out"))) << c;
  }
}

TEST(Reference, ConcatStackSplit) {
  const Fixture fx = test::load_fixture("join.txt");
  const auto concats = cases(fx, "concat", "out");
  ASSERT_EQ(concats.size(), 4u);
  for (const std::string& c : concats) {
    std::vector<Tensor> parts;
    for (int i = 0; has(fx, c + ".p" + std::to_string(i)); ++i)
      parts.push_back(get(fx, c + ".p" + std::to_string(i)));
    EXPECT_TRUE(matches(ops::concat(parts, get_int(fx, c + ".dim")), get(fx, c + ".out"))) << c;
  }
  const std::vector<Tensor> parts = {get(fx, "stack.p0"), get(fx, "stack.p1"), get(fx, "stack.p2")};
  const auto stacks = cases(fx, "stack", "out");
  ASSERT_EQ(stacks.size(), 4u);
  for (const std::string& c : stacks)
    EXPECT_TRUE(matches(ops::stack(parts, get_int(fx, c + ".dim")), get(fx, c + ".out"))) << c;
  const Tensor& x = get(fx, "split.x");
  const auto splits = cases(fx, "split", "n");
  ASSERT_EQ(splits.size(), 4u);
  for (const std::string& c : splits) {
    const int64_t dim = get_int(fx, c + ".dim");
    const std::vector<Tensor> pieces = has(fx, c + ".sizes") ? ops::split(x, get_ints(fx, c + ".sizes"), dim)
                                                             : ops::split(x, get_int(fx, c + ".size"), dim);
    ASSERT_EQ(static_cast<int64_t>(pieces.size()), get_int(fx, c + ".n")) << c;
    for (size_t i = 0; i < pieces.size(); ++i)
      EXPECT_TRUE(matches(pieces[i], get(fx, c + ".out" + std::to_string(i)))) << c << " piece " << i;
  }
}

// Checks y = conv(x, w, b) and (dx, dw, db) = conv_backward(gy) for every case of `family`.
template <class Options, class Forward, class Backward>
void check_conv(const Fixture& fx, const std::string& family, size_t n_cases,
                const std::function<Options(const std::vector<int64_t>&)>& options, Forward forward,
                Backward backward) {
  const auto all = cases(fx, family, "y");
  ASSERT_EQ(all.size(), n_cases);
  for (const std::string& c : all) {
    const Tensor& x = get(fx, c + ".x");
    const Tensor& w = get(fx, c + ".w");
    const Tensor b = get_or_undefined(fx, c + ".b");
    const Options o = options(get_ints(fx, c + ".opts"));
    SCOPED_TRACE(c + ": x " + describe(x) + ", weight " + shape_str(w.shape()) +
                 (b.defined() ? ", bias" : ", no bias") + ", opts " + shape_str(get_ints(fx, c + ".opts")));
    EXPECT_TRUE(matches(forward(x, w, b, o), get(fx, c + ".y"))) << "y";
    const ops::ConvGrads g = backward(get(fx, c + ".gy"), x, w, o, true, true, b.defined());
    EXPECT_TRUE(matches(g.x, get(fx, c + ".dx"))) << "dx";
    EXPECT_TRUE(matches(g.weight, get(fx, c + ".dw"))) << "dweight";
    if (b.defined()) {
      EXPECT_TRUE(matches(g.bias, get(fx, c + ".db"))) << "dbias";
    }
  }
}

TEST(Reference, Conv1d) {
  const Fixture fx = test::load_fixture("conv.txt");
  // opts: stride, padding, dilation, groups
  check_conv<ops::Conv1dOptions>(
      fx, "conv1d", 6,
      [](const std::vector<int64_t>& v) {
        return ops::Conv1dOptions{v.at(0), v.at(1), v.at(2), v.at(3)};
      },
      ops::conv1d, ops::conv1d_backward);
}

TEST(Reference, Conv2d) {
  const Fixture fx = test::load_fixture("conv.txt");
  // opts: stride (h, w), padding (h, w), dilation (h, w), groups
  check_conv<ops::Conv2dOptions>(
      fx, "conv2d", 6,
      [](const std::vector<int64_t>& v) {
        ops::Conv2dOptions o;
        o.stride = {v.at(0), v.at(1)};
        o.padding = {v.at(2), v.at(3)};
        o.dilation = {v.at(4), v.at(5)};
        o.groups = v.at(6);
        return o;
      },
      ops::conv2d, ops::conv2d_backward);
}

}  // namespace
}  // namespace cw
