// The caching allocator (block reuse, current and peak bytes, empty_cache) and Tensor::to()
// round trips between the host and cuda:0, incl. non-contiguous sources, every dtype, empty and
// 0-d tensors, and Module::to.
#include "cuda_test_util.h"
#include "nn/basic_layers.h"

namespace cw::test {
namespace {

class CudaMemory : public CudaTest {
 protected:
  bool needs_cuda_allocator() const override { return true; }
};

TEST_F(CudaMemory, FreedBlockIsReusedWithoutCudaMalloc) {
  void* first = nullptr;
  {
    Tensor a = ops::empty({1000, 3}, DType::F32, gpu());
    first = a.raw_data();
  }
  const auto before = cuda::memory_stats(0);
  Tensor b = ops::empty({1000, 3}, DType::F32, gpu());
  const auto after = cuda::memory_stats(0);
  EXPECT_EQ(b.raw_data(), first);
  EXPECT_EQ(after.device_mallocs, before.device_mallocs);
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
}

TEST_F(CudaMemory, CurrentAndPeakBytes) {
  cuda::synchronize();
  const size_t base = cuda::memory_stats(0).allocated;
  cuda::reset_peak_memory_stats(0);
  const size_t c1 = cuda::allocation_size_class(4 * 100000), c2 = cuda::allocation_size_class(8 * 70000);
  {
    Tensor a = ops::empty({100000}, DType::F32, gpu());
    {
      Tensor b = ops::empty({70000}, DType::F64, gpu());
      EXPECT_EQ(cuda::memory_stats(0).allocated, base + c1 + c2);
    }
    EXPECT_EQ(cuda::memory_stats(0).allocated, base + c1);
  }
  const auto s = cuda::memory_stats(0);
  EXPECT_EQ(s.allocated, base);
  EXPECT_EQ(s.peak_allocated, base + c1 + c2);
  EXPECT_GE(s.reserved, s.allocated + c1 + c2);  // the freed blocks stay cached
}

TEST_F(CudaMemory, EmptyCacheReturnsFreeBlocks) {
  { Tensor a = ops::empty({1 << 20}, DType::F32, gpu()); }
  const auto before = cuda::memory_stats(0);
  cuda::empty_cache();
  const auto after = cuda::memory_stats(0);
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_EQ(after.reserved, after.allocated);  // nothing cached any more
  EXPECT_LT(after.reserved, before.reserved);
}

TEST_F(CudaMemory, RoundTripsEveryDtypeAndLayout) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = rnd({4, 5, 6}, dt);
    EXPECT_TRUE(all_close(x.to(gpu()).to(Device::cpu()), x, 0, 0));
    const Tensor nc = x.permute({2, 0, 1}).slice(1, 0, 4, 2);  // non-contiguous source
    const Tensor back = nc.to(gpu()).to(Device::cpu());
    EXPECT_TRUE(back.is_contiguous());
    EXPECT_TRUE(all_close(back, nc.contiguous(), 0, 0));
  }
  const Tensor ids = ops::from_vector<int64_t>({3, -1, 1LL << 40, 0}, {2, 2});
  EXPECT_EQ(ids.to(gpu()).to(Device::cpu()).to_vector<int64_t>(), ids.to_vector<int64_t>());
  const Tensor empty = ops::zeros({0, 3});
  EXPECT_EQ(empty.to(gpu()).to(Device::cpu()).shape(), (Shape{0, 3}));
  EXPECT_EQ(ops::scalar(2.5).to(gpu()).to(Device::cpu()).item(), 2.5);
  // Same device: no copy.
  const Tensor g = ops::ones({3}, DType::F32, gpu());
  EXPECT_TRUE(g.to(gpu()).shares_storage(g));
}

TEST_F(CudaMemory, HostReadsOfDeviceTensorsAreErrors) {
  const Tensor g = ops::ones({2}, DType::F32, gpu());
  EXPECT_THROW((void)g.to_vector<float>(), DeviceError);
  EXPECT_THROW((void)ops::sum(g).item(), DeviceError);
  EXPECT_THROW((void)ops::add(g, ops::ones({2})), DeviceError);  // no silent cross-device op
}

TEST_F(CudaMemory, ModuleToMovesParametersAndKeepsResults) {
  nn::Linear lin(6, 4);
  const Tensor x = rnd({3, 6});
  const Tensor want = lin.forward(Variable(x)).data();
  lin.to(gpu());
  for (const auto& [name, p] : lin.named_parameters()) EXPECT_TRUE(p.device().is_cuda()) << name;
  const Tensor got = lin.forward(Variable(x.to(gpu()))).data();
  EXPECT_TRUE(all_close(got.to(Device::cpu()), want, kAtol32, kRtol32));
  lin.to(Device::cpu());
  EXPECT_TRUE(all_close(lin.forward(Variable(x)).data(), want, 0, 0));
}

}  // namespace
}  // namespace cw::test
