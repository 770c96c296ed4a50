// Reproducers (issue 24) for an untrusted dataset.json: a field nested 300,000 deep crashed the
// process (the "has no split" message dumped the whole value, recursively), and a field of the
// wrong type threw nlohmann's text without the file. Each is one error naming the file and key.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "data/image_dataset.h"
#include "image_test_data.h"

namespace cw {
namespace {

// The message of the cw::Error loading throws with `json` as dataset.json ("no error" if none).
std::string error_with(const test::ImageTempDir& dir, const std::string& json) {
  test::write_file(dir / "dataset.json", json);
  try {
    data::ImageDataset::load(dir.path, "train");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ImageDatasetJson, DeepNestingIsRefused) {
  test::ImageTempDir dir("json_deep");
  test::write_tiny_image_set(dir.path);
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  const std::string m = error_with(dir, "{\"name\": \"x\", \"splits\": {\"test\": " + deep + "}}");
  EXPECT_NE(m.find((dir / "dataset.json").string() + ": JSON nested deeper than 64 levels"),
            std::string::npos)
      << m;
}

TEST(ImageDatasetJson, WrongShapesNameTheKey) {
  test::ImageTempDir dir("json_shape");
  test::write_tiny_image_set(dir.path);
  const std::string good = [&] {
    std::ifstream in(dir / "dataset.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  // `good` with the text `from` replaced by `to`.
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  struct Case {
    std::string json, expect;
  };
  for (const Case& c : std::vector<Case>{
           {edit("\"channels\": 3", "\"channels\": \"3\""),
            "key 'channels': expected a 64-bit integer, found \"3\""},
           {edit("\"name\": \"tiny\", ", ""), "key 'name' is missing"},
           {edit("\"class1\"", "[\"class1\"]"),
            "key 'classes[1]': expected a string, found an array of 1 values"},
           {edit("\"horizontal_flip\": true", "\"horizontal_flip\": 1"),
            "key 'horizontal_flip': expected true or false"},
           {edit("\"heldout_classes\": [3]", "\"heldout_classes\": [-1.5]"),
            "key 'heldout_classes[0]': expected a 64-bit integer, found -1.5"},
           {edit("\"manifest\": \"train.tsv\"", "\"manifest\": {}"),
            "key 'splits.train.manifest': expected a string"},
           {edit("{\"train\": {", "{\"test\": {"), "has no split 'train' (it has test)"},
           {"[" + good + "]", "expected an object, found an array of 1 values"},
       }) {
    const std::string m = error_with(dir, c.json);
    EXPECT_NE(m.find((dir / "dataset.json").string()), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
  }
  EXPECT_EQ(error_with(dir, good), "no error");
}

}  // namespace
}  // namespace cw
