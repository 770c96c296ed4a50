// Helpers shared by the option tests of train/ (untrusted_options_test.cpp, cli_traps_test.cpp).
#pragma once

#include <string>
#include <vector>

namespace cw::test {

using Args = std::vector<std::string>;

// argv for a parser: "train" followed by args (the strings must outlive the result).
inline std::vector<const char*> argv_of(const Args& args) {
  std::vector<const char*> argv = {"train"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return argv;
}

}  // namespace cw::test
