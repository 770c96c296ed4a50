// Running a helper program (the corpus generator, gnuplot) from the train layer: argv without a
// shell, so paths with spaces or quotes cannot be misread, and the caller gets the exit status.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace cw::train {

// Runs args[0] (looked up in PATH) with args, in `cwd` when given, and waits. Returns the exit
// status, or -1 when the program could not be started or was killed by a signal.
int run_process(const std::vector<std::string>& args, const std::filesystem::path& cwd = {});

// The same, with the program's stdout and stderr read line by line and handed to on_line (without
// the newline) as they come: the corpus generator's progress reaches the run's log, not the
// terminal's stderr.
int run_process_lines(const std::vector<std::string>& args,
                      const std::function<void(const std::string&)>& on_line);

}  // namespace cw::train
