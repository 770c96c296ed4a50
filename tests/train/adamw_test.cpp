// AdamW against torch.optim.AdamW (tests/fixtures/adamw_reference.safetensors, made by
// tools/make_adamw_fixture.py), the decay / no-decay split, state save / restore, bad input.
#include "train/adamw.h"

#include <gtest/gtest.h>

#include "core/ops.h"
#include "core/safetensors.h"
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using train::AdamW;
using train::AdamWOptions;
using train::ParamGroup;

const std::string kFixture = std::string(CW_FIXTURE_DIR) + "/adamw_reference.safetensors";

struct Reference {
  SafetensorsFile file = SafetensorsFile::open(kFixture);
  std::vector<double> lrs = file.load("lrs").to_vector<double>();
  std::vector<double> opts = file.load("opts").to_vector<double>();  // beta1, beta2, eps, wd
  AdamWOptions options() const { return {lrs[0], opts[0], opts[1], opts[2], opts[3]}; }
};

// Replays the fixture's five steps for one dtype; `transposed_w` stores "w" as a transposed
// view (non-contiguous), which sends it through the core-ops path instead of the fused loop.
void replay(const std::string& dtype, double atol, double rtol, bool transposed_w) {
  Reference ref;
  std::map<std::string, Variable> params;
  for (const char* p : {"w", "b", "s"}) {
    Tensor init = ref.file.load(dtype + "." + p + ".init").clone();
    // Same values over column-major storage: a non-contiguous (3, 4) view.
    if (transposed_w && std::string(p) == "w") init = init.t().contiguous().t();
    params[p] = Variable(init, true);
  }
  if (transposed_w) {
    ASSERT_FALSE(params["w"].data().is_contiguous());
  }
  AdamW opt({ParamGroup{{"w"}, {params["w"]}, ref.opts[3]},
             ParamGroup{{"b", "s"}, {params["b"], params["s"]}, 0.0}},
            ref.options());
  for (int k = 0; k < 5; ++k) {
    for (auto& [name, v] : params)
      v.set_grad(ref.file.load(dtype + "." + name + ".grad." + std::to_string(k)));
    opt.step(ref.lrs[k]);
    EXPECT_EQ(opt.step_count(), k + 1);
    for (auto& [name, v] : params) {
      EXPECT_TRUE(
          all_close(v.data(), ref.file.load(dtype + "." + name + ".after." + std::to_string(k)), atol, rtol))
          << dtype << " " << name << " after step " << k;
    }
  }
  const auto state = opt.state_tensors();
  for (const char* p : {"w", "b", "s"}) {
    EXPECT_TRUE(all_close(state.at(std::string("exp_avg.") + p), ref.file.load(dtype + "." + p + ".exp_avg"),
                          atol, rtol))
        << p;
    // exp_avg_sq of "b" is ~1e-14: compare relatively.
    EXPECT_TRUE(all_close(state.at(std::string("exp_avg_sq.") + p),
                          ref.file.load(dtype + "." + p + ".exp_avg_sq"), 0.0, rtol))
        << p;
  }
}

TEST(AdamW, MatchesTorchF32) { replay("f32", 1e-6, 1e-5, false); }
TEST(AdamW, MatchesTorchF64) { replay("f64", 1e-12, 1e-10, false); }
TEST(AdamW, MatchesTorchThroughOpsPath) { replay("f64", 1e-12, 1e-10, true); }

// The no-decay group really gets no decay: with a zero gradient, a decayed parameter shrinks by
// exactly (1 - lr * wd) and an exempt one does not move.
TEST(AdamW, DecoupledDecayOnlyInDecayGroup) {
  Variable w(ops::full({2, 2}, 2.0, DType::F64), true), b(ops::full({2}, 2.0, DType::F64), true);
  AdamW opt({ParamGroup{{"w"}, {w}, 0.5}, ParamGroup{{"b"}, {b}, 0.0}}, {});
  w.set_grad(ops::zeros({2, 2}, DType::F64));
  b.set_grad(ops::zeros({2}, DType::F64));
  opt.step(0.1);
  EXPECT_TRUE(all_close(w.data(), ops::full({2, 2}, 2.0 * (1 - 0.1 * 0.5), DType::F64), 1e-15, 0));
  EXPECT_TRUE(all_close(b.data(), ops::full({2}, 2.0, DType::F64), 0, 0));
}

