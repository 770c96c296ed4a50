// The backend registry, the names of the elementwise ops, and the Backend's default convolution
// method (see backend.h).
#include "core/backend.h"

#include <array>

#include "core/cpu/cpu_backend.h"
#include "core/op_profiler.h"

namespace cw {
namespace {
std::array<Backend*, kNumDeviceTypes>& registry() {
  // The CPU backend is always present; the CUDA backend registers itself when linked in.
  static std::array<Backend*, kNumDeviceTypes> r = {&cpu::cpu_backend(), nullptr};
  return r;
}
}  // namespace

void register_backend(DeviceType type, Backend* backend) { registry()[static_cast<size_t>(type)] = backend; }

Backend& backend_for(Device device, const char* op) {
  Backend* b = registry()[static_cast<size_t>(device.type)];
  CW_CHECK(b != nullptr, DeviceError, op, ": no backend for device ", device.str(),
           " in this build (the CUDA backend needs a CW_CUDA build and a call to cw::cuda::init())");
  OpProfiler::op_begins(op);  // every primitive passes here before its kernel
  return *b;
}

bool has_backend(DeviceType type) { return registry()[static_cast<size_t>(type)] != nullptr; }

namespace {
std::array<DeviceCountFn, kNumDeviceTypes>& count_registry() {
  static std::array<DeviceCountFn, kNumDeviceTypes> r = {[] { return 1; }, nullptr};
  return r;
}
}  // namespace

void register_device_count(DeviceType type, DeviceCountFn fn) {
  count_registry()[static_cast<size_t>(type)] = fn;
}

int device_count(DeviceType type) {
  DeviceCountFn fn = count_registry()[static_cast<size_t>(type)];
  return fn ? fn() : 0;
}

namespace {
std::array<CrossDeviceCopyFn, kNumDeviceTypes>& copy_registry() {
  static std::array<CrossDeviceCopyFn, kNumDeviceTypes> r = {nullptr, nullptr};
  return r;
}
}  // namespace

void register_cross_device_copy(DeviceType type, CrossDeviceCopyFn fn) {
  copy_registry()[static_cast<size_t>(type)] = fn;
}

void cross_device_copy(const Tensor& src, Tensor& dst, const char* op) {
  // The device side owns the copy: dst's type when dst is not the CPU, else src's.
  const DeviceType side = dst.device().is_cpu() ? src.device().type : dst.device().type;
  CrossDeviceCopyFn fn = copy_registry()[static_cast<size_t>(side)];
  CW_CHECK(fn != nullptr, DeviceError, op, ": no copy path from ", src.device().str(), " to ",
           dst.device().str(), " in this build (the CUDA backend needs a CW_CUDA build and a call to ",
           "cw::cuda::init())");
  fn(src, dst);
}

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Rsqrt: return "rsqrt";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::GeluErf: return "gelu";
    case UnaryOp::GeluTanh: return "gelu_tanh";
    case UnaryOp::Silu: return "silu";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Pow: return "pow";
  }
  return "?";
}

bool unary_grad_uses_output(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Exp:
    case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt:
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Relu: return true;
    default: return false;
  }
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::Eq: return "eq";
    case BinaryOp::Ne: return "ne";
    case BinaryOp::Lt: return "lt";
    case BinaryOp::Le: return "le";
    case BinaryOp::Gt: return "gt";
    case BinaryOp::Ge: return "ge";
  }
  return "?";
}

ConvMethod Backend::conv_method(Device, DType, const ConvGeometry& g, int64_t groups, int64_t out_channels) {
  return groups == g.channels && out_channels == g.channels ? ConvMethod::Depthwise : ConvMethod::Lowered;
}

void Backend::conv_forward(const Tensor&, const Tensor&, const ConvGeometry&, int64_t, Tensor&) {
  throw NotImplementedError(detail::cat("conv_forward: backend ", name(), " has no convolution library"));
}
void Backend::conv_backward_input(const Tensor&, const Tensor&, const ConvGeometry&, int64_t, Tensor&) {
  throw NotImplementedError(
      detail::cat("conv_backward_input: backend ", name(), " has no convolution library"));
}
void Backend::conv_backward_weight(const Tensor&, const Tensor&, const ConvGeometry&, int64_t, Tensor&) {
  throw NotImplementedError(
      detail::cat("conv_backward_weight: backend ", name(), " has no convolution library"));
}

}  // namespace cw
