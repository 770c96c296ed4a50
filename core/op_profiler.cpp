// OpProfiler (see op_profiler.h): a thread-local stack of live profilers and the current Region.
#include "core/op_profiler.h"

namespace cw {
namespace {
thread_local OpProfiler* g_profiler = nullptr;
thread_local const char* g_region = nullptr;
}  // namespace

OpProfiler::OpProfiler() : outer_(g_profiler) { g_profiler = this; }

// Profilers are scoped objects, so they die innermost first and the chain stays a stack.
OpProfiler::~OpProfiler() { g_profiler = outer_; }

void OpProfiler::close_interval(Clock::time_point now) {
  const int64_t f = flops_.total();
  if (!op_.empty()) {
    Row& r = rows_[{phase_, op_}];
    r.seconds += std::chrono::duration<double>(now - since_).count();
    r.flops += f - flops_since_;
  }
  since_ = now;
  flops_since_ = f;
}

void OpProfiler::phase(const std::string& name) {
  close_interval(Clock::now());
  phase_ = name;
  op_ = "(no op)";
}

void OpProfiler::stop() {
  close_interval(Clock::now());
  op_.clear();
}

void OpProfiler::op_begins(const char* op) {
  OpProfiler* p = g_profiler;
  if (p == nullptr || p->op_.empty()) return;  // only the innermost profiler charges time
  p->close_interval(Clock::now());
  p->op_ = g_region ? std::string(g_region) + ">" + op : std::string(op);
  ++p->rows_[{p->phase_, p->op_}].calls;
}

OpProfiler::Region::Region(const char* name) : outer_(g_region) { g_region = name; }
OpProfiler::Region::~Region() { g_region = outer_; }

}  // namespace cw
