// Loading a named image data set: dataset.json, the split's manifest and IDX files, with the
// consistency checks between them; see image_dataset.h.
#include "data/image_dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_read.h"

namespace cw::data {
namespace {

namespace fs = std::filesystem;

const char* kHeader = "id\tindex\tlabel\tcaptions\tattributes";
const std::string kCaptionSep = " | ";

std::vector<std::string> split_on(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + sep.size();
  }
}

// A non-negative decimal integer, or -1.
int64_t parse_index(const std::string& s) {
  if (s.empty() || s.size() > 18) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

fs::path resolve(const fs::path& dir, const std::string& p) {
  const fs::path path(p);
  return path.is_absolute() ? path : dir / path;
}

}  // namespace

fs::path default_image_root() {
  if (const char* env = std::getenv("CW_IMAGE_DATA"); env != nullptr && *env != '\0') return fs::path(env);
#ifdef CW_PROJECT_DIR
  return fs::path(CW_PROJECT_DIR) / ".cache" / "images" / "default";
#else
  return fs::path(".cache") / "images" / "default";
#endif
}

ImageDataset ImageDataset::load_named(const std::string& name, const std::string& split,
                                      const fs::path& root) {
  const fs::path base = root.empty() ? default_image_root() : root;
  const fs::path dir = base / name;
  CW_CHECK(fs::is_regular_file(dir / "dataset.json"), ValueError, "ImageDataset: no data set '", name,
           "' in ", base.string(), " (", (dir / "dataset.json").string(),
           " missing): run tools/make_image_corpus.py (after tools/setup.sh)");
  return load(dir, split);
}

ImageDataset ImageDataset::load(const fs::path& dir, const std::string& split) {
  ImageDataset ds;
  ds.dir_ = dir;
  ds.split_ = split;
  const fs::path meta_path = dir / "dataset.json";
  CW_CHECK(fs::is_regular_file(meta_path), ValueError, "ImageDataset: cannot open ", meta_path.string());
  const std::string meta_where = "ImageDataset: " + meta_path.string();
  const Json meta_doc = read_json_file(meta_path, meta_where);
  const JsonReader meta(meta_doc, meta_where);
  ds.name_ = meta.get<std::string>("name");
  ds.channels_ = meta.get<int64_t>("channels");
  ds.height_ = meta.get<int64_t>("height");
  ds.width_ = meta.get<int64_t>("width");
  ds.classes_ = meta.get<std::vector<std::string>>("classes");
  ds.templates_ = meta.get<std::vector<std::string>>("prompt_templates");
  ds.horizontal_flip_ = meta.get<bool>("horizontal_flip");
  ds.heldout_ = meta.get_or("heldout_classes", ds.heldout_);
  const JsonReader splits = meta.at("splits");
  splits.expect(splits.json().is_object(), "an object");
  if (!splits.has(split)) {
    std::string names;
    for (const auto& [key, value] : splits.json().items()) names += (names.empty() ? "" : ", ") + key;
    CW_CHECK(false, ValueError, meta_where, " has no split '", split, "' (it has ",
             names.size() > 200 ? names.substr(0, 200) + "..." : names, ")");
  }
  const JsonReader sp = splits.at(split);
  const fs::path images_path = resolve(dir, sp.get<std::string>("images"));
  // Without a label file (imported corpora: more than 256 classes, or none) the manifest's label
  // column is the label, and an empty one marks an image without a class.
  const bool label_file = sp.has("labels");
  const fs::path labels_path = label_file ? resolve(dir, sp.get<std::string>("labels")) : fs::path();
  const fs::path manifest_path = resolve(dir, sp.get<std::string>("manifest"));

  ds.images_ = read_idx(images_path);
  IdxArray labels;
  if (label_file) {
    labels = read_idx(labels_path);
    check_idx_pair(ds.images_, labels);
  }
  const auto& d = ds.images_.dims;
  const int64_t c = d.size() == 4 ? d[3] : 1;
  CW_CHECK((d.size() == 3 || d.size() == 4) && d[1] == ds.height_ && d[2] == ds.width_ && c == ds.channels_,
           ValueError, "ImageDataset: ", images_path.string(), " holds items of ", ds.images_.item_size(),
           " bytes in ", d.size(), " dims, but ", meta_path.string(), " says ", ds.channels_, " x ",
           ds.height_, " x ", ds.width_);

  std::ifstream in(manifest_path, std::ios::binary);
  CW_CHECK(in.good(), ValueError, "ImageDataset: cannot open manifest ", manifest_path.string());
  std::string line;
  int64_t lineno = 0;
  const std::string where = manifest_path.string() + ":";
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1) {
      CW_CHECK(line == kHeader, ValueError, "ImageDataset: ", where, "1: header must be '", kHeader, "'");
      continue;
    }
    if (line.empty()) continue;
    const auto f = split_on(line, "\t");
    CW_CHECK(f.size() == 5, ValueError, "ImageDataset: ", where, lineno, ": ", f.size(),
             " tab-separated fields, expected 5 (id index label captions attributes)");
    ImageRow r;
    r.id = f[0];
    r.index = parse_index(f[1]);
    const bool no_class = !label_file && f[2].empty();
    r.label = no_class ? -1 : parse_index(f[2]);
    r.attributes = f[4];
    r.line = lineno;
    CW_CHECK(!r.id.empty(), ValueError, "ImageDataset: ", where, lineno, ": empty id");
    CW_CHECK(r.index >= 0 && r.index < ds.images_.count(), ValueError, "ImageDataset: ", where, lineno,
             ": index '", f[1], "' is not a row of ", images_path.string(), " (", ds.images_.count(),
             " images)");
    CW_CHECK(no_class || (r.label >= 0 && r.label < ds.num_classes()), ValueError, "ImageDataset: ", where,
             lineno, ": label '", f[2], "' is not one of the ", ds.num_classes(), " classes");
    if (label_file) {
      const int64_t idx_label = labels.data[static_cast<size_t>(r.index)];
      CW_CHECK(idx_label == r.label, ValueError, "ImageDataset: ", where, lineno, ": label ", r.label,
               " but ", labels_path.string(), " has ", idx_label, " at index ", r.index);
    }
    for (std::string& cap : split_on(f[3], kCaptionSep))
      if (!cap.empty()) r.captions.push_back(std::move(cap));
    CW_CHECK(!r.captions.empty(), ValueError, "ImageDataset: ", where, lineno, ": no caption");
    ds.rows_.push_back(std::move(r));
  }
  CW_CHECK(!ds.rows_.empty(), ValueError, "ImageDataset: ", manifest_path.string(), " lists no image");
  return ds;
}

