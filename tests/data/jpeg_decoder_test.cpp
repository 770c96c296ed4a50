// JPEG decoding (libjpeg-turbo) and torchvision's Resize + CenterCrop (Pillow's antialiased
// bilinear) against what Pillow and torchvision make of the same files: tests/fixtures/jpeg,
// written by tools/make_jpeg_fixture.py. Bytes must be equal. Also the errors: not a JPEG,
// truncated, corrupt, CMYK, and the transform's own checks.
#include "data/jpeg_decoder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/image_resize.h"
#include "jpeg_test_util.h"

namespace cw::data {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = fs::path(CW_FIXTURE_DIR) / "jpeg";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ByteImage read_ppm(const fs::path& p) {
  std::istringstream in(slurp(p));
  std::string magic;
  int w = 0, h = 0, maxval = 0;
  in >> magic >> w >> h >> maxval;
  in.get();  // the one whitespace byte before the pixels
  EXPECT_EQ(magic, "P6") << p;
  ByteImage img;
  img.height = h;
  img.width = w;
  img.channels = 3;
  img.pixels.resize(static_cast<size_t>(w * h * 3));
  in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
  EXPECT_TRUE(in.good()) << p;
  return img;
}

ByteImage decode_file(const fs::path& p) {
  const std::string b = slurp(p);
  return decode_jpeg(reinterpret_cast<const uint8_t*>(b.data()), b.size(), p.string());
}

// Equal bytes; on failure, the first differing pixel and how many differ.
void expect_same(const ByteImage& got, const ByteImage& want, const std::string& what) {
  ASSERT_EQ(got.height, want.height) << what;
  ASSERT_EQ(got.width, want.width) << what;
  ASSERT_EQ(got.channels, want.channels) << what;
  int64_t differ = 0, first = -1;
  for (size_t i = 0; i < got.pixels.size(); ++i)
    if (got.pixels[i] != want.pixels[i] && differ++ == 0) first = static_cast<int64_t>(i);
  EXPECT_EQ(differ, 0) << what << ": " << differ << " bytes differ, first at (y " << first / 3 / got.width
                       << ", x " << first / 3 % got.width << ", c " << first % 3
                       << "): " << (first >= 0 ? int(got.pixels[static_cast<size_t>(first)]) : 0) << " vs "
                       << (first >= 0 ? int(want.pixels[static_cast<size_t>(first)]) : 0);
}

TEST(JpegFixture, DecodeAndTransformEqualPillowAndTorchvision) {
  std::ifstream cases(kDir / "cases.txt");
  ASSERT_TRUE(cases.good()) << "run tools/make_jpeg_fixture.py";
  std::string kind;
  int checks = 0;
  while (cases >> kind) {
    std::string jpg;
    cases >> jpg;
    if (kind == "decode") {
      std::string ppm;
      cases >> ppm;
      expect_same(decode_file(kDir / jpg), read_ppm(kDir / ppm), jpg + " decoded");
    } else if (kind == "transform") {
      int64_t r = 0, c = 0;
      std::string ppm;
      cases >> r >> c >> ppm;
      expect_same(resize_center_crop(decode_file(kDir / jpg), r, c), read_ppm(kDir / ppm), ppm);
    } else if (kind == "error") {
      try {
        decode_file(kDir / jpg);
        ADD_FAILURE() << jpg << " decoded, expected an error";
      } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find(jpg), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("CMYK"), std::string::npos) << e.what();
      }
    } else {
      FAIL() << "unknown case kind " << kind;
    }
    ++checks;
  }
  EXPECT_EQ(checks, 9);
}

std::string error_of(const std::string& bytes) {
  try {
    decode_jpeg(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "pic.jpg");
  } catch (const ValueError& e) {
    return e.what();
  }
  return "(decoded)";
}

