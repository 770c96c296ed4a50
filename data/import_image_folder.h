// Importer of ImageNet-style class folders (torchvision's ImageFolder layout) as a zero-shot
// evaluation corpus: class names, CLIP's 80 prompt templates and the images, decoded and
// transformed (import_image_corpus.h). `import imagenet` (train/import_images.h) runs it. Part of
// data/.
//
// Layouts:
//   <root>/train/<class>/**/<file>, <root>/val/<class>/**/<file>   -> splits "train" and "test"
//   <root>/<class>/**/<file>                                        -> split "test" only
// (the ILSVRC-2012 tarballs after the usual valprep.sh, or Kaggle's ILSVRC/Data/CLS-LOC with
// val/ sorted into folders). Classes are the class folders' names, sorted (ImageFolder's order);
// the "train" split's folders define them and a "val" folder outside them is an error. Files are
// taken by extension, as ImageFolder does (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, any
// case; others are counted as ignored); only JPEG is decoded, every other image is dropped with
// its reason. Nested folders inside a class folder are walked. A row's caption is its class name.
//
// Class names: from `classes_file` when given (lines "<folder> <name>", or one name per line in
// the sorted folder order), else from LOC_synset_mapping.txt ("n01440764 tench, Tinca tinca": the
// part before the first comma) in <root> or up to three folders above it, else the folder name
// with '_' read as a space. A class missing from the mapping is an error naming the folder and
// the file; names shared by several classes (LOC's "crane", "maillot") are reported in the
// summary's notes, since zero-shot prompts cannot tell them apart.
#pragma once

#include <filesystem>

#include "data/import_image_corpus.h"

namespace cw::data {

struct ImageFolderImportOptions : ImageImportOptions {
  std::filesystem::path classes_file;  // optional, see above
  std::string name = "imagenet";       // the corpus name in dataset.json
};

// Imports <root> into <out> (dataset.json, train/test IDX and manifests, import.json). Throws
// cw::ValueError naming the folder or file for a missing root, no class folders, a val/ class not
// in train/, an unreadable class-name file or a class it does not name.
ImageImportSummary import_image_folder(const std::filesystem::path& root, const std::filesystem::path& out,
                                       const ImageFolderImportOptions& options);

}  // namespace cw::data
