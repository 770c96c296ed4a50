// The importers of the zero-shot tests (data/import_slurp.h, import_speech_commands.h,
// import_fsc.h) on tiny fake copies of their real layouts (import_test_layouts.h): the test rows
// with their labels, the class tables the prompts are built from, and the dropped rows' reasons.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/import_fsc.h"
#include "data/import_part.h"
#include "data/import_slurp.h"
#include "data/import_speech_commands.h"
#include "import_test_layouts.h"
#include "import_test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

using test::dropped;
using test::rows_by_id;

TEST(ImportSlurp, EveryRecordingOfATestSentenceIsARowLabelledScenarioAction) {
  test::ImportScratch dir("slurp");
  const fs::path root = dir.path / "slurp", out = dir.path / "corpus";
  test::write_slurp(root);
  const data::ImportPart part = data::import_slurp(test::quiet_import(root, out));
  data::write_part(part, out);
  EXPECT_EQ(part.summary.kept.at("intent_test").rows, 4);
  EXPECT_EQ(dropped(part, "audio file missing"), 1);
  EXPECT_EQ(dropped(part, "malformed JSON line"), 1);
  EXPECT_NE(part.summary.dropped.at("malformed JSON line").examples[0].find("test.jsonl:5"),
            std::string::npos);

  const fs::path p = data::part_dir(out, "slurp");
  const auto rows = rows_by_id(p / "intent_test.tsv");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows.at("slurp-audio-1490200477-headset").label, "alarm_set");
  EXPECT_EQ(rows.at("slurp-audio-1490200477").label, "alarm_set");
  EXPECT_EQ(rows.at("slurp-audio-1490200477").voice, "slurp:audio-1490200477:human");
  EXPECT_EQ(rows.at("slurp-audio-1490202222").transcript, "play beyoncé in the café");
  EXPECT_EQ(rows.at("slurp-audio-1490201111-headset").label, "iot_hue_lightoff");

  // The classes: the intents heard, each with words a text tower reads; the weather intent's only
  // recording is missing, so it is no class.
  const data::LabelTable intents = data::read_label_table(p / "intents.tsv");
  ASSERT_EQ(intents.size(), 3);
  EXPECT_EQ(intents.get(0, "label"), "alarm_set");
  EXPECT_EQ(intents.get(0, "name"), "alarm set");
  EXPECT_EQ(intents.get(1, "label"), "iot_hue_lightoff");
  EXPECT_EQ(intents.get(1, "name"), "smart home lights off");
  EXPECT_EQ(intents.get(1, "description"), "a request to the smart home assistant: lights off");
  EXPECT_EQ(intents.get(2, "scenario"), "play");
}