TEST(AdamW, ParameterWithoutGradientIsUntouched) {
  Variable w(ops::ones({3}), true), u(ops::ones({3}), true);
  AdamW opt({ParamGroup{{"w", "u"}, {w, u}, 0.1}}, {});
  w.set_grad(ops::ones({3}));
  opt.step(0.01);
  EXPECT_TRUE(all_close(u.data(), ops::ones({3}), 0, 0));
  EXPECT_FALSE(all_close(w.data(), ops::ones({3}), 1e-4, 0));
  EXPECT_TRUE(all_close(opt.state_tensors().at("exp_avg.u"), ops::zeros({3}), 0, 0));
  opt.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

// Saving the state after 2 steps and resuming into a fresh optimizer gives the same parameters
// after step 4 as running 4 steps straight.
TEST(AdamW, StateRoundTripResumesExactly) {
  auto grads = [](int k) { return test::rand64({2, 3}, -1, 1, 100 + k); };
  Tensor init = test::rand64({2, 3}, -1, 1, 5);
  Variable straight(init.clone(), true);
  AdamW a({ParamGroup{{"p"}, {straight}, 0.01}}, {});
  for (int k = 0; k < 4; ++k) {
    straight.set_grad(grads(k));
    a.step(1e-2);
  }
  Variable first(init.clone(), true);
  AdamW b({ParamGroup{{"p"}, {first}, 0.01}}, {});
  for (int k = 0; k < 2; ++k) {
    first.set_grad(grads(k));
    b.step(1e-2);
  }
  std::map<std::string, Tensor> saved;
  for (const auto& [k, t] : b.state_tensors()) saved[k] = t.clone();
  Variable resumed(first.data().clone(), true);
  AdamW c({ParamGroup{{"p"}, {resumed}, 0.01}}, {});
  c.load_state_tensors(saved, b.step_count());
  for (int k = 2; k < 4; ++k) {
    resumed.set_grad(grads(k));
    c.step(1e-2);
  }
  EXPECT_EQ(c.step_count(), 4);
  EXPECT_TRUE(all_close(resumed.data(), straight.data(), 0, 0));
}

TEST(AdamW, LoadStateReportsEveryProblem) {
  Variable p(ops::ones({2, 3}), true), q(ops::ones({4}), true);
  AdamW opt({ParamGroup{{"p", "q"}, {p, q}, 0.0}}, {});
  std::map<std::string, Tensor> state = opt.state_tensors();
  state.erase("exp_avg.q");
  state["exp_avg_sq.p"] = ops::zeros({3, 2});
  state["exp_avg.r"] = ops::zeros({1});
  try {
    opt.load_state_tensors(state, 3);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing (1): exp_avg.q"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected (1): exp_avg.r"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exp_avg_sq.p: checkpoint f32 (3, 2)"), std::string::npos) << msg;
  }
  EXPECT_EQ(opt.step_count(), 0);  // nothing applied
}

TEST(AdamW, RejectsBadConstruction) {
  Variable p(ops::ones({2}), true);
  EXPECT_THROW(AdamW({ParamGroup{{"p"}, {p}, 0.0}, ParamGroup{{"p"}, {p}, 0.1}}, {}), ValueError);
  EXPECT_THROW(AdamW({ParamGroup{{"p", "q"}, {p}, 0.0}}, {}), ValueError);
  AdamWOptions bad;
  bad.beta2 = 1.0;
  EXPECT_THROW(AdamW({ParamGroup{{"p"}, {p}, 0.0}}, bad), ValueError);
}

TEST(ParamGroups, DecayRule) {
  std::vector<std::pair<std::string, Variable>> named = {
      {"enc.dense.weight", Variable(ops::ones({3, 2}), true)},            // matrix: decay
      {"enc.dense.bias", Variable(ops::ones({3}), true)},                 // bias: no decay
      {"enc.LayerNorm.weight", Variable(ops::ones({3}), true)},           // 1-d norm gain: no decay
      {"proj.bias_like_matrix_bias", Variable(ops::ones({2, 2}), true)},  // ends in "bias": no decay
      {"logit_scale", Variable(ops::ones({}), true)},                     // 0-d: no decay
      {"pos.embedding", Variable(ops::ones({4, 3}), true)},               // matrix, but listed: no decay
      {"frozen.weight", Variable(ops::ones({3, 3}), false)},              // frozen: left out
      {"conv.weight", Variable(ops::ones({2, 1, 3}), true)},              // 3-d: decay
  };
  const auto groups = train::make_param_groups(named, 0.05, {"pos.embed"});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 0.05);
  EXPECT_EQ(groups[0].names, (std::vector<std::string>{"enc.dense.weight", "conv.weight"}));
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(groups[1].names,
            (std::vector<std::string>{"enc.dense.bias", "enc.LayerNorm.weight", "proj.bias_like_matrix_bias",
                                      "logit_scale", "pos.embedding"}));
  EXPECT_TRUE(groups[1].params[3].data().shares_storage(named[4].second.data()));
  // Only exempt parameters: one group, no empty decay group.
  const auto only = train::make_param_groups({named[1]}, 0.05);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].weight_decay, 0.0);
}

}  // namespace
}  // namespace cw
