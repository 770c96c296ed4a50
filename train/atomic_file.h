// Files that appear whole or not at all: write to a temporary file beside the target, flush it to
// disk, rename it over the target, flush the folder. A reader (eval on a live run, a resume after
// a crash) sees the old file or the new one, never half of one. Every text file a run writes
// (config.ini, eval_final.json, checkpoints' pointers and states, plots' scripts) goes through
// here. Part of train/.
#pragma once

#include <filesystem>
#include <string>

namespace cw::train {

// Writes `text` to `path` as above. Throws cw::Error naming the file on any failure; `path` is
// then untouched and no temporary file is left.
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

// fsync of a file or folder: what makes a rename survive a crash. Best effort (durability only:
// the data is already in place).
void fsync_path(const std::filesystem::path& path, bool directory);

}  // namespace cw::train
