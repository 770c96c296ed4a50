// `train` for the speech-text task, on the emulated device (tests/support/emulated_device.h,
// with 8 devices so that every local rank finds one): what the MpiTraining tests launch under
// mpirun to run the multi-rank `--run.device cuda` path (one device per rank, collectives
// staged through the host) where there is no GPU. Test support, not a product binary.
#include <iostream>

#include "core/error.h"
#include "support/emulated_device.h"
#include "train/device_select.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  try {
    try {
      cw::train::select_device("cuda");  // registers the real backend first where built
    } catch (const cw::DeviceError&) {
    }
    cw::test::install_emulated_cuda(8);
    const cw::train::ParsedTrainOptions parsed = cw::train::parse_train_options(argc, argv, std::cout);
    if (parsed.exit_now) return 0;
    return cw::train::run_training(parsed.options, std::cout).stopped_on_nan ? 3 : 0;
  } catch (const std::exception& e) {
    std::cerr << "train_on_emulated_device: error: " << e.what() << "\n";
    return 1;
  }
}
