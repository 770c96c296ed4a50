// The IDX reader: header parsing, size checks and the conversion to tensors; see idx_reader.h.
#include "data/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "core/error.h"

namespace cw::data {
namespace {

// Closes the gzFile on every path out, including errors.
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to n bytes; returns how many were read. A zlib error (corrupt stream) throws, naming
// the file, and a stream that ends early just returns fewer bytes (the caller says "truncated").
size_t read_some(gzFile f, void* out, size_t n, const std::filesystem::path& path) {
  size_t done = 0;
  auto* bytes = static_cast<unsigned char*>(out);
  while (done < n) {
    // gzread takes an unsigned count; read in chunks below 2^30.
    const auto want = static_cast<unsigned>(std::min<size_t>(n - done, size_t{1} << 30));
    const int got = gzread(f, bytes + done, want);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      // A cut gzip stream (Z_BUF_ERROR: "unexpected end of file") is a truncated file.
      if (code == Z_BUF_ERROR) return done;
      CW_CHECK(false, ValueError, "read_idx: ", path.string(), ": corrupt data (zlib: ", msg, ")");
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

}  // namespace

int64_t IdxArray::item_size() const {
  int64_t s = 1;
  for (size_t d = 1; d < dims.size(); ++d) s *= dims[d];
  return s;
}

IdxArray read_idx(const std::filesystem::path& path) {
  std::error_code ec;
  CW_CHECK(std::filesystem::is_regular_file(path, ec), ValueError, "read_idx: ", path.string(),
           ": no such file");
  GzHandle file(gzopen(path.c_str(), "rb"));
  CW_CHECK(file != nullptr, ValueError, "read_idx: ", path.string(), ": cannot open (", std::strerror(errno),
           ")");
  gzbuffer(file.get(), 1 << 17);

  unsigned char magic[4];
  const size_t got = read_some(file.get(), magic, 4, path);
  CW_CHECK(got > 0, ValueError, "read_idx: ", path.string(), ": empty file");
  CW_CHECK(got == 4, ValueError, "read_idx: ", path.string(), ": truncated in the magic number (", got,
           " of 4 bytes)");
  CW_CHECK(magic[0] == 0 && magic[1] == 0 && magic[3] >= 1, ValueError, "read_idx: ", path.string(),
           ": wrong magic ", static_cast<int>(magic[0]), " ", static_cast<int>(magic[1]), " ",
           static_cast<int>(magic[2]), " ", static_cast<int>(magic[3]),
           " (expected 0 0 <type> <ndims >= 1>: not an IDX file)");
  CW_CHECK(magic[2] == 0x08, NotImplementedError, "read_idx: ", path.string(), ": element type 0x", std::hex,
           static_cast<int>(magic[2]), std::dec,
           " is not supported (only 0x08, unsigned byte, as in MNIST and Fashion-MNIST)");

  IdxArray out;
  out.path = path;
  const int ndims = magic[3];
  for (int d = 0; d < ndims; ++d) {
    unsigned char be[4];
    CW_CHECK(read_some(file.get(), be, 4, path) == 4, ValueError, "read_idx: ", path.string(),
             ": truncated in the header (size of dim ", d, " of ", ndims, ")");
    // Big-endian, as the format's description says (MNIST was written on a big-endian machine).
    const auto v = static_cast<int32_t>((uint32_t{be[0]} << 24) | (uint32_t{be[1]} << 16) |
                                        (uint32_t{be[2]} << 8) | uint32_t{be[3]});
    CW_CHECK(v >= 0, ValueError, "read_idx: ", path.string(), ": negative size ", v, " of dim ", d);
    out.dims.push_back(v);
  }
  std::string dims_text;
  for (size_t d = 0; d < out.dims.size(); ++d) dims_text += (d ? ", " : "") + std::to_string(out.dims[d]);
  int64_t total = 1;
  for (const int64_t v : out.dims) {
    // Up to 255 sizes below 2^31 each: the product can overflow int64.
    CW_CHECK(v == 0 || total <= INT64_MAX / v, ValueError, "read_idx: ", path.string(),
             ": the header's sizes (", dims_text, ") multiply to more than 2^63 bytes");
    total *= v;
  }
  CW_CHECK(out.dims[0] > 0, ValueError, "read_idx: ", path.string(), ": no items (dim 0 is 0)");
  CW_CHECK(total > 0, ValueError, "read_idx: ", path.string(), ": empty items (a size of 0 in the header)");
  const auto truncated = [&](int64_t held) {
    return detail::cat("read_idx: ", path.string(), ": truncated: the header says (", dims_text,
                       ") = ", total, " bytes of data, the file has ", held);
  };
  const auto trailing =
      detail::cat("read_idx: ", path.string(), ": trailing bytes after the ", total,
                  " bytes of data the header (", dims_text, ") describes: dims and file size disagree");

  // The header's sizes are untrusted until the bytes are there. A plain file's size says at once
  // whether they are (before anything is allocated); a gzip stream's only as it is inflated, so
  // the data grows by at most 1 MiB per read, with what arrived.
  if (gzdirect(file.get())) {
    const auto held = static_cast<int64_t>(std::filesystem::file_size(path, ec)) - 4 - 4 * int64_t{ndims};
    CW_CHECK(!ec && held >= total, ValueError, truncated(held));
    CW_CHECK(held == total, ValueError, trailing);
    out.data.reserve(static_cast<size_t>(total));
  }
  constexpr int64_t kChunk = int64_t{1} << 20;
  int64_t n = 0;
  while (n < total) {
    const int64_t want = std::min(kChunk, total - n);
    out.data.resize(static_cast<size_t>(n + want));
    const auto got =
        static_cast<int64_t>(read_some(file.get(), out.data.data() + n, static_cast<size_t>(want), path));
    n += got;
    if (got < want) break;
  }
  out.data.resize(static_cast<size_t>(n));
  CW_CHECK(n == total, ValueError, truncated(n));
  unsigned char extra;
  CW_CHECK(read_some(file.get(), &extra, 1, path) == 0, ValueError, trailing);
  return out;
}

Tensor idx_images_to_tensor(const IdxArray& images) {
  const auto& d = images.dims;
  CW_CHECK(d.size() == 3 || d.size() == 4, ValueError, "idx_images_to_tensor: ", images.path.string(),
           " has ", d.size(), " dims; images need 3 (N, H, W) or 4 (N, H, W, C)");
  const int64_t n = d[0], h = d[1], w = d[2], c = d.size() == 4 ? d[3] : 1;
  Tensor out = Tensor::empty({n, c, h, w}, DType::F32);  // (N, C, H, W)
  float* dst = out.data<float>();
  const uint8_t* src = images.data.data();  // (N, H, W, C)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch)
          dst[((i * c + ch) * h + y) * w + x] =
              static_cast<float>(src[((i * h + y) * w + x) * c + ch]) / 255.0f;
  return out;
}

Tensor read_idx_images(const std::filesystem::path& path) { return idx_images_to_tensor(read_idx(path)); }

Tensor idx_labels_to_tensor(const IdxArray& labels, int64_t num_classes) {
  CW_CHECK(labels.dims.size() == 1, ValueError, "idx_labels_to_tensor: ", labels.path.string(), " has ",
           labels.dims.size(), " dims; labels need 1 (N)");
  Tensor out = Tensor::empty({labels.count()}, DType::I64);
  int64_t* dst = out.data<int64_t>();
  for (int64_t i = 0; i < labels.count(); ++i) {
    dst[i] = labels.data[static_cast<size_t>(i)];
    CW_CHECK(num_classes <= 0 || dst[i] < num_classes, ValueError,
             "idx_labels_to_tensor: ", labels.path.string(), ": label ", dst[i], " of item ", i,
             " is not below the ", num_classes, " classes");
  }
  return out;
}

Tensor read_idx_labels(const std::filesystem::path& path, int64_t num_classes) {
  return idx_labels_to_tensor(read_idx(path), num_classes);
}

void check_idx_pair(const IdxArray& images, const IdxArray& labels) {
  CW_CHECK(images.count() == labels.count(), ValueError, "IDX pair: ", images.path.string(), " has ",
           images.count(), " images but ", labels.path.string(), " has ", labels.count(), " labels");
}

}  // namespace cw::data
