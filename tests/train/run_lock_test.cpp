// The run-folder lock (train/run_lock.h): a second writer of a run folder fails at once naming
// the holder's pid, the lock is free again when the holder ends (kill -9 included), and the
// folder is created when missing. Reproducer (issue 24): two `train` processes into the same
// --run.out both ran to the end, writing the same files.
#include "train/run_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/error.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using train::RunLock;

class RunLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_run_lock_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The message of the cw::Error that locking dir_ throws ("" and a test failure if none).
  std::string lock_error() const {
    try {
      RunLock second(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "a second lock of " << dir_ << " was granted";
    return "";
  }
  fs::path dir_;
};

TEST_F(RunLockTest, SecondLockFailsNamingTheHolderAndIsFreeAfterwards) {
  {
    const RunLock first(dir_);  // creates the folder
    EXPECT_TRUE(fs::is_directory(dir_));
    // flock locks belong to an open file description: a second RunLock in this process opens
    // its own and is refused like another process would be.
    const std::string msg = lock_error();
    EXPECT_NE(msg.find("pid " + std::to_string(::getpid())), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir_.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("--run.out"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(RunLock again(dir_));  // released with the first
}

TEST_F(RunLockTest, LockOfAKilledProcessIsNotStale) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // holds the lock until killed
    try {
      const RunLock lock(dir_);
      (void)!::write(ready[1], "1", 1);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(1);
    }
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the child could not take the lock";
  ::close(ready[0]);
  const std::string msg = lock_error();
  EXPECT_NE(msg.find("pid " + std::to_string(child)), std::string::npos) << msg;

  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_NO_THROW(RunLock after(dir_));  // the kernel dropped the lock with the process
}

}  // namespace
}  // namespace cw
