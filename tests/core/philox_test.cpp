// Philox4x32-10 (core/philox.h), the one random-number formula that the CPU and CUDA backends
// share: Random123's known answers, and the uniform mapping's range and resolution.
#include "core/philox.h"

#include <gtest/gtest.h>

namespace cw {
namespace {

TEST(Philox, KnownAnswers) {
  // Random123's kat_vectors for philox4x32_10 with a zero counter and key.
  const Philox4 z = philox4x32(0, 0, 0);
  EXPECT_EQ(z[0], 0x6627e8d5u);
  EXPECT_EQ(z[1], 0xe169c58du);
  EXPECT_EQ(z[2], 0xbc57ac4cu);
  EXPECT_EQ(z[3], 0x9b00dbd8u);
  // ... and with all bits set in counter and key.
  const Philox4 f = philox4x32(~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0});
  EXPECT_EQ(f[0], 0x408f276du);
  EXPECT_EQ(f[1], 0x41c83b0eu);
  EXPECT_EQ(f[2], 0xa20bc7c6u);
  EXPECT_EQ(f[3], 0x6d5451fdu);
}

TEST(Philox, UniformDoubleIsHalfOpenWith53Bits) {
  EXPECT_EQ(uniform_double(0, 0), 0.0);
  const double top = uniform_double(~uint32_t{0}, 0x1FFFFFu);  // a's 32 bits above b's low 21
  EXPECT_LT(top, 1.0);
  EXPECT_EQ(top, 1.0 - 1.0 / 9007199254740992.0);  // 1 - 2^-53: every bit used
}

}  // namespace
}  // namespace cw
