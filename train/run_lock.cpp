// Run-folder lock (see run_lock.h): flock(2) on <folder>/.lock, which holds the holder's pid.
#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace cw::train {

RunLock::RunLock(const std::filesystem::path& run_dir) {
  std::filesystem::create_directories(run_dir);
  const std::filesystem::path path = run_dir / ".lock";
  const std::string where = "run folder " + run_dir.string() + ": ";
  // O_CLOEXEC: a child started with exec (gnuplot, the corpus generator) must not inherit the
  // lock and keep it after this process ends.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  CW_CHECK(fd_ >= 0, Error, where, "cannot open ", path.string(), ": ", std::strerror(errno));
  // The pid is for the message below only; the flock is the lock.
  const std::string pid = std::to_string(::getpid());
  std::string error;
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof(buf), 0);
    const std::string text(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    const std::string holder = text.substr(0, text.find_first_not_of("0123456789"));  // the digits only
    error = err == EWOULDBLOCK ? "in use by another run (pid " + (holder.empty() ? "unknown" : holder) +
                                     "): wait for it to end or choose another --run.out"
                               : "cannot lock " + path.string() + ": " + std::strerror(err);
  } else if (::ftruncate(fd_, 0) != 0 ||
             ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    error = "cannot write " + path.string() + ": " + std::strerror(errno);
  }
  if (!error.empty()) {
    ::close(fd_);
    fd_ = -1;
    throw Error(where + error);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor of the description drops the lock
}

}  // namespace cw::train
