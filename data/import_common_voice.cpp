// Common Voice -> manifests (see import_common_voice.h).
#include "data/import_common_voice.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "data/import_audio_check.h"
#include "data/import_text.h"

namespace cw::data {
namespace fs = std::filesystem;
namespace {

struct ClipRow {
  std::string client, path, sentence, where;
};

std::vector<ClipRow> read_list(const fs::path& tsv, ImportPart& part) {
  require_file(tsv, "a Common Voice split list");
  const std::vector<std::string> lines = read_lines(tsv);
  CW_CHECK(!lines.empty(), Error, tsv.string(),
           " is empty (expected a header line with client_id, path, sentence)");
  const std::vector<size_t> col =
      column_indices(split_tab_fields(lines[0]), {"client_id", "path", "sentence"}, tsv);
  const size_t need = std::max({col[0], col[1], col[2]}) + 1;
  std::vector<ClipRow> rows;
  for (size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    const std::vector<std::string> f = split_tab_fields(lines[n]);
    const std::string where = tsv.string() + ":" + std::to_string(n + 1);
    if (f.size() < need) {
      part.summary.drop("malformed list line", where + ": " + std::to_string(f.size()) + " fields");
      continue;
    }
    rows.push_back({f[col[0]], f[col[1]], f[col[2]], where});
  }
  return rows;
}

}  // namespace

ImportPart import_common_voice(const ImportOptions& o, const CommonVoiceOptions& co) {
  ImportPart part;
  part.source = "common_voice";
  part.root = fs::absolute(o.root);
  part.settings = {{"train_list", co.train_list}};
  CW_CHECK(co.train_list == "train.tsv" || co.train_list == "validated.tsv", Error,
           "common_voice: the training list must be train.tsv or validated.tsv, got '", co.train_list, "'");
  CW_CHECK(
      fs::is_directory(o.root / "clips"), Error, "common_voice: ", (o.root / "clips").string(),
      " is not a folder; --root must be a locale folder of the archive (e.g. cv-corpus-17.0-2024-03-15/en)");
  const fs::path clips = fs::absolute(o.root / "clips");
  const std::vector<ClipRow> dev = read_list(o.root / "dev.tsv", part);
  std::set<std::string> held_out_clips, held_out_sentences;
  for (const ClipRow& r : dev) {
    held_out_clips.insert(r.path);
    held_out_sentences.insert(sentence_key(r.sentence));
  }
  if (co.train_list == "validated.tsv") {
    // validated.tsv holds dev and test clips too; test's sentences stay unseen as well.
    for (const ClipRow& r : read_list(o.root / "test.tsv", part)) {
      held_out_clips.insert(r.path);
      held_out_sentences.insert(sentence_key(r.sentence));
    }
  }
  std::vector<ImportRow> rows;
  auto add = [&](const ClipRow& r, const std::string& split) {
    std::string why;
    const auto text = clean_transcript(r.sentence, &why);
    if (!text) {
      part.summary.drop(why, r.where + " (" + r.path + ")");
      return;
    }
    if (r.path.empty() || r.path.find('/') != std::string::npos) {
      part.summary.drop("malformed list line", r.where + ": clip path '" + r.path + "'");
      return;
    }
    const std::string stem = fs::path(r.path).stem().string();
    rows.push_back({"common_voice-" + stem, clips / r.path, *text,
                    "common_voice:" + r.client.substr(0, 16) + ":human", 0.0, split, ""});
  };
  for (const ClipRow& r : read_list(o.root / co.train_list, part)) {
    if (co.train_list == "validated.tsv" &&
        (held_out_clips.count(r.path) || held_out_sentences.count(sentence_key(r.sentence)))) {
      part.summary.drop("sentence of dev.tsv or test.tsv", r.where + " (" + r.path + ")");
      continue;
    }
    add(r, "train");
  }
  for (const ClipRow& r : dev) add(r, "valid");
  keep_checked_rows(part, std::move(rows), o);
  return part;
}

}  // namespace cw::data
