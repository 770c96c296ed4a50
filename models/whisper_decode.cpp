// Greedy and beam search over the Whisper decoder (see whisper_decode.h). Reference: CTranslate2
// 4.x src/decoding.cc (GreedySearch, BeamSearch, SuppressTokens, SuppressTokensBegin) and
// src/models/whisper.cc (WhisperReplica::generate); checked token for token against
// ctranslate2.models.Whisper.generate (tests/models/whisper_decoder_test.cpp).
#include "models/whisper_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/json_read.h"
#include "core/ops.h"

namespace cw::models {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- tokens
WhisperTokens read_whisper_tokens(const fs::path& dir, const data::BpeTokenizer& tokenizer,
                                  const std::string& language) {
  WhisperTokens t;
  t.eot = tokenizer.require_id("<|endoftext|>");
  t.prompt.push_back(tokenizer.require_id("<|startoftranscript|>"));
  if (tokenizer.vocab_size() >= 51865) {  // multilingual: the language and the task follow
    t.prompt.push_back(tokenizer.require_id("<|" + language + "|>"));
    t.prompt.push_back(tokenizer.require_id("<|transcribe|>"));
  }
  t.prompt.push_back(tokenizer.require_id("<|notimestamps|>"));
  const fs::path config = dir / "config.json", generation = dir / "generation_config.json";
  const Json c = fs::exists(config) ? read_json_file(config) : Json();
  if (c.is_object() && c.contains("suppress_ids")) {  // CTranslate2's converter writes these
    const JsonReader r(c, config.string());
    t.suppress = r.get_or<std::vector<int64_t>>("suppress_ids", {});
    t.suppress_begin = r.get_or<std::vector<int64_t>>("suppress_ids_begin", {});
  } else if (fs::exists(generation)) {  // Hugging Face
    const Json g = read_json_file(generation);
    const JsonReader r(g, generation.string());
    t.suppress = r.get_or<std::vector<int64_t>>("suppress_tokens", {});
    t.suppress_begin = r.get_or<std::vector<int64_t>>("begin_suppress_tokens", {});
  }
  for (const auto* list : {&t.suppress, &t.suppress_begin})
    for (int64_t id : *list)
      CW_CHECK(id >= 0 && id < tokenizer.vocab_size(), ValueError, dir.string(), ": suppressed token id ", id,
               " outside the vocabulary [0, ", tokenizer.vocab_size(), ")");
  return t;
}

void suppress_logits(Tensor& logits, const WhisperTokens& tokens, bool first_step) {
  CW_CHECK(logits.dim() == 2 && logits.dtype() == DType::F32 && logits.is_contiguous(), ShapeError,
           "suppress_logits: logits ", describe(logits), " should be contiguous (N, vocab) f32");
  const int64_t n = logits.size(0), v = logits.size(1);
  float* p = logits.data<float>();
  auto apply = [&](const std::vector<int64_t>& ids) {
    for (int64_t id : ids) {
      CW_CHECK(id >= 0 && id < v, IndexError, "suppress_logits: token id ", id,
               " outside the vocabulary [0, ", v, ")");
      for (int64_t r = 0; r < n; ++r) p[r * v + id] = std::numeric_limits<float>::lowest();
    }
  };
  apply(tokens.suppress);
  if (first_step) apply(tokens.suppress_begin);
}

// ---------------------------------------------------------------- shared steps
namespace {

void check_inputs(const WhisperDecoder& decoder, const Tensor& memory, const WhisperTokens& tokens,
                  const WhisperDecodeOptions& o) {
  CW_CHECK(!tokens.prompt.empty() && tokens.eot >= 0, ValueError,
           "whisper_decode: no prompt or no <|endoftext|> id (read them with read_whisper_tokens)");
  CW_CHECK(o.beam_size >= 1 && o.max_new_tokens >= 1, ValueError, "whisper_decode: beam_size ", o.beam_size,
           " and max_new_tokens ", o.max_new_tokens, " must be >= 1");
  CW_CHECK(2 * o.beam_size <= decoder.config.vocab_size, ValueError, "whisper_decode: beam_size ",
           o.beam_size, " needs a vocabulary of at least ", 2 * o.beam_size, " tokens, the model has ",
           decoder.config.vocab_size);
  // The last generated token is never fed back, so the decoder sees prompt + max_new_tokens - 1.
  const int64_t positions = static_cast<int64_t>(tokens.prompt.size()) + o.max_new_tokens - 1;
  CW_CHECK(positions <= decoder.config.max_positions, ValueError, "whisper_decode: a prompt of ",
           tokens.prompt.size(), " tokens and max_new_tokens ", o.max_new_tokens, " need ", positions,
           " positions, more than the decoder's ", decoder.config.max_positions);
  CW_CHECK(memory.dim() == 3 && memory.size(0) >= 1, ShapeError, "whisper_decode: encoder output ",
           shape_str(memory.shape()), " should be (batch >= 1, positions, d_model)");
}

// Feeds the prompt to every utterance of a fresh cache; the logits of the first generated token
// (B, V).
Tensor feed_prompt(const WhisperDecoder& decoder, WhisperDecoderCache& cache,
                   const std::vector<int64_t>& prompt) {
  const int64_t B = cache.batch, P = static_cast<int64_t>(prompt.size());
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < B; ++b) ids.insert(ids.end(), prompt.begin(), prompt.end());
  const Tensor logits = decoder.step(ops::from_vector(ids, {B, P}), cache);  // (B, P, V)
  return logits.select(1, P - 1).contiguous().to(Device::cpu());
}

// Feeds one token per cached sequence; its logits (N, V).
Tensor feed(const WhisperDecoder& decoder, WhisperDecoderCache& cache, const std::vector<int64_t>& next) {
  const Tensor logits = decoder.step(ops::from_vector(next, {static_cast<int64_t>(next.size()), 1}), cache);
  return logits.select(1, 0).contiguous().to(Device::cpu());
}

double normalized(double score, size_t length, double penalty) {
  return score / std::pow(static_cast<double>(std::max<size_t>(length, 1)), penalty);
}

}  // namespace

