// Parity of an nn::Module with a reference fixture: loads `<case>.param.*` strictly by our
// names, runs forward on `<case>.x`, backward of sum(y * r) with r = `<case>.r`, and compares y,
// dx, every parameter gradient (`<case>.grad.*`) and the state after the step (`<case>.after.*`).
// Header-only; used by the test binaries that link the nn/ layer.
#pragma once

#include <map>
#include <string>

#include "nn/module.h"
#include "support/check.h"

namespace cw::test {

using Fixture = std::map<std::string, Tensor>;

inline const Tensor& fixture_get(const Fixture& fx, const std::string& name) {
  const auto it = fx.find(name);
  if (it == fx.end()) throw std::runtime_error("fixture has no tensor '" + name + "'");
  return it->second;
}

// The entries whose names start with prefix, with the prefix removed.
inline Fixture with_prefix(const Fixture& fx, const std::string& prefix) {
  Fixture out;
  for (const auto& [name, t] : fx)
    if (name.compare(0, prefix.size(), prefix) == 0) out[name.substr(prefix.size())] = t;
  return out;
}

template <class Forward>
void check_module_case(const Fixture& fx, const std::string& c, nn::Module& m, Forward forward, double tol) {
  SCOPED_TRACE(c);
  m.load_state_dict(with_prefix(fx, c + ".param."));
  const Variable x(fixture_get(fx, c + ".x"), /*requires_grad=*/true);
  const Variable y = forward(x);
  EXPECT_TRUE(all_close(y.data(), fixture_get(fx, c + ".y"), tol, tol)) << "y";
  y.backward(fixture_get(fx, c + ".r"));
  EXPECT_TRUE(all_close(x.grad(), fixture_get(fx, c + ".dx"), tol, tol)) << "dx";
  const auto grads = with_prefix(fx, c + ".grad.");
  EXPECT_EQ(grads.size(), m.named_parameters().size());
  for (const auto& [name, p] : m.named_parameters())
    EXPECT_TRUE(all_close(p.grad(), fixture_get(fx, c + ".grad." + name), tol, tol)) << "grad of " << name;
  for (const auto& [name, b] : with_prefix(fx, c + ".after.")) {
    const auto state = m.state_dict();
    EXPECT_TRUE(all_close(state.at(name), b, tol, tol)) << name << " after the step";
  }
}

}  // namespace cw::test
