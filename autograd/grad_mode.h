// Grad mode: a thread-local switch that says whether ops record the graph. NoGradGuard turns it
// off for a scope (evaluation, frozen towers, optimizer updates) and restores it on exit, even
// when an exception leaves the scope. Part of autograd/.
#pragma once

namespace cw {

class GradMode {
 public:
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace cw
