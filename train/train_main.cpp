// `train`: trains the speech tower against the frozen text tower (CWCL or InfoNCE) and reports
// zero-shot results. With no arguments it runs the default miniature experiment end to end
// (the corpus is generated on first use). `train --help` lists every option by section.
// Exit status: 0 done, 2 a bad option, 1 any other error, 3 stopped on a non-finite loss.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "core/cpu/blas_kernels.h"
#include "core/cpu/denormals.h"
#include "core/error.h"
#include "dist/communicator.h"
#include "train/asr_trainer.h"
#include "train/checkpoint.h"
#include "train/image_text_trainer.h"
#include "train/run_lock.h"
#include "train/ssl_trainer.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  cw::reexec_with_fast_blas_kernels(argv);  // before any GEMM: see core/cpu/blas_kernels.h
  cw::set_flush_denormals(true);            // subnormals cost 5x in the backward: core/cpu/denormals.h
  // std::cout writes through C's stdout, fully buffered when redirected to a file: a background
  // run's log would show nothing until the end. Line buffering shows each line as it is written.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    // The image tasks (--task image_ssl | image_text) have their own option table.
    const std::string task = cw::train::requested_task(argc, argv);
    if (task == "image_ssl" || task == "image_text") {
      const cw::train::ParsedImageTrainOptions img =
          cw::train::parse_image_train_options(argc, argv, std::cout);
      if (img.exit_now) return 0;
      const cw::train::RunLock lock(img.options.out);  // one run writes a run folder at a time
      cw::train::remove_checkpoint_leftovers(std::filesystem::path(img.options.out) / "checkpoints");
      const bool nan = task == "image_ssl" ? cw::train::run_image_ssl(img.options, std::cout).stopped_on_nan
                                           : cw::train::run_image_text(img.options, std::cout).stopped_on_nan;
      return nan ? 3 : 0;
    }
    CW_CHECK(task == "speech_text" || task == "speech_asr", OptionError,
             "--task must be speech_text, speech_asr, image_ssl or image_text, got '", task, "'");
    const cw::train::ParsedTrainOptions parsed = cw::train::parse_train_options(argc, argv, std::cout);
    if (parsed.exit_now) return 0;
    const cw::train::TrainOptions& o = parsed.options;
    // Ranks > 0 of a data-parallel run write nothing (trainer.h): rank 0 locks for them all.
    std::optional<cw::train::RunLock> lock;
    if (cw::dist::world(o.dist_backend, o.dist_timeout).rank() == 0) {
      lock.emplace(o.out);
      // What a killed writer left (step-*.tmp-* folders): removed under the lock, before any save.
      cw::train::remove_checkpoint_leftovers(std::filesystem::path(o.out) / "checkpoints");
    }
    if (o.task == "speech_asr") return cw::train::run_speech_asr(o, std::cout).stopped_on_nan ? 3 : 0;
    return cw::train::run_training(o, std::cout).stopped_on_nan ? 3 : 0;
  } catch (...) {
    return cw::train::report_error("train", std::cerr);
  }
}
