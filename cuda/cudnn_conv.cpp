// cuDNN convolutions and the engine switch (see cudnn_conv.h and cuda.h).
//
// cuDNN 9 marks this descriptor API (cudnnConvolutionForward and friends) deprecated in favour of
// its graph API; it is still shipped and supported, is what PyTorch's default path calls, and is
// a tenth of the code of an operation graph per pass. Porting means replacing run_pass below.
#include "cuda/cudnn_conv.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>

#include "cuda/context.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_error.h"

namespace cw::cuda {

namespace {
std::atomic<ConvEngine> g_engine{ConvEngine::Auto};
}  // namespace

bool built_with_cudnn() {
#ifdef CW_HAVE_CUDNN
  return true;
#else
  return false;
#endif
}

void set_conv_engine(ConvEngine engine) {
  CW_CHECK(engine != ConvEngine::Cudnn || built_with_cudnn(), DeviceError,
           "conv engine cudnn: this build has no cuDNN (CMake found none; configure with CUDNN_ROOT set to "
           "its prefix); use auto or native");
  g_engine = engine;
}

ConvEngine conv_engine() { return g_engine; }

const char* conv_engine_name(ConvEngine engine) {
  switch (engine) {
    case ConvEngine::Auto: return "auto";
    case ConvEngine::Cudnn: return "cudnn";
    case ConvEngine::Native: return "native";
  }
  return "?";
}

bool conv_engine_from_name(const std::string& name, ConvEngine* engine) {
  for (ConvEngine e : {ConvEngine::Auto, ConvEngine::Cudnn, ConvEngine::Native})
    if (name == conv_engine_name(e)) {
      *engine = e;
      return true;
    }
  return false;
}

ConvMethod choose_conv_method(ConvEngine engine, bool depthwise, DType dt, bool have_cudnn) {
  const ConvMethod ours = depthwise ? ConvMethod::Depthwise : ConvMethod::Lowered;
  switch (engine) {
    case ConvEngine::Native: return ours;
    case ConvEngine::Cudnn: return have_cudnn ? ConvMethod::Library : ours;
    case ConvEngine::Auto: return have_cudnn && !depthwise && dt == DType::F32 ? ConvMethod::Library : ours;
  }
  return ours;
}

#ifdef CW_HAVE_CUDNN

namespace {

int as_int(int64_t v, const char* what) {
  CW_CHECK(v >= 0 && v <= INT_MAX, NotImplementedError, "cuDNN convolution: ", what, " ", v,
           " exceeds cuDNN's 32-bit sizes");
  return static_cast<int>(v);
}

cudnnDataType_t cudnn_type(DType dt) {
  CW_CHECK(dt == DType::F32 || dt == DType::F64, DTypeError, "cuDNN convolution: dtype ", dtype_name(dt),
           " is not supported");
  return dt == DType::F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// Everything that makes two convolutions the same problem for cuDNN; tf32 is the switch's state
// when the problem is made (cuda.h).
struct Problem {
  Problem(int device, DType dtype, int64_t n, int64_t out_channels, const ConvGeometry& g, int64_t groups)
      : device(device),
        dtype(dtype),
        tf32(allow_tf32()),
        n(n),
        out_channels(out_channels),
        groups(groups),
        g(g) {}
  int device;
  DType dtype;
  bool tf32;
  int64_t n, out_channels, groups;
  ConvGeometry g;

  std::array<int64_t, 17> key() const {
    return {device,       static_cast<int64_t>(dtype),
            tf32,         n,
            out_channels, groups,
            g.channels,   g.height,
            g.width,      g.kh,
            g.kw,         g.stride_h,
            g.stride_w,   g.pad_h,
            g.pad_w,      g.dil_h,
            g.dil_w};
  }
  // "x (N, C, H, W), w (Cout, C/g, kh, kw), groups g, stride, padding, dilation": for errors.
  std::string str() const {
    return ::cw::detail::cat("x (", n, ", ", g.channels, ", ", g.height, ", ", g.width, "), w (",
                             out_channels, ", ", g.channels / groups, ", ", g.kh, ", ", g.kw, "), groups ",
                             groups, ", stride (", g.stride_h, ", ", g.stride_w, "), padding (", g.pad_h,
                             ", ", g.pad_w, "), dilation (", g.dil_h, ", ", g.dil_w, "), ",
                             dtype_name(dtype));
  }
};

// The four descriptors of one problem (host objects; creating them touches no device).
class Descriptors {
 public:
  explicit Descriptors(const Problem& p) {
    const cudnnDataType_t type = cudnn_type(p.dtype);
    const ConvGeometry& g = p.g;
    for (int64_t v : {p.n * g.channels * g.height * g.width, p.n * p.out_channels * g.out_h() * g.out_w(),
                      p.out_channels * (g.channels / p.groups) * g.kh * g.kw})
      as_int(v, "tensor size");  // cuDNN's 4-d descriptors address at most 2^31 elements
    CW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CW_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CW_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CW_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CW_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, type, as_int(p.n, "batch"),
                                              as_int(g.channels, "channels"), as_int(g.height, "height"),
                                              as_int(g.width, "width")));
    CW_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, type, CUDNN_TENSOR_NCHW, as_int(p.out_channels, "channels"),
                                              as_int(g.channels / p.groups, "channels"),
                                              as_int(g.kh, "kernel"), as_int(g.kw, "kernel")));
    // Cross-correlation (no kernel flip), as every deep-learning "convolution". The compute type
    // is the data type: f32 accumulates in f32, as cuBLAS does for the lowered path.
    CW_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv, as_int(g.pad_h, "padding"), as_int(g.pad_w, "padding"), as_int(g.stride_h, "stride"),
        as_int(g.stride_w, "stride"), as_int(g.dil_h, "dilation"), as_int(g.dil_w, "dilation"),
        CUDNN_CROSS_CORRELATION, type));
    CW_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, as_int(p.groups, "groups")));
    CW_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math_type(p)));
    int dims[4];
    CW_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &dims[0], &dims[1], &dims[2], &dims[3]));
    CW_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, type, dims[0], dims[1], dims[2], dims[3]));
    for (int i = 0; i < 4; ++i) out_dims[i] = dims[i];
  }
  ~Descriptors() {
    if (conv) (void)cudnnDestroyConvolutionDescriptor(conv);
    if (w) (void)cudnnDestroyFilterDescriptor(w);
    if (y) (void)cudnnDestroyTensorDescriptor(y);
    if (x) (void)cudnnDestroyTensorDescriptor(x);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  // f32 gets tensor cores only when TF32 is switched on: CUDNN_DEFAULT_MATH would let cuDNN use
  // TF32 for f32 on Ampere and later, which the switch's "off" promises not to do. f64 has no
  // tensor-core form to avoid.
  static cudnnMathType_t math_type(const Problem& p) {
    if (p.dtype != DType::F32) return CUDNN_DEFAULT_MATH;
    return p.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  }

  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  std::array<int64_t, 4> out_dims{};
};

