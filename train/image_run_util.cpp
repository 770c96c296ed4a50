// Helpers of the image tasks' loops (see image_run_util.h).
#include "train/image_run_util.h"

#include <unistd.h>

#include <fstream>

#include "core/error.h"

namespace cw::train {

void write_text_file_atomic(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    CW_CHECK(f.good(), Error, "cannot write '", tmp.string(), "'");
    f << text;
    f.flush();
    CW_CHECK(f.good(), Error, "write to '", tmp.string(), "' failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace cw::train
