// nn layers against PyTorch 1.13 modules: weights loaded by our names (strict), output, input
// gradient and every parameter gradient of sum(y * r), from tests/fixtures/nn_*.txt made by
// tools/make_nn_fixtures.py (record names in its docstring); and initializer statistics.
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/transformer.h"
#include "support/check.h"
#include "support/fixture.h"

namespace cw {
namespace {

using Fixture = std::map<std::string, Tensor>;

// Both sides compute in f64; they differ by summation order and libm's last bits (erf, exp):
// the worst difference seen is 1.4e-14 (a transformer weight gradient of magnitude 26). 1e-10
// leaves room for another BLAS or compiler while catching any real error (a wrong term is O(0.1)).
constexpr double kAtol = 1e-10, kRtol = 1e-10;

bool has(const Fixture& fx, const std::string& name) { return fx.count(name) != 0; }

const Tensor& get(const Fixture& fx, const std::string& name) {
  const auto it = fx.find(name);
  if (it == fx.end()) throw std::runtime_error("fixture has no tensor '" + name + "'");
  return it->second;
}

std::vector<int64_t> get_ints(const Fixture& fx, const std::string& name) {
  return get(fx, name).to_vector<int64_t>();
}

// The records "<prefix><name>" as a map name -> tensor.
std::map<std::string, Tensor> with_prefix(const Fixture& fx, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : fx)
    if (name.compare(0, prefix.size(), prefix) == 0) out[name.substr(prefix.size())] = t;
  return out;
}

::testing::AssertionResult close(const Tensor& actual, const Tensor& expected) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "actual is undefined";
  return test::all_close(actual, expected, kAtol, kRtol);
}

using Forward = std::function<Variable(const Variable& x)>;

// Loads the case's weights into `m` (strict: every name must match ours, both ways), runs
// forward on x, backward of sum(y * r), and compares y, dx and the gradient of every parameter.
void check_case(const Fixture& fx, const std::string& c, nn::Module& m, const Forward& forward) {
  SCOPED_TRACE(c);
  m.load_state_dict(with_prefix(fx, c + ".param."));
  const Tensor& x_data = get(fx, c + ".x");
  const bool float_input = x_data.dtype() == DType::F64;
  const Variable x(x_data, /*requires_grad=*/float_input);
  const Variable y = forward(x);
  EXPECT_TRUE(close(y.data(), get(fx, c + ".y"))) << "y";
  y.backward(get(fx, c + ".r"));
  if (float_input) {
    EXPECT_TRUE(close(x.grad(), get(fx, c + ".dx"))) << "dx";
  }
  const auto grads = with_prefix(fx, c + ".grad.");
  const auto params = m.named_parameters();
  EXPECT_EQ(grads.size(), params.size()) << "every parameter's gradient is in the fixture";
  for (const auto& [name, p] : params) {
    const auto it = grads.find(name);
    if (it == grads.end()) {
      ADD_FAILURE() << "fixture has no gradient of " << name;
      continue;
    }
    EXPECT_TRUE(close(p.grad(), it->second)) << "grad of " << name;
  }
}

TEST(NnReference, Linear) {
  const Fixture fx = test::load_fixture("nn_linear.txt");
  for (const std::string c : {"linear_bias", "linear_nobias"}) {
    const auto cfg = get_ints(fx, c + ".config");  // in, out, bias
    nn::Linear lin(cfg[0], cfg[1], cfg[2] != 0, DType::F64);
    check_case(fx, c, lin, [&](const Variable& x) { return lin.forward(x); });
  }
}

TEST(NnReference, LayerNorm) {
  const Fixture fx = test::load_fixture("nn_layer_norm.txt");
  for (const std::string c : {"layer_norm_1d", "layer_norm_2d"}) {
    nn::LayerNorm ln(get_ints(fx, c + ".config"), get(fx, c + ".eps").item(), true, DType::F64);
    check_case(fx, c, ln, [&](const Variable& x) { return ln.forward(x); });
  }
}

TEST(NnReference, Embedding) {
  const Fixture fx = test::load_fixture("nn_embedding.txt");
  const auto cfg = get_ints(fx, "embedding.config");  // num, dim
  nn::Embedding emb(cfg[0], cfg[1], DType::F64);
  check_case(fx, "embedding", emb, [&](const Variable& ids) { return emb.forward(ids.data()); });
}

// Self-attention with no mask, a padding mask, an additive causal mask (-1e9), both, and a
// learned additive bias (B, H, T, S) whose gradient is checked too.
TEST(NnReference, MultiHeadAttention) {
  const Fixture fx = test::load_fixture("nn_attention.txt");
  for (const std::string c : {"mha", "mha_pad", "mha_causal", "mha_causal_pad", "mha_bias_pad"}) {
    const auto cfg = get_ints(fx, c + ".config");  // embed_dim, num_heads
    nn::MultiHeadAttention mha(cfg[0], cfg[1], 0.0, true, DType::F64);
    const Tensor mask = has(fx, c + ".mask") ? get(fx, c + ".mask") : Tensor();
    Variable attn_mask;
    if (has(fx, c + ".attn_mask")) attn_mask = Variable(get(fx, c + ".attn_mask"), /*requires_grad=*/true);
    check_case(fx, c, mha, [&](const Variable& x) { return mha.forward(x, mask, attn_mask); });
    if (has(fx, c + ".dattn_mask")) {
      EXPECT_TRUE(close(attn_mask.grad(), get(fx, c + ".dattn_mask"))) << c << ": d attn_mask";
    }
  }
}

TEST(NnReference, FeedForward) {
  const Fixture fx = test::load_fixture("nn_feed_forward.txt");
  const auto cfg = get_ints(fx, "ffn.config");  // d_model, d_ff
  nn::FeedForward ffn(cfg[0], cfg[1], nn::Activation::Gelu, 0.0, DType::F64);
  check_case(fx, "ffn", ffn, [&](const Variable& x) { return ffn.forward(x); });
}

