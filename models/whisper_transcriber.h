// Speech to text with a pretrained Whisper folder: audio -> 30 s log-mel windows (whisper_mel.h)
// -> encoder (whisper_encoder.h) -> greedy or beam search over the decoder (whisper_decode.h) ->
// byte-level BPE detokenizer (bpe_tokenizer.h). The one call for transcribing a batch of
// utterances: examples/transcribe and the ASR cascade of the evaluation use it. Part of models/.
//
// Windows: Whisper reads 30 s of audio at a time (shorter audio is zero-padded to 30 s, as
// CTranslate2's and openai-whisper's transcription do: the model was trained on such windows and
// decodes worse from unpadded ones). A longer utterance is cut into consecutive 30 s windows,
// each transcribed on its own; their texts are joined with one space. A last window under 0.1 s is
// dropped (no word fits in it, and Whisper invents text for near-empty windows); an utterance
// that short transcribes to "".
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/bpe_tokenizer.h"
#include "data/whisper_mel.h"
#include "models/whisper_decode.h"
#include "models/whisper_encoder.h"

namespace cw::models {

struct WhisperTranscribeOptions {
  WhisperDecodeOptions decode;  // beam 5 by default, as CTranslate2's generate
  // 30 s windows encoded and decoded together. The encoder's attention scores take
  // heads x 1500^2 floats per window (54 MB for tiny), the rest less.
  int64_t batch_size = 4;
};

class WhisperTranscriber {
 public:
  // A Whisper folder: model.bin (CTranslate2) or model.safetensors (Hugging Face), tokenizer.json
  // and/or vocabulary.txt, config.json (data/model_files.h find_whisper_dir finds the installed one).
  explicit WhisperTranscriber(const std::filesystem::path& dir);

  // Mono 16 kHz samples of each utterance -> its transcript (special tokens left out, leading and
  // trailing white space trimmed). Windows of all utterances are batched together.
  std::vector<std::string> transcribe(const std::vector<std::vector<float>>& utterances,
                                      const WhisperTranscribeOptions& options = {}) const;
  // Any file read_audio handles (rate and format), resampled to 16 kHz.
  std::string transcribe_file(const std::filesystem::path& file,
                              const WhisperTranscribeOptions& options = {}) const;
  // The model part: log-mel windows (W, 3000, n_mels) -> one hypothesis per window.
  std::vector<WhisperHypothesis> decode_windows(const Tensor& mel,
                                                const WhisperDecodeOptions& options = {}) const;

  const WhisperEncoder& encoder() const { return *encoder_; }
  const WhisperDecoder& decoder() const { return *decoder_; }
  const data::BpeTokenizer& tokenizer() const { return tokenizer_; }
  const WhisperTokens& tokens() const { return tokens_; }

  static constexpr int64_t kWindowSamples = 480'000;   // 30 s at 16 kHz
  static constexpr int64_t kMinWindowSamples = 1'600;  // 0.1 s

 private:
  std::shared_ptr<WhisperEncoder> encoder_;
  std::shared_ptr<WhisperDecoder> decoder_;
  data::BpeTokenizer tokenizer_;
  WhisperTokens tokens_;
  data::WhisperMel mel_;
};

}  // namespace cw::models
