// Training checkpoints: model weights, optimizer state and the trainer's counters, written so that
// a killed process never leaves a checkpoint that loads half-written. Part of train/.
//
// Layout of a checkpoint directory `dir`:
//   dir/step-00001200/model.safetensors      module state_dict, names as Module::state_dict();
//                                            plain safetensors, loads in Python's safetensors
//   dir/step-00001200/optimizer.safetensors  AdamW::state_tensors(); metadata {"step": "<n>"}
//   dir/step-00001200/trainer_state.json     TrainerState (+ "format": 1, "optimizer_step")
//   dir/latest                               one line, "step-00001200", the newest checkpoint
// Writing (save_checkpoint): every file goes into dir/step-XXXXXXXX.tmp-<pid>/ (each file itself
// temp + rename, flushed to disk), the directory is renamed to step-XXXXXXXX (atomically exchanged
// with an existing one of the same step), then `latest` is replaced (temp + rename), then old
// checkpoints are pruned. A reader therefore sees either the previous checkpoint or the new one;
// leftovers of a killed writer (*.tmp-* and *.old-* names, step directories among them) are
// ignored by the loaders, removed when the next run starts (remove_checkpoint_leftovers) and by
// every save once their process is gone.
// Every checkpoint is a good one: a state holding a NaN or an infinity is not written, so
// `latest` (what a resume starts from, and what a run stopped by a non-finite loss names as the
// last good checkpoint) always names finite values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "core/json_read.h"
#include "core/tensor.h"
#include "train/adamw.h"

namespace cw::train {

// Where training stands, enough to resume exactly.
struct TrainerState {
  int64_t step = 0;            // optimizer updates done
  int64_t epoch = 0;           // current epoch (0-based)
  int64_t batch_in_epoch = 0;  // batches of `epoch` already consumed
  uint64_t seed = 0;           // run seed
  uint64_t rng_offset = 0;     // draws consumed from the seeded stream(s), to fast-forward them
  std::string config_text;     // the run's configuration, verbatim (for provenance and checks)
  Json extra;                  // anything else the caller wants back (metrics, best score...)
};

// Writes checkpoint `state.step` as described above and returns true. keep_last_k > 0 keeps the
// newest k step directories (the one just written always among them) and deletes the older ones;
// keep_last_k <= 0 keeps all. Tensors on another device are copied to the CPU for writing.
// Re-saving an existing step replaces it. Returns false and writes nothing when a model or
// optimizer tensor holds a NaN or an infinity (a diverged run: resuming from it could only stop
// again). Throws cw::Error naming the path on any I/O failure; an existing checkpoint is never
// damaged by a failed save.
bool save_checkpoint(const std::filesystem::path& dir, const std::map<std::string, Tensor>& model_state,
                     const AdamW& opt, const TrainerState& state, int keep_last_k);

struct LoadedCheckpoint {
  std::map<std::string, Tensor> model;      // for Module::load_state_dict
  std::map<std::string, Tensor> optimizer;  // for AdamW::load_state_tensors(optimizer, optimizer_step)
  int64_t optimizer_step = 0;
  TrainerState state;
  std::filesystem::path path;  // the step directory loaded
};

// The checkpoint `dir/latest` names; when `latest` is absent (a writer killed between the
// directory rename and the pointer update, or an old layout), the highest-numbered complete
// step-XXXXXXXX directory. std::nullopt when `dir` does not exist or holds no checkpoint.
// A `latest` that is unreadable, malformed or names a missing directory, or a checkpoint with
// a missing or corrupt file, throws cw::ValueError naming the file. *.tmp-* entries are skipped.
std::optional<LoadedCheckpoint> load_latest_checkpoint(const std::filesystem::path& dir);

// Removes the leftovers of killed writers from `dir` (if it exists): *.tmp-<pid> and *.old-<pid>
// entries whose process is gone, and those with this process's own pid. Call it where a run or a
// resume starts, before this process saves anything into `dir` (the loaders never remove
// anything: a reader, such as eval on a live run, may not know which writers are alive).
void remove_checkpoint_leftovers(const std::filesystem::path& dir);

// One step directory (dir/step-XXXXXXXX). Throws cw::ValueError naming the file at fault (and
// the key, in trainer_state.json).
LoadedCheckpoint load_checkpoint(const std::filesystem::path& step_dir);

}  // namespace cw::train
