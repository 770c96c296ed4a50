// The importers of the training corpora (data/import_librispeech.h, data/import_common_voice.h) on
// tiny fake copies of their real layouts (import_test_layouts.h): what they keep, what they drop and
// why, the manifests they write, and a rerun that changes nothing and reuses its audio checks.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/import_common_voice.h"
#include "data/import_librispeech.h"
#include "data/import_part.h"
#include "import_test_layouts.h"
#include "import_test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

using test::dropped;
using test::rows_by_id;

TEST(ImportLibriSpeech, KeepsListedReadableUtterancesAndSaysWhyTheRestWentAway) {
  test::ImportScratch dir("librispeech");
  const fs::path root = dir.path / "download", out = dir.path / "corpus";
  test::write_librispeech(root, 6);
  const data::ImportPart part = data::import_librispeech(test::quiet_import(root, out));
  data::write_part(part, out);

  EXPECT_EQ(part.summary.kept.at("train").rows, 6);
  EXPECT_EQ(part.summary.kept.at("valid").rows, 2);
  EXPECT_EQ(part.summary.kept.at("retrieval_test").rows, 3);  // the repeat goes at composition
  EXPECT_EQ(dropped(part, "audio file missing"), 1);
  EXPECT_EQ(dropped(part, "audio unreadable"), 1);
  EXPECT_EQ(dropped(part, "no transcript"), 1);
  EXPECT_EQ(dropped(part, "malformed transcript line"), 1);
  EXPECT_EQ(part.summary.dropped_rows(), 4);
  // The examples name the file at fault.
  EXPECT_NE(part.summary.dropped.at("no transcript").examples[0].find("1034-121119-0091.flac"),
            std::string::npos);
  EXPECT_NE(part.summary.dropped.at("malformed transcript line").examples[0].find("1034-121119.trans.txt:"),
            std::string::npos);
  // Absent subsets and unused folders are notes in the summary.
  const std::string text = part.summary.text("librispeech");
  EXPECT_NE(text.find("subset train-clean-360 (for train) not found"), std::string::npos) << text;
  EXPECT_NE(text.find("folder dev-other not used"), std::string::npos) << text;

  const fs::path dir_part = data::part_dir(out, "librispeech");
  const auto train = rows_by_id(dir_part / "train.tsv");
  ASSERT_EQ(train.size(), 6u);
  const data::Utterance& u = train.at("librispeech-103-1240-0000");
  EXPECT_EQ(u.transcript, "the cat sat on the mat");
  EXPECT_EQ(u.voice, "librispeech:103:human");
  EXPECT_EQ(u.split, "train");
  EXPECT_TRUE(u.audio.is_absolute());
  EXPECT_EQ(u.audio, fs::absolute(root / "LibriSpeech/train-clean-100/103/1240/103-1240-0000.flac"));
  EXPECT_NEAR(u.duration, 0.6, 1e-3);
  EXPECT_EQ(rows_by_id(dir_part / "valid.tsv").size(), 2u);
  EXPECT_TRUE(fs::exists(dir_part / "part.json"));
}

TEST(ImportLibriSpeech, RerunChangesNothingAndResumesFromItsAudioChecks) {
  test::ImportScratch dir("librispeech_rerun");
  const fs::path root = dir.path / "download", out = dir.path / "corpus";
  test::write_librispeech(root, 4);
  data::write_part(data::import_librispeech(test::quiet_import(root, out)), out);
  const fs::path train = data::part_dir(out, "librispeech") / "train.tsv";
  const std::string first = test::file_text(train);
  const auto stamp = fs::last_write_time(train);

  // Same input: same bytes, and the manifest is not even rewritten.
  data::write_part(data::import_librispeech(test::quiet_import(root, out)), out);
  EXPECT_EQ(test::file_text(train), first);
  EXPECT_EQ(fs::last_write_time(train), stamp);

  // The checks are remembered by path, size and modification time: a file replaced by garbage of
  // the same size and time is not opened again (what makes an interrupted import resume fast) ...
  const fs::path flac = root / "LibriSpeech/train-clean-100/103/1240/103-1240-0000.flac";
  const auto size = fs::file_size(flac);
  const auto mtime = fs::last_write_time(flac);
  test::write_layout_text(flac, std::string(size, 'x'));
  fs::last_write_time(flac, mtime);
  EXPECT_EQ(data::import_librispeech(test::quiet_import(root, out)).summary.kept.at("train").rows, 4);
  // ... and a file with a new time is checked again, and dropped.
  fs::last_write_time(flac, mtime + std::chrono::seconds(5));
  const data::ImportPart again = data::import_librispeech(test::quiet_import(root, out));
  EXPECT_EQ(again.summary.kept.at("train").rows, 3);
  EXPECT_EQ(dropped(again, "audio unreadable"), 2);
}

