// The image commands' option errors: `import imagenet` / `import webdataset` called in-process
// (their exceptions, before the binary turns them into exit statuses) and the image task's option
// checks. The recipe of docs/REPRODUCE_IMAGES.md itself runs, line by line through the binaries,
// in image_recipe_test.cpp.
#include "train/import_images.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "train/image_options.h"

namespace cw::train {
namespace {

int run(int (*main)(int, const char* const*, std::ostream&), std::vector<std::string> args,
        std::ostream& log) {
  std::vector<const char*> argv = {"import"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return main(static_cast<int>(argv.size()), argv.data(), log);
}

ImageTrainOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), "train");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  return parse_image_train_options(static_cast<int>(argv.size()), argv.data(), out).options;
}

TEST(ImportImages, CommandErrors) {
  std::ostringstream log;
  EXPECT_THROW(run(import_imagenet_main, {"--out", "x"}, log), std::exception);  // --root required
  EXPECT_THROW(run(import_imagenet_main, {"--root", "/nonexistent-folder", "--out", "x"}, log), OptionError);
  EXPECT_THROW(run(import_imagenet_main, {"--root", ".", "--out", "x", "--size", "0"}, log), OptionError);
  EXPECT_THROW(
      run(import_imagenet_main, {"--root", ".", "--out", "x", "--size", "64", "--resize", "32"}, log),
      OptionError);
  EXPECT_THROW(run(import_webdataset_main, {"--shards", "a.tar", "--out", "x", "--split", "a/b"}, log),
               OptionError);
  EXPECT_THROW(parse({"--task", "image_text", "--data.dataset", "../x", "--model.image_tower", "t"}),
               OptionError);
  EXPECT_EQ(run(import_webdataset_main, {"--help"}, log), 0);
  EXPECT_NE(log.str().find("--shards"), std::string::npos);
}

}  // namespace
}  // namespace cw::train
