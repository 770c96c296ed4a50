// Where a tensor's memory lives: the CPU, or CUDA device n. A plain value type, so code can
// name a CUDA device even in builds without the CUDA backend (the backend registry then says
// that no backend serves it). Part of core/.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace cw {

enum class DeviceType : uint8_t { CPU, CUDA };
constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;  // ordinal among devices of this type; always 0 for the CPU

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int n = 0) { return {DeviceType::CUDA, n}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;

  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace cw
