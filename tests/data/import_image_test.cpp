// The image importers (data/import_image_folder.h, data/import_image_webdataset.h) on tiny fake
// copies of the real layouts, written here: ImageNet's train/val class folders with
// LOC_synset_mapping.txt (nested folders, a PNG named .JPEG, a truncated JPEG, a stray file, a
// non-ASCII file name, two classes sharing a name) and img2dataset-style WebDataset shards
// (jpg + txt + json samples, a caption only in the json, missing and invalid captions, a corrupt
// image, a PNG, a missing shard, a shard cut in the middle, non-ASCII captions). Checks what is
// kept and dropped and why, that ImageDataset reads the result with the pixels of the eval
// transform, that a rerun is "up to date", and that an interrupted import resumes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "data/image_dataset.h"
#include "data/image_resize.h"
#include "data/import_image_folder.h"
#include "data/import_image_webdataset.h"
#include "data/jpeg_decoder.h"
#include "jpeg_test_util.h"
#include "tar_test_util.h"

namespace cw::data {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_import_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// A JPEG of w x h whose content depends on `tint`.
std::string jpeg(int w, int h, int tint) {
  return test::encode_jpeg(test::test_picture(w, h, tint), w, h, 3);
}

void write_fake_imagenet(const fs::path& root) {
  write(root / "LOC_synset_mapping.txt",
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn02012849 crane\n"
        "n03126707 crane\n");
  const fs::path train = root / "train", val = root / "val";
  write(train / "n01440764" / "n01440764_10026.JPEG", jpeg(50, 40, 0));
  write(train / "n01440764" / "n01440764_2.JPEG", jpeg(40, 60, 1));
  write(train / "n01440764" / "nested" / "deeper" / "n01440764_3.jpg", jpeg(33, 33, 2));
  write(train / "n01443537" / "n01443537_1.JPEG", jpeg(64, 48, 5));
  write(train / "n01443537" / "n01443537_png.JPEG", "\x89PNG\r\n\x1a\n not really");  // ImageNet has one
  const std::string cut = jpeg(64, 48, 6);
  write(train / "n01443537" / "n01443537_cut.JPEG", cut.substr(0, cut.size() / 2));
  write(train / "n01443537" / ".DS_Store", "junk");
  write(train / "n02012849" / "n02012849_1.JPEG", jpeg(45, 45, 9));
  write(train / "n03126707" / "kran_\xc3\xa4\xe6\x9d\xb1.JPEG", jpeg(70, 35, 12));  // "kran_ä東"
  write(val / "n01440764" / "ILSVRC2012_val_00000001.JPEG", jpeg(48, 36, 0));
  write(val / "n01443537" / "ILSVRC2012_val_00000002.JPEG", jpeg(36, 48, 5));
  write(val / "n02012849" / "ILSVRC2012_val_00000003.JPEG", jpeg(40, 40, 9));
  write(val / "n03126707" / "ILSVRC2012_val_00000004.JPEG", jpeg(52, 30, 12));
}

TEST(ImportImageFolder, FakeImageNetBecomesATrainAndAZeroShotSplit) {
  TempDir tmp("imagenet");
  const fs::path root = tmp.path / "ILSVRC", out = tmp.path / "out";
  write_fake_imagenet(root);
  ImageFolderImportOptions o;
  o.image_size = 16;
  o.resize = 18;
  o.jobs = 2;
  const ImageImportSummary s = import_image_folder(root, out, o);
  EXPECT_FALSE(s.up_to_date);
  EXPECT_EQ(s.kept.at("train"), 6);
  EXPECT_EQ(s.kept.at("test"), 4);
  EXPECT_EQ(s.dropped.at("not a JPEG"), 1);
  EXPECT_EQ(s.dropped.at("corrupt JPEG"), 1);
  EXPECT_EQ(s.dropped.at("not an image file name (ImageFolder's extensions)"), 1);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("'crane' is shared by n02012849, n03126707"), std::string::npos) << s.notes[0];
  const std::string text = s.text();
  EXPECT_NE(text.find("n01443537/n01443537_png.JPEG: not a JPEG file (a PNG image)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("n01443537/n01443537_cut.JPEG: corrupt JPEG: Premature end"), std::string::npos)
      << text;

  const ImageDataset test = ImageDataset::load(out, "test");
  EXPECT_EQ(test.name(), "imagenet");
  EXPECT_EQ(test.classes(), (std::vector<std::string>{"tench", "goldfish", "crane", "crane"}));
  EXPECT_EQ(test.prompt_templates().size(), 80u);
  EXPECT_EQ(test.prompts(1)[0], "a bad photo of a goldfish.");
  EXPECT_EQ(test.channels(), 3);
  EXPECT_EQ(test.height(), 16);
  EXPECT_TRUE(test.labeled());
  EXPECT_EQ(test.labels().to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(test.row(1).id, "n01443537/ILSVRC2012_val_00000002.JPEG");
  EXPECT_EQ(test.row(1).captions, (std::vector<std::string>{"goldfish"}));
  // The stored pixels are the eval transform of the decoded file.
  const std::string b = jpeg(36, 48, 5);
  const ByteImage want =
      resize_center_crop(decode_jpeg(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "x"), 18, 16);
  EXPECT_EQ(std::vector<uint8_t>(test.pixels(1), test.pixels(1) + 16 * 16 * 3), want.pixels);

  const ImageDataset train = ImageDataset::load(out, "train");
  ASSERT_EQ(train.size(), 6);
  EXPECT_EQ(train.row(2).id, "n01440764/nested/deeper/n01440764_3.jpg");
  EXPECT_EQ(train.row(5).id, "n03126707/kran_\xc3\xa4\xe6\x9d\xb1.JPEG");
  EXPECT_EQ(train.row(5).label, 3);
  EXPECT_FALSE(fs::exists(out / ".parts"));

  // A rerun changes nothing; a changed source rebuilds.
  const auto mtime = fs::last_write_time(out / "test-images-idx4-ubyte");
  const ImageImportSummary again = import_image_folder(root, out, o);
  EXPECT_TRUE(again.up_to_date);
  EXPECT_EQ(again.kept, s.kept);
  EXPECT_EQ(again.dropped, s.dropped);
  EXPECT_EQ(fs::last_write_time(out / "test-images-idx4-ubyte"), mtime);
  write(root / "val" / "n01440764" / "ILSVRC2012_val_00000005.JPEG", jpeg(30, 30, 3));
  const ImageImportSummary more = import_image_folder(root, out, o);
  EXPECT_FALSE(more.up_to_date);
  EXPECT_EQ(more.kept.at("test"), 5);
}

TEST(ImportImageFolder, InterruptedImportResumesFromItsChunks) {
  TempDir tmp("resume");
  const fs::path root = tmp.path / "flat", out = tmp.path / "out";
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2; ++i)
      write(root / ("class_" + std::to_string(c)) / (std::to_string(i) + ".jpg"), jpeg(20, 24, c * 3 + i));
  ImageFolderImportOptions o;
  o.image_size = 8;
  o.progress = [](int64_t done, int64_t) {
    if (done == 2) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(import_image_folder(root, out, o), std::runtime_error);
  EXPECT_FALSE(fs::exists(out / "import.json"));
  o.progress = nullptr;
  const ImageImportSummary s = import_image_folder(root, out, o);
  EXPECT_EQ(s.chunks_reused, 2);
  EXPECT_EQ(s.chunks_built, 1);
  EXPECT_EQ(s.kept.at("test"), 6);
  const ImageDataset ds = ImageDataset::load(out, "test");
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"class 0", "class 1", "class 2"}));  // folder names
}

