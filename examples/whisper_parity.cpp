// whisper_parity: our greedy Whisper transcripts of corpus manifests, with each decoding step's
// top-two margin, for the parity check against CTranslate2 (tools/whisper_parity.py runs
// CTranslate2 on the same rows and compares) and for timing the greedy decoder on its own.
// Usage:
//   whisper_parity [--model DIR] [--limit N] [--batch N] [--no-margins] --out FILE.jsonl MANIFEST.tsv...
// Rows (the first N of each manifest) go in batches of --batch utterances (default 4, as
// WhisperTranscriber's windows), each one 30 s window (audio zero-padded to 30 s) -> log-mel ->
// encoder -> whisper_greedy (models/whisper_decode.h: CTranslate2's rules) -> one JSON line per
// row: id, manifest, reference transcript, duration, our tokens (prompt and <|endoftext|> left
// out), text, score, steps (decoder steps: tokens + 1 for the <|endoftext|> step), and per step
// the chosen id, the runner-up id and margin = logit(best) - logit(runner-up) of the suppressed
// logits the search picked from (WhisperDecodeOptions::on_step). The last stderr line sums the
// times: greedy decoding tokens/s (decoder steps over decode time) and the real-time factor.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "data/audio_io.h"
#include "data/model_files.h"
#include "data/speech_manifest.h"
#include "data/whisper_mel.h"
#include "models/whisper_transcriber.h"

using namespace cw;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int usage(FILE* to) {
  std::fprintf(to,
               "usage: whisper_parity [--model DIR] [--limit N] [--batch N] [--no-margins] --out FILE.jsonl "
               "MANIFEST.tsv...\n");
  return to == stdout ? 0 : 2;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\n\r"), b = s.find_last_not_of(" \t\n\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A positive integer option value, or nullopt.
std::optional<int64_t> positive(const char* s) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 1) return std::nullopt;
  return v;
}

// The best and second-best ids of a row of suppressed logits.
struct TopTwo {
  int64_t best = -1, second = -1;
  double margin = 0.0;  // logit(best) - logit(second) >= 0
};

