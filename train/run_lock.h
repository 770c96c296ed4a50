// RunLock: while a process writes a run folder (--run.out), it holds an exclusive flock on
// <folder>/.lock, so a second `train` into the same folder fails at once, naming the holder's pid,
// instead of both writing the same checkpoints and logs. Part of train/.
#pragma once

#include <filesystem>

namespace cw::train {

class RunLock {
 public:
  // Creates the folder if needed and takes the lock, or throws cw::Error naming the folder and
  // the pid of the process holding it. The lock belongs to this object's open file description,
  // so the kernel drops it when the process ends however it ends (kill -9 included): there is no
  // stale lock to clean up, and the .lock file left behind is harmless.
  explicit RunLock(const std::filesystem::path& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace cw::train
