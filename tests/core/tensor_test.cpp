// Tensor metadata, views sharing storage, copies and printing.
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::f64;

TEST(Tensor, ContiguousBasics) {
  Tensor t = ops::arange(0, 24, 1, DType::F64).view({2, 3, 4});
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Strides{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.dtype(), DType::F64);
  EXPECT_EQ(t.device(), Device::cpu());
}

TEST(Tensor, AllocatorIs64ByteAligned) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n}, DType::F32);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << n;
  }
}

TEST(Tensor, CudaDeviceIsAValue) {
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_NE(Device::cuda(0), Device::cpu());
  EXPECT_THROW(ops::zeros({2}, DType::F32, Device::cuda(0)), DeviceError);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = ops::arange(0, 6, 1, DType::F64).view({2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_TRUE(tt.shares_storage(t));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.strides(), (Strides{1, 3}));
  EXPECT_TRUE(all_close(tt, f64({0, 3, 1, 4, 2, 5}, {3, 2})));
  // Writing through a view is visible in the base.
  t.narrow(1, 1, 1).fill_(9);
  EXPECT_TRUE(all_close(t, f64({0, 9, 2, 3, 9, 5}, {2, 3})));
  EXPECT_TRUE(all_close(tt.select(0, 1), f64({9, 9}, {2})));
}

TEST(Tensor, PermuteSliceSelectExpand) {
  Tensor t = ops::arange(0, 24, 1, DType::F64).view({2, 3, 4});
  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_DOUBLE_EQ(p.select(0, 3).select(0, 1).select(0, 2).item(), 12 + 8 + 3);
  Tensor s = t.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_TRUE(all_close(s.select(0, 0).select(0, 0), f64({1, 3}, {2})));
  EXPECT_EQ(t.slice(1, -2, 100).shape(), (Shape{2, 2, 4}));
  Tensor e = f64({1, 2, 3}, {3, 1}).expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Strides{0, 1, 0}));
  EXPECT_TRUE(all_close(e.contiguous().select(0, 1).select(1, 3), f64({1, 2, 3}, {3})));
}

TEST(Tensor, SqueezeUnsqueezeFlatten) {
  Tensor t = ops::zeros({2, 1, 3});
  EXPECT_EQ(t.squeeze().shape(), (Shape{2, 3}));
  EXPECT_EQ(t.squeeze(1).shape(), (Shape{2, 3}));
  EXPECT_EQ(t.squeeze(0).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 1, 3}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 1, 3, 1}));
  EXPECT_EQ(t.flatten().shape(), (Shape{6}));
  EXPECT_EQ(ops::zeros({2, 3, 4, 5}).flatten(1, 2).shape(), (Shape{2, 12, 5}));
}

TEST(Tensor, ViewVersusReshape) {
  Tensor t = ops::arange(0, 6, 1, DType::F64).view({2, 3});
  EXPECT_EQ(t.view({3, -1}).shape(), (Shape{3, 2}));
  EXPECT_THROW(t.t().view({6}), ShapeError);  // transposed data is not viewable as flat
  Tensor r = t.t().reshape({6});              // reshape copies instead
  EXPECT_FALSE(r.shares_storage(t));
  EXPECT_TRUE(all_close(r, f64({0, 3, 1, 4, 2, 5}, {6})));
  EXPECT_TRUE(t.reshape({3, 2}).shares_storage(t));
  EXPECT_THROW(t.view({4, -1}), ShapeError);
  EXPECT_THROW(t.view({-1, -1}), ShapeError);
  // Views of a sliced (non-contiguous) tensor when the strides allow it.
  Tensor big = ops::arange(0, 24, 1, DType::F64).view({4, 6});
  Tensor half = big.narrow(1, 0, 3);  // (4, 3), row stride 6
  EXPECT_EQ(half.unsqueeze(1).view({2, 2, 3}).strides(), (Strides{12, 6, 1}));
}

TEST(Tensor, CloneContiguousAndDtype) {
  Tensor t = ops::arange(0, 6, 1, DType::F64).view({2, 3});
  Tensor c = t.clone();
  EXPECT_FALSE(c.shares_storage(t));
  c.fill_(0);
  EXPECT_DOUBLE_EQ(t.view({-1}).select(0, 5).item(), 5.0);
  EXPECT_TRUE(t.contiguous().shares_storage(t));
  Tensor f = ops::from_vector<double>({1.5, -2.25}, {2}).to(DType::F32);
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.to(DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2}));
}

TEST(Tensor, CopyBroadcastsAndConverts) {
  Tensor dst = ops::zeros({2, 3}, DType::F32);
  dst.copy_(ops::from_vector<double>({1, 2, 3}, {3}));
  EXPECT_TRUE(all_close(dst, test::f32({1, 2, 3, 1, 2, 3}, {2, 3})));
}

TEST(Tensor, Creation) {
  EXPECT_TRUE(all_close(ops::full({2}, 3.5, DType::F64), f64({3.5, 3.5}, {2})));
  EXPECT_TRUE(all_close(ops::arange(1, 2, 0.25, DType::F64), f64({1, 1.25, 1.5, 1.75}, {4})));
  EXPECT_EQ(ops::arange(0, 5, 1, DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ops::ones({}, DType::F32).dim(), 0);
  EXPECT_THROW(ops::from_vector<double>({1, 2, 3}, {2, 2}), ShapeError);
  EXPECT_THROW(ops::arange(0, 1, 0), ValueError);
}

TEST(Tensor, SeededRandomIsReproducibleAndPlausible) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = ops::uniform({1000}, 0, 1, DType::F64, g1), b = ops::uniform({1000}, 0, 1, DType::F64, g2);
  EXPECT_TRUE(all_close(a, b, 0, 0));
  EXPECT_FALSE(all_close(a, ops::uniform({1000}, 0, 1, DType::F64, g3), 0, 0));
  // Successive draws from one generator differ.
  EXPECT_FALSE(all_close(ops::uniform({1000}, 0, 1, DType::F64, g1), b, 0, 0));
  EXPECT_GE(ops::amin(a).item(), 0.0);
  EXPECT_LT(ops::amax(a).item(), 1.0);
  EXPECT_NEAR(ops::mean(a).item(), 0.5, 0.03);  // 5 sigma for 1000 draws
  Generator g(7);
  Tensor n = ops::normal({20000}, 2.0, 3.0, DType::F64, g);
  EXPECT_NEAR(ops::mean(n).item(), 2.0, 0.1);
  EXPECT_NEAR(std::sqrt(ops::var(n).item()), 3.0, 0.1);
}

TEST(Tensor, PrintingIsReadable) {
  Tensor t = ops::from_vector<float>({1, -2.5f, 3, 4}, {2, 2});
  EXPECT_EQ(t.str(), "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]], dtype=f32, shape=(2, 2))");
  EXPECT_EQ(ops::arange(0, 3, 1, DType::I64).str(), "tensor([0, 1, 2], dtype=i64)");
  const std::string big = ops::zeros({100, 100}).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 1000u);
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}

TEST(Tensor, ErrorsNameTheOpAndShapes) {
  Tensor t = ops::zeros({2, 3});
  try {
    t.expand({4, 4});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("expand"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos);
  }
  EXPECT_THROW(t.narrow(1, 2, 2), IndexError);
  EXPECT_THROW(t.select(0, 2), IndexError);
  EXPECT_THROW(t.permute({0, 0}), IndexError);
  EXPECT_THROW(t.transpose(0, 2), IndexError);
  EXPECT_THROW(t.item(), ValueError);
  EXPECT_THROW(t.data<double>(), DTypeError);
}

}  // namespace
}  // namespace cw
