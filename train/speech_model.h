// The speech-text model of a run, built the same way by `train` and `eval`: a Conformer
// (--model.speech_tower conformer, from scratch or --model.speech_init) or the pretrained Whisper
// encoder (--model.speech_tower whisper) with its top --model.speech_train_layers blocks trained.
// For a Whisper tower whose lower part nothing changes (no SpecAugment), every split's frames are
// replaced once by that part's outputs, cached on disk like the log-mel features, so a step costs
// only the trained blocks. Part of train/.
#pragma once

#include <iosfwd>
#include <memory>

#include "models/speech_text_model.h"
#include "train/speech_text_data.h"
#include "train/train_options.h"

namespace cw::train {

struct SpeechModel {
  std::unique_ptr<models::SpeechTextModel> model;
  std::string description;       // one log line: tower, sizes, trained and frozen parts
  bool cached_hidden = false;    // the splits' frames are the frozen part's outputs
  int64_t frames_per_input = 1;  // mel frames per input frame (2 for Whisper's cached positions)
};

// Builds the model (seeded by the caller's manual_seed; pretrained weights loaded) and, for a
// cached Whisper prefix, swaps data's split features for the cache (computed on first use,
// into <corpus>/features or --data.feature_cache). Throws cw::Error naming the weights folder
// and what does not fit (mel bins, sizes).
SpeechModel build_speech_model(const TrainOptions& o, SpeechTextData& data, std::ostream& log);

// One utterance's front-end features (T, bins) as the model's splits hold them: the features
// themselves, or (cached_hidden) the frozen Whisper blocks' outputs on them (`eval --wav`).
Tensor tower_input(const SpeechModel& m, const Tensor& features);

// The speech tower's configuration: the preset of --model.speech_preset with the --model.* sizes
// that are set, n_mels from the features and embed_dim from the frozen tower.
models::ConformerConfig speech_tower_config(const TrainOptions& o, int64_t n_mels, int64_t embed_dim);

}  // namespace cw::train
