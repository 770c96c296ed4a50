// Element types a tensor can hold, their sizes and names, and the dispatch macros that turn a
// runtime DType into a template parameter inside kernels. Part of core/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace cw {

// f32 is the working type everywhere; f64 exists for gradient checks on CPU; i64 holds token
// ids, indices and argmax results (PyTorch's default integer type, so checkpoints load as is).
enum class DType : uint8_t { F32, F64, I64 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::F32 || t == DType::F64; }

// Maps a C++ type to its DType, so typed accessors can check what they are given.
template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::I64;
};

// dispatch_float(dtype, "op", [&]<class T>() { ... }) calls the generic lambda with T = float or
// double, and throws a DTypeError naming the op for any other dtype. (Functions, not macros, so
// that OpenMP pragmas may appear inside the lambda.)
template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& fn) {
  switch (dt) {
    case DType::F32: return fn.template operator()<float>();
    case DType::F64: return fn.template operator()<double>();
    default:
      throw DTypeError(
          detail::cat(op, ": dtype ", dtype_name(dt), " is not supported (expected f32 or f64)"));
  }
}

// Same, with i64 allowed too (copies, comparisons, indexing, arithmetic on ids).
template <class F>
decltype(auto) dispatch_all(DType dt, const char* op, F&& fn) {
  switch (dt) {
    case DType::F32: return fn.template operator()<float>();
    case DType::F64: return fn.template operator()<double>();
    case DType::I64: return fn.template operator()<int64_t>();
  }
  throw DTypeError(detail::cat(op, ": unknown dtype"));
}

}  // namespace cw
