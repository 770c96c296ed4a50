// Files that appear whole or not at all, the one writer every layer uses (checkpoints, safetensors,
// run files, manifests, importers' outputs): bytes go to a temporary file beside the target,
// "<path>.tmp-<pid>", which is flushed to disk and renamed over the target, and then the folder
// is flushed. A reader (eval on a live run, a resume after a crash, a rerun of an importer) sees
// the old file or the new one, never half of one; a writer that fails or is killed leaves the
// target untouched (a killed one leaves its .tmp-<pid> file, which train's checkpoint cleanup and
// any rerun recognize). Atomicity rests on POSIX rename; the fsyncs make it survive a crash.
// Part of core/.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

namespace cw {

// One file being written. Nothing appears under `path` until commit(); destroyed uncommitted (an
// exception on the way), it removes its temporary file. Every failure is a cw::Error naming the
// file and the system's reason (disk full, permissions, a missing folder).
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(const void* data, size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over the target, fsync the folder. Once only.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path path_, temp_;
  int fd_ = -1;
};

// The whole file at once: AtomicFile(path), write(bytes), commit().
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// fsync of a file or folder: what makes a rename survive a crash. Best effort (durability only:
// the data is already in place).
void fsync_path(const std::filesystem::path& path, bool directory);

}  // namespace cw
