// Atomic file writes (see atomic_file.h). Atomicity rests on POSIX rename: a file appears under
// its final name only once complete; fsync of the file and of its folder makes that survive a
// crash too.
#include "train/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace cw::train {
namespace fs = std::filesystem;

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const fs::path& path, const std::string& text) {
  const fs::path temp = path.string() + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CW_CHECK(fd >= 0, Error, "cannot create ", temp.string(), ": ", std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      throw Error(detail::cat("cannot write ", temp.string(), ": ", reason));
    }
    done += static_cast<size_t>(n);
  }
  const bool ok = ::fsync(fd) == 0 && ::close(fd) == 0;
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    throw Error(detail::cat("cannot write ", path.string(), ": ", reason));
  }
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path(), true);
}

}  // namespace cw::train