// One pass's choice: the algorithm (as int: the three passes have three enum types), the math
// type it runs in, and its workspace.
struct Algorithm {
  bool chosen = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;
};

struct Plan {
  explicit Plan(const Problem& p) : problem(p), desc(p) {}
  Problem problem;
  Descriptors desc;
  Algorithm forward, backward_input, backward_weight;
};

enum class Pass : uint8_t { Forward, BackwardInput, BackwardWeight };
const char* pass_name(Pass p) {
  switch (p) {
    case Pass::Forward: return "forward";
    case Pass::BackwardInput: return "backward (input)";
    case Pass::BackwardWeight: return "backward (weight)";
  }
  return "?";
}

// The first entry of cuDNN's ranked list that is allowed (see cudnn_conv.h); backward passes try
// deterministic entries first, then any. The workspace is asked of cuDNN for the entry's
// algorithm in the math type it will run in (the heuristics' memory field is an estimate), and
// an entry whose query fails is passed over. workspace(algo, math, &bytes) returns that query's status.
template <class Perf, class WorkspaceFn>
Algorithm pick(const Perf* perf, int count, const Problem& p, Pass pass, const WorkspaceFn& workspace) {
  // f32 with TF32 off runs every entry in FMA math (as PyTorch does; an entry labelled "default"
  // could use TF32 on Hopper); an algorithm that has no FMA form fails its workspace query there.
  const bool fma_only = p.dtype == DType::F32 && !p.tf32;
  for (int round = pass == Pass::Forward ? 1 : 0; round < 2; ++round) {
    for (int i = 0; i < count; ++i) {
      const Perf& e = perf[i];
      if (e.status != CUDNN_STATUS_SUCCESS) continue;
      if (round == 0 && e.determinism != CUDNN_DETERMINISTIC) continue;
      const cudnnMathType_t math = fma_only ? CUDNN_FMA_MATH : e.mathType;
      size_t bytes = 0;
      if (workspace(e.algo, math, &bytes) != CUDNN_STATUS_SUCCESS) continue;
      bytes = std::max(bytes, e.memory);
      if (bytes > kCudnnWorkspaceLimit) continue;
      return {true, static_cast<int>(e.algo), math, bytes};
    }
  }
  throw DeviceError(::cw::detail::cat("cuDNN has no ", pass_name(pass), " convolution algorithm for ",
                                      p.str(), " within the ", kCudnnWorkspaceLimit >> 20,
                                      " MiB workspace limit and the TF32 switch; --run.conv native (cuda.h: "
                                      "ConvEngine::Native) runs it as im2col + GEMM"));
}