TopTwo top_two(const float* logits, int64_t V) {
  TopTwo t;
  float a = -std::numeric_limits<float>::infinity(), b = a;
  for (int64_t v = 0; v < V; ++v) {
    // Strictly greater: the lower id wins a tie, as argmax does.
    if (logits[v] > a) {
      b = a, t.second = t.best;
      a = logits[v], t.best = v;
    } else if (logits[v] > b) {
      b = logits[v], t.second = v;
    }
  }
  t.margin = static_cast<double>(a) - static_cast<double>(b);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<fs::path> dir, out_path;
  int64_t limit = std::numeric_limits<int64_t>::max(), batch = 4;
  bool margins = true;
  std::vector<fs::path> manifests;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else if ((a == "--limit" || a == "--batch") && i + 1 < argc) {
      const auto v = positive(argv[++i]);
      if (!v) {
        std::fprintf(stderr, "whisper_parity: %s needs a positive integer, got '%s'\n", a.c_str(), argv[i]);
        return 2;
      }
      (a == "--limit" ? limit : batch) = *v;
    } else if (a == "--no-margins") {
      margins = false;
    } else if (a == "--help" || a == "-h") {
      return usage(stdout);
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "whisper_parity: unknown option '%s'\n", a.c_str());
      return usage(stderr);
    } else {
      manifests.push_back(a);
    }
  }
  if (manifests.empty() || !out_path) return usage(stderr);
  try {
    const models::WhisperTranscriber model(data::find_whisper_dir(dir));
    const data::WhisperMel mel(data::WhisperMelOptions{model.encoder().config.n_mels, /*pad_to_30s=*/true});
    std::vector<data::Utterance> rows;
    std::vector<std::string> names;  // each row's manifest (file stem)
    for (const fs::path& m : manifests) {
      const data::SpeechManifest manifest = data::SpeechManifest::read(m);
      for (int64_t i = 0; i < std::min(limit, manifest.size()); ++i) {
        rows.push_back(manifest[i]);
        names.push_back(m.stem().string());
      }
    }
    std::ofstream out(*out_path);
    CW_CHECK(out.good(), Error, "whisper_parity: cannot write '", out_path->string(), "'");
    NoGradGuard no_grad;
    double audio_s = 0, mel_ms = 0, encode_ms = 0, decode_ms = 0;
    int64_t steps_total = 0;
    for (size_t first = 0; first < rows.size(); first += static_cast<size_t>(batch)) {
      const size_t count = std::min(rows.size() - first, static_cast<size_t>(batch));
      std::vector<std::vector<float>> audio;
      for (size_t k = 0; k < count; ++k) {
        audio.push_back(data::load_audio(rows[first + k].audio, 16000).samples);
        CW_CHECK(audio.back().size() <= static_cast<size_t>(models::WhisperTranscriber::kWindowSamples),
                 Error, "whisper_parity: ", rows[first + k].audio.string(),
                 " is longer than 30 s (one window per row here)");
        audio_s += static_cast<double>(audio.back().size()) / 16000.0;
      }
      auto t0 = Clock::now();
      std::vector<Tensor> mels;
      for (const auto& a : audio) mels.push_back(mel.compute(a));
      const Tensor features = ops::stack(mels, 0);  // (B, 3000, n_mels)
      mel_ms += ms_since(t0);
      t0 = Clock::now();
      const Tensor lengths = ops::full({features.size(0)}, static_cast<double>(features.size(1)), DType::I64);
      const Tensor memory = model.encoder().forward(Variable(features), lengths).data();  // (B, 1500, D)
      encode_ms += ms_since(t0);

      std::vector<std::vector<TopTwo>> tops(count);
      models::WhisperDecodeOptions greedy;
      greedy.beam_size = 1;
      if (margins)
        greedy.on_step = [&](int64_t, const std::vector<int64_t>& utterances, const Tensor& logits) {
          const int64_t V = logits.size(1);
          for (size_t r = 0; r < utterances.size(); ++r)
            tops[static_cast<size_t>(utterances[r])].push_back(
                top_two(logits.data<float>() + static_cast<int64_t>(r) * V, V));
        };
      t0 = Clock::now();
      const std::vector<models::WhisperHypothesis> hyps =
          models::whisper_greedy(model.decoder(), memory, model.tokens(), greedy);
      decode_ms += ms_since(t0);

      for (size_t k = 0; k < count; ++k) {
        const data::Utterance& u = rows[first + k];
        const models::WhisperHypothesis& h = hyps[k];
        const int64_t n = static_cast<int64_t>(h.tokens.size());
        const int64_t steps = n < greedy.max_new_tokens ? n + 1 : n;  // + the <|endoftext|> step
        steps_total += steps;
        Json line = {{"id", u.id},
                     {"manifest", names[first + k]},
                     {"reference", u.transcript},
                     {"duration", static_cast<double>(audio[k].size()) / 16000.0},
                     {"tokens", h.tokens},
                     {"text", trim(model.tokenizer().decode(h.tokens))},
                     {"score", h.score},
                     {"steps", steps}};
        if (margins) {
          CW_CHECK(static_cast<int64_t>(tops[k].size()) == steps, Error, "whisper_parity: ", u.id, ": ",
                   tops[k].size(), " steps seen for ", steps, " taken");
          for (int64_t s = 0; s < steps; ++s) {
            const int64_t chosen = s < n ? h.tokens[static_cast<size_t>(s)] : model.tokens().eot;
            CW_CHECK(tops[k][static_cast<size_t>(s)].best == chosen, Error, "whisper_parity: ", u.id,
                     ": the top logit at step ", s, " is token ", tops[k][static_cast<size_t>(s)].best,
                     ", the search chose ", chosen);
          }
          Json best = Json::array(), second = Json::array(), margin = Json::array();
          for (const TopTwo& t : tops[k]) {
            best.push_back(t.best);
            second.push_back(t.second);
            margin.push_back(t.margin);
          }
          line["best"] = best;
          line["second"] = second;
          line["margin"] = margin;
        }
        // A partial UTF-8 sequence (a byte-level token cut) is written as U+FFFD; tokens are exact.
        out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
      }
      out.flush();
      const size_t done = first + count;
      if (done % 100 < static_cast<size_t>(batch) || done == rows.size())
        std::fprintf(stderr, "whisper_parity: %zu/%zu rows\n", done, rows.size());
    }
    const double total_s = (mel_ms + encode_ms + decode_ms) / 1000.0;
    std::fprintf(
        stderr,
        "whisper_parity: %zu rows in batches of %lld, %.1f s of audio; mel %.2f s, encode %.2f s, "
        "decode %.2f s (%lld decoder steps, %.1f tokens/s); RTF %.4f (mel + encode + decode over audio)\n",
        rows.size(), static_cast<long long>(batch), audio_s, mel_ms / 1000.0, encode_ms / 1000.0,
        decode_ms / 1000.0, static_cast<long long>(steps_total), steps_total / (decode_ms / 1000.0),
        total_s / audio_s);
  } catch (const Error& e) {
    std::fprintf(stderr, "whisper_parity: %s\n", e.what());
    return 1;
  }
  return 0;
}