TEST(JpegDecoder, RefusesWhatIsNotAWholeJpeg) {
  EXPECT_NE(error_of("").find("pic.jpg: empty file"), std::string::npos);
  EXPECT_NE(error_of("\x89PNG\r\n\x1a\nrest").find("not a JPEG file (a PNG image)"), std::string::npos);
  EXPECT_NE(error_of("hello").find("pic.jpg: not a JPEG file"), std::string::npos);
  const std::string good = test::encode_jpeg(test::test_picture(40, 30, 1), 40, 30, 3);
  EXPECT_EQ(error_of(good), "(decoded)");
  // Cut inside the entropy-coded data: libjpeg warns and fills gray; we refuse, as Pillow does.
  const std::string cut = error_of(good.substr(0, good.size() / 2));
  EXPECT_NE(cut.find("pic.jpg: corrupt JPEG: Premature end"), std::string::npos) << cut;
  // Cut inside the header: an error from libjpeg itself.
  EXPECT_NE(error_of(good.substr(0, 40)).find("pic.jpg: corrupt JPEG"), std::string::npos);
  // A damaged header (the frame's height zeroed) is an error, not a crash.
  std::string bad = good;
  const size_t sof = bad.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  bad[sof + 5] = bad[sof + 6] = '\0';
  EXPECT_NE(error_of(bad).find("corrupt JPEG"), std::string::npos) << error_of(bad);
}

TEST(JpegDecoder, GrayscaleComesOutAsRgb) {
  std::vector<uint8_t> gray(12 * 9);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i * 2);
  const std::string b = test::encode_jpeg(gray, 12, 9, 1, 100);
  const ByteImage img = decode_jpeg(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "g.jpg");
  ASSERT_EQ(img.channels, 3);
  ASSERT_EQ(img.height, 9);
  for (int64_t y = 0; y < 9; ++y)
    for (int64_t x = 0; x < 12; ++x) {
      EXPECT_EQ(img.at(y, x, 0), img.at(y, x, 1));
      EXPECT_EQ(img.at(y, x, 0), img.at(y, x, 2));
      EXPECT_NEAR(img.at(y, x, 0), gray[static_cast<size_t>(y * 12 + x)], 3);
    }
}

TEST(ImageResize, SizesOffsetsAndChecks) {
  EXPECT_EQ(resized_size(29, 47, 16), (std::pair<int64_t, int64_t>{16, 25}));  // int(16 * 47 / 29)
  EXPECT_EQ(resized_size(45, 30, 21), (std::pair<int64_t, int64_t>{31, 21}));
  EXPECT_EQ(resized_size(10, 10, 7), (std::pair<int64_t, int64_t>{7, 7}));
  ByteImage img;
  img.height = 3;
  img.width = 6;
  img.channels = 1;
  for (int i = 0; i < 18; ++i) img.pixels.push_back(static_cast<uint8_t>(i));
  // (6 - 3) / 2 = 1.5 rounds to 2 (even); (3 - 3) / 2 = 0.
  const ByteImage c = center_crop(img, 3);
  EXPECT_EQ(c.pixels, (std::vector<uint8_t>{2, 3, 4, 8, 9, 10, 14, 15, 16}));
  // Same size: unchanged, as Pillow copies it.
  EXPECT_EQ(pil_resize_bilinear(img, 3, 6).pixels, img.pixels);
  EXPECT_THROW(center_crop(img, 4), ValueError);
  EXPECT_THROW(resize_center_crop(img, 8, 9), ValueError);
  EXPECT_THROW(pil_resize_bilinear(img, 0, 3), ValueError);
  ByteImage empty;
  EXPECT_THROW(pil_resize_bilinear(empty, 2, 2), ValueError);
  // A constant image stays constant at any size (the coefficients sum to one after rounding).
  ByteImage flat;
  flat.height = 7;
  flat.width = 13;
  flat.channels = 3;
  flat.pixels.assign(7 * 13 * 3, 200);
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{3, 5}, {20, 31}, {1, 1}})
    for (uint8_t v : pil_resize_bilinear(flat, h, w).pixels) ASSERT_EQ(v, 200);
}

}  // namespace
}  // namespace cw::data
