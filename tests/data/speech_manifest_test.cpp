// Tests of data/speech_manifest.h: parsing the corpus manifests and label tables, and a clear
// error (file and line) for every kind of malformed manifest.
#include "data/speech_manifest.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "speech_test_corpus.h"

namespace cw {
namespace {

using test::kManifestHeader;
using test::SpeechTempDir;
using test::write_text;

// The message of the cw::ValueError that reading `text` as a manifest throws ("" if none).
std::string manifest_error(const SpeechTempDir& dir, const std::string& text) {
  const auto path = dir / "bad.tsv";
  write_text(path, text);
  try {
    data::SpeechManifest::read(path);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "";
}

TEST(SpeechManifest, ParsesRowsAndResolvesAudioPaths) {
  SpeechTempDir dir("parse");
  // CRLF line ends, a benchmark label on one row, a trailing blank line.
  write_text(dir / "sub/m.tsv",
             std::string(kManifestHeader) +
                 "a1\taudio/a1.wav\tturn the lights off\tespeak:en-us\t1.25\ttrain\t\r\n"
                 "a2\t/abs/a2.wav\twake me up at seven\tflite:slt\t0.5\tintent_test\talarm_set\n"
                 "\n");
  const data::SpeechManifest m = data::SpeechManifest::read(dir / "sub/m.tsv");
  ASSERT_EQ(m.size(), 2);
  EXPECT_EQ(m[0].id, "a1");
  EXPECT_EQ(m[0].audio, dir / "sub/audio/a1.wav");
  EXPECT_EQ(m[0].transcript, "turn the lights off");
  EXPECT_EQ(m[0].voice, "espeak:en-us");
  EXPECT_DOUBLE_EQ(m[0].duration, 1.25);
  EXPECT_EQ(m[0].split, "train");
  EXPECT_EQ(m[0].label, "");
  EXPECT_EQ(m[0].line, 2);
  EXPECT_EQ(m[1].audio, std::filesystem::path("/abs/a2.wav"));  // absolute paths are kept
  EXPECT_EQ(m[1].label, "alarm_set");
  EXPECT_EQ(m[1].line, 3);
  EXPECT_NEAR(m.hours(), 1.75 / 3600.0, 1e-12);
  EXPECT_THROW(m[2], IndexError);

  // The content hash follows the bytes.
  const uint64_t h = m.content_hash();
  write_text(dir / "sub/m.tsv", std::string(kManifestHeader) + "a1\taudio/a1.wav\tx\tv\t1.26\ttrain\t\n");
  EXPECT_NE(data::SpeechManifest::read(dir / "sub/m.tsv").content_hash(), h);
}

TEST(SpeechManifest, HeaderOnlyIsEmpty) {
  SpeechTempDir dir("empty");
  write_text(dir / "m.tsv", kManifestHeader);
  EXPECT_EQ(data::SpeechManifest::read(dir / "m.tsv").size(), 0);
}

TEST(SpeechManifest, MalformedInputNamesFileAndLine) {
  SpeechTempDir dir("malformed");
  const std::string file = (dir / "bad.tsv").string();
  const std::string ok_row = "u1\ta.wav\thello\tv\t1.0\ttrain\t\n";

  std::string e = manifest_error(dir, "");
  EXPECT_NE(e.find(file), std::string::npos) << e;
  EXPECT_NE(e.find("empty"), std::string::npos) << e;

  e = manifest_error(dir, "id\taudio\ttext\tvoice\tduration\tsplit\tlabel\n" + ok_row);
  EXPECT_NE(e.find(file + ":1: bad header"), std::string::npos) << e;
  e = manifest_error(dir, "id\taudio\ttranscript\tvoice\tduration\tsplit\n" + ok_row);  // a column short
  EXPECT_NE(e.find(file + ":1: bad header"), std::string::npos) << e;

  e = manifest_error(dir, kManifestHeader + ok_row + "u2\tb.wav\thello\tv\t1.0\ttrain\n");
  EXPECT_NE(e.find(file + ":3: 6 columns, expected 7"), std::string::npos) << e;
  e = manifest_error(dir, kManifestHeader + ok_row + "u2\tb.wav\thello\tv\t1.0\ttrain\t\textra\n");
  EXPECT_NE(e.find(file + ":3: 8 columns, expected 7"), std::string::npos) << e;

  for (const std::string bad : {"abc", "", "-1", "1.5s", "nan", "inf", "1e999"}) {
    e = manifest_error(dir, kManifestHeader + ok_row + "u2\tb.wav\thello\tv\t" + bad + "\ttrain\t\n");
    EXPECT_NE(e.find(file + ":3: bad duration '" + bad + "' for 'u2'"), std::string::npos)
        << bad << ": " << e;
  }

  e = manifest_error(dir, kManifestHeader + ok_row + "u2\tb.wav\thi\tv\t1\ttrain\t\n" + ok_row);
  EXPECT_NE(e.find(file + ":4: duplicate id 'u1' (first on line 2)"), std::string::npos) << e;

  e = manifest_error(dir, kManifestHeader + "\tb.wav\thi\tv\t1\ttrain\t\n");
  EXPECT_NE(e.find(file + ":2: empty id"), std::string::npos) << e;
  e = manifest_error(dir, kManifestHeader + "u3\t\thi\tv\t1\ttrain\t\n");
  EXPECT_NE(e.find(file + ":2: empty audio path for 'u3'"), std::string::npos) << e;
}

TEST(SpeechManifest, MissingFileIsNamed) {
  SpeechTempDir dir("missing");
  try {
    data::SpeechManifest::read(dir / "nope.tsv");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "nope.tsv").string()), std::string::npos) << e.what();
  }
}

TEST(LabelTable, ReadsIntentsAndKeywords) {
  SpeechTempDir dir("labels");
  write_text(dir / "intents.tsv",
             "label\tscenario\tname\tdescription\n"
             "alarm_set\talarm\tset an alarm\twake me up at a given time\n"
             "weather_query\tweather\task about the weather\twhat the weather will be\n");
  const data::LabelTable t = data::read_label_table(dir / "intents.tsv");
  ASSERT_EQ(t.size(), 2);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"label", "scenario", "name", "description"}));
  EXPECT_EQ(t.get(1, "scenario"), "weather");
  EXPECT_EQ(t.get(0, "description"), "wake me up at a given time");
  EXPECT_EQ(t.column("name"), 2);
  EXPECT_THROW(t.get(2, "label"), IndexError);
  try {
    t.get(0, "keyword");
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("no column 'keyword'"), std::string::npos) << e.what();
  }

  write_text(dir / "keywords.tsv", "label\tkeyword\nyes\tyes\nno\n");
  try {
    data::read_label_table(dir / "keywords.tsv");
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "keywords.tsv").string() + ":3: 1 columns, expected 2"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cw
