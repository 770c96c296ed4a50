// Reader of the reference fixtures in tests/fixtures/*.txt, written by tools/make_fixtures.py
// from PyTorch. Plain text so that a diff shows what changed. Format, one tensor per record:
//   tensor <name> <f32|f64|i64> <ndim> <d0> ... <dn-1>
//   <values, whitespace separated, row-major>
#pragma once

#include <map>
#include <string>

#include "core/tensor.h"

namespace cw::test {

// name -> tensor; throws cw::Error naming the file and line on a malformed fixture.
std::map<std::string, Tensor> load_fixture(const std::string& file_name);

}  // namespace cw::test
