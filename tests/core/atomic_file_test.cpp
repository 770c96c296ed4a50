// core/atomic_file.h, the one writer of files that appear whole or not at all: what a reader sees
// before and after commit, what an abandoned or failed write leaves (nothing), a stale temporary
// of our pid, and errors that name the file. (The failure half way through a write, EFBIG, is in
// safetensors_test.cpp, which writes through it.)
#include "core/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"

namespace cw {
namespace {
namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_atomic_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {})); }
  fs::path dir_;
};

TEST_F(AtomicFileTest, NothingAppearsBeforeCommitAndTheTemporaryGoes) {
  const fs::path path = dir_ / "a.txt";
  write_file_atomic(path, "old");
  {
    AtomicFile f(path);
    f.write("new ");
    f.write(std::string(100000, 'x'));
    EXPECT_EQ(read(path), "old");  // a reader still sees the old file
    EXPECT_TRUE(fs::exists(f.temp_path()));
    f.commit();
    EXPECT_THROW(f.write("more"), ValueError);
  }
  EXPECT_EQ(read(path), "new " + std::string(100000, 'x'));
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, AnAbandonedWriteLeavesTheOldFileAndNoTemporary) {
  const fs::path path = dir_ / "a.bin";
  write_file_atomic(path, std::string("\0\1\2", 3));
  {
    AtomicFile f(path);
    f.write("half");
  }  // destroyed uncommitted, as on an exception
  EXPECT_EQ(read(path), std::string("\0\1\2", 3));
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, AStaleTemporaryOfOurPidIsReplaced) {
  const fs::path path = dir_ / "b.txt";
  std::ofstream(path.string() + ".tmp-" + std::to_string(::getpid())) << "left by a killed writer";
  write_file_atomic(path, "fresh");
  EXPECT_EQ(read(path), "fresh");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFileTest, ErrorsNameTheFile) {
  const fs::path missing = dir_ / "no" / "such" / "c.txt";
  try {
    write_file_atomic(missing, "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  fs::create_directory(dir_ / "taken");  // rename onto a folder fails; the temporary goes
  EXPECT_THROW(write_file_atomic(dir_ / "taken", "x"), Error);
  EXPECT_EQ(entries(), 1u);
}

}  // namespace
}  // namespace cw
