// OpProfiler: where a step's wall time goes, op by op, with the model FLOPs of each op. While one
// is alive on a thread, every entry into a backend (backend_for, which every primitive calls
// before its kernel) marks the start of an op; the time from one op's start to the next op's
// start is charged to the first, under the current phase. So an op's row holds its kernel, its
// output's first touch (page faults) and the host code up to the next op (autograd bookkeeping,
// argument checks); nothing is sampled and every microsecond of the phase lands in some row.
// FLOPs come from a FlopCounter (core/flop_counter.h) read at each boundary. Part of core/;
// bench/profile_bench.cpp prints the rows grouped into op families.
//
//   OpProfiler prof;
//   prof.phase("forward");  ... forward ...
//   prof.phase("backward"); ... backward ...
//   prof.stop();            // rows() now holds (phase, op) -> seconds, calls, FLOPs
//
// Composite ops that call other ops (a convolution's im2col + GEMM) open a Region, so that their
// inner ops are charged as "conv2d>matmul" rather than mixed with the GEMMs of Linear layers.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "core/flop_counter.h"

namespace cw {

class OpProfiler {
 public:
  struct Row {
    double seconds = 0;
    int64_t calls = 0;
    int64_t flops = 0;
  };
  using Key = std::pair<std::string, std::string>;  // (phase, op)

  OpProfiler();
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Closes the running interval; later time goes to `name` (until the first op: "(no op)").
  void phase(const std::string& name);
  // Closes the running interval; nothing is charged until the next phase().
  void stop();
  const std::map<Key, Row>& rows() const { return rows_; }

  // Called by backend_for: an op begins on this thread. One thread-local load when no profiler
  // is alive.
  static void op_begins(const char* op);

  // Labels the ops run inside it "<name>>op" (scopes nest by replacement: the innermost wins).
  class Region {
   public:
    explicit Region(const char* name);
    ~Region();
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;

   private:
    const char* outer_;
  };

 private:
  using Clock = std::chrono::steady_clock;
  void close_interval(Clock::time_point now);

  OpProfiler* outer_;
  FlopCounter flops_;
  std::map<Key, Row> rows_;
  std::string phase_;
  std::string op_;  // the op the running interval is charged to; empty: not charging
  Clock::time_point since_;
  int64_t flops_since_ = 0;
};

}  // namespace cw
