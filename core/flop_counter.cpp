// FlopCounter (see flop_counter.h): a thread-local chain of live counters.
#include "core/flop_counter.h"

namespace cw {
namespace {
thread_local FlopCounter* g_innermost = nullptr;
}

FlopCounter::FlopCounter() : outer_(g_innermost) { g_innermost = this; }

// Counters are scoped objects, so they die innermost first and the chain stays a stack.
FlopCounter::~FlopCounter() { g_innermost = outer_; }

void FlopCounter::add(const char* op, int64_t flops) {
  for (FlopCounter* c = g_innermost; c != nullptr; c = c->outer_) {
    c->total_ += flops;
    c->by_op_[op] += flops;
  }
}

}  // namespace cw
