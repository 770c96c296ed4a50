// Module mechanics (names, state dicts, strict loading reports, freezing, modes, dtype moves),
// and gradient checks and padding invariance of attention and the transformer layer.
#include "nn/transformer.h"
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::rand64;

// A two-level module tree for the mechanics tests.
struct Block : nn::Module {
  Block() {
    lin = register_module("lin", std::make_shared<nn::Linear>(3, 2));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(Shape{2}));
    register_buffer("steps", ops::zeros({1}, DType::I64));
  }
  std::shared_ptr<nn::Linear> lin;
  std::shared_ptr<nn::LayerNorm> norm;
};
struct Net : nn::Module {
  Net() {
    scale = register_parameter("scale", ops::ones({2}));
    block = register_module("block", std::make_shared<Block>());
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.5));
  }
  Variable scale;
  std::shared_ptr<Block> block;
  std::shared_ptr<nn::Dropout> drop;
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Variable>>& v) {
  std::vector<std::string> out;
  for (auto& [n, p] : v) out.push_back(n);
  return out;
}

TEST(Module, DottedNamesInRegistrationOrder) {
  Net net;
  EXPECT_EQ(names_of(net.named_parameters()),
            (std::vector<std::string>{"scale", "block.lin.weight", "block.lin.bias", "block.norm.weight",
                                      "block.norm.bias"}));
  EXPECT_EQ(net.num_parameters(), 2 + 6 + 2 + 2 + 2);
  ASSERT_EQ(net.named_buffers().size(), 1u);
  EXPECT_EQ(net.named_buffers()[0].first, "block.steps");
  EXPECT_EQ(net.named_modules().size(), 4u);  // block, block.lin, block.norm, drop
  EXPECT_EQ(net.state_dict().size(), 6u);
}

TEST(Module, StateDictRoundTripSharesHandles) {
  Net a, b;
  b.load_state_dict(a.state_dict());
  EXPECT_TRUE(all_close(b.block->lin->weight.data(), a.block->lin->weight.data(), 0, 0));
  // The member handle saw the load (values were copied into the existing parameter).
  EXPECT_FALSE(b.block->lin->weight.data().shares_storage(a.block->lin->weight.data()));
}

TEST(Module, StrictLoadReportsEverythingAtOnce) {
  Net net;
  auto state = net.state_dict();
  state.erase("block.norm.bias");
  state["block.lin.weight"] = ops::zeros({4, 3});
  state["extra.weight"] = ops::zeros({1});
  try {
    net.load_state_dict(state);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("block.norm.bias (2,)"), std::string::npos) << m;
    EXPECT_NE(m.find("extra.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("block.lin.weight: checkpoint (4, 3) vs module (2, 3)"), std::string::npos) << m;
  }
  // Nothing was half-loaded.
  EXPECT_FALSE(all_close(net.block->lin->weight.data(), ops::zeros({2, 3}), 0, 0));
  // Non-strict loading tolerates missing and unexpected names, but never a wrong shape.
  state["block.lin.weight"] = ops::zeros({2, 3});
  nn::LoadReport r = net.load_state_dict(state, /*strict=*/false);
  EXPECT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.unexpected.size(), 1u);
  EXPECT_TRUE(all_close(net.block->lin->weight.data(), ops::zeros({2, 3}), 0, 0));
}

TEST(Module, FreezeTrainEvalZeroGradAndDtype) {
  Net net;
  net.block->requires_grad_(false);
  EXPECT_FALSE(net.block->lin->weight.requires_grad());
  EXPECT_TRUE(net.scale.requires_grad());
  // A frozen subtree on a constant input records nothing.
  Variable y = net.block->lin->forward(Variable(ops::ones({1, 3})));
  EXPECT_FALSE(y.requires_grad());

  EXPECT_TRUE(net.drop->is_training());
  net.eval();
  EXPECT_FALSE(net.drop->is_training());
  Variable x(ops::ones({100}));
  EXPECT_TRUE(all_close(net.drop->forward(x).data(), x.data(), 0, 0));  // identity in eval
  net.train();
  EXPECT_FALSE(all_close(net.drop->forward(x).data(), x.data(), 0, 0));

  ag::sum(net.scale * 2.0).backward();
  EXPECT_TRUE(net.scale.grad().defined());
  net.zero_grad();
  EXPECT_FALSE(net.scale.grad().defined());

  net.to(DType::F64);
  EXPECT_EQ(net.block->lin->weight.dtype(), DType::F64);
  EXPECT_EQ(net.named_buffers()[0].second.dtype(), DType::I64);  // integer buffers keep their type
  EXPECT_THROW(net.to(Device::cuda(0)), DeviceError);
}