// ---------------------------------------------------------------- greedy
std::vector<WhisperHypothesis> whisper_greedy(const WhisperDecoder& decoder, const Tensor& memory,
                                              const WhisperTokens& tokens, const WhisperDecodeOptions& o) {
  check_inputs(decoder, memory, tokens, o);
  WhisperDecoderCache cache = decoder.start(memory);
  const int64_t B = cache.batch;
  Tensor logits = feed_prompt(decoder, cache, tokens.prompt);
  std::vector<WhisperHypothesis> out(static_cast<size_t>(B));
  std::vector<int64_t> alive(static_cast<size_t>(B));  // the utterance of each cached row
  for (int64_t b = 0; b < B; ++b) alive[static_cast<size_t>(b)] = b;
  for (int64_t step = 0;; ++step) {
    suppress_logits(logits, tokens, step == 0);
    if (o.on_step) o.on_step(step, alive, logits);
    const int64_t V = logits.size(1);
    const Tensor logp = ops::log_softmax(logits, -1);
    const std::vector<int64_t> best = ops::argmax(logits, -1).to_vector<int64_t>();
    const float* lp = logp.data<float>();
    const bool last = step + 1 == o.max_new_tokens;
    std::vector<int64_t> rows, next, still;
    for (size_t r = 0; r < alive.size(); ++r) {
      WhisperHypothesis& h = out[static_cast<size_t>(alive[r])];
      const int64_t token = best[r];
      h.score += lp[static_cast<int64_t>(r) * V + token];
      if (token != tokens.eot) h.tokens.push_back(token);
      if (token == tokens.eot || last) {
        h.score = normalized(h.score, h.tokens.size(), o.length_penalty);
      } else {
        rows.push_back(static_cast<int64_t>(r));
        next.push_back(token);
        still.push_back(alive[r]);
      }
    }
    if (rows.empty()) break;
    if (rows.size() != alive.size()) cache.keep(rows, 1);  // finished utterances leave the batch
    alive = std::move(still);
    logits = feed(decoder, cache, next);
  }
  return out;
}

// ---------------------------------------------------------------- beam search
namespace {

struct Candidate {
  double score;  // the sequence's summed log-probability with this token
  int64_t slot;  // which of the utterance's G sequences it extends
  int64_t token;
};

// The `count` best (slot, token) extensions of one utterance's G sequences, best first; equal
// scores keep the lower (slot, token) first. lp: log-probabilities (G, V) of its rows.
std::vector<Candidate> best_candidates(const float* lp, const std::vector<double>& scores, int64_t V,
                                       size_t count) {
  std::vector<Candidate> top;
  top.reserve(count + 1);
  for (size_t g = 0; g < scores.size(); ++g)
    for (int64_t v = 0; v < V; ++v) {
      const double s = scores[g] + lp[static_cast<int64_t>(g) * V + v];
      if (top.size() == count && s <= top.back().score) continue;
      const auto at = std::upper_bound(top.begin(), top.end(), s,
                                       [](double x, const Candidate& c) { return x > c.score; });
      top.insert(at, Candidate{s, static_cast<int64_t>(g), v});
      if (top.size() > count) top.pop_back();
    }
  return top;
}

struct Beam {
  std::vector<int64_t> tokens;
  double score = 0.0;
};

}  // namespace

