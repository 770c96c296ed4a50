// End to end: tools/make_image_corpus.py --size tiny writes the three image data sets into a
// scratch folder, and data/image_dataset.h and data/image_loader.h read every split of them
// (format agreement between the Python writer and the C++ reader). Skipped when the generator's
// Debian packages are not installed (its exit status 2).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <set>
#include <string>

#include "data/image_dataset.h"
#include "data/image_loader.h"
#include "image_test_data.h"

namespace cw {
namespace {

TEST(ImageCorpusRoundTrip, GeneratedTinyCorpusLoads) {
  test::ImageTempDir dir("roundtrip");
  const test::fs::path script =
      test::fs::path(CW_FIXTURE_DIR) / ".." / ".." / "tools" / "make_image_corpus.py";
  // Built with += (GCC 12 warns falsely, -Wrestrict, on a chain of operator+ here).
  std::string cmd = "'";
  cmd += script.string();
  cmd += "' --size tiny --out '";
  cmd += dir.path.string();
  cmd += "' > '";
  cmd += (dir / "log.txt").string();
  cmd += "' 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << cmd;
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "image corpus packages not installed (tools/setup.sh)";
  ASSERT_EQ(WEXITSTATUS(status), 0) << cmd;

  struct Expect {
    std::string name;
    std::vector<std::pair<std::string, int64_t>> splits;
    int64_t c, h, w, classes;
    bool flip;
  };
  const std::vector<Expect> expect = {
      {"fashion_mnist", {{"train", 600}, {"test", 200}}, 1, 28, 28, 10, true},
      {"digits", {{"train", 1442}, {"test", 355}}, 1, 8, 8, 10, false},
      {"shapes", {{"train", 480}, {"valid", 96}, {"test", 160}}, 3, 32, 32, 48, false},
  };
  for (const Expect& e : expect) {
    for (const auto& [split, rows] : e.splits) {
      SCOPED_TRACE(e.name + "/" + split);
      auto ds =
          std::make_shared<const data::ImageDataset>(data::ImageDataset::load_named(e.name, split, dir.path));
      EXPECT_EQ(ds->size(), rows);
      EXPECT_EQ(ds->channels(), e.c);
      EXPECT_EQ(ds->height(), e.h);
      EXPECT_EQ(ds->width(), e.w);
      EXPECT_EQ(ds->num_classes(), e.classes);
      EXPECT_EQ(ds->horizontal_flip(), e.flip);
      EXPECT_GE(ds->prompt_templates().size(), 10u);
      const std::set<int64_t> held(ds->heldout_classes().begin(), ds->heldout_classes().end());
      EXPECT_EQ(held.size(), e.name == "shapes" ? 8u : 0u);
      std::set<int64_t> labels;
      for (const data::ImageRow& r : ds->rows()) {
        EXPECT_EQ(r.captions.size(), 3u) << r.id;
        labels.insert(r.label);
        if (e.name == "shapes") {
          EXPECT_EQ(held.count(r.label) == 1, split == "test") << r.id;
        }
      }
      EXPECT_EQ(static_cast<int64_t>(labels.size()), e.name == "shapes" ? (split == "test" ? 8 : 40) : 10);
      // A training batch, resized to the small ViT's 28 x 28 and normalized.
      data::ImageLoaderOptions o;
      o.batch_size = 32;
      o.augment = true;
      o.resize_height = o.resize_width = 28;
      const data::ChannelStats st = ds->channel_stats();
      o.mean = st.mean;
      o.std = st.std;
      o.num_workers = 1;
      data::ImageLoader loader(ds, o);
      const data::ImageBatch b = loader.next();
      EXPECT_EQ(b.images.shape(), (Shape{32, e.c, 28, 28}));
      EXPECT_EQ(b.captions.size(), 32u);
    }
  }
}

}  // namespace
}  // namespace cw
