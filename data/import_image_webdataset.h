// Importer of WebDataset shards of image-caption pairs (CC3M / CC12M as img2dataset writes them:
// <shard>.tar holding <key>.jpg, <key>.txt and <key>.json per sample) as an image-text training
// split: captions and images, decoded and transformed (import_image_corpus.h). One shard is one
// resumable chunk. `import webdataset` (train/import_images.h) runs it. Part of data/.
//
// A sample is a run of consecutive members with the same key, WebDataset's rule: the key is the
// member's path up to the first dot of its file name, the rest is the field ("000123.jpg" ->
// "000123", "jpg"); names starting with "__" are shard metadata and skipped. Image: the "jpg" or
// "jpeg" field (another image field, e.g. "png" or "webp", is dropped as not a JPEG). Caption:
// the "txt" field, else the "caption" string of the "json" field (img2dataset writes both), else
// the sample is dropped ("no caption"). Captions are cleaned (clean_caption). A shard that is cut
// short or corrupt keeps the samples read before the damage, and the summary says where it broke;
// a missing shard (download tools leave gaps) is a note; no shard at all is an error.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/import_image_corpus.h"

namespace cw::data {

struct WebDatasetImportOptions : ImageImportOptions {
  std::string split = "train";      // the split the shards become
  std::string name = "webdataset";  // the corpus name in dataset.json
};

// Brace expansion as WebDataset's shard URLs use it (the braceexpand package): "{000..012}"
// counts with the width of its ends (zero padded when either has a leading zero), "{a,b}" lists;
// several braces multiply. ValueError for an unclosed brace or a range over a million names.
std::vector<std::string> expand_braces(const std::string& pattern);

// Imports the shards named by the patterns (each expanded, in order) into <out> as one split.
ImageImportSummary import_webdataset(const std::vector<std::string>& shard_patterns,
                                     const std::filesystem::path& out,
                                     const WebDatasetImportOptions& options);

}  // namespace cw::data
