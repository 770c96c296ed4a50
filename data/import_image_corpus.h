// What the image importers share: the options of the eval transform they apply, the resumable
// chunks they build (one class folder, or one WebDataset shard, each written atomically under
// <out>/.parts and reused by a rerun when its source is unchanged), the assembly of the chunks
// into the corpus format ImageDataset reads (dataset.json + <split>.tsv + an IDX file of
// (N, S, S, 3) bytes; data/README.md), the completion record <out>/import.json that makes a rerun
// "up to date", and the summary of what was kept and dropped and why. Importers:
// import_image_folder.h (ImageNet-style class folders), import_image_webdataset.h (WebDataset
// shards). Part of data/.
//
// Why convert instead of reading JPEGs in the loader: the existing loader, the frozen-tower
// embedding cache and every trainer then work unchanged, an epoch decodes nothing, and the bytes
// every run sees are fixed once (the eval transform is deterministic). The cost is a fixed
// resolution per import (--size) and memory: ImageDataset holds a split's pixels in RAM
// (ImageNet's 50000 validation images at 64 x 64: 614 MB).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cw::data {

struct ImageImportOptions {
  int64_t image_size = 64;  // CenterCrop(image_size): the stored images are S x S x 3
  int64_t resize = 0;       // Resize(resize) of the shorter side first; 0 = image_size (CLIP's)
  int jobs = 1;             // threads decoding chunks (class folders, shards) in parallel
  // Called after each chunk with (chunks done, chunks in all), from one thread at a time.
  std::function<void(int64_t, int64_t)> progress;
};

// The outcome of one import, also stored in <out>/import.json.
struct ImageImportSummary {
  std::string importer;                    // "imagenet" | "webdataset"
  bool up_to_date = false;                 // nothing to do: import.json matched the sources
  std::map<std::string, int64_t> kept;     // split -> images written
  std::map<std::string, int64_t> dropped;  // reason -> count
  std::vector<std::string> examples;       // "<item>: <reason>" of the first dropped items
  std::vector<std::string> notes;          // warnings that drop nothing (duplicate class names, ...)
  int64_t chunks_built = 0, chunks_reused = 0;
  double seconds = 0;

  nlohmann::json to_json() const;
  std::string text() const;  // the human summary the import command prints
};

// A row of an imported split, before assembly.
struct ImageImportRow {
  std::string id;       // the file (class folder) or "<shard>/<key>" (WebDataset)
  int64_t label = -1;   // class index, -1 when the corpus has no classes
  std::string caption;  // one caption (already cleaned)
};

// The output of one chunk: its rows, their pixels (rows x S x S x 3) and what it dropped.
struct ImageImportChunk {
  std::vector<ImageImportRow> rows;
  std::vector<uint8_t> pixels;
  std::map<std::string, int64_t> dropped;
  std::vector<std::string> examples;  // first few "<item>: <reason>"
  std::vector<std::string> notes;

  void drop(const std::string& reason, const std::string& item, const std::string& detail = "");
  // Decodes `bytes` as a JPEG (jpeg_decoder.h), applies Resize + CenterCrop (image_resize.h) and
  // appends it with `row`; an undecodable image is dropped with its reason ("not a JPEG",
  // "corrupt JPEG", "CMYK JPEG", "too large"). Returns whether it was kept.
  bool add_jpeg(const std::string& bytes, ImageImportRow row, const std::string& where,
                const ImageImportOptions& o);
};

// A caption made safe for the manifest: tabs, newlines and other control characters become
// spaces, runs of spaces one, the ends trimmed, " | " (the manifest's caption separator) becomes
// " / ". An empty result or bytes that are not UTF-8 give "" and the reason in *why.
std::string clean_caption(const std::string& text, std::string* why);

// One resumable unit of an import: `key` fingerprints everything its output depends on (source
// files' names, sizes and mtimes; options; importer version).
struct ImageChunkPlan {
  std::string name;  // file-name-safe, unique within the split
  std::string key;
  std::function<ImageImportChunk()> build;
};

// Description of the corpus for dataset.json (ImageDataset's fields).
struct ImageImportCorpus {
  std::string name;
  std::vector<std::string> classes, prompt_templates;
  bool horizontal_flip = true;
  nlohmann::json source;  // what was imported, recorded in dataset.json
};

// Runs an import: when <out>/import.json records the same key (over every plan) and its files are
// all present at their recorded sizes, returns a summary with up_to_date set and touches nothing.
// Otherwise builds each chunk not already complete under <out>/.parts/<split>/ (options.jobs
// threads), assembles every split (files written to temporaries and renamed), writes dataset.json
// and, last, import.json; then removes .parts. Rerunning after an interruption reuses the
// finished chunks. An error in a chunk's build (not a dropped image: an unreadable folder, ...)
// propagates, naming the file.
ImageImportSummary run_image_import(const std::filesystem::path& out, const std::string& importer,
                                    const ImageImportCorpus& corpus,
                                    const std::map<std::string, std::vector<ImageChunkPlan>>& splits,
                                    const ImageImportOptions& options, ImageImportSummary preamble = {});

// A fingerprint of a file for chunk keys: "<path>|<size>|<mtime ns>".
std::string import_file_stamp(const std::filesystem::path& file);
// Hex of FNV-1a 64 over text.
std::string hex_digest(const std::string& text);

// CLIP's 80 ImageNet prompt templates (Radford et al. 2021, the prompt-engineering notebook of
// openai/CLIP), in their order.
const std::vector<std::string>& clip_imagenet_templates();

}  // namespace cw::data
