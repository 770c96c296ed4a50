// The process-wide default generator (see generator.h).
#include "core/generator.h"

namespace cw {
Generator& default_generator() {
  static Generator g;
  return g;
}
}  // namespace cw
