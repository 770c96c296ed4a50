// Atomic file writes (see atomic_file.h).
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace cw {
namespace fs = std::filesystem;

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  temp_ = path_.string() + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  // O_EXCL: a file of that name is a leftover of a killed process that had our pid (or a second
  // writer of the same path in this process, a bug): remove it once and take the name.
  for (int attempt = 0; attempt < 2 && fd_ < 0; ++attempt) {
    // 0666 less the umask, as any newly created file (mkstemp would force 0600).
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && errno == EEXIST && attempt == 0) ::unlink(temp_.c_str());
  }
  CW_CHECK(fd_ >= 0, Error, "cannot create ", temp_.string(), ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  CW_CHECK(fd_ >= 0, ValueError, "AtomicFile: ", path_.string(), " was already committed");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t done = ::write(fd_, p, n);
    if (done < 0 && errno == EINTR) continue;
    CW_CHECK(done > 0, Error, "cannot write ", temp_.string(), ": ",
             std::strerror(done < 0 ? errno : ENOSPC));
    p += done;
    n -= static_cast<size_t>(done);
  }
}

void AtomicFile::commit() {
  CW_CHECK(fd_ >= 0, ValueError, "AtomicFile: ", path_.string(), " was already committed");
  // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
  CW_CHECK(::fsync(fd_) == 0, Error, "cannot flush ", temp_.string(), ": ", std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;  // closed below whatever happens; the destructor must not close it again
  if (::close(fd) != 0 || ::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    throw Error(detail::cat("cannot write ", path_.string(), ": ", std::strerror(err)));
  }
  fsync_path(path_.parent_path().empty() ? fs::path(".") : path_.parent_path(), true);
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

}  // namespace cw
