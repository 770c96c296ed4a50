// A model file's bytes (see file_bytes.h).
#include "core/file_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace cw {

FileBytes::~FileBytes() {
  if (fd >= 0) ::close(fd);
}

void FileBytes::open(const std::string& path) {
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CW_CHECK(fd >= 0, Error, format, ": cannot open ", path, ": ", std::strerror(errno));
  struct stat st;
  CW_CHECK(::fstat(fd, &st) == 0 && S_ISREG(st.st_mode), Error, format, ": ", path, " is not a regular file");
  size = static_cast<uint64_t>(st.st_size);
}

void FileBytes::adopt(std::vector<char> bytes) {
  size = bytes.size();
  buffer = std::move(bytes);
}

void FileBytes::read(uint64_t offset, uint64_t n, void* dst, const std::string& file) const {
  if (n == 0) return;
  if (fd < 0) {
    std::memcpy(dst, buffer.data() + offset, n);
    return;
  }
  char* out = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      throw Error(detail::cat(format, ": ", file, ": cannot read ", n, " bytes at offset ", offset, ": ",
                              got < 0 ? std::strerror(errno) : "the file shrank since it was opened"));
    out += got, offset += static_cast<uint64_t>(got), n -= static_cast<uint64_t>(got);
  }
}

std::shared_ptr<Storage> FileBytes::map(uint64_t offset, uint64_t n) const {
  struct stat st;
  // Touching a mapped page past the end of a file that shrank would raise SIGBUS.
  if (fd < 0 || ::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != size) return nullptr;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page, length = offset - start + n;
  void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(start));
  if (base == MAP_FAILED) return nullptr;
  return std::make_shared<Storage>(static_cast<char*>(base) + (offset - start), n, Device::cpu(),
                                   [base, length](void*) { ::munmap(base, length); });
}

}  // namespace cw