// Post-LN and pre-LN with a padding mask; padded positions are compared too (PyTorch's math
// path computes them, as ours does, from the real keys).
TEST(NnReference, TransformerEncoderLayer) {
  const Fixture fx = test::load_fixture("nn_transformer.txt");
  for (const std::string c : {"encoder_post_ln", "encoder_pre_ln"}) {
    const auto cfg = get_ints(fx, c + ".config");  // d_model, num_heads, d_ff, pre_norm
    nn::TransformerLayerOptions o;
    o.d_model = cfg[0];
    o.num_heads = cfg[1];
    o.d_ff = cfg[2];
    o.pre_norm = cfg[3] != 0;
    o.dropout = 0.0;
    o.layer_norm_eps = get(fx, c + ".eps").item();
    o.activation = nn::Activation::Gelu;
    nn::TransformerEncoderLayer layer(o, DType::F64);
    const Tensor& mask = get(fx, c + ".mask");
    check_case(fx, c, layer, [&](const Variable& x) { return layer.forward(x, mask); });
    // Eval mode takes no other path (dropout is 0 anyway): the same output.
    layer.eval();
    EXPECT_TRUE(close(layer.forward(Variable(get(fx, c + ".x")), mask).data(), get(fx, c + ".y")))
        << c << ": eval mode";
  }
}

// ---- initializers: the distributions of PyTorch's defaults (not its numbers).

struct Stats {
  double min, max, mean, std;
};
Stats stats_of(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  Stats s{v.at(0), v.at(0), 0.0, 0.0};
  for (double x : v) {
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
    s.mean += x;
  }
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(v.size() - 1));
  return s;
}

// U(-b, b) with b = 1/sqrt(fan_in), for weight (kaiming_uniform_(a = sqrt(5))) and bias alike:
// every value inside, the extremes near the bound, mean ~0, std ~b/sqrt(3). Tolerances are
// ~6 standard errors of the estimates at these sizes (n = 2^20 weights, 4096 biases).
void expect_uniform(const Tensor& t, double bound, double std_rtol, const char* what) {
  const Stats s = stats_of(t);
  const double n = static_cast<double>(t.numel());
  EXPECT_GE(s.min, -bound) << what;
  EXPECT_LE(s.max, bound) << what;
  EXPECT_GT(s.max, 0.99 * bound) << what;
  EXPECT_LT(s.min, -0.99 * bound) << what;
  EXPECT_NEAR(s.mean, 0.0, 6.0 * bound / std::sqrt(3.0 * n)) << what;
  EXPECT_NEAR(s.std, bound / std::sqrt(3.0), std_rtol * bound / std::sqrt(3.0)) << what;
}

TEST(NnReferenceInit, LinearIsUniformOneOverSqrtFanIn) {
  for (const DType dt : {DType::F32, DType::F64}) {
    nn::Linear lin(256, 4096, true, dt);
    EXPECT_EQ(lin.weight.dtype(), dt);
    EXPECT_EQ(lin.bias.dtype(), dt);
    const double bound = 1.0 / std::sqrt(256.0);
    expect_uniform(lin.weight.data(), bound, 0.01, "weight");  // std's rel. s.e. ~0.0009
    expect_uniform(lin.bias.data(), bound, 0.05, "bias");      // std's rel. s.e. ~0.007
  }
  // fan_in is the input size, not the output size.
  nn::Linear wide(4096, 64);
  const Stats s = stats_of(wide.weight.data());
  EXPECT_LE(s.max, 1.0 / 64.0);
  EXPECT_GT(s.max, 0.99 / 64.0);
}

TEST(NnReferenceInit, EmbeddingIsStandardNormal) {
  nn::Embedding emb(1000, 256, DType::F64);
  const Stats s = stats_of(emb.weight.data());
  const double n = 1000.0 * 256.0;
  EXPECT_NEAR(s.mean, 0.0, 6.0 / std::sqrt(n));
  EXPECT_NEAR(s.std, 1.0, 6.0 / std::sqrt(2.0 * n));
  EXPECT_GT(s.max, 3.5);  // a normal, not a bounded law: P(max < 3.5) ~ 1e-7 at this n
  EXPECT_LT(s.min, -3.5);
}

TEST(NnReferenceInit, LayerNormIsOnesAndZeros) {
  nn::LayerNorm ln(Shape{3, 4}, 1e-5, true, DType::F64);
  EXPECT_TRUE(test::all_close(ln.weight.data(), ops::ones({3, 4}, DType::F64), 0, 0));
  EXPECT_TRUE(test::all_close(ln.bias.data(), ops::zeros({3, 4}, DType::F64), 0, 0));
  nn::LayerNorm plain(Shape{4}, 1e-5, /*affine=*/false);
  EXPECT_TRUE(plain.named_parameters().empty());
}

// Attention's projections are Linears with the same defaults (PyTorch's nn.MultiheadAttention
// uses xavier_uniform_ on its packed in_proj and zero biases instead; ours follows nn.Linear, as
// Hugging Face BERT's separate query/key/value Linears do before its own init overrides them).
TEST(NnReferenceInit, AttentionProjectionsAreLinearDefaults) {
  nn::MultiHeadAttention mha(256, 4, 0.0, true, DType::F64);
  for (const auto& [name, p] : mha.named_parameters()) {
    const Stats s = stats_of(p.data());
    EXPECT_LE(std::max(-s.min, s.max), 1.0 / 16.0) << name;
    EXPECT_EQ(p.dtype(), DType::F64) << name;
  }
}

}  // namespace
}  // namespace cw
