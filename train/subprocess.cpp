// run_process (see subprocess.h): fork, optional chdir, execvp, waitpid.
#include "train/subprocess.h"

#include <sys/wait.h>
#include <unistd.h>

namespace cw::train {

int run_process(const std::vector<std::string>& args, const std::filesystem::path& cwd) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace cw::train
