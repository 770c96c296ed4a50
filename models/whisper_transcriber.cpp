// Speech to text with a pretrained Whisper folder (see whisper_transcriber.h).
#include "models/whisper_transcriber.h"

#include <algorithm>
#include <span>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "data/audio_io.h"
#include "models/whisper_decoder.h"

namespace cw::models {

namespace {

std::shared_ptr<WhisperEncoder> load_encoder(const std::filesystem::path& dir) {
  const WhisperWeights w = read_whisper_weights(dir);
  auto e = std::make_shared<WhisperEncoder>(w.config);
  e->load_state_dict(w.encoder);
  e->eval();
  return e;
}

std::shared_ptr<WhisperDecoder> load_decoder(const std::filesystem::path& dir) {
  const WhisperDecoderWeights w = read_whisper_decoder_weights(dir);
  auto d = std::make_shared<WhisperDecoder>(w.config);
  d->load_state_dict(w.decoder);
  d->eval();
  return d;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\n\r"), b = s.find_last_not_of(" \t\n\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

WhisperTranscriber::WhisperTranscriber(const std::filesystem::path& dir)
    : encoder_(load_encoder(dir)),
      decoder_(load_decoder(dir)),
      tokenizer_(data::BpeTokenizer::from_dir(dir)),
      tokens_(read_whisper_tokens(dir, tokenizer_)),
      mel_(data::WhisperMelOptions{encoder_->config.n_mels, /*pad_to_30s=*/true}) {
  CW_CHECK(encoder_->config.d_model == decoder_->config.d_model, ValueError, "'", dir.string(),
           "': encoder width ", encoder_->config.d_model, " and decoder width ", decoder_->config.d_model,
           " differ");
  CW_CHECK(tokenizer_.vocab_size() <= decoder_->config.vocab_size, ValueError, "'", dir.string(),
           "': ", tokenizer_.source(), " lists ", tokenizer_.vocab_size(), " tokens, the decoder has ",
           decoder_->config.vocab_size);
}

std::vector<WhisperHypothesis> WhisperTranscriber::decode_windows(const Tensor& mel,
                                                                  const WhisperDecodeOptions& options) const {
  const int64_t frames = 2 * encoder_->config.max_positions;
  CW_CHECK(mel.dim() == 3 && mel.size(1) == frames, ShapeError, "WhisperTranscriber: mel ",
           shape_str(mel.shape()), " should be (windows, ", frames, ", n_mels): 30 s windows, padded");
  NoGradGuard no_grad;
  const Tensor lengths = ops::full({mel.size(0)}, static_cast<double>(frames), DType::I64);
  const Tensor memory = encoder_->forward(Variable(mel), lengths).data();  // (W, 1500, D)
  return whisper_decode(*decoder_, memory, tokens_, options);
}

std::vector<std::string> WhisperTranscriber::transcribe(const std::vector<std::vector<float>>& utterances,
                                                        const WhisperTranscribeOptions& options) const {
  CW_CHECK(options.batch_size >= 1, ValueError, "WhisperTranscriber: batch_size ", options.batch_size,
           " must be >= 1");
  struct Window {
    size_t utterance;
    std::span<const float> samples;
  };
  std::vector<Window> windows;
  for (size_t u = 0; u < utterances.size(); ++u) {
    const std::span<const float> all(utterances[u]);
    for (size_t start = 0; start < all.size(); start += kWindowSamples) {
      const size_t len = std::min<size_t>(kWindowSamples, all.size() - start);
      if (len >= static_cast<size_t>(kMinWindowSamples)) windows.push_back({u, all.subspan(start, len)});
    }
  }
  std::vector<std::string> out(utterances.size());
  for (size_t first = 0; first < windows.size(); first += static_cast<size_t>(options.batch_size)) {
    const size_t count = std::min<size_t>(static_cast<size_t>(options.batch_size), windows.size() - first);
    std::vector<Tensor> mels;
    for (size_t w = first; w < first + count; ++w) mels.push_back(mel_.compute(windows[w].samples));
    const std::vector<WhisperHypothesis> hyps = decode_windows(ops::stack(mels, 0), options.decode);
    for (size_t i = 0; i < count; ++i) {
      const std::string text = trim(tokenizer_.decode(hyps[i].tokens));
      std::string& dst = out[windows[first + i].utterance];
      if (!text.empty()) dst += (dst.empty() ? "" : " ") + text;
    }
  }
  return out;
}

std::string WhisperTranscriber::transcribe_file(const std::filesystem::path& file,
                                                const WhisperTranscribeOptions& options) const {
  return transcribe({data::load_audio(file, 16000).samples}, options)[0];
}

}  // namespace cw::models
