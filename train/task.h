// Task: what one kind of training (speech-text, CTC pretraining, SimCLR, image-text) supplies to
// the one training loop (run_loop.h): its model, its batches, its loss and its evaluation. The
// loop owns everything else: the device and the optimizer, resume, the step, gradient averaging
// over ranks, clipping, the stop on a non-finite loss, logs, evaluation and checkpoint cadence.
// A new task is a class deriving from Task, nothing more. Part of train/.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "dist/communicator.h"
#include "nn/module.h"

namespace cw::train {

// One number of a step's metrics row (metrics.csv column and metrics.jsonl key).
struct StepMetric {
  std::string column;  // metrics.csv header, e.g. "loss_speech_to_text"
  std::string key;     // metrics.jsonl key, e.g. "loss_s2t"
  double value = 0;
  const char* format = "%.4f";  // printf format of the CSV cell
  // Part of a sum over ranks (a row block's share of the loss, of an accuracy): the loop adds
  // the ranks' parts. Otherwise the value is the same on every rank (a logit scale).
  bool summed_over_ranks = true;
};

// The forward pass of one step.
struct TaskLoss {
  // This rank's part of the loss (a scalar with a graph): the parts of all ranks sum to the
  // batch's loss. In a world of one it is the loss.
  Variable loss;
  std::vector<StepMetric> metrics;  // the first is the loss itself
};

// One evaluation: a row of <out>/<eval_log>.csv, a line of .jsonl, and text for the log.
struct EvalRecord {
  std::vector<std::pair<std::string, double>> columns;  // CSV columns after "step"
  nlohmann::json json;                                  // .jsonl line ("step" is added)
  std::string text;                                     // printed after "eval @ step N"
};

// Where the loader stands, for checkpoints and an exact resume.
struct DataPosition {
  int64_t epoch = 0;           // current epoch (0-based)
  int64_t batch_in_epoch = 0;  // batches of `epoch` already consumed
};

class Task {
 public:
  virtual ~Task() = default;

  // ---- the model: trained parameters, checkpointed state, train/eval mode
  virtual nn::Module& model() = 0;
  // Parameter names that get no weight decay (besides biases and norms; adamw.h).
  virtual std::vector<std::string> no_decay_names() const { return {}; }
  virtual std::string describe() const = 0;  // what is trained, printed once at the start

  // ---- data
  virtual int64_t load_batch() = 0;  // the next training batch (kept by the task); returns its epoch
  virtual DataPosition position() const = 0;
  virtual void seek(const DataPosition& at) = 0;

  // ---- the step's forward pass on the loaded batch: this rank's rows are `shard` of it; `step`
  // counts the optimizer steps done before this one (streams of random augmentation follow it).
  virtual TaskLoss forward(int64_t step, const dist::RowShard& shard) = 0;
  // The part of the console line after "step N/M" (e.g. "loss 3.4012  acc 0.125").
  virtual std::string progress(const std::vector<StepMetric>& metrics) const = 0;
  virtual const char* items_name() const { return "utt"; }  // what a batch row is, for "x utt/s"
  virtual std::string summary() const { return ""; }        // appended to "train: N steps in S s"

  // ---- evaluation (rank 0 only): max_items > 0 a cheap subset, 0 everything.
  // `step`: the optimizer steps done (0 before the first).
  virtual EvalRecord evaluate(int64_t step, int64_t max_items) = 0;
  virtual std::string eval_log() const { return "eval"; }    // <out>/<eval_log>.csv and .jsonl
  virtual bool evaluates_at_start() const { return false; }  // an evaluation before step 1
  // After the last step and its full evaluation (rank 0 only): the task's result files (tower,
  // eval_final.json, plots). `final_eval` is that evaluation; train_seconds the step loop's time.
  virtual void finish(int64_t step, double train_seconds, const EvalRecord& final_eval,
                      std::ostream& log) = 0;
  // Data-parallel training needs a loss that splits into row blocks; tasks without one run as
  // one process.
  virtual bool data_parallel() const { return false; }
};

// The data half of a Task whose batches come from a loader with next(), epoch(), batch_in_epoch()
// and seek() (data/speech_loader.h, data/image_loader.h); the task makes loader_.
template <class Loader, class Batch>
class LoaderTask : public Task {
 public:
  int64_t load_batch() override {
    batch_ = loader_->next();
    return batch_.epoch;
  }
  DataPosition position() const override { return {loader_->epoch(), loader_->batch_in_epoch()}; }
  void seek(const DataPosition& at) override { loader_->seek(at.epoch, at.batch_in_epoch); }

 protected:
  std::unique_ptr<Loader> loader_;
  Batch batch_;  // the current step's
};

}  // namespace cw::train