TEST(Module, RejectsBadNamesAndShapes) {
  struct Bad : nn::Module {
    void add(const std::string& n) { register_parameter(n, ops::zeros({1})); }
  } bad;
  bad.add("w");
  EXPECT_THROW(bad.add("w"), ValueError);
  EXPECT_THROW(bad.add("a.b"), ValueError);
  nn::Linear lin(4, 2);
  EXPECT_THROW(lin.forward(Variable(ops::zeros({3, 5}))), ShapeError);
  EXPECT_THROW(nn::MultiHeadAttention(10, 3), ValueError);
}

// Attention with a padding mask, checked in f64 through its inputs and all projections.
TEST(Attention, GradCheckWithPaddingMask) {
  nn::MultiHeadAttention mha(4, 2, 0.0, true, DType::F64);
  const Tensor pad = test::f64({0, 0, 0, 0, 0, 1, 1, 0}, {2, 4});  // 2nd sequence: keys 1, 2 padded
  auto params = mha.parameters();
  std::vector<Tensor> inputs{rand64({2, 4, 4}, -1, 1, 201)};
  for (auto& p : params) inputs.push_back(p.data());
  // The parameters are gradcheck inputs here, so the same computation is spelled out with them
  // (query, key, value, out_proj weights and biases in registration order)...
  auto fn_vars = [&](const std::vector<Variable>& v) {
    nn::MultiHeadAttention& m = mha;
    auto w = [&](size_t i) { return v[i + 1]; };
    Variable q = m.split_heads(ag::matmul(v[0], ag::transpose(w(0), 0, 1)) + w(1));
    Variable k = m.split_heads(ag::matmul(v[0], ag::transpose(w(2), 0, 1)) + w(3));
    Variable val = m.split_heads(ag::matmul(v[0], ag::transpose(w(4), 0, 1)) + w(5));
    Variable ctx = m.merge_heads(nn::scaled_dot_product_attention(q, k, val, pad));
    return ag::matmul(ctx, ag::transpose(w(6), 0, 1)) + w(7);
  };
  EXPECT_TRUE(test::gradcheck(fn_vars, inputs));
  // ...and the module's own forward computes exactly that function.
  std::vector<Variable> vs;
  for (auto& t : inputs) vs.emplace_back(t);
  EXPECT_TRUE(all_close(mha.forward(vs[0], pad).data(), fn_vars(vs).data(), 1e-14, 0));
  // Gradient w.r.t. the input through the module itself.
  EXPECT_TRUE(
      test::gradcheck([&](const std::vector<Variable>& v) { return mha.forward(v[0], pad); }, {inputs[0]}));
}

// A padded sequence gives the same outputs (at its real positions) as the sequence alone.
TEST(Attention, PaddingInvariance) {
  nn::TransformerLayerOptions o;
  o.d_model = 8;
  o.num_heads = 2;
  o.d_ff = 16;
  o.dropout = 0.0;
  for (bool pre : {false, true}) {
    o.pre_norm = pre;
    nn::TransformerEncoderLayer layer(o, DType::F64);
    const Tensor seq = rand64({1, 3, 8}, -1, 1, 211);
    const Tensor padded = ops::concat({seq, rand64({1, 2, 8}, -5, 5, 212)}, 1);  // garbage in the padding
    const Tensor mask = test::f64({0, 0, 0, 1, 1}, {1, 5});
    const Tensor alone = layer.forward(Variable(seq)).data();
    const Tensor in_batch = layer.forward(Variable(padded), mask).data().narrow(1, 0, 3);
    EXPECT_TRUE(all_close(in_batch, alone, 1e-12, 1e-12)) << (pre ? "pre-LN" : "post-LN");
  }
}

// A mask with no padding is dropped (attention then runs no masked_fill); one padded key keeps it.
TEST(Attention, PaddingOrNoneDropsOnlyAllFalseMasks) {
  EXPECT_FALSE(nn::padding_or_none(test::f64({0, 0, 0, 0}, {2, 2})).defined());
  EXPECT_TRUE(nn::padding_or_none(test::f64({0, 0, 0, 1}, {2, 2})).defined());
  EXPECT_TRUE(nn::padding_or_none(ops::eq(ops::arange(0, 4, 1, DType::I64).view({1, 4}), 3.0)).defined());
  EXPECT_FALSE(nn::padding_or_none(Tensor()).defined());
}

TEST(Transformer, LayerGradCheck) {
  nn::TransformerLayerOptions o;
  o.d_model = 4;
  o.num_heads = 2;
  o.d_ff = 6;
  o.dropout = 0.0;
  for (bool pre : {false, true}) {
    o.pre_norm = pre;
    nn::TransformerEncoderLayer layer(o, DType::F64);
    const Tensor mask = test::f64({0, 0, 1, 0, 0, 0}, {2, 3});
    EXPECT_TRUE(test::gradcheck([&](const std::vector<Variable>& v) { return layer.forward(v[0], mask); },
                                {rand64({2, 3, 4}, -1, 1, 221)}))
        << (pre ? "pre-LN" : "post-LN");
  }
}

}  // namespace
}  // namespace cw