TEST(ImportImageFolder, BadLayoutsAndClassFilesAreErrorsNamingTheCulprit) {
  TempDir tmp("bad");
  auto message = [&](const fs::path& root, const fs::path& classes = {}) {
    ImageFolderImportOptions o;
    o.image_size = 8;
    o.classes_file = classes;
    try {
      import_image_folder(root, tmp.path / "out", o);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("(imported)");
  };
  EXPECT_NE(message(tmp.path / "nothing").find("is not a folder"), std::string::npos);
  fs::create_directories(tmp.path / "empty");
  EXPECT_NE(message(tmp.path / "empty").find("has no class folders"), std::string::npos);
  const fs::path r = tmp.path / "r";
  write(r / "train" / "a" / "1.jpg", jpeg(10, 10, 1));
  write(r / "val" / "b" / "1.jpg", jpeg(10, 10, 2));
  EXPECT_NE(message(r).find("val/b is not a class of"), std::string::npos) << message(r);
  fs::remove_all(r / "val" / "b");
  write(r / "val" / "a" / "1.jpg", jpeg(10, 10, 2));
  write(tmp.path / "two.txt", "alpha\nbeta\n");
  EXPECT_NE(message(r, tmp.path / "two.txt").find("has 2 lines but"), std::string::npos);
  write(tmp.path / "one.txt", "a Apple pie\n");
  EXPECT_EQ(message(r, tmp.path / "one.txt"), "(imported)");
  EXPECT_EQ(ImageDataset::load(tmp.path / "out", "test").classes(), (std::vector<std::string>{"Apple pie"}));
  write(r / "LOC_synset_mapping.txt", "n0 something\n");
  EXPECT_NE(message(r).find("class folder 'a' is not in"), std::string::npos);
}

// One WebDataset sample's members.
std::string sample(const std::string& key, const std::string& jpg, const std::string* txt,
                   const std::string& json = "") {
  std::string s = test::tar_entry(key + ".jpg", jpg);
  if (txt) s += test::tar_entry(key + ".txt", *txt);
  if (!json.empty()) s += test::tar_entry(key + ".json", json);
  return s;
}

TEST(ImportWebDataset, FakeCc3mShardsBecomeACaptionedTrainingSplit) {
  TempDir tmp("wds");
  const fs::path shards = tmp.path / "cc3m", out = tmp.path / "out";
  const std::string cafe = "Ein Caf\xc3\xa9 in Z\xc3\xbcrich \xe2\x80\x93 \xe6\x9d\xb1\xe4\xba\xac";
  const std::string plain = "a dog on a beach", messy = "line one\nline\ttwo | three ", bad = "\xff\xfe oops",
                    empty = "  \n";
  std::string shard0 =
      sample("000000000", jpeg(60, 40, 1), &plain, R"({"url": "http://x", "caption": "a dog"})") +
      sample("000000001", jpeg(40, 60, 2), nullptr, R"({"caption": "caption only in the json"})") +
      sample("000000002", jpeg(40, 40, 3), nullptr) +            // no caption at all
      sample("000000003", "\xff\xd8\xff\xe0 garbage", &plain) +  // corrupt image
      sample("000000004", jpeg(50, 50, 4), &cafe) + sample("000000005", jpeg(50, 50, 5), &messy) +
      sample("000000006", jpeg(50, 50, 6), &bad) + sample("000000007", jpeg(50, 50, 7), &empty) +
      test::tar_entry("000000008.png", "\x89PNG\r\n\x1a\n") + test::tar_entry("000000008.txt", "png") +
      test::tar_end();
  write(shards / "00000.tar", shard0);
  // Shard 1: a pax long name, then cut inside the third sample's caption (an interrupted download).
  const std::string longkey = std::string(120, 'k');
  std::string shard1 = test::pax_entry("path", "sub/" + longkey + ".jpg") +
                       test::tar_entry("x", jpeg(30, 30, 8)) +
                       test::pax_entry("path", "sub/" + longkey + ".txt") +
                       test::tar_entry("y", "a long key") + sample("000000011", jpeg(30, 30, 9), &plain);
  const std::string third_jpg = test::tar_entry("000000012.jpg", jpeg(64, 64, 10));
  shard1 += third_jpg + test::tar_entry("000000012.txt", plain).substr(0, 512 + 3);
  write(shards / "00001.tar", shard1);
  write(shards / "00003.tar", sample("000000030", jpeg(30, 40, 11), &plain) + test::tar_end());
  WebDatasetImportOptions o;
  o.image_size = 12;
  o.jobs = 2;
  const ImageImportSummary s = import_webdataset({(shards / "{00000..00003}.tar").string()}, out, o);
  EXPECT_EQ(s.kept.at("train"), 7);  // shard 0: 000, 001, 004, 005; shard 1: the long key, 011; shard 3: 030
  EXPECT_EQ(s.dropped.at("no caption"), 1);
  EXPECT_EQ(s.dropped.at("corrupt JPEG"), 1);
  EXPECT_EQ(s.dropped.at("caption not UTF-8"), 1);
  EXPECT_EQ(s.dropped.at("empty caption"), 1);
  EXPECT_EQ(s.dropped.at("not a JPEG"), 1);
  EXPECT_EQ(s.dropped.at("shard cut short or corrupt"), 1);
  const std::string text = s.text();
  EXPECT_NE(text.find("shard missing: " + (shards / "00002.tar").string()), std::string::npos) << text;
  EXPECT_NE(text.find("00001.tar: truncated"), std::string::npos) << text;

  const ImageDataset ds = ImageDataset::load(out, "train");
  EXPECT_FALSE(ds.labeled());
  EXPECT_TRUE(ds.classes().empty());
  std::vector<std::string> ids, caps;
  for (const ImageRow& r : ds.rows()) {
    ids.push_back(r.id);
    caps.push_back(r.captions.at(0));
    EXPECT_EQ(r.label, -1);
    EXPECT_EQ(r.captions.size(), 1u);
  }
  EXPECT_EQ(ids[0], "00000.tar/000000000");
  EXPECT_EQ(caps[0], plain);  // the .txt wins over the json
  EXPECT_EQ(caps[1], "caption only in the json");
  EXPECT_EQ(caps[2], cafe);
  EXPECT_EQ(caps[3], "line one line two / three");
  EXPECT_EQ(ids[4], "00001.tar/sub/" + longkey);
  EXPECT_EQ(caps[4], "a long key");
  EXPECT_EQ(ids[5], "00001.tar/000000011");
  EXPECT_EQ(ids[6], "00003.tar/000000030");
  EXPECT_EQ(static_cast<int64_t>(ids.size()), s.kept.at("train"));
  EXPECT_TRUE(import_webdataset({(shards / "{00000..00003}.tar").string()}, out, o).up_to_date);
}

TEST(ImportWebDataset, BraceExpansionAndNoShards) {
  EXPECT_EQ(expand_braces("a/{000..002}.tar"),
            (std::vector<std::string>{"a/000.tar", "a/001.tar", "a/002.tar"}));
  EXPECT_EQ(expand_braces("{8..10}"), (std::vector<std::string>{"8", "9", "10"}));
  EXPECT_EQ(expand_braces("{a,b}{1,2}"), (std::vector<std::string>{"a1", "a2", "b1", "b2"}));
  EXPECT_EQ(expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_THROW(expand_braces("x{1..2"), ValueError);
  EXPECT_THROW(expand_braces("{0..99999999}"), ValueError);
  TempDir tmp("none");
  WebDatasetImportOptions o;
  try {
    import_webdataset({(tmp.path / "{0..3}.tar").string()}, tmp.path / "out", o);
    ADD_FAILURE() << "imported nothing without an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("none of the 4 shards exists"), std::string::npos) << e.what();
  }
}

// The manifest's label column when dataset.json names no label file (what the importers write):
// a class index, or empty for "no class"; anything else is an error naming the line.
TEST(ImageDatasetWithoutLabelFile, LabelsComeFromTheManifest) {
  TempDir tmp("nolabels");
  std::string idx = {0, 0, 8, 4, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3};
  idx += std::string(9, '\x7f');
  write(tmp.path / "train-images", idx);
  write(
      tmp.path / "dataset.json",
      R"({"name": "n", "channels": 3, "height": 1, "width": 1, "classes": ["a", "b"], "prompt_templates": [],
            "horizontal_flip": true, "splits": {"train": {"images": "train-images", "manifest": "train.tsv"}}})");
  const std::string header = "id\tindex\tlabel\tcaptions\tattributes\n";
  write(tmp.path / "train.tsv", header + "x\t0\t1\tcap\t\ny\t1\t\tcap\t\nz\t2\t0\tcap\t\n");
  const ImageDataset ds = ImageDataset::load(tmp.path, "train");
  EXPECT_EQ(ds.labels().to_vector<int64_t>(), (std::vector<int64_t>{1, -1, 0}));
  EXPECT_FALSE(ds.labeled());
  for (const std::string bad : {"abc", "2", "-1"}) {
    write(tmp.path / "train.tsv", header + "x\t0\t" + bad + "\tcap\t\n");
    try {
      ImageDataset::load(tmp.path, "train");
      ADD_FAILURE() << "label '" << bad << "' accepted";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("train.tsv:2: label '" + bad + "'"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace cw::data
