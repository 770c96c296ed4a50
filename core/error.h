// Typed exceptions for everything a user can get wrong: shapes, dtypes, devices, indices, values.
// Part of core/. Every check on user input throws one of these (never an assert), and the
// message names the op and the operands at fault, e.g. "add: shapes (2, 3) and (4,) ...".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cw {

// Base of every error the framework throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class ShapeError : public Error {
 public:
  using Error::Error;
};
class DTypeError : public Error {
 public:
  using Error::Error;
};
class DeviceError : public Error {
 public:
  using Error::Error;
};
class IndexError : public Error {
 public:
  using Error::Error;
};
class ValueError : public Error {
 public:
  using Error::Error;
};
// A bad command-line option or config-file setting: what the user typed, as opposed to a bad
// data file (ValueError). The binaries exit with status 2 for it and 1 for every other error.
class OptionError : public ValueError {
 public:
  using ValueError::ValueError;
};
class NotImplementedError : public Error {
 public:
  using Error::Error;
};

namespace detail {
// Streams any number of printable values into one string.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace cw

// CW_CHECK(cond, ShapeError, "op: ", a, " vs ", b): throws ShapeError with the message when
// cond is false. Used for every user-facing check; internal invariants use the same macro with
// cw::Error so that they also fail loudly in release builds.
#define CW_CHECK(cond, ErrorType, ...)                                  \
  do {                                                                  \
    if (!(cond)) throw ::cw::ErrorType(::cw::detail::cat(__VA_ARGS__)); \
  } while (0)