std::vector<std::string> ImageDataset::prompts(int64_t c) const {
  CW_CHECK(c >= 0 && c < num_classes(), IndexError, "ImageDataset ", name_, ": class ", c, " of ",
           num_classes());
  std::vector<std::string> out;
  for (const std::string& t : templates_) {
    const size_t at = t.find("{}");
    out.push_back(
        at == std::string::npos ? t : t.substr(0, at) + classes_[static_cast<size_t>(c)] + t.substr(at + 2));
  }
  return out;
}

const ImageRow& ImageDataset::row(int64_t i) const {
  CW_CHECK(i >= 0 && i < size(), IndexError, "ImageDataset ", name_, "/", split_, ": row ", i, " of ",
           size());
  return rows_[static_cast<size_t>(i)];
}

const uint8_t* ImageDataset::pixels(int64_t i) const {
  return images_.data.data() + row(i).index * images_.item_size();
}

Tensor ImageDataset::image(int64_t i) const {
  const uint8_t* src = pixels(i);  // (H, W, C)
  Tensor out = Tensor::empty({channels_, height_, width_}, DType::F32);
  float* dst = out.data<float>();
  for (int64_t y = 0; y < height_; ++y)
    for (int64_t x = 0; x < width_; ++x)
      for (int64_t ch = 0; ch < channels_; ++ch)
        dst[(ch * height_ + y) * width_ + x] =
            static_cast<float>(src[(y * width_ + x) * channels_ + ch]) / 255.0f;
  return out;
}

Tensor ImageDataset::labels() const {
  Tensor out = Tensor::empty({size()}, DType::I64);
  int64_t* dst = out.data<int64_t>();
  for (int64_t i = 0; i < size(); ++i) dst[i] = rows_[static_cast<size_t>(i)].label;
  return out;
}

bool ImageDataset::labeled() const {
  return std::all_of(rows_.begin(), rows_.end(), [](const ImageRow& r) { return r.label >= 0; });
}

ChannelStats ImageDataset::channel_stats() const {
  std::vector<double> sum(static_cast<size_t>(channels_)), sq(static_cast<size_t>(channels_));
  const int64_t hw = height_ * width_;
  for (int64_t i = 0; i < size(); ++i) {
    const uint8_t* p = pixels(i);
    for (int64_t k = 0; k < hw; ++k)
      for (int64_t ch = 0; ch < channels_; ++ch) {
        const double v = p[k * channels_ + ch] / 255.0;
        sum[static_cast<size_t>(ch)] += v;
        sq[static_cast<size_t>(ch)] += v * v;
      }
  }
  ChannelStats s;
  const double n = static_cast<double>(size() * hw);
  for (int64_t ch = 0; ch < channels_; ++ch) {
    const double m = sum[static_cast<size_t>(ch)] / n;
    s.mean.push_back(static_cast<float>(m));
    s.std.push_back(static_cast<float>(std::sqrt(std::max(0.0, sq[static_cast<size_t>(ch)] / n - m * m))));
  }
  return s;
}

}  // namespace cw::data