TEST(ImportSlurp, MissingListOrAudioFolderIsNamed) {
  test::ImportScratch dir("slurp_missing");
  fs::create_directories(dir.path / "slurp");
  try {
    data::import_slurp(test::quiet_import(dir.path / "slurp", dir.path / "corpus"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dataset/slurp/test.jsonl: no such file"), std::string::npos)
        << e.what();
  }
  test::write_layout_text(dir.path / "slurp" / "dataset" / "slurp" / "test.jsonl", "");
  try {
    data::import_slurp(test::quiet_import(dir.path / "slurp", dir.path / "corpus"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("audio/slurp_real"), std::string::npos) << e.what();
  }
}

TEST(ImportSpeechCommands, TheTestListWithEveryWordFolderAsAClass) {
  test::ImportScratch dir("speech_commands");
  const fs::path root = dir.path / "speech_commands_v0.02", out = dir.path / "corpus";
  test::write_speech_commands(root);
  const data::ImportPart part = data::import_speech_commands(test::quiet_import(root, out));
  data::write_part(part, out);
  EXPECT_EQ(part.summary.kept.at("kws_test").rows, 4);
  EXPECT_EQ(dropped(part, "audio unreadable"), 1);  // the truncated WAV, found by decoding it
  EXPECT_EQ(dropped(part, "audio file missing"), 1);
  EXPECT_NE(part.summary.text("speech_commands").find("_background_noise_ skipped"), std::string::npos);

  const fs::path p = data::part_dir(out, "speech_commands");
  const auto rows = rows_by_id(p / "kws_test.tsv");
  const data::Utterance& u = rows.at("speech_commands-yes-0a7c2a8d_nohash_0");
  EXPECT_EQ(u.transcript, "yes");
  EXPECT_EQ(u.label, "yes");
  EXPECT_EQ(u.voice, "speech_commands:0a7c2a8d:human");
  EXPECT_NEAR(u.duration, 1.0, 1e-3);
  const data::LabelTable words = data::read_label_table(p / "keywords.tsv");
  ASSERT_EQ(words.size(), 3);  // no, stop, yes; not _background_noise_
  EXPECT_EQ(words.get(0, "keyword"), "no");
  EXPECT_EQ(words.get(2, "label"), "yes");

  // Headers only: faster, and the truncated file is not caught (it opens).
  const data::ImportPart quick = data::import_speech_commands(test::quiet_import(root, out, false));
  EXPECT_EQ(quick.summary.kept.at("kws_test").rows, 5);
  // The other list.
  data::SpeechCommandsOptions so;
  so.list = "validation_list.txt";
  EXPECT_EQ(data::import_speech_commands(test::quiet_import(root, out), so).summary.kept.at("kws_test").rows,
            2);
}

TEST(ImportFsc, QuotedCsvFieldsAndIntentsInWords) {
  test::ImportScratch dir("fsc");
  const fs::path root = dir.path / "fluent_speech_commands_dataset", out = dir.path / "corpus";
  test::write_fsc(root);
  const data::ImportPart part = data::import_fsc(test::quiet_import(root, out));
  data::write_part(part, out);
  EXPECT_EQ(part.summary.kept.at("intent_test").rows, 3);
  EXPECT_EQ(dropped(part, "audio file missing"), 1);
  const fs::path p = data::part_dir(out, "fsc");
  const auto rows = rows_by_id(p / "intent_test.tsv");
  const data::Utterance& u = rows.at("fsc-2BqVo8kVB2Skwgyb-0a3129c0-4474-11e9-a9a5-5dbec3b8816a");
  EXPECT_EQ(u.transcript, "Turn the heat up, please");
  EXPECT_EQ(u.label, "increase_heat_kitchen");
  EXPECT_EQ(u.voice, "fsc:2BqVo8kVB2Skwgyb:human");
  const data::LabelTable intents = data::read_label_table(p / "intents.tsv");
  ASSERT_EQ(intents.size(), 3);  // the missing WAV's intent (deactivate lights) is no class
  EXPECT_EQ(intents.get(0, "label"), "activate_lights_none");
  EXPECT_EQ(intents.get(0, "description"), "activate the lights");
  EXPECT_EQ(intents.get(1, "label"), "change_language_Chinese_none");
  EXPECT_EQ(intents.get(1, "description"), "change the language to Chinese");
  EXPECT_EQ(intents.get(2, "name"), "increase heat kitchen");
  EXPECT_EQ(intents.get(2, "description"), "increase the heat in the kitchen");
}

TEST(ImportFsc, AnUnterminatedQuoteIsAMalformedLine) {
  test::ImportScratch dir("fsc_bad");
  const fs::path root = dir.path / "fsc";
  test::write_fsc(root);
  std::ofstream(root / "data" / "test_data.csv", std::ios::app) << "4,wavs/x.wav,s,\"never closed,a,b,c\n";
  const data::ImportPart part = data::import_fsc(test::quiet_import(root, dir.path / "corpus"));
  EXPECT_EQ(dropped(part, "malformed CSV line"), 1);
  EXPECT_NE(part.summary.dropped.at("malformed CSV line").examples[0].find("test_data.csv:6"),
            std::string::npos);
}

}  // namespace
}  // namespace cw
