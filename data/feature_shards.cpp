// Feature shards: validation on open, row reads, and the shard writer; see feature_shards.h.
#include "data/feature_shards.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/file_bytes.h"
#include "core/ops.h"
#include "core/safetensors.h"

namespace cw::data {
namespace {

// Bump when the layout of a shard changes (not the frames: those are the key's business).
constexpr const char* kShardFormat = "cw-feature-shards-1";

// One opened and validated shard file.
struct OpenedShard {
  std::shared_ptr<FileBytes> bytes;
  uint64_t features_at = 0;
  std::vector<int64_t> offsets;  // R + 1, from 0
};

// Validates shard `index` of spec, expected to start at first_row; false with the reason when it
// is not a valid continuation.
bool open_shard(const ShardSpec& spec, int64_t index, int64_t first_row, OpenedShard& out, std::string& why) {
  const std::string path = shard_path(spec.prefix, index).string();
  try {
    const SafetensorsFile st = SafetensorsFile::open(path);  // header and layout: sizes checked here
    const auto& meta = st.metadata();
    auto field = [&](const char* name) {
      const auto it = meta.find(name);
      return it == meta.end() ? std::string("(none)") : it->second;
    };
    if (field("format") != kShardFormat) {
      why = detail::cat("format '", field("format"), "', expected '", kShardFormat, "'");
      return false;
    }
    if (field("key") != spec.key) {
      why = "its key differs from this manifest's and settings' (a hash collision or a stale file)";
      return false;
    }
    if (field("shard") != std::to_string(index) || field("first_row") != std::to_string(first_row)) {
      why = detail::cat("it says shard ", field("shard"), " from row ", field("first_row"),
                        ", expected shard ", index, " from row ", first_row);
      return false;
    }
    if (!st.contains("features") || !st.contains("offsets")) {
      why = "no 'features' or no 'offsets' tensor";
      return false;
    }
    const SafetensorsFile::TensorInfo& f = st.info("features");
    const SafetensorsFile::TensorInfo& o = st.info("offsets");
    const int64_t rows = o.shape.size() == 1 ? o.shape[0] - 1 : -1;
    if (f.dtype != "F32" || f.shape.size() != 2 || f.shape[1] != spec.num_bins || o.dtype != "I64" ||
        rows < 1 || first_row + rows > spec.num_rows || field("rows") != std::to_string(rows)) {
      why = detail::cat("features ", f.dtype, " ", shape_str(f.shape), " and offsets ", o.dtype, " ",
                        shape_str(o.shape), " (rows ", field("rows"), ") do not fit rows from ", first_row,
                        " of ", spec.num_rows, " with ", spec.num_bins, " bins");
      return false;
    }
    std::vector<int64_t> off = st.load("offsets", DType::I64).to_vector<int64_t>();
    bool ok = off.front() == 0 && off.back() == f.shape[0];
    for (size_t i = 1; ok && i < off.size(); ++i) ok = off[i] >= off[i - 1];
    if (!ok) {
      why = "offsets are not an increasing cover of the feature rows";
      return false;
    }
    // The descriptor rows are read through; the data buffer starts after the 8-byte header length
    // and the header.
    auto bytes = std::make_shared<FileBytes>("feature shard");
    bytes->open(path);
    unsigned char len[8];
    bytes->read(0, 8, len, path);
    uint64_t header = 0;
    for (int b = 7; b >= 0; --b) header = header << 8 | len[b];  // little-endian, as the format says
    const uint64_t at = 8 + header + f.begin;
    if (bytes->size < at + static_cast<uint64_t>(f.shape[0] * spec.num_bins) * sizeof(float)) {
      why = "the file changed while it was opened";
      return false;
    }
    out = {std::move(bytes), at, std::move(off)};
    return true;
  } catch (const Error& e) {
    why = e.what();
    return false;
  }
}

}  // namespace

std::filesystem::path shard_path(const std::filesystem::path& prefix, int64_t shard) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%05lld.safetensors", static_cast<long long>(shard));
  return prefix.string() + suffix;
}

FeatureShards FeatureShards::open(const ShardSpec& spec, std::string* why) {
  FeatureShards s;
  s.spec_ = spec;
  while (s.rows_covered() < spec.num_rows) {
    const int64_t index = s.num_shards(), first = s.rows_covered();
    std::error_code ec;
    if (!std::filesystem::exists(s.file(index), ec)) break;
    OpenedShard shard;
    std::string reason;
    if (!open_shard(spec, index, first, shard, reason)) {
      if (why) *why = s.file(index).string() + ": " + reason;
      break;
    }
    const int64_t base = s.offsets_.back();
    for (size_t r = 1; r < shard.offsets.size(); ++r) {
      s.offsets_.push_back(base + shard.offsets[r]);
      s.shard_of_.push_back(index);
    }
    s.files_.push_back({std::move(shard.bytes), shard.features_at, first});
  }
  return s;
}

