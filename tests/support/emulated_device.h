// An emulated CUDA device for the dry runs of the device tests on machines without a GPU
// (CW_CUDA_TESTS_ON_CPU=1: tests/cuda/cuda_test_util.h, and the trainers' device tests).
// Tensors on cuda:0 live in host memory and run the CPU backend's kernels (and its lowering as a
// convolution library, below), but keep their device: host reads of them (item, to_vector) throw
// as on a real device, mixing them with CPU tensors throws, and copies take the cross-device
// path. So the dry run checks the code around the kernels (the losses, Module::to, the trainers,
// the tests themselves) under device rules; it says nothing about the CUDA kernels. Test support
// only. Call cw::cuda::init() (where built) first: it is idempotent, so it cannot undo this later.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/backend.h"
#include "core/cpu/cpu_backend.h"
#include "core/storage.h"

namespace cw::test {

// The emulated device's backend: the CPU kernels, plus a "convolution library" for the f32
// convolutions that the CUDA backend's default engine (auto) gives cuDNN, all but depthwise ones,
// so that dry runs go through ops' library path (Backend::conv_method = Library, conv_forward and
// the two backward passes) as a GPU run with cuDNN does. The library is the CPU's own lowering
// (im2col + GEMM) called per image and group on the emulated device's host memory, so results
// stay those of the CPU path.
class EmulatedCudaBackend final : public cpu::CpuBackend {
 public:
  const char* name() const override { return "emulated cuda"; }
  ConvMethod conv_method(Device device, DType dt, const ConvGeometry& g, int64_t groups,
                         int64_t out_channels) override {
    const ConvMethod ours = CpuBackend::conv_method(device, dt, g, groups, out_channels);
    return ours == ConvMethod::Lowered && dt == DType::F32 ? ConvMethod::Library : ours;
  }
  // y_i[group j] = W_j (Cout/g, K) @ cols_i[rows of group j] (K, L)
  void conv_forward(const Tensor& x, const Tensor& w, const ConvGeometry& g, int64_t groups,
                    Tensor& y) override {
    const Dims d(w, g, groups);
    Tensor cols = Tensor::empty({1, d.k_all, d.l}, x.dtype(), x.device());
    for (int64_t i = 0; i < x.size(0); ++i) {
      im2col(x.narrow(0, i, 1), g, cols);
      for (int64_t j = 0; j < groups; ++j) {
        Tensor out = y.narrow(0, i, 1).view({d.cout, d.l}).narrow(0, j * d.cg, d.cg);
        matmul(d.wg(w, j), cols.view({d.k_all, d.l}).narrow(0, j * d.k, d.k), out);
      }
    }
  }
  // gcols_i[group j] = W_j^T @ gy_i[group j], folded back by col2im.
  void conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g, int64_t groups,
                           Tensor& gx) override {
    const Dims d(w, g, groups);
    Tensor gcols = Tensor::empty({1, d.k_all, d.l}, gy.dtype(), gy.device());
    for (int64_t i = 0; i < gx.size(0); ++i) {
      for (int64_t j = 0; j < groups; ++j) {
        Tensor part = gcols.view({d.k_all, d.l}).narrow(0, j * d.k, d.k);
        matmul(d.wg(w, j).t(), gy.narrow(0, i, 1).view({d.cout, d.l}).narrow(0, j * d.cg, d.cg), part);
      }
      Tensor gxi = gx.narrow(0, i, 1);
      col2im(gcols, g, gxi);  // overwrites gxi
    }
  }
  // gW_j = sum over images of gy_i[group j] @ cols_i[group j]^T
  void conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g, int64_t groups,
                            Tensor& gw) override {
    const Dims d(gw, g, groups);
    Tensor cols = Tensor::empty({1, d.k_all, d.l}, x.dtype(), x.device());
    Tensor part = Tensor::empty({d.cg, d.k}, x.dtype(), x.device());
    fill(gw, 0.0);
    for (int64_t i = 0; i < x.size(0); ++i) {
      im2col(x.narrow(0, i, 1), g, cols);
      for (int64_t j = 0; j < groups; ++j) {
        matmul(gy.narrow(0, i, 1).view({d.cout, d.l}).narrow(0, j * d.cg, d.cg),
               cols.view({d.k_all, d.l}).narrow(0, j * d.k, d.k).t(), part);
        Tensor acc = d.wg(gw, j);
        binary(BinaryOp::Add, acc, part, acc);
      }
    }
  }

 private:
  struct Dims {
    Dims(const Tensor& w, const ConvGeometry& g, int64_t groups)
        : cout(w.size(0)),
          cg(w.size(0) / groups),
          k(w.numel() / w.size(0)),
          k_all(groups * k),
          l(g.out_h() * g.out_w()) {}
    Tensor wg(const Tensor& w, int64_t j) const { return w.view({cout, k}).narrow(0, j * cg, cg); }
    int64_t cout, cg, k, k_all, l;
  };
};

inline Backend& emulated_cuda_backend() {
  static EmulatedCudaBackend b;
  return b;
}

inline int& emulated_device_count() {
  static int count = 1;
  return count;
}

// Replaces whatever serves DeviceType::CUDA (the real backend, if cuda::init() ran) for the
// rest of the process, with `devices` devices (cuda:0 .. cuda:devices-1, all host memory).
// Idempotent.
inline void install_emulated_cuda(int devices = 1) {
  emulated_device_count() = devices;
  register_backend(DeviceType::CUDA, &emulated_cuda_backend());
  register_allocator(DeviceType::CUDA, [](size_t nbytes, Device device) {
    std::shared_ptr<Storage> host = allocate_storage(nbytes, Device::cpu());
    void* data = host->data();
    // The host block lives as long as the "device" storage that wraps it.
    return std::make_shared<Storage>(data, nbytes, device, [host](void*) mutable { host.reset(); });
  });
  register_cross_device_copy(DeviceType::CUDA, [](const Tensor& src, Tensor& dst) {
    std::memcpy(dst.raw_data(), src.raw_data(), static_cast<size_t>(src.numel()) * dtype_size(src.dtype()));
  });
  register_device_count(DeviceType::CUDA, [] { return emulated_device_count(); });
}

// CW_CUDA_TESTS_ON_CPU is set: device tests run on the emulated device instead of skipping.
inline bool device_dry_run() { return std::getenv("CW_CUDA_TESTS_ON_CPU") != nullptr; }

}  // namespace cw::test
