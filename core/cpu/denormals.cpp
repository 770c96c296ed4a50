// Flush-to-zero (see denormals.h).
#include "core/cpu/denormals.h"

#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace cw {

namespace {

void set_this_thread(bool on) {
#if defined(__x86_64__) || defined(__i386__)
  constexpr unsigned kFtz = 0x8000, kDaz = 0x0040;  // MXCSR bits 15 and 6
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(on ? (csr | kFtz | kDaz) : (csr & ~(kFtz | kDaz)));
#else
  (void)on;
#endif
}

}  // namespace

void set_flush_denormals(bool on) {
  set_this_thread(on);
#pragma omp parallel
  set_this_thread(on);
}

}  // namespace cw
