// Tests of data/image_dataset.h: loading a hand-made data set (rows, captions, prompts, pixels,
// statistics), a clear error for every kind of malformed manifest or metadata, and the real
// Fashion-MNIST files of the Debian package when installed.
#include "data/image_dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "core/error.h"
#include "image_test_data.h"

namespace cw {
namespace {

using test::ImageTempDir;
using test::TinyImageSet;
using test::write_file;
using test::write_tiny_image_set;

TEST(ImageDataset, LoadsRowsCaptionsPromptsAndPixels) {
  ImageTempDir dir("load");
  write_tiny_image_set(dir.path);
  const data::ImageDataset ds = data::ImageDataset::load(dir.path, "train");
  EXPECT_EQ(ds.name(), "tiny");
  EXPECT_EQ(ds.size(), 10);
  EXPECT_EQ(ds.channels(), 3);
  EXPECT_EQ(ds.height(), 4);
  EXPECT_EQ(ds.width(), 5);
  EXPECT_EQ(ds.num_classes(), 4);
  EXPECT_TRUE(ds.horizontal_flip());
  EXPECT_EQ(ds.heldout_classes(), std::vector<int64_t>{3});
  EXPECT_EQ(ds.prompts(2), (std::vector<std::string>{"a photo of a class2.", "class2 again"}));
  EXPECT_THROW(ds.prompts(4), IndexError);
  const data::ImageRow& r = ds.row(7);
  EXPECT_EQ(r.id, "train-7");
  EXPECT_EQ(r.label, 3);
  EXPECT_EQ(r.line, 9);
  EXPECT_EQ(r.captions,
            (std::vector<std::string>{"image 7 caption 0", "image 7 caption 1", "image 7 caption 2"}));
  EXPECT_EQ(r.attributes, "count=7");
  EXPECT_THROW(ds.row(10), IndexError);
  EXPECT_EQ(ds.labels().to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}));

  const Tensor img = ds.image(7);  // (C, H, W)
  ASSERT_EQ(img.shape(), (Shape{3, 4, 5}));
  const auto v = img.to_vector<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 5; ++x)
        EXPECT_FLOAT_EQ(v[static_cast<size_t>((c * 4 + y) * 5 + x)],
                        test::test_pixel(7, y, x, c, 5) / 255.0f);

  // Channel statistics against a direct computation.
  const data::ChannelStats st = ds.channel_stats();
  ASSERT_EQ(st.mean.size(), 3u);
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < 10; ++i)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 5; ++x) {
          const double p = test::test_pixel(i, y, x, c, 5) / 255.0;
          s += p;
          s2 += p * p;
        }
    const double m = s / 200, sd = std::sqrt(s2 / 200 - m * m);
    EXPECT_NEAR(st.mean[static_cast<size_t>(c)], m, 1e-6);
    EXPECT_NEAR(st.std[static_cast<size_t>(c)], sd, 1e-6);
  }
}

TEST(ImageDataset, ManifestMayListASubsetInAnyOrder) {
  ImageTempDir dir("subset");
  write_tiny_image_set(dir.path);
  write_file(dir / "train.tsv",
             "id\tindex\tlabel\tcaptions\tattributes\r\nb\t5\t1\tfive\t\r\n\r\na\t2\t2\tx | y\t\r\n");
  const data::ImageDataset ds = data::ImageDataset::load(dir.path, "train");
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.row(0).index, 5);
  EXPECT_EQ(ds.row(1).captions, (std::vector<std::string>{"x", "y"}));
  EXPECT_FLOAT_EQ(ds.image(0).to_vector<float>()[0], test::test_pixel(5, 0, 0, 0, 5) / 255.0f);
}

// The message of the ValueError that loading throws after `edit` ("" if none).
template <class Edit>
std::string load_error(const std::string& name, Edit edit) {
  ImageTempDir dir(name);
  write_tiny_image_set(dir.path);
  edit(dir.path);
  try {
    data::ImageDataset::load(dir.path, "train");
  } catch (const ValueError& e) {
    return e.what();
  }
  return "";
}