std::vector<WhisperHypothesis> whisper_beam_search(const WhisperDecoder& decoder, const Tensor& memory,
                                                   const WhisperTokens& tokens,
                                                   const WhisperDecodeOptions& o) {
  check_inputs(decoder, memory, tokens, o);
  const int64_t K = o.beam_size;
  const size_t C = static_cast<size_t>(2 * K);  // twice the beam: room to replace finished ones
  WhisperDecoderCache cache = decoder.start(memory);
  const int64_t B = cache.batch;
  // Step 0 extends one sequence per utterance (the prompt); the beam fills from its candidates.
  Tensor logits = feed_prompt(decoder, cache, tokens.prompt);
  std::vector<std::vector<Beam>> beams(static_cast<size_t>(B), std::vector<Beam>(1));
  std::vector<std::vector<WhisperHypothesis>> finished(static_cast<size_t>(B));
  std::vector<int64_t> active(static_cast<size_t>(B));  // utterances still searching, in cache order
  for (int64_t b = 0; b < B; ++b) active[static_cast<size_t>(b)] = b;
  int64_t G = 1;
  for (int64_t step = 0;; ++step) {
    suppress_logits(logits, tokens, step == 0);
    const int64_t V = logits.size(1);
    const Tensor logp = ops::log_softmax(logits, -1);  // (active x G, V)
    const bool last = step + 1 == o.max_new_tokens;
    std::vector<int64_t> rows, next, still;
    for (size_t a = 0; a < active.size(); ++a) {
      const size_t u = static_cast<size_t>(active[a]);
      std::vector<double> scores;
      for (const Beam& beam : beams[u]) scores.push_back(beam.score);
      const std::vector<Candidate> cand =
          best_candidates(logp.data<float>() + static_cast<int64_t>(a) * G * V, scores, V, C);
      std::vector<Beam> kept;
      size_t secondary = static_cast<size_t>(K);
      for (size_t k = 0; k < static_cast<size_t>(K) && k < cand.size(); ++k) {
        size_t pick = k;
        const Candidate& c = cand[k];
        if (c.token == tokens.eot || last) {
          // A finished hypothesis; its slot goes to the best later candidate that goes on.
          WhisperHypothesis h{beams[u][static_cast<size_t>(c.slot)].tokens, c.score};
          if (c.token != tokens.eot) h.tokens.push_back(c.token);
          finished[u].push_back(std::move(h));
          for (size_t j = secondary; j < cand.size(); ++j)
            if (cand[j].token != tokens.eot) {
              pick = j;
              secondary = j + 1;
              break;
            }
        }
        const Candidate& p = cand[pick];
        Beam nb{beams[u][static_cast<size_t>(p.slot)].tokens, p.score};
        nb.tokens.push_back(p.token);  // as ct2: even <|endoftext|> when nothing else was left
        kept.push_back(std::move(nb));
        rows.push_back(static_cast<int64_t>(a) * G + p.slot);
        next.push_back(p.token);
      }
      if (last || finished[u].size() >= static_cast<size_t>(K)) {
        rows.resize(rows.size() - kept.size());
        next.resize(next.size() - kept.size());
        continue;
      }
      beams[u] = std::move(kept);
      still.push_back(active[a]);
    }
    if (still.empty()) break;
    cache.keep(rows, K);
    G = K;
    active = std::move(still);
    logits = feed(decoder, cache, next);
  }
  std::vector<WhisperHypothesis> out(static_cast<size_t>(B));
  for (size_t u = 0; u < static_cast<size_t>(B); ++u) {
    double best = -std::numeric_limits<double>::infinity();
    for (WhisperHypothesis& h : finished[u]) {
      h.score = normalized(h.score, h.tokens.size(), o.length_penalty);
      if (h.score > best) best = h.score, out[u] = h;
    }
  }
  return out;
}

std::vector<WhisperHypothesis> whisper_decode(const WhisperDecoder& decoder, const Tensor& memory,
                                              const WhisperTokens& tokens, const WhisperDecodeOptions& o) {
  return o.beam_size == 1 ? whisper_greedy(decoder, memory, tokens, o)
                          : whisper_beam_search(decoder, memory, tokens, o);
}

}  // namespace cw::models