Algorithm choose(cudnnHandle_t h, const Plan& plan, Pass pass) {
  const Descriptors& d = plan.desc;
  int count = 0;
  // The workspace query reads the descriptor's math type, so it is set to the entry's first.
  auto with_math = [&](cudnnMathType_t math) { return cudnnSetConvolutionMathType(d.conv, math); };
  switch (pass) {
    case Pass::Forward: {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      CW_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
      return pick(perf, count, plan.problem, pass,
                  [&](cudnnConvolutionFwdAlgo_t a, cudnnMathType_t m, size_t* b) {
                    const cudnnStatus_t st = with_math(m);
                    return st != CUDNN_STATUS_SUCCESS
                               ? st
                               : cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, a, b);
                  });
    }
    case Pass::BackwardInput: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      CW_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
      return pick(perf, count, plan.problem, pass,
                  [&](cudnnConvolutionBwdDataAlgo_t a, cudnnMathType_t m, size_t* b) {
                    const cudnnStatus_t st = with_math(m);
                    return st != CUDNN_STATUS_SUCCESS
                               ? st
                               : cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, a, b);
                  });
    }
    case Pass::BackwardWeight: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      CW_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
      return pick(perf, count, plan.problem, pass,
                  [&](cudnnConvolutionBwdFilterAlgo_t a, cudnnMathType_t m, size_t* b) {
                    const cudnnStatus_t st = with_math(m);
                    return st != CUDNN_STATUS_SUCCESS ? st
                                                      : cudnnGetConvolutionBackwardFilterWorkspaceSize(
                                                            h, d.x, d.y, d.conv, d.w, a, b);
                  });
    }
  }
  throw Error("cuDNN convolution: unknown pass");
}

// Plans by problem. Shapes repeat step to step, so this stays small; it is emptied if a run
// somehow makes thousands of distinct problems. Plans are never handed out across a clear: the
// caller holds the lock for the whole pass.
std::mutex g_plans_mu;
std::map<std::array<int64_t, 17>, std::unique_ptr<Plan>>& plans() {
  static std::map<std::array<int64_t, 17>, std::unique_ptr<Plan>> m;
  return m;
}
constexpr size_t kMaxPlans = 4096;

Plan& plan_for(const Problem& p) {
  auto& m = plans();
  const auto key = p.key();
  auto it = m.find(key);
  if (it != m.end()) return *it->second;
  if (m.size() >= kMaxPlans) m.clear();
  return *m.emplace(key, std::make_unique<Plan>(p)).first->second;
}

// Runs one pass: out = op(a, b) with beta = 0 (out overwritten). a and b are the pass's two
// inputs in cuDNN's argument order.
void run_pass(Pass pass, const Problem& p, const Tensor& a, const Tensor& b, Tensor& out) {
  DeviceGuard guard(out.device());
  cudnnHandle_t h = cudnn_handle(p.device);
  std::lock_guard<std::mutex> lock(g_plans_mu);
  Plan& plan = plan_for(p);
  Algorithm& algo = pass == Pass::Forward         ? plan.forward
                    : pass == Pass::BackwardInput ? plan.backward_input
                                                  : plan.backward_weight;
  if (!algo.chosen) algo = choose(h, plan, pass);
  const Descriptors& d = plan.desc;
  // The math type the algorithm was chosen for (the descriptor is shared by the three passes).
  CW_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, algo.math));
  Tensor workspace;  // f64 words from the caching allocator, freed (cached) after the call
  if (algo.workspace > 0)
    workspace = Tensor::empty({static_cast<int64_t>((algo.workspace + 7) / 8)}, DType::F64, out.device());
  void* ws = algo.workspace > 0 ? workspace.raw_data() : nullptr;
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const bool f32 = p.dtype == DType::F32;
  const void* one = f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  const void* zero = f32 ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d);
  switch (pass) {
    case Pass::Forward:  // a = x, b = w
      CW_CUDNN_CHECK(cudnnConvolutionForward(h, one, d.x, a.raw_data(), d.w, b.raw_data(), d.conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(algo.algo), ws,
                                             algo.workspace, zero, d.y, out.raw_data()));
      break;
    case Pass::BackwardInput:  // a = w, b = gy
      CW_CUDNN_CHECK(cudnnConvolutionBackwardData(h, one, d.w, a.raw_data(), d.y, b.raw_data(), d.conv,
                                                  static_cast<cudnnConvolutionBwdDataAlgo_t>(algo.algo), ws,
                                                  algo.workspace, zero, d.x, out.raw_data()));
      break;
    case Pass::BackwardWeight:  // a = x, b = gy
      CW_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, one, d.x, a.raw_data(), d.y, b.raw_data(), d.conv,
                                                    static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo.algo),
                                                    ws, algo.workspace, zero, d.w, out.raw_data()));
      break;
  }
}

