// A file that pretends to live in core/ and includes a header of the layer above. It must not
// compile against core's include view (see tests/CMakeLists.txt: layering tests).
#include "autograd/variable.h"

int main() { return 0; }
