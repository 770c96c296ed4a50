// Zero-shot evaluation of a speech-text model on the corpus benchmarks: embeds the benchmark
// utterances with the trained speech tower (eval mode, no graph), then scores them with
// train/zero_shot.h against the frozen tower's class prompts and transcripts. Used by `train`
// (every --run.eval_every steps) and by `eval`. Part of train/.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "models/speech_text_model.h"
#include "train/speech_text_data.h"
#include "train/zero_shot.h"

namespace cw::train {

struct EvalResult {
  ZeroShotScore intent;              // SLURP-like intents, all test rows
  ZeroShotScore keywords;            // Speech Commands-like keywords, all rows
  ZeroShotScore keywords_synthetic;  // held-out synthetic voices
  ZeroShotScore keywords_human;      // the recorded human digits
  RetrievalScore retrieval;          // held-out speech-transcript pairs
  double structure_correlation = 0;  // corr(speech-speech cosines, text-text cosines) on the retrieval set
  double seconds = 0;
  nlohmann::json to_json() const;
  std::string table() const;  // a human-readable summary, one benchmark per line
};

// The speech embeddings (N, D) f32 of `count` utterances whose features (T_i, F) features_of(i)
// gives (normalized per utterance when cmvn), in batches, with a progress line named `what` on
// a long run; the model is put in eval mode and restored. A batch holds at most batch_size
// utterances and, when max_frames > 0, at most max_frames padded frames (its size times its
// longest utterance; one utterance longer than that goes alone): the tower's activations grow
// with the padded frames (the mini Conformer's first convolution keeps ~11 KB per input frame,
// twice while its bias is added), so a batch of 50 15-s clips would need 1.7 GB at once.
Tensor embed_utterances(models::SpeechTextModel& model, size_t count,
                        const std::function<Tensor(size_t)>& features_of, bool cmvn, int64_t batch_size,
                        const std::string& what, int64_t max_frames = 0);

// The speech embeddings (N, D) f32 of rows `rows` of a split (features normalized per utterance,
// as the training loader does), in batches bounded as embed_utterances' are; the model is put in
// eval mode and restored.
Tensor embed_split(models::SpeechTextModel& model, const SpeechSplit& split, const std::vector<int64_t>& rows,
                   int64_t batch_size, int64_t max_frames = 0);

// Embeds rows of a split: (N, D) f32 on the CPU, one row per index in `rows`.
using SplitEmbedder = std::function<Tensor(const SpeechSplit& split, const std::vector<int64_t>& rows)>;
// Scores every benchmark with the embeddings `embed` gives (the trained tower's, or a baseline's:
// the text tower on each utterance's own transcript, an untrained tower).
EvalResult evaluate_embeddings(const SpeechTextData& data, const SplitEmbedder& embed, int64_t max_items = 0);
// Scores every benchmark. max_items > 0 evaluates an evenly spaced subset of at most that many
// rows per split (cheap mid-run numbers); 0 evaluates all rows. Batches as embed_utterances'
// (max_frames: evaluation_batch_frames() of the run's options, speech_text_data.h).
EvalResult evaluate(models::SpeechTextModel& model, const SpeechTextData& data, int64_t batch_size,
                    int64_t max_items = 0, int64_t max_frames = 0);

}  // namespace cw::train