bool cudnn_usable(int device) {
  static std::mutex mu;
  static std::map<int, bool> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(device);
  if (it != known.end()) return it->second;
  bool ok = true;
  try {  // a handle, and the heuristics of a 3x3 problem (they load the convolution sub-library)
    DeviceGuard guard(device);
    const Plan plan(Problem(device, DType::F32, 1, 1, ConvGeometry{1, 4, 4, 3, 3, 1, 1, 0, 0, 1, 1}, 1));
    (void)choose(cudnn_handle(device), plan, Pass::Forward);
  } catch (const Error& e) {
    ok = false;
    std::fprintf(stderr, "cwcl: cuDNN is not usable on cuda:%d (%s); convolutions there run on our kernels\n",
                 device, e.what());
  }
  known[device] = ok;
  return ok;
}

}  // namespace

void CudaBackend::conv_forward(const Tensor& x, const Tensor& w, const ConvGeometry& g, int64_t groups,
                               Tensor& y) {
  run_pass(Pass::Forward, Problem(x.device().index, x.dtype(), x.size(0), w.size(0), g, groups), x, w, y);
}

void CudaBackend::conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                                      int64_t groups, Tensor& gx) {
  run_pass(Pass::BackwardInput, Problem(gx.device().index, gx.dtype(), gx.size(0), w.size(0), g, groups), w,
           gy, gx);
}

void CudaBackend::conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g,
                                       int64_t groups, Tensor& gw) {
  run_pass(Pass::BackwardWeight, Problem(x.device().index, x.dtype(), x.size(0), gw.size(0), g, groups), x,
           gy, gw);
}

namespace detail {
std::array<int64_t, 4> cudnn_output_shape(int64_t n, int64_t out_channels, const ConvGeometry& g,
                                          int64_t groups, DType dt) {
  return Descriptors(Problem(0, dt, n, out_channels, g, groups)).out_dims;
}
}  // namespace detail

#else  // no cuDNN in this build: conv_method never answers Library, so these are never reached.

namespace {
bool cudnn_usable(int) { return false; }
}  // namespace

void CudaBackend::conv_forward(const Tensor&, const Tensor&, const ConvGeometry&, int64_t, Tensor&) {
  throw DeviceError("conv_forward: this build has no cuDNN");
}
void CudaBackend::conv_backward_input(const Tensor&, const Tensor&, const ConvGeometry&, int64_t, Tensor&) {
  throw DeviceError("conv_backward_input: this build has no cuDNN");
}
void CudaBackend::conv_backward_weight(const Tensor&, const Tensor&, const ConvGeometry&, int64_t, Tensor&) {
  throw DeviceError("conv_backward_weight: this build has no cuDNN");
}

namespace detail {
std::array<int64_t, 4> cudnn_output_shape(int64_t, int64_t, const ConvGeometry&, int64_t, DType) {
  throw DeviceError("cudnn_output_shape: this build has no cuDNN");
}
}  // namespace detail

#endif

// Auto gives cuDNN a convolution only where cuDNN loads and answers on the device: a machine
// whose cuDNN is broken (say a Python wheel's sub-libraries off the loader's path) then trains on
// our kernels, with one line on stderr, instead of failing at its first convolution. An explicit
// `cudnn` engine gets the error itself.
ConvMethod CudaBackend::conv_method(Device device, DType dt, const ConvGeometry& g, int64_t groups,
                                    int64_t out_channels) {
  const bool depthwise = Backend::conv_method(device, dt, g, groups, out_channels) == ConvMethod::Depthwise;
  const ConvEngine engine = conv_engine();
  const ConvMethod m = choose_conv_method(engine, depthwise, dt, built_with_cudnn());
  if (m == ConvMethod::Library && engine == ConvEngine::Auto && !cudnn_usable(device.index))
    return choose_conv_method(ConvEngine::Native, depthwise, dt, false);
  return m;
}

}  // namespace cw::cuda
