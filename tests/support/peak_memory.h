// Peak resident memory of the test process, for the tests that assert a crafted file is refused
// before the sizes it declares are allocated (issue 24: "bounded memory"). Part of tests/support.
//
// Why /proc and not getrusage: ru_maxrss only grows, so a test run after a bigger one could never
// see its own peak. Writing "5" to /proc/self/clear_refs (Linux >= 4.0) resets the high-water
// mark (VmHWM) to the current resident size, so each check measures only what it allocated.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace cw::test {

// VmHWM or VmRSS of /proc/self/status in bytes; -1 when unreadable.
inline int64_t proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  return -1;
}

// Runs fn and returns how far the peak resident size rose above the resident size before it, in
// bytes. Fails the test (rather than passing vacuously) when the peak cannot be reset.
template <class Fn>
int64_t peak_memory_growth(Fn&& fn) {
  {
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";
  }
  const int64_t before = proc_status_bytes("VmRSS"), reset_peak = proc_status_bytes("VmHWM");
  EXPECT_GE(before, 0) << "no /proc/self/status";
  EXPECT_LE(reset_peak, before + (16 << 20))
      << "the peak (VmHWM) did not reset through /proc/self/clear_refs";
  fn();
  return proc_status_bytes("VmHWM") - before;
}

}  // namespace cw::test