int64_t FeatureShards::num_frames(int64_t row) const {
  CW_CHECK(row >= 0 && row < rows_covered(), IndexError, "FeatureShards: row ", row, " out of range for ",
           rows_covered(), " rows of ", spec_.prefix.string());
  return offsets_[static_cast<size_t>(row) + 1] - offsets_[static_cast<size_t>(row)];
}

Tensor FeatureShards::read(int64_t row, int64_t max_frames) const {
  int64_t frames = num_frames(row);
  if (max_frames > 0) frames = std::min(frames, max_frames);
  const int64_t j = shard_of_[static_cast<size_t>(row)];
  const Shard& s = files_[static_cast<size_t>(j)];
  const int64_t bins = spec_.num_bins;
  // The row's first frame, counted from the shard's first frame.
  const int64_t frame = offsets_[static_cast<size_t>(row)] - offsets_[static_cast<size_t>(s.first_row)];
  Tensor out = Tensor::empty({frames, bins}, DType::F32);
  s.bytes->read(s.features_at + static_cast<uint64_t>(frame * bins) * sizeof(float),
                static_cast<uint64_t>(frames * bins) * sizeof(float), out.data<float>(), file(j).string());
  return out;
}

ShardWriter::ShardWriter(ShardSpec spec, int64_t first_shard, int64_t first_row, int64_t shard_bytes)
    : spec_(std::move(spec)),
      first_shard_(first_shard),
      shard_(first_shard),
      row_(first_row),
      shard_first_row_(first_row),
      capacity_frames_(std::max<int64_t>(
          1, shard_bytes / (std::max<int64_t>(1, spec_.num_bins) * static_cast<int64_t>(sizeof(float))))) {
  CW_CHECK(spec_.num_bins > 0 && first_shard >= 0 && first_row >= 0 && first_row <= spec_.num_rows,
           ValueError, "ShardWriter: ", spec_.prefix.string(), ": bad start (shard ", first_shard, ", row ",
           first_row, " of ", spec_.num_rows, ", ", spec_.num_bins, " bins)");
}

void ShardWriter::append(const Tensor& frames) {
  CW_CHECK(row_ < spec_.num_rows, ValueError, "ShardWriter: ", spec_.prefix.string(), ": row ", row_,
           " is past the last of ", spec_.num_rows, " rows");
  CW_CHECK(frames.dim() == 2 && frames.size(1) == spec_.num_bins && frames.dtype() == DType::F32, ShapeError,
           "ShardWriter: ", spec_.prefix.string(), ": row ", row_, ": frames ", describe(frames),
           " should be (T, ", spec_.num_bins, ") f32");
  const int64_t t = frames.size(0);
  if (offsets_.size() > 1 && offsets_.back() + t > capacity_frames_) write_shard();
  const int64_t used = offsets_.back();
  // The buffer is reused shard after shard; a row larger than a whole shard grows it (that row
  // then fills a shard alone).
  if (!buffer_.defined() || buffer_.size(0) < used + t)
    buffer_ = Tensor::empty({std::max(capacity_frames_, t), spec_.num_bins}, DType::F32);
  if (t > 0)
    std::memcpy(buffer_.data<float>() + used * spec_.num_bins, frames.contiguous().data<float>(),
                static_cast<size_t>(frames.numel()) * sizeof(float));
  offsets_.push_back(used + t);
  ++row_;
}

void ShardWriter::write_shard() {
  const int64_t rows = static_cast<int64_t>(offsets_.size()) - 1;
  if (rows == 0) return;
  const int64_t frames = offsets_.back();
  Tensor features =
      frames > 0 ? buffer_.narrow(0, 0, frames) : Tensor::empty({0, spec_.num_bins}, DType::F32);
  save_safetensors(shard_path(spec_.prefix, shard_).string(),
                   {{"features", features}, {"offsets", ops::from_vector<int64_t>(offsets_, {rows + 1})}},
                   {{"format", kShardFormat},
                    {"key", spec_.key},
                    {"shard", std::to_string(shard_)},
                    {"first_row", std::to_string(shard_first_row_)},
                    {"rows", std::to_string(rows)}});
  ++shard_;
  shard_first_row_ = row_;
  offsets_.assign(1, 0);
}

void ShardWriter::finish() {
  write_shard();
  CW_CHECK(row_ == spec_.num_rows, ValueError, "ShardWriter: ", spec_.prefix.string(), ": finished after ",
           row_, " of ", spec_.num_rows, " rows");
}

}  // namespace cw::data
