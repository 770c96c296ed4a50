// Everything a speech-text run reads from its corpus, prepared once: the corpus itself (generated
// by tools/make_speech_corpus.py when missing), log-mel feature caches of every split, the frozen
// text tower's cached embeddings of the training and retrieval transcripts, and the class-prompt
// embeddings of the zero-shot benchmarks for every template. Part of train/.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "data/feature_cache.h"
#include "data/speech_loader.h"
#include "data/speech_manifest.h"
#include "train/frozen_text_cache.h"
#include "train/train_options.h"

namespace cw::train {

// One manifest with its features, and for a benchmark the class of each row.
struct SpeechSplit {
  std::string name;
  std::shared_ptr<const data::FeatureCache> features;  // holds the manifest too
  std::vector<int64_t> labels;                         // class index per row (benchmarks), else empty
  std::vector<bool> human;                             // row spoken by a person (voice names "*human*")
  // Per-utterance CMVN before the tower (the Conformer's Kaldi fbank); off for Whisper's log-mel,
  // which is normalized by its own recipe, and for cached hidden states.
  bool cmvn = true;
  const data::SpeechManifest& manifest() const { return features->manifest(); }
  int64_t size() const { return features->size(); }
};

// A zero-shot benchmark's classes as text: for each template, the frozen tower's (C, D) class
// embeddings. Templates use {name} and {description} (intents) or {name} (keywords).
struct ClassPrompts {
  std::vector<std::string> labels;     // C labels, in intents.tsv / keywords.tsv order
  std::vector<std::string> templates;  // K templates
  std::vector<Tensor> embeddings;      // K tensors f32 (C, D)
};

// The templates used for intents and keywords (>= 10 each, listed in the .cpp with their reason).
const std::vector<std::string>& intent_templates();
const std::vector<std::string>& keyword_templates();
// Fills a template: {name} and {description} replaced (an unknown {field} is a ValueError).
std::string fill_template(const std::string& tmpl, const std::string& name, const std::string& description);

struct SpeechTextData {
  std::filesystem::path corpus;
  SpeechSplit train, valid, intent, kws, retrieval;
  // The frozen embeddings of the training transcripts grow with the corpus (1.5 KB a row), so
  // they stay on disk and a batch reads its rows; the held-out splits' are small and in memory.
  TextEmbeddingRows train_text;  // (N_train, D), read by rows
  Tensor valid_text;             // f32 (N_valid, D)
  Tensor retrieval_text;         // f32 (N_retrieval, D)
  ClassPrompts intent_classes, kws_classes;
};

// Runs the corpus generator when <corpus>/corpus.json is missing and corpus_size != none (else
// a missing corpus is an error naming the folder and the command that makes it).
void ensure_corpus(const TrainOptions& o, std::ostream& log);

// One split of the corpus with its log-mel features (computed, or read from the feature cache of
// --data.feature_cache / <corpus>/features), and one log line. For tasks that need no text tower.
SpeechSplit load_speech_split(const TrainOptions& o, const std::string& name, std::ostream& log);

// The training loader's options of the speech tasks: --optim.batch_size, --run.seed, the [data]
// options; max_frames in the loader's frames (mel frames / frames_per_input).
data::SpeechLoaderOptions training_loader_options(const TrainOptions& o, int64_t frames_per_input = 1);

// The padded frames an evaluation batch may hold (evaluator.h): those of a training batch
// (--optim.batch_size x --data.max_frames, in the loader's frames), which the run holds anyway
// and with the backward's activations besides; 0 (batches of --eval.batch_size utterances,
// whatever their length) when training does not crop. Without it a batch of long held-out clips
// needed more memory than any training step (BENCHMARKS.md, "Data at scale").
int64_t evaluation_batch_frames(const TrainOptions& o, int64_t frames_per_input = 1);

// The source with a progress line ("features: train: 1200/2997 utterances, ETA 0:45") while rows
// are computed.
data::FrameSource with_progress(data::FrameSource source, const std::string& what, int64_t rows);

// One audio file's front-end features (f32 (T, bins): Kaldi fbank for the Conformer, Whisper's
// log-mel for Whisper), computed as the run's feature cache computes them: `eval --wav`.
Tensor audio_features(const TrainOptions& o, const std::filesystem::path& audio);

// ensure_corpus, then features and frozen embeddings (computed or read from the caches), with
// one log line per step and its time.
SpeechTextData prepare_speech_text_data(const TrainOptions& o, const FrozenTextTower& text,
                                        std::ostream& log);

}  // namespace cw::train