TEST(ImportLibriSpeech, AnInterruptedCheckStateIsReadUpToItsTornLine) {
  test::ImportScratch dir("librispeech_torn");
  const fs::path root = dir.path / "download", out = dir.path / "corpus";
  test::write_librispeech(root, 4);
  data::write_part(data::import_librispeech(test::quiet_import(root, out)), out);
  const fs::path state = data::part_dir(out, "librispeech") / "audio_check.tsv";
  std::string text = test::file_text(state);
  ASSERT_GT(text.size(), 40u);
  test::write_layout_text(state, text.substr(0, text.size() - 25));  // killed mid-line
  const data::ImportPart part = data::import_librispeech(test::quiet_import(root, out));
  EXPECT_EQ(part.summary.kept.at("train").rows, 4);
  EXPECT_EQ(test::file_text(state), text);  // compacted back to one line per file
}

TEST(ImportLibriSpeech, AFolderWithoutSubsetsIsAnErrorNamingIt) {
  test::ImportScratch dir("librispeech_empty");
  fs::create_directories(dir.path / "nothing");
  try {
    data::import_librispeech(test::quiet_import(dir.path / "nothing", dir.path / "corpus"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no subset folder under"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("train-clean-100"), std::string::npos) << e.what();
  }
}

TEST(ImportCommonVoice, ReadsMp3ClipsAndKeepsTheTextAsWritten) {
  test::ImportScratch dir("common_voice");
  const fs::path root = dir.path / "cv-corpus-17.0/en", out = dir.path / "corpus";
  test::write_common_voice(root);
  const data::ImportPart part = data::import_common_voice(test::quiet_import(root, out));
  data::write_part(part, out);
  EXPECT_EQ(part.summary.kept.at("train").rows, 2);
  EXPECT_EQ(part.summary.kept.at("valid").rows, 2);
  EXPECT_EQ(part.summary.kept.count("retrieval_test"), 0u);  // test.tsv is not used
  EXPECT_EQ(dropped(part, "empty transcript"), 1);
  EXPECT_EQ(dropped(part, "audio file missing"), 1);
  const auto train = rows_by_id(data::part_dir(out, "common_voice") / "train.tsv");
  ASSERT_EQ(train.count("common_voice-common_voice_en_100"), 1u);
  const data::Utterance& fr = train.at("common_voice-common_voice_en_100");
  EXPECT_EQ(fr.transcript, "Ça va très bien, merci.");
  EXPECT_EQ(fr.voice, "common_voice:a1b2c3d4e5f60718:human");
  EXPECT_NEAR(fr.duration, 0.8, 0.1);  // MP3 frames round the length
  EXPECT_EQ(train.at("common_voice-common_voice_en_101").transcript, "\"Hello,\" she said, \"how are you?\"");
}

TEST(ImportCommonVoice, ValidatedListLeavesOutEveryDevAndTestSentence) {
  test::ImportScratch dir("common_voice_validated");
  const fs::path root = dir.path / "en", out = dir.path / "corpus";
  test::write_common_voice(root);
  data::CommonVoiceOptions co;
  co.train_list = "validated.tsv";
  const data::ImportPart part = data::import_common_voice(test::quiet_import(root, out), co);
  EXPECT_EQ(part.summary.kept.at("train").rows, 3);                // 100, 101, 400
  EXPECT_EQ(dropped(part, "sentence of dev.tsv or test.tsv"), 3);  // 200, 201 and 202 (a dev sentence)
  EXPECT_EQ(part.summary.kept.at("valid").rows, 2);
}

TEST(ImportCommonVoice, AListWithoutTheNeededColumnsIsNamed) {
  test::ImportScratch dir("common_voice_bad");
  const fs::path root = dir.path / "en";
  test::write_common_voice(root);
  test::write_layout_text(root / "dev.tsv", "client_id\tfile\tsentence\nx\ty.mp3\tz\n");
  try {
    data::import_common_voice(test::quiet_import(root, dir.path / "corpus"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dev.tsv:1: no column 'path'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cw
