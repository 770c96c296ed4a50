// WebDataset shards -> the corpus format; see import_image_webdataset.h.
#include "data/import_image_webdataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/error.h"
#include "data/tar_reader.h"

namespace cw::data {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxExpansion = 1000000;

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The fields of one sample, as the members arrive.
struct Sample {
  std::string key;
  std::string image, image_ext, caption_text, json;
  bool has_image = false, has_txt = false, has_json = false;
};

bool is_image_field(const std::string& ext) {
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "webp" || ext == "gif" || ext == "bmp" ||
         ext == "tif" || ext == "tiff" || ext == "ppm";
}

// The caption of an img2dataset .json ({"caption": "...", "url": ..., ...}), or "".
std::string json_caption(const std::string& text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.is_object() && j.contains("caption") && j.at("caption").is_string())
      return j.at("caption").get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return "";
}

void finish_sample(Sample& s, const std::string& shard, ImageImportChunk& chunk,
                   const ImageImportOptions& o) {
  if (s.key.empty()) return;
  const std::string id = shard + "/" + s.key;
  if (!s.has_image) {
    chunk.drop("no image in the sample", id);
  } else if (s.image_ext != "jpg" && s.image_ext != "jpeg") {
    chunk.drop("not a JPEG", id, "." + s.image_ext + " image");
  } else if (id.find_first_of("\t\r\n") != std::string::npos) {
    chunk.drop("tab or newline in the key", id);
  } else {
    std::string text = s.has_txt ? s.caption_text : s.has_json ? json_caption(s.json) : "";
    if (!s.has_txt && text.empty()) {
      chunk.drop("no caption", id);
    } else {
      std::string why;
      std::string caption = clean_caption(text, &why);
      if (caption.empty())
        chunk.drop(why, id);
      else
        chunk.add_jpeg(s.image, {id, -1, std::move(caption)}, id, o);
    }
  }
  s = Sample{};
}

ImageImportChunk import_shard(const fs::path& path, const std::string& shard, const ImageImportOptions& o) {
  ImageImportChunk chunk;
  Sample s;
  try {
    TarReader tar(path);
    while (auto m = tar.next()) {
      const size_t slash = m->name.rfind('/');
      const std::string base = m->name.substr(slash == std::string::npos ? 0 : slash + 1);
      if (base.rfind("__", 0) == 0) continue;  // shard metadata (__key__ files and the like)
      const size_t dot = base.find('.');
      if (dot == std::string::npos || dot == 0) {
        chunk.drop("member without a field extension", shard + "/" + m->name);
        continue;
      }
      const std::string key = m->name.substr(0, m->name.size() - base.size() + dot);
      std::string ext = base.substr(dot + 1);
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      if (key != s.key) {
        finish_sample(s, shard, chunk, o);
        s.key = key;
      }
      if (is_image_field(ext) && !s.has_image) {
        s.has_image = true;
        s.image_ext = ext;
        s.image = std::move(m->data);
      } else if (ext == "txt") {
        s.has_txt = true;
        s.caption_text = std::move(m->data);
      } else if (ext == "json") {
        s.has_json = true;
        s.json = std::move(m->data);
      }
    }
    finish_sample(s, shard, chunk, o);
  } catch (const ValueError& e) {
    // The members read whole before the damage are good. The sample in progress is kept when it
    // has an image and a caption (the damage was in a later, optional field or the next sample),
    // else dropped with the shard's error: its missing field may be the one that was cut.
    if (s.has_image && (s.has_txt || s.has_json))
      finish_sample(s, shard, chunk, o);
    else if (!s.key.empty())
      chunk.drop("shard cut short or corrupt", shard + "/" + s.key, e.what());
    chunk.notes.push_back(std::string(e.what()) + " (samples before it kept)");
  }
  return chunk;
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  const size_t open = pattern.find('{');
  if (open == std::string::npos) return {pattern};
  const size_t close = pattern.find('}', open);
  CW_CHECK(close != std::string::npos, ValueError, "shards: unclosed '{' in '", pattern, "'");
  const std::string body = pattern.substr(open + 1, close - open - 1), head = pattern.substr(0, open);
  std::vector<std::string> choices;
  const size_t dots = body.find("..");
  if (dots != std::string::npos && all_digits(body.substr(0, dots)) && all_digits(body.substr(dots + 2))) {
    const std::string a = body.substr(0, dots), b = body.substr(dots + 2);
    const int64_t lo = std::stoll(a), hi = std::stoll(b);
    CW_CHECK(std::abs(hi - lo) < kMaxExpansion, ValueError, "shards: '{", body, "}' names over ",
             kMaxExpansion, " shards");
    const bool pad = (a.size() > 1 && a[0] == '0') || (b.size() > 1 && b[0] == '0');
    const int width = pad ? static_cast<int>(std::max(a.size(), b.size())) : 0;
    for (int64_t v = lo;; v += lo <= hi ? 1 : -1) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(v));
      choices.push_back(buf);
      if (v == hi) break;
    }
  } else {
    size_t start = 0;
    for (;;) {
      const size_t comma = body.find(',', start);
      choices.push_back(body.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  // The first brace varies slowest, as braceexpand lists them ("{a,b}{1,2}": a1 a2 b1 b2).
  const std::vector<std::string> tails = expand_braces(pattern.substr(close + 1));
  CW_CHECK(static_cast<int64_t>(choices.size() * tails.size()) <= kMaxExpansion, ValueError, "shards: '",
           pattern, "' names over ", kMaxExpansion, " shards");
  std::vector<std::string> out;
  for (const std::string& c : choices)
    for (const std::string& tail : tails) out.push_back(head + c + tail);
  return out;
}

ImageImportSummary import_webdataset(const std::vector<std::string>& patterns, const fs::path& out,
                                     const WebDatasetImportOptions& o) {
  std::vector<fs::path> shards;
  for (const std::string& p : patterns)
    for (const std::string& s : expand_braces(p)) shards.emplace_back(s);
  CW_CHECK(!shards.empty(), ValueError, "import webdataset: no --shards given");
  ImageImportSummary pre;
  std::vector<ImageChunkPlan> plans;
  int64_t missing = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::error_code ec;
    if (!fs::is_regular_file(shards[i], ec)) {
      if (++missing <= 10) pre.notes.push_back("shard missing: " + shards[i].string());
      continue;
    }
    char name[32];
    std::snprintf(name, sizeof name, "s%07zu", i);
    const fs::path path = shards[i];
    const std::string shard = path.filename().string();
    plans.push_back({name, hex_digest(import_file_stamp(path) + "|" + o.split),
                     [path, shard, &o] { return import_shard(path, shard, o); }});
  }
  if (missing > 10) pre.notes.push_back(std::to_string(missing - 10) + " more shards missing");
  CW_CHECK(!plans.empty(), ValueError, "import webdataset: none of the ", shards.size(),
           " shards exists (first: ", shards.front().string(), ")");
  ImageImportCorpus corpus;
  corpus.name = o.name;
  corpus.horizontal_flip = true;
  corpus.source = {{"importer", "webdataset"},
                   {"shards", static_cast<int64_t>(shards.size())},
                   {"missing_shards", missing}};
  return run_image_import(out, "webdataset", corpus, {{o.split, plans}}, o, std::move(pre));
}

}  // namespace cw::data
