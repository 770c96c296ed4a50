// `train`: trains the speech tower against the frozen text tower (CWCL or InfoNCE) and reports
// zero-shot results. With no arguments it runs the default miniature experiment end to end
// (the corpus is generated on first use). `train --help` lists every option by section.
#include <iostream>

#include "core/error.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  try {
    const cw::train::ParsedTrainOptions parsed = cw::train::parse_train_options(argc, argv, std::cout);
    if (parsed.exit_now) return 0;
    const cw::train::TrainResult r = cw::train::run_training(parsed.options, std::cout);
    return r.stopped_on_nan ? 3 : 0;
  } catch (const cw::ValueError& e) {
    std::cerr << "train: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "train: error: " << e.what() << "\n";
    return 1;
  }
}
