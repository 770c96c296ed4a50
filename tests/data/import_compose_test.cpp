// Composing imported parts into a corpus (data/import_compose.h): the corpus manifests and tables
// `train` and `eval` read, the completion record written only when every split has rows, the
// retrieval test's one-right-answer rule, a second composition with FSC as the intent test that
// shares the first one's caches, and the refusal to overwrite a generated corpus.
#include "data/import_compose.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/import_common_voice.h"
#include "data/import_fsc.h"
#include "data/import_librispeech.h"
#include "data/import_slurp.h"
#include "data/import_speech_commands.h"
#include "data/speech_manifest.h"
#include "import_test_layouts.h"
#include "import_test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

class ImportCompose : public ::testing::Test {
 protected:
  ImportCompose() : dir_("compose"), out_(dir_.path / "corpus") {}

  template <class F>
  void import(const std::string& name, void (*layout)(const fs::path&), F importer) {
    const fs::path root = dir_.path / "download" / name;
    layout(root);
    data::write_part(importer(test::quiet_import(root, out_)), out_);
  }

  test::ImportScratch dir_;
  fs::path out_;
};

TEST_F(ImportCompose, TheLastImportCompletesACorpusTrainReads) {
  import("librispeech", [](const fs::path& r) { test::write_librispeech(r, 6);
},
         [](const data::ImportOptions& o) {
  return data::import_librispeech(o); });
data::ComposeResult r = data::compose_corpus({out_, {}, "auto"});
EXPECT_FALSE(r.complete);
EXPECT_FALSE(fs::exists(out_ / "corpus.json"));
ASSERT_EQ(r.missing.size(), 2u) << r.text;
EXPECT_NE(r.missing[0].find("intent_test (import slurp or fsc)"), std::string::npos) << r.text;
EXPECT_NE(r.missing[1].find("kws_test (import speech_commands)"), std::string::npos) << r.text;

  import("common_voice", test::write_common_voice, [](const data::ImportOptions& o) { return data::import_common_voice(o);
  }  // namespace
);
  import("slurp", test::write_slurp, [](const data::ImportOptions& o) { return data::import_slurp(o);
  }  // namespace cw
);
  import("fsc", test::write_fsc, [](const data::ImportOptions& o) { return data::import_fsc(o);
  });
  import("speech_commands", test::write_speech_commands,
         [](const data::ImportOptions& o) { return data::import_speech_commands(o);
  });
  r = data::compose_corpus({out_, {}, "auto"});
  ASSERT_TRUE(r.complete) << r.text;

  // What the trainer reads: five manifests, two tables, the record.
  EXPECT_EQ(data::SpeechManifest::read(out_ / "train.tsv").size(), 6 + 2);  // LibriSpeech + Common Voice
  EXPECT_EQ(data::SpeechManifest::read(out_ / "valid.tsv").size(), 2 + 2);
  EXPECT_EQ(data::SpeechManifest::read(out_ / "retrieval_test.tsv").size(), 2);  // the repeat read once
  EXPECT_NE(r.text.find("1 repeated sentences dropped"), std::string::npos) << r.text;
  const data::SpeechManifest intent = data::SpeechManifest::read(out_ / "intent_test.tsv");
  ASSERT_EQ(intent.size(), 4);  // SLURP: auto prefers it over FSC
  EXPECT_EQ(intent[0].label, "alarm_set");
  EXPECT_EQ(data::SpeechManifest::read(out_ / "kws_test.tsv").size(), 4);
  EXPECT_EQ(data::read_label_table(out_ / "intents.tsv").size(), 3);
  EXPECT_EQ(data::read_label_table(out_ / "keywords.tsv").size(), 3);
  const nlohmann::json j = nlohmann::json::parse(test::file_text(out_ / "corpus.json"));
  EXPECT_TRUE(j["imported"].get<bool>());
  EXPECT_EQ(j["intent_source"], "slurp");
  EXPECT_EQ(j["splits"]["train"]["sources"]["common_voice"], 2);
  EXPECT_EQ(j["total_utterances"], 8 + 4 + 2 + 4 + 4);

  // A second composition of the same parts with FSC's intents, for `eval --corpus`: the same
  // training manifests byte for byte, so the first folder's feature caches (linked) serve it.
  const fs::path variant = dir_.path / "corpus_fsc";
  const data::ComposeResult v = data::compose_corpus({variant, out_, "fsc"});
  ASSERT_TRUE(v.complete) << v.text;
  EXPECT_EQ(test::file_text(variant / "train.tsv"), test::file_text(out_ / "train.tsv"));
  EXPECT_EQ(data::SpeechManifest::read(variant / "intent_test.tsv").size(), 3);
  EXPECT_EQ(data::read_label_table(variant / "intents.tsv").get(0, "label"), "activate_lights_none");
  EXPECT_TRUE(fs::is_symlink(variant / "features"));
  EXPECT_EQ(fs::canonical(variant / "features"), fs::canonical(out_ / "features"));

  // Composing again changes nothing.
  const std::string train = test::file_text(out_ / "train.tsv");
  const auto stamp = fs::last_write_time(out_ / "train.tsv");
  ASSERT_TRUE(data::compose_corpus({out_, {}, "auto"}).complete);
  EXPECT_EQ(fs::last_write_time(out_ / "train.tsv"), stamp);
  EXPECT_EQ(test::file_text(out_ / "train.tsv"), train);
  }

  TEST_F(ImportCompose, AGeneratedCorpusIsNeverOverwritten) {
    test::write_layout_text(out_ / "corpus.json", "{\"size\": \"small\", \"version\": 2}\n");
    test::write_layout_text(out_ / "train.tsv", "generated\n");
    try {
      data::compose_corpus({out_, {}, "auto"});
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tools/make_speech_corpus.py"), std::string::npos) << e.what();
    }
    EXPECT_EQ(test::file_text(out_ / "train.tsv"), "generated\n");
    EXPECT_TRUE(fs::exists(out_ / "corpus.json"));
  }

  TEST_F(ImportCompose, APartWithoutItsRecordIsIgnoredAndABrokenOneNamed) {
  import("speech_commands", test::write_speech_commands,
         [](const data::ImportOptions& o) { return data::import_speech_commands(o);
  });
  fs::remove(data::part_dir(out_, "speech_commands") / "part.json");  // an import killed before its end
  data::ComposeResult r = data::compose_corpus({out_, {}, "auto"});
  EXPECT_EQ(r.missing.size(), 5u) << r.text;
  test::write_layout_text(data::part_dir(out_, "speech_commands") / "part.json", "{\"splits\": [");
  try {
    data::compose_corpus({out_, {}, "auto"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("speech_commands/part.json: not valid JSON"), std::string::npos)
        << e.what();
  }
  }

  }  // namespace
  }  // namespace cw
