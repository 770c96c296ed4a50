// An option's default as a person writes it, for --help: Boost prints a default with
// operator<<, so 0.1 reads "0.10000000000000001" and true reads "1". with_default(&field) binds an
// option to its field and shows the field's value spelled the way a config file would hold it.
// Used by every option table of train/ (loop, loss, speech, image, eval). Part of train/.
#pragma once

#include <boost/program_options/value_semantic.hpp>
#include <cstdint>
#include <string>
#include <type_traits>

namespace cw::train {

// The shortest decimal that reads back as the same double ("0.1", "1e-05", "0.0001").
std::string shortest_decimal(double v);

inline std::string shown_default(bool v) { return v ? "true" : "false"; }
inline std::string shown_default(double v) { return shortest_decimal(v); }
inline std::string shown_default(const std::string& v) { return v.empty() ? "\"\"" : v; }
template <class T, class = std::enable_if_t<std::is_integral_v<T>>>
std::string shown_default(T v) {
  return std::to_string(v);
}

template <class T>
boost::program_options::typed_value<T>* with_default(T* field) {
  return boost::program_options::value(field)->default_value(*field, shown_default(*field));
}

}  // namespace cw::train
