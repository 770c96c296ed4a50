// Decoding the element types that model files store but tensors do not hold (IEEE half, bfloat16,
// narrow integers) into our f32 / i64, shared by the safetensors and CTranslate2 readers. Part of
// core/.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cw::stored {

// IEEE binary16 -> binary32, exactly (every half is a float): subnormal halves become normal
// floats, infinities and NaNs keep their sign and payload.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));  // bias 15 -> 127
}

// bfloat16 is the top half of a float32.
inline float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// Element by element from stored type S to our type D (memcpy: the source may be unaligned).
template <class S, class D, class F>
void convert(const char* src, int64_t n, void* dst, F&& f) {
  D* out = static_cast<D*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    S v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(S)), sizeof(S));
    out[i] = f(v);
  }
}

}  // namespace cw::stored