TEST(ImageDataset, MalformedInputNamesFileAndLine) {
  const std::string h = "id\tindex\tlabel\tcaptions\tattributes\n";
  auto manifest = [&](const std::string& body) {
    return [body, h](const test::fs::path& d) { write_file(d / "train.tsv", h + body); };
  };
  struct Case {
    std::string name, expect;
    std::function<void(const test::fs::path&)> edit;
  };
  const std::vector<Case> cases = {
      {"header", "train.tsv:1: header must be",
       [](const test::fs::path& d) { write_file(d / "train.tsv", "id\tx\n"); }},
      {"fields", "train.tsv:2: 4 tab-separated fields", manifest("a\t0\t0\tcap\n")},
      {"index", "train.tsv:2: index '10' is not a row of", manifest("a\t10\t2\tcap\t\n")},
      {"index_text", "train.tsv:2: index 'x'", manifest("a\tx\t2\tcap\t\n")},
      {"label_range", "train.tsv:2: label '4' is not one of the 4 classes", manifest("a\t0\t4\tcap\t\n")},
      {"label_idx", "train.tsv:3: label 2 but", manifest("a\t0\t0\tcap\t\nb\t1\t2\tcap\t\n")},
      {"caption", "train.tsv:2: no caption", manifest("a\t0\t0\t\t\n")},
      {"id", "train.tsv:2: empty id", manifest("\t0\t0\tc\t\n")},
      {"empty", "lists no image", manifest("")},
      {"dims", "says 3 x 4 x 5",  // images 4 x 6 while dataset.json says 4 x 5
       [](const test::fs::path& d) {
         TinyImageSet s;
         s.w = 6;
         write_tiny_image_set(d / "other", s);
         test::fs::copy_file(d / "other/train-images", d / "train-images",
                             test::fs::copy_options::overwrite_existing);
       }},
      {"count", "has 10 images but",
       [](const test::fs::path& d) {
         write_file(d / "train-labels", test::idx_file({3}, {0, 1, 2}));
       }},
      {"json", "dataset.json",
       [](const test::fs::path& d) { write_file(d / "dataset.json", "{\"name\": 3}"); }},
      {"truncated", "truncated",
       [](const test::fs::path& d) {
         write_file(d / "train-images", test::idx_file({10, 4, 5, 3}, {1, 2}));
       }},
  };
  for (const Case& c : cases) {
    const std::string m = load_error(c.name, c.edit);
    EXPECT_NE(m.find(c.expect), std::string::npos) << c.name << ": '" << m << "'";
  }
  // An absent split names the splits there are.
  ImageTempDir dir("split");
  write_tiny_image_set(dir.path);
  try {
    data::ImageDataset::load(dir.path, "test");
    FAIL() << "missing split accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("has no split 'test'"), std::string::npos) << e.what();
  }
  // An absent data set says how to make it.
  try {
    data::ImageDataset::load_named("nope", "train", dir.path);
    FAIL() << "missing data set accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("make_image_corpus.py"), std::string::npos) << e.what();
  }
}

// The real Fashion-MNIST files of the Debian package (tools/setup.sh installs it): 60000 + 10000
// images of 28 x 28, 10 balanced classes.
TEST(ImageDataset, DebianFashionMnistFilesDecode) {
  const test::fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!test::fs::exists(dir / "t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const data::IdxArray images = data::read_idx(dir / "t10k-images-idx3-ubyte.gz");
  const data::IdxArray labels = data::read_idx(dir / "t10k-labels-idx1-ubyte.gz");
  data::check_idx_pair(images, labels);
  EXPECT_EQ(images.dims, (std::vector<int64_t>{10000, 28, 28}));
  std::vector<int64_t> per_class(10);
  for (uint8_t y : labels.data) {
    ASSERT_LT(y, 10);
    ++per_class[y];
  }
  EXPECT_EQ(per_class, std::vector<int64_t>(10, 1000));
  EXPECT_EQ(data::read_idx(dir / "train-labels-idx1-ubyte.gz").count(), 60000);
}

}  // namespace
}  // namespace cw
