// `train --task speech_asr`: pretrains the speech tower as a character recognizer with CTC on the
// speech corpus's training transcripts, the stand-in for the paper's ASR-pretrained speech
// encoder; `--model.speech_init <out>/speech_tower.safetensors` then starts a speech-text run
// from it. The tower's frames (before pooling) go through a linear CTC head over the characters
// of the training transcripts (train/char_vocab.h, models/asr_model.h); the head is dropped
// afterwards. A task of the one training loop (run_loop.h), with the speech-text task's options
// (train_options.h); validation CER by greedy decoding. Part of train/.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "train/run_loop.h"
#include "train/train_options.h"

namespace cw::train {

// The loop's result (losses, steps, timing; run_loop.h) and the task's own.
struct SpeechAsrResult : LoopResult {
  std::vector<std::pair<int64_t, double>> cer;  // (step, validation CER) of each evaluation
  std::filesystem::path tower;                  // the speech tower file (empty if stopped early)
};

SpeechAsrResult run_speech_asr(const TrainOptions& o, std::ostream& log);

// `eval --run` on a speech_asr run: the validation CER of a checkpoint (default: the latest), on
// every validation utterance, printed with a few transcripts and as JSON (also to json_out).
double evaluate_speech_asr_run(const std::filesystem::path& run_dir, const std::filesystem::path& checkpoint,
                               const std::string& json_out, std::ostream& out);

}  // namespace cw::train
