// The image subcommands of `import` (train/import_main.cpp's table; import_commands.h describes
// the contract): `import imagenet` (ImageNet-style class folders -> a zero-shot evaluation corpus,
// data/import_image_folder.h) and `import webdataset` (WebDataset shards of jpg + txt pairs, e.g.
// CC3M/CC12M from img2dataset -> an image-text training corpus, data/import_image_webdataset.h).
// Options, progress lines and the kept/dropped summary around the importers. Part of train/.
#pragma once

#include <iosfwd>

namespace cw::train {

int import_imagenet_main(int argc, const char* const* argv, std::ostream& log);
int import_webdataset_main(int argc, const char* const* argv, std::ostream& log);

}  // namespace cw::train
