// The importers' shared machinery: chunks, assembly, completion record, summary; see
// import_image_corpus.h.
#include "data/import_image_corpus.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/image_resize.h"
#include "data/jpeg_decoder.h"
#include "data/unicode.h"

namespace cw::data {
namespace fs = std::filesystem;

namespace {

// Bumped when the stored bytes of a chunk or a split change meaning, so old chunks are rebuilt.
constexpr const char* kImportFormat = "cw-image-import-1";
constexpr size_t kMaxExamples = 20;

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  CW_CHECK(in.good(), ValueError, "import: cannot read ", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t image_bytes(const ImageImportOptions& o) { return o.image_size * o.image_size * 3; }

// The IDX header of N images of S x S x 3 bytes: magic 0x00000804 (unsigned bytes, 4 dims), then
// the 4 sizes as big-endian int32: 20 bytes.
std::string idx_header(int64_t n, int64_t s) {
  std::string h = {0, 0, 8, 4};
  for (int64_t d : {n, s, s, int64_t{3}})
    for (int shift = 24; shift >= 0; shift -= 8) h.push_back(static_cast<char>((d >> shift) & 0xFF));
  return h;
}

void merge_into(ImageImportSummary& s, const std::map<std::string, int64_t>& dropped,
                const std::vector<std::string>& examples, const std::vector<std::string>& notes) {
  for (const auto& [reason, n] : dropped) s.dropped[reason] += n;
  for (const std::string& e : examples)
    if (s.examples.size() < kMaxExamples) s.examples.push_back(e);
  s.notes.insert(s.notes.end(), notes.begin(), notes.end());
}

// A chunk on disk: <parts>/<name>.json (written last: the chunk is complete when it exists and
// names the key), .tsv (id, label, caption) and .images (raw bytes, rows x S x S x 3).
struct StoredChunk {
  nlohmann::json meta;
  bool complete = false;
};

StoredChunk stored_chunk(const fs::path& parts, const ImageChunkPlan& plan, const ImageImportOptions& o) {
  StoredChunk c;
  const fs::path json = parts / (plan.name + ".json");
  std::error_code ec;
  if (!fs::is_regular_file(json, ec)) return c;
  try {
    c.meta = nlohmann::json::parse(read_all(json));
    const int64_t rows = c.meta.at("rows").get<int64_t>();
    c.complete =
        c.meta.at("key").get<std::string>() == plan.key &&
        fs::is_regular_file(parts / (plan.name + ".tsv"), ec) &&
        static_cast<int64_t>(fs::file_size(parts / (plan.name + ".images"), ec)) == rows * image_bytes(o);
  } catch (const std::exception&) {  // a damaged record: rebuild the chunk
    c.complete = false;
  }
  return c;
}

void save_chunk(const fs::path& parts, const ImageChunkPlan& plan, const ImageImportChunk& chunk) {
  std::string tsv;
  for (const ImageImportRow& r : chunk.rows)
    tsv += r.id + "\t" + (r.label >= 0 ? std::to_string(r.label) : "") + "\t" + r.caption + "\n";
  write_file_atomic(parts / (plan.name + ".images"),
                    std::string(reinterpret_cast<const char*>(chunk.pixels.data()), chunk.pixels.size()));
  write_file_atomic(parts / (plan.name + ".tsv"), tsv);
  const nlohmann::json meta = {{"key", plan.key},
                               {"rows", chunk.rows.size()},
                               {"dropped", chunk.dropped},
                               {"examples", chunk.examples},
                               {"notes", chunk.notes}};
  write_file_atomic(parts / (plan.name + ".json"), meta.dump());
}

// Builds the chunks in `todo` with `jobs` threads; the first error is rethrown after all stop.
void build_chunks(const std::vector<std::pair<fs::path, const ImageChunkPlan*>>& todo,
                  const ImageImportOptions& o, int64_t done_before, int64_t total) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;
  int64_t done = done_before;
  auto work = [&] {
    for (;;) {
      const size_t i = next++;
      if (i >= todo.size() || failed) return;
      try {
        const auto& [parts, plan] = todo[i];
        save_chunk(parts, *plan, plan->build());
        std::lock_guard<std::mutex> lock(mutex);
        ++done;
        if (o.progress) o.progress(done, total);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  const int n = std::max(1, std::min<int>(o.jobs, static_cast<int>(todo.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

// Concatenates a split's chunks into <out>/<split>-images-idx4-ubyte and <out>/<split>.tsv.
int64_t assemble_split(const fs::path& out, const std::string& split, const fs::path& parts,
                       const std::vector<ImageChunkPlan>& plans, const ImageImportOptions& o) {
  std::string manifest = "id\tindex\tlabel\tcaptions\tattributes\n";
  int64_t n = 0;
  for (const ImageChunkPlan& p : plans) {
    std::istringstream tsv(read_all(parts / (p.name + ".tsv")));
    std::string line;
    while (std::getline(tsv, line)) {
      const size_t a = line.find('\t'), b = line.find('\t', a + 1);
      CW_CHECK(a != std::string::npos && b != std::string::npos, ValueError,
               "import: ", (parts / (p.name + ".tsv")).string(), ": malformed chunk row");
      manifest += line.substr(0, a) + "\t" + std::to_string(n++) + "\t" + line.substr(a + 1, b - a - 1) +
                  "\t" + line.substr(b + 1) + "\t\n";
    }
  }
  CW_CHECK(n > 0, ValueError, "import: split '", split, "' kept no image (see the dropped counts)");
  CW_CHECK(n < (int64_t{1} << 31), ValueError, "import: split '", split, "' has ", n,
           " images, more than an IDX file holds");
  const fs::path images = out / (split + "-images-idx4-ubyte");
  AtomicFile f(images);  // the chunks' image bytes, streamed one chunk at a time
  f.write(idx_header(n, o.image_size));
  std::vector<char> buffer(size_t{1} << 20);
  int64_t bytes = 0;
  for (const ImageChunkPlan& p : plans) {
    const fs::path chunk = parts / (p.name + ".images");
    std::ifstream in(chunk, std::ios::binary);
    CW_CHECK(in.good(), Error, "import: cannot read ", chunk.string());
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
      f.write(buffer.data(), static_cast<size_t>(in.gcount()));
      bytes += in.gcount();
    }
  }
  CW_CHECK(bytes == n * image_bytes(o), Error, "import: the chunks of ", images.string(), " hold ", bytes,
           " bytes, not ", n * image_bytes(o), ": a chunk changed during assembly");
  f.commit();
  write_file_atomic(out / (split + ".tsv"), manifest);
  return n;
}

}  // namespace

void ImageImportChunk::drop(const std::string& reason, const std::string& item, const std::string& detail) {
  ++dropped[reason];
  if (examples.size() < 5) examples.push_back(item + ": " + (detail.empty() ? reason : detail));
}

bool ImageImportChunk::add_jpeg(const std::string& bytes, ImageImportRow row, const std::string& where,
                                const ImageImportOptions& o) {
  ByteImage img;
  try {
    img = decode_jpeg(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), where);
  } catch (const ValueError& e) {
    const std::string m = e.what();
    const char* reason =
        m.find("not a JPEG") != std::string::npos || m.find("empty file") != std::string::npos ? "not a JPEG"
        : m.find("CMYK") != std::string::npos                                                  ? "CMYK JPEG"
        : m.find("pixels, over") != std::string::npos ? "image too large"
                                                      : "corrupt JPEG";
    drop(reason, where, m.substr(std::min(m.size(), where.size() + 2)));
    return false;
  }
  const ByteImage t = resize_center_crop(img, o.resize > 0 ? o.resize : o.image_size, o.image_size);
  pixels.insert(pixels.end(), t.pixels.begin(), t.pixels.end());
  rows.push_back(std::move(row));
  return true;
}

std::string clean_caption(const std::string& text, std::string* why) {
  try {
    (void)unicode::decode_utf8(text);
  } catch (const ValueError&) {
    if (why) *why = "caption not UTF-8";
    return "";
  }
  std::string s;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const char v = c < 0x20 || c == 0x7F ? ' ' : ch;
    if (v == ' ' && (s.empty() || s.back() == ' ')) continue;
    s.push_back(v);
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  for (size_t at = s.find(" | "); at != std::string::npos; at = s.find(" | ", at + 3)) s[at + 1] = '/';
  if (s.empty() && why) *why = "empty caption";
  return s;
}

std::string import_file_stamp(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  const auto mtime = fs::last_write_time(file, ec).time_since_epoch().count();
  return file.string() + "|" + std::to_string(ec ? -1 : static_cast<int64_t>(size)) + "|" +
         std::to_string(mtime);
}

std::string hex_digest(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

nlohmann::json ImageImportSummary::to_json() const {
  return {{"importer", importer},           {"kept", kept},      {"dropped", dropped},
          {"examples", examples},           {"notes", notes},    {"chunks_built", chunks_built},
          {"chunks_reused", chunks_reused}, {"seconds", seconds}};
}

std::string ImageImportSummary::text() const {
  std::ostringstream s;
  int64_t total_kept = 0, total_dropped = 0;
  for (const auto& [split, n] : kept) total_kept += n;
  for (const auto& [reason, n] : dropped) total_dropped += n;
  s << importer << ": " << (up_to_date ? "up to date, " : "") << "kept " << total_kept << " images";
  for (const auto& [split, n] : kept) s << " (" << split << " " << n << ")";
  s << ", dropped " << total_dropped << "\n";
  for (const auto& [reason, n] : dropped) s << "  dropped " << n << ": " << reason << "\n";
  for (const std::string& e : examples) s << "    e.g. " << e << "\n";
  for (const std::string& n : notes) s << "  note: " << n << "\n";
  if (!up_to_date) {
    char line[120];
    std::snprintf(line, sizeof line, "  chunks: %lld built, %lld reused from an earlier run; %.1f s\n",
                  static_cast<long long>(chunks_built), static_cast<long long>(chunks_reused), seconds);
    s << line;
  }
  return s.str();
}

ImageImportSummary run_image_import(const fs::path& out, const std::string& importer,
                                    const ImageImportCorpus& corpus,
                                    const std::map<std::string, std::vector<ImageChunkPlan>>& splits,
                                    const ImageImportOptions& o, ImageImportSummary preamble) {
  const auto t0 = std::chrono::steady_clock::now();
  CW_CHECK(o.image_size > 0 && o.image_size <= 4096 && (o.resize == 0 || o.resize >= o.image_size),
           ValueError, "import: --size must be in [1, 4096] and --resize 0 or >= --size, got ", o.image_size,
           " and ", o.resize);
  CW_CHECK(!splits.empty(), ValueError, "import: nothing to import");
  std::string key_text = std::string(kImportFormat) + "|" + importer + "|" + std::to_string(o.image_size) +
                         "|" + std::to_string(o.resize) + "|" + nlohmann::json(corpus.classes).dump() + "|" +
                         nlohmann::json(corpus.prompt_templates).dump() + "|" + corpus.source.dump();
  int64_t total = 0;
  for (const auto& [split, plans] : splits) {
    key_text += "|" + split;
    for (const ImageChunkPlan& p : plans) key_text += "|" + p.name + "=" + p.key;
    total += static_cast<int64_t>(plans.size());
  }
  const std::string key = hex_digest(key_text);
  ImageImportSummary s = std::move(preamble);
  s.importer = importer;

  const fs::path record = out / "import.json";
  std::error_code ec;
  if (fs::is_regular_file(record, ec)) {
    try {
      const nlohmann::json j = nlohmann::json::parse(read_all(record));
      bool same = j.at("key").get<std::string>() == key;
      for (const auto& [file, size] : j.at("files").items())
        same = same && fs::is_regular_file(out / file, ec) &&
               static_cast<int64_t>(fs::file_size(out / file, ec)) == size.get<int64_t>();
      if (same) {
        const nlohmann::json& js = j.at("summary");
        s.up_to_date = true;
        s.kept = js.at("kept").get<std::map<std::string, int64_t>>();
        s.dropped = js.at("dropped").get<std::map<std::string, int64_t>>();
        s.examples = js.at("examples").get<std::vector<std::string>>();
        s.notes = js.at("notes").get<std::vector<std::string>>();
        return s;
      }
    } catch (const std::exception&) {  // unreadable record: import again
    }
  }
  fs::create_directories(out);
  fs::remove(record, ec);  // from here until the end the corpus is "being imported"

  // Chunks: reuse the complete ones, build the rest.
  std::vector<std::pair<fs::path, const ImageChunkPlan*>> todo;
  for (const auto& [split, plans] : splits) {
    const fs::path parts = out / ".parts" / split;
    fs::create_directories(parts);
    for (const ImageChunkPlan& p : plans) {
      if (stored_chunk(parts, p, o).complete)
        ++s.chunks_reused;
      else
        todo.emplace_back(parts, &p);
    }
  }
  s.chunks_built = static_cast<int64_t>(todo.size());
  if (o.progress) o.progress(s.chunks_reused, total);
  build_chunks(todo, o, s.chunks_reused, total);

  nlohmann::json split_entries = nlohmann::json::object(), files = nlohmann::json::object();
  for (const auto& [split, plans] : splits) {
    const fs::path parts = out / ".parts" / split;
    for (const ImageChunkPlan& p : plans) {
      const StoredChunk c = stored_chunk(parts, p, o);
      CW_CHECK(c.complete, Error, "import: chunk ", (parts / p.name).string(), " vanished during the import");
      merge_into(s, c.meta.at("dropped").get<std::map<std::string, int64_t>>(),
                 c.meta.at("examples").get<std::vector<std::string>>(),
                 c.meta.at("notes").get<std::vector<std::string>>());
    }
    const int64_t n = assemble_split(out, split, parts, plans, o);
    s.kept[split] = n;
    split_entries[split] = {
        {"images", split + "-images-idx4-ubyte"}, {"manifest", split + ".tsv"}, {"rows", n}};
    for (const std::string& f : {split + "-images-idx4-ubyte", split + ".tsv"})
      files[f] = static_cast<int64_t>(fs::file_size(out / f));
  }
  const nlohmann::json dataset = {{"name", corpus.name},
                                  {"channels", 3},
                                  {"height", o.image_size},
                                  {"width", o.image_size},
                                  {"classes", corpus.classes},
                                  {"prompt_templates", corpus.prompt_templates},
                                  {"horizontal_flip", corpus.horizontal_flip},
                                  {"heldout_classes", nlohmann::json::array()},
                                  {"source", corpus.source},
                                  {"transform",
                                   {{"resize", o.resize > 0 ? o.resize : o.image_size},
                                    {"center_crop", o.image_size},
                                    {"interpolation", "PIL bilinear (antialiased), torchvision 0.14 eval"}}},
                                  {"splits", split_entries}};
  write_file_atomic(out / "dataset.json", dataset.dump(2) + "\n");
  files["dataset.json"] = static_cast<int64_t>(fs::file_size(out / "dataset.json"));
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const nlohmann::json rec = {
      {"format", kImportFormat}, {"key", key}, {"files", files}, {"summary", s.to_json()}};
  write_file_atomic(record, rec.dump(2) + "\n");
  fs::remove_all(out / ".parts", ec);
  return s;
}

const std::vector<std::string>& clip_imagenet_templates() {
  static const std::vector<std::string> t = {"a bad photo of a {}.",
                                             "a photo of many {}.",
                                             "a sculpture of a {}.",
                                             "a photo of the hard to see {}.",
                                             "a low resolution photo of the {}.",
                                             "a rendering of a {}.",
                                             "graffiti of a {}.",
                                             "a bad photo of the {}.",
                                             "a cropped photo of the {}.",
                                             "a tattoo of a {}.",
                                             "the embroidered {}.",
                                             "a photo of a hard to see {}.",
                                             "a bright photo of a {}.",
                                             "a photo of a clean {}.",
                                             "a photo of a dirty {}.",
                                             "a dark photo of the {}.",
                                             "a drawing of a {}.",
                                             "a photo of my {}.",
                                             "the plastic {}.",
                                             "a photo of the cool {}.",
                                             "a close-up photo of a {}.",
                                             "a black and white photo of the {}.",
                                             "a painting of the {}.",
                                             "a painting of a {}.",
                                             "a pixelated photo of the {}.",
                                             "a sculpture of the {}.",
                                             "a bright photo of the {}.",
                                             "a cropped photo of a {}.",
                                             "a plastic {}.",
                                             "a photo of the dirty {}.",
                                             "a jpeg corrupted photo of a {}.",
                                             "a blurry photo of the {}.",
                                             "a photo of the {}.",
                                             "a good photo of the {}.",
                                             "a rendering of the {}.",
                                             "a {} in a video game.",
                                             "a photo of one {}.",
                                             "a doodle of a {}.",
                                             "a close-up photo of the {}.",
                                             "a photo of a {}.",
                                             "the origami {}.",
                                             "the {} in a video game.",
                                             "a sketch of a {}.",
                                             "a doodle of the {}.",
                                             "a origami {}.",
                                             "a low resolution photo of a {}.",
                                             "the toy {}.",
                                             "a rendition of the {}.",
                                             "a photo of the clean {}.",
                                             "a photo of a large {}.",
                                             "a rendition of a {}.",
                                             "a photo of a nice {}.",
                                             "a photo of a weird {}.",
                                             "a blurry photo of a {}.",
                                             "a cartoon {}.",
                                             "art of a {}.",
                                             "a sketch of the {}.",
                                             "a embroidered {}.",
                                             "a pixelated photo of a {}.",
                                             "itap of the {}.",
                                             "a jpeg corrupted photo of the {}.",
                                             "a good photo of a {}.",
                                             "a plushie {}.",
                                             "a photo of the nice {}.",
                                             "a photo of the small {}.",
                                             "a photo of the weird {}.",
                                             "the cartoon {}.",
                                             "art of the {}.",
                                             "a drawing of the {}.",
                                             "a photo of the large {}.",
                                             "a black and white photo of a {}.",
                                             "the plushie {}.",
                                             "a dark photo of a {}.",
                                             "itap of a {}.",
                                             "graffiti of the {}.",
                                             "a toy {}.",
                                             "itap of my {}.",
                                             "a photo of a cool {}.",
                                             "a photo of a small {}.",
                                             "a tattoo of the {}."};
  return t;
}

}  // namespace cw::data
