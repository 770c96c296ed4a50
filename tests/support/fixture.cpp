// Fixture reader (see fixture.h).
#include "support/fixture.h"

#include <fstream>
#include <sstream>

#include "core/ops.h"

namespace cw::test {

std::map<std::string, Tensor> load_fixture(const std::string& file_name) {
  const std::string path = std::string(CW_FIXTURE_DIR) + "/" + file_name;
  std::ifstream in(path);
  CW_CHECK(in.good(), Error, "fixture: cannot open ", path, " (regenerate with tools/make_fixtures.py)");
  std::map<std::string, Tensor> out;
  std::string word;
  int64_t record = 0;
  while (in >> word) {
    ++record;
    CW_CHECK(word == "tensor", Error, "fixture ", path, ": record ", record, " does not start with 'tensor'");
    std::string name, dtype;
    int64_t ndim = 0;
    in >> name >> dtype >> ndim;
    CW_CHECK(in.good() && ndim >= 0 && ndim <= 8, Error, "fixture ", path, ": bad header of '", name, "'");
    Shape shape(ndim);
    for (auto& d : shape) in >> d;
    const int64_t n = numel_of(shape);
    if (dtype == "i64") {
      std::vector<int64_t> v(n);
      for (auto& x : v) in >> x;
      out[name] = ops::from_vector(v, shape);
    } else {
      std::vector<double> v(n);
      for (auto& x : v) in >> x;
      Tensor t = ops::from_vector(v, shape);
      out[name] = dtype == "f32" ? t.to(DType::F32) : t;
    }
    CW_CHECK(!in.fail(), Error, "fixture ", path, ": '", name, "' has fewer values than its shape ",
             shape_str(shape));
  }
  return out;
}

}  // namespace cw::test
