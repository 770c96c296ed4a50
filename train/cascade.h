// The ASR cascade baseline (issue 21): transcribe each test utterance with Whisper (encoder and
// decoder, models/whisper_transcriber.h), embed the transcript with the frozen text tower, and
// classify and retrieve exactly as the speech tower's embeddings are (evaluator.h). It is what a
// practitioner would pick instead of a speech tower aligned to text, so the Whisper-tower table
// reports it beside InfoNCE and CWCL, with its word error rate. `eval --baseline cascade`. Part of
// train/.
//
// Transcripts are kept in <corpus>/transcripts/<split>-<decoder key>.tsv (id, transcript), one line
// appended per utterance: transcribing the test splits takes ~1 s per utterance on 2 cores (every
// utterance is one 30 s window), so an interrupted evaluation resumes where it stopped.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "models/whisper_decode.h"
#include "train/char_vocab.h"
#include "train/evaluator.h"
#include "train/frozen_text_cache.h"
#include "train/speech_text_data.h"

namespace cw::train {

struct CascadeResult {
  EvalResult eval;         // zero-shot results of the transcripts' text embeddings
  WordErrors word_errors;  // over every transcribed test utterance (all three benchmark splits)
  std::vector<std::filesystem::path> transcript_files;
};

// Transcribes the intent, keyword and retrieval test splits (or reads the transcripts kept from an
// earlier call) with the Whisper folder `whisper_dir`, then evaluates. Progress lines go to log.
CascadeResult evaluate_cascade(const SpeechTextData& data, const FrozenTextTower& text,
                               const std::filesystem::path& whisper_dir,
                               const models::WhisperDecodeOptions& decode, std::ostream& log);

}  // namespace cw::train
