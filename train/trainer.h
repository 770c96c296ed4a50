// The speech-text experiment, a task of the one training loop (run_loop.h): the speech tower
// (Conformer or the pretrained Whisper encoder) learns to embed speech where the frozen text tower
// (MiniLM) embeds its transcript, with CWCL or InfoNCE; the loop brings AdamW, warmup + cosine LR,
// clipping, checkpoints and --run.resume; the task brings the data, the loss (as row blocks over
// ranks), zero-shot evaluation, the verdict and the plots. Part of train/; `train`
// (train_main.cpp) is a thin shell around run_training.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <vector>

#include "dist/communicator.h"
#include "train/evaluator.h"
#include "train/run_loop.h"
#include "train/speech_model.h"
#include "train/train_options.h"

namespace cw::train {

// The loop's result (losses, steps, timing, collectives; run_loop.h) and the task's own.
struct TrainResult : LoopResult {
  EvalResult final_eval;       // on every benchmark row (unset when stopped on NaN or by --run.stop_after)
  double prepare_seconds = 0;  // corpus, features, frozen embeddings
};

// Runs the whole job of TrainOptions: prepare data, build or resume the model, train, evaluate,
// write logs (metrics.csv / .jsonl, eval.csv / .jsonl, eval_final.json), checkpoints and plots
// under o.out. Progress goes to `log`. Throws cw::Error for bad data or options.
// Under an MPI launcher (mpirun -np N train ...; --dist.*) every rank runs this: rank 0 logs,
// evaluates and writes files, each rank trains on its slice of every global batch of
// --optim.batch_size rows, and all ranks take the same optimizer steps (dist/).
TrainResult run_training(const TrainOptions& o, std::ostream& log);

}  // namespace cw::train
