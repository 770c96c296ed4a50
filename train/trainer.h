// The training loop of the speech-text experiment: the speech tower (Conformer) learns to embed
// speech where the frozen text tower (MiniLM) embeds its transcript, with CWCL or InfoNCE, AdamW,
// warmup + cosine LR, global-norm clipping, periodic zero-shot evaluation and atomic checkpoints
// from which --run.resume continues exactly. Part of train/; `train` (train_main.cpp) is a thin
// shell around run_training.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <vector>

#include "dist/communicator.h"
#include "train/evaluator.h"
#include "train/speech_model.h"
#include "train/train_options.h"

namespace cw::train {

struct TrainResult {
  int64_t first_step = 0;       // 0, or the step a resumed run started from
  int64_t steps_done = 0;       // optimizer steps completed (counting those before a resume)
  bool stopped_on_nan = false;  // training stopped because the loss or a gradient was not finite
  std::vector<double> losses;   // loss of every step this process ran
  EvalResult final_eval;        // on every benchmark row (unset when stopped on NaN or by --run.stop_after)
  double train_seconds = 0;     // the step loop alone
  double prepare_seconds = 0;   // corpus, features, frozen embeddings
  dist::CommStats comm;         // this rank's collectives in the step loop (none in a world of one)
};

// Runs the whole job of TrainOptions: prepare data, build or resume the model, train, evaluate,
// write logs (metrics.csv / .jsonl, eval.csv / .jsonl, eval_final.json), checkpoints and plots
// under o.out. Progress goes to `log`. Throws cw::Error for bad data or options.
// Under an MPI launcher (mpirun -np N train ...; --dist.*) every rank runs this: rank 0 logs,
// evaluates and writes files, each rank trains on its slice of every global batch of
// --optim.batch_size rows, and all ranks take the same optimizer steps (dist/).
TrainResult run_training(const TrainOptions& o, std::ostream& log);

}  // namespace cw::train
