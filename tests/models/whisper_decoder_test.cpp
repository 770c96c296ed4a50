// The Whisper decoder, its KV cache and the searches (models/whisper_decoder.h, whisper_decode.h):
// the tiny random Hugging Face checkpoint against transformers; incremental decoding against full
// recomputation; the searches' own rules (batching, suppression, length limit, beam of one =
// greedy); bad input. The real tiny.en against CTranslate2 is in whisper_decoder_ct2_test.cpp.
#include "models/whisper_decoder.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/ops.h"
#include "core/safetensors.h"
#include "models/whisper_decode.h"
#include "support/check.h"
#include "whisper_decoder_test_util.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using models::WhisperDecodeOptions;
using models::WhisperDecoder;
using models::WhisperDecoderCache;
using models::WhisperDecoderConfig;
using models::WhisperHypothesis;
using models::WhisperTokens;
using test::all_close;

using test::ids_tensor;
using test::max_abs_diff;

using test::expect_error;

struct TempDir {
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("cw_whisper_dec_test_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// ---------------------------------------------------------------- tiny HF checkpoint vs transformers
const fs::path& hf_dir() {
  static const fs::path d = fs::path(CW_FIXTURE_DIR) / "whisper_hf_tiny";
  return d;
}

const SafetensorsFile& hf_fixture() {
  static const SafetensorsFile f =
      SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/whisper_decoder_hf_reference.safetensors");
  return f;
}

std::unique_ptr<WhisperDecoder> hf_decoder() {
  static const models::WhisperDecoderWeights w = models::read_whisper_decoder_hf(hf_dir());
  auto d = std::make_unique<WhisperDecoder>(w.config);
  EXPECT_TRUE(d->load_state_dict(w.decoder).ok());
  d->eval();
  return d;
}

TEST(WhisperDecoderHf, ReadsConfigAndEveryDecoderTensor) {
  const models::WhisperDecoderWeights w = models::read_whisper_decoder_hf(hf_dir());
  EXPECT_EQ(w.config.vocab_size, 64);
  EXPECT_EQ(w.config.d_model, 16);
  EXPECT_EQ(w.config.num_heads, 2);
  EXPECT_EQ(w.config.num_layers, 1);
  EXPECT_EQ(w.config.ffn_dim, 32);
  EXPECT_EQ(w.config.max_positions, 16);
  WhisperDecoder d(w.config);
  EXPECT_EQ(w.decoder.size(), d.state_dict().size());  // the encoder.* tensors left out
  EXPECT_TRUE(d.load_state_dict(w.decoder).ok());
  EXPECT_EQ(models::read_whisper_decoder_weights(hf_dir()).decoder.size(), w.decoder.size());
}

// transformers in float64; ours in f32 through one block: rounding, measured ~1e-6.
TEST(WhisperDecoderHf, LogitsMatchTransformers) {
  const auto d = hf_decoder();
  const Tensor memory = hf_fixture().load("memory", DType::F32), ids = hf_fixture().load("ids", DType::I64);
  const Tensor ref = hf_fixture().load("logits", DType::F32);  // (2, 7, 64)
  const Tensor got = d->forward(ids, memory);
  EXPECT_TRUE(all_close(got, ref, 2e-5, 0.0));
  std::cout << "[ whisper  ] HF tiny decoder: max |ours - transformers| " << max_abs_diff(got, ref)
            << ", |ref| max " << ops::amax(ops::abs(ref)).item() << "\n";
}

// ---------------------------------------------------------------- KV cache
// A random 3-layer decoder, bigger than the HF fixture's single block.
std::unique_ptr<WhisperDecoder> random_decoder(uint64_t seed = 5) {
  WhisperDecoderConfig c;
  c.vocab_size = 40, c.d_model = 24, c.num_heads = 3, c.num_layers = 3, c.ffn_dim = 48, c.max_positions = 20;
  auto d = std::make_unique<WhisperDecoder>(c);
  Generator gen(seed);
  for (auto& [name, p] : d->named_parameters()) {
    Tensor t = p.data();  // a handle sharing the parameter's storage
    const bool norm_weight = name.find("layer_norm") != std::string::npos && name.ends_with("weight");
    t.copy_(norm_weight ? ops::add(ops::normal(t.shape(), 0.0, 0.2, DType::F32, gen), 1.0)
                        : ops::normal(t.shape(), 0.0, 1.0 / std::sqrt(static_cast<double>(t.size(-1))),
                                      DType::F32, gen));
  }
  d->eval();
  return d;
}

Tensor random_memory(int64_t b, int64_t s, int64_t dim, uint64_t seed) {
  Generator gen(seed);
  return ops::normal({b, s, dim}, 0.0, 1.0, DType::F32, gen);
}

// Feeding a sequence in pieces (one token at a time, or 3 + 1 + 3) gives the logits of the whole
// sequence fed at once: the cached keys/values, positions and causal mask are those of a full
// recompute. Rounding only (the sums run in another order).
TEST(WhisperDecoderCache, IncrementalStepsEqualFullRecompute) {
  for (int model = 0; model < 2; ++model) {
    const auto d = model == 0 ? random_decoder() : hf_decoder();
    const int64_t V = d->config.vocab_size;
    const Tensor memory = random_memory(2, 9, d->config.d_model, 3);
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < 14; ++i) ids.push_back((i * 7 + 3) % V);
    const Tensor tokens = ids_tensor(ids, 2);        // (2, 7)
    const Tensor full = d->forward(tokens, memory);  // (2, 7, V)
    for (const std::vector<int64_t>& pieces : {std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1}, {3, 1, 3}}) {
      WhisperDecoderCache cache = d->start(memory);
      std::vector<Tensor> outs;
      int64_t at = 0;
      for (int64_t n : pieces) {
        outs.push_back(d->step(tokens.narrow(1, at, n).contiguous(), cache));
        at += n;
      }
      EXPECT_EQ(cache.length, 7);
      const Tensor incremental = ops::concat(outs, 1);
      EXPECT_TRUE(all_close(incremental, full, 1e-5, 1e-5))
          << "model " << model << ", pieces of " << pieces[0];
      std::cout << "[ whisper  ] model " << model << ", pieces of " << pieces[0]
                << ": max |incremental - full| " << max_abs_diff(incremental, full) << "\n";
    }
  }
}

// keep() reorders sequences (beam search), repeats them into groups (after the first beam step)
// and drops utterances; each kept sequence then continues exactly as if it had been fed alone.
TEST(WhisperDecoderCache, KeepReordersExpandsAndDropsSequences) {
  const auto d = random_decoder();
  const Tensor memory = random_memory(3, 6, d->config.d_model, 4);
  const Tensor prefix = ids_tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, 3);  // (3, 3)
  WhisperDecoderCache cache = d->start(memory);
  d->step(prefix, cache);
  // Utterance 0 twice, then utterance 2 twice; utterance 1 dropped. (Not {2, 2, 0, 0}: GCC 12.2
  // at -O2/-O3 with AVX-512 (-march=native here) compiles that constant, a broadcast low half over
  // a zero high half, into a broadcast of the whole vector: {2, 2, 2, 2}.)
  cache.keep({0, 0, 2, 2}, 2);
  EXPECT_EQ(cache.batch, 2);
  EXPECT_EQ(cache.group, 2);
  const Tensor next = ids_tensor({10, 11, 12, 13}, 4);
  const Tensor got = d->step(next, cache);  // (4, 1, V)
  const int64_t utterance[4] = {0, 0, 2, 2};
  for (int64_t r = 0; r < 4; ++r) {
    const int64_t u = utterance[r];
    const Tensor seq = ops::concat({prefix.narrow(0, u, 1), next.narrow(0, r, 1)}, 1);  // (1, 4)
    const Tensor ref = d->forward(seq, memory.narrow(0, u, 1)).narrow(1, 3, 1);
    EXPECT_TRUE(all_close(got.narrow(0, r, 1), ref, 1e-5, 1e-5)) << "row " << r;
  }
  // A reorder inside the groups (beam search) keeps the memory shared per utterance.
  cache.keep({1, 0, 3, 3}, 2);
  const Tensor got2 = d->step(ids_tensor({14, 15, 16, 17}, 4), cache);
  const int64_t src[4] = {1, 0, 3, 3};
  for (int64_t r = 0; r < 4; ++r) {
    const int64_t u = utterance[src[r]];
    const Tensor seq =
        ops::concat({prefix.narrow(0, u, 1), next.narrow(0, src[r], 1), ids_tensor({14 + r}, 1)}, 1);
    const Tensor ref = d->forward(seq, memory.narrow(0, u, 1)).narrow(1, 4, 1);
    EXPECT_TRUE(all_close(got2.narrow(0, r, 1), ref, 1e-5, 1e-5)) << "row " << r << " after the reorder";
  }
  expect_error<ValueError>([&] { cache.keep({0, 2}, 2); }, {"mixes sequences of utterances 0 and 1"});
  expect_error<IndexError>([&] { cache.keep({0, 9}, 1); }, {"row 9"});
  expect_error<ValueError>([&] { cache.keep({0, 1, 2}, 2); }, {"3 rows", "groups of 2"});
}

// ---------------------------------------------------------------- the searches' rules
// Tokens for the random decoder: prompt {1, 2}; eot and the suppressed ids set per test.
WhisperTokens random_tokens(int64_t eot) {
  WhisperTokens t;
  t.prompt = {1, 2};
  t.eot = eot;
  return t;
}

// Greedy without an end (eot suppressed), then with eot = a token row 0 emits at step 2: the rows
// now finish at different steps, and each row's result equals its decoding alone.
WhisperTokens tokens_with_early_end(const WhisperDecoder& d, const Tensor& memory, WhisperDecodeOptions o) {
  WhisperTokens t = random_tokens(0);
  t.suppress = {0};
  o.beam_size = 1;
  const auto free_run = models::whisper_greedy(d, memory, t, o);
  t = random_tokens(free_run[0].tokens.at(2));
  return t;
}

TEST(WhisperSearch, BatchedRowsEqualEachUtteranceAlone) {
  const auto d = random_decoder();
  const Tensor memory = random_memory(4, 7, d->config.d_model, 8);
  WhisperDecodeOptions o;
  o.max_new_tokens = 12;
  const WhisperTokens t = tokens_with_early_end(*d, memory, o);
  for (int64_t beam : {1, 3}) {
    o.beam_size = beam;
    const auto batched = models::whisper_decode(*d, memory, t, o);
    ASSERT_EQ(batched.size(), 4u);
    std::set<size_t> lengths;
    for (int64_t b = 0; b < 4; ++b) {
      const auto alone = models::whisper_decode(*d, memory.narrow(0, b, 1), t, o);
      EXPECT_EQ(batched[static_cast<size_t>(b)].tokens, alone[0].tokens) << "beam " << beam << ", row " << b;
      EXPECT_NEAR(batched[static_cast<size_t>(b)].score, alone[0].score, 1e-5)
          << "beam " << beam << ", row " << b;
      lengths.insert(batched[static_cast<size_t>(b)].tokens.size());
    }
    EXPECT_GE(lengths.size(), 2u) << "beam " << beam << ": every row ran as long, the test proves little";
    if (beam == 1) {
      EXPECT_LE(batched[0].tokens.size(), 2u) << "row 0 should stop at its <|endoftext|>";
    }
  }
}

// on_step sees, each step, the suppressed logits of the unfinished rows only, whose argmax is the
// token greedy appends (or <|endoftext|>); the hypotheses are those of a search without it.
TEST(WhisperSearch, GreedyReportsEachStepsLogits) {
  const auto d = random_decoder();
  const Tensor memory = random_memory(4, 7, d->config.d_model, 8);
  WhisperDecodeOptions o;
  o.max_new_tokens = 12;
  WhisperTokens t = tokens_with_early_end(*d, memory, o);
  t.suppress = {5};
  t.suppress_begin = {6};
  o.beam_size = 1;
  const auto plain = models::whisper_greedy(*d, memory, t, o);
  std::vector<std::vector<int64_t>> seen(4);  // per row: the argmax of each step's logits
  int64_t calls = 0;
  o.on_step = [&](int64_t step, const std::vector<int64_t>& rows, const Tensor& logits) {
    EXPECT_EQ(step, calls++);
    ASSERT_EQ(logits.shape(), (Shape{static_cast<int64_t>(rows.size()), d->config.vocab_size}));
    const std::vector<int64_t> best = ops::argmax(logits, -1).to_vector<int64_t>();
    const float lowest = std::numeric_limits<float>::lowest();
    for (size_t r = 0; r < rows.size(); ++r) {
      seen[static_cast<size_t>(rows[r])].push_back(best[r]);
      EXPECT_EQ(logits.select(0, static_cast<int64_t>(r)).select(0, 5).item(), lowest);
      EXPECT_EQ(logits.select(0, static_cast<int64_t>(r)).select(0, 6).item() == lowest, step == 0);
    }
  };
  const auto hooked = models::whisper_greedy(*d, memory, t, o);
  std::set<size_t> lengths;
  for (size_t b = 0; b < 4; ++b) {
    EXPECT_EQ(hooked[b].tokens, plain[b].tokens) << "row " << b;
    std::vector<int64_t> want = plain[b].tokens;
    if (static_cast<int64_t>(want.size()) < o.max_new_tokens) want.push_back(t.eot);
    EXPECT_EQ(seen[b], want) << "row " << b;
    lengths.insert(seen[b].size());
  }
  EXPECT_GE(lengths.size(), 2u) << "every row ran as long: finished rows leaving is not tested";
  EXPECT_EQ(calls, static_cast<int64_t>(*std::max_element(lengths.begin(), lengths.end())));
}

// With one beam, beam search keeps the best token each step and stops at the first end: greedy.
TEST(WhisperSearch, BeamOfOneIsGreedy) {
  const auto d = random_decoder(6);
  const Tensor memory = random_memory(3, 5, d->config.d_model, 9);
  WhisperDecodeOptions o;
  o.max_new_tokens = 10;
  const WhisperTokens t = tokens_with_early_end(*d, memory, o);
  o.beam_size = 1;
  const auto greedy = models::whisper_greedy(*d, memory, t, o);
  const auto beam = models::whisper_beam_search(*d, memory, t, o);
  for (size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(beam[b].tokens, greedy[b].tokens) << "row " << b;
    EXPECT_NEAR(beam[b].score, greedy[b].score, 1e-6) << "row " << b;
  }
}

// The score is the mean log-probability of the chosen tokens, <|endoftext|>'s included, over the
// text tokens; beam search's best is at least as good as greedy's on that measure here.
TEST(WhisperSearch, ScoresAreMeanLogProbabilities) {
  const auto d = random_decoder(7);
  const Tensor memory = random_memory(1, 5, d->config.d_model, 10);
  WhisperDecodeOptions o;
  o.max_new_tokens = 8;
  const WhisperTokens t = tokens_with_early_end(*d, memory, o);
  o.beam_size = 1;
  const WhisperHypothesis g = models::whisper_greedy(*d, memory, t, o)[0];
  std::vector<int64_t> seq = t.prompt;
  seq.insert(seq.end(), g.tokens.begin(), g.tokens.end());
  const bool ended = static_cast<int64_t>(g.tokens.size()) < o.max_new_tokens;
  const Tensor logp = ops::log_softmax(d->forward(ids_tensor(seq, 1), memory).select(0, 0), -1);  // (T, V)
  double sum = 0.0;
  for (size_t i = 0; i < g.tokens.size(); ++i)
    sum += logp.select(0, static_cast<int64_t>(t.prompt.size() + i) - 1).select(0, g.tokens[i]).item();
  if (ended) sum += logp.select(0, static_cast<int64_t>(seq.size()) - 1).select(0, t.eot).item();
  EXPECT_NEAR(g.score, sum / static_cast<double>(g.tokens.size()), 1e-5);
  o.beam_size = 4;
  EXPECT_GE(models::whisper_beam_search(*d, memory, t, o)[0].score, g.score - 1e-6);
}

// Suppressed ids never appear; first-step ones never come first; max_new_tokens bounds the length.
TEST(WhisperSearch, SuppressionAndLengthLimit) {
  const auto d = random_decoder(8);
  const Tensor memory = random_memory(3, 5, d->config.d_model, 11);
  WhisperDecodeOptions o;
  o.max_new_tokens = 9;
  WhisperTokens t = random_tokens(0);
  t.suppress = {0};  // no end: every row runs to the limit
  o.beam_size = 1;
  const auto free_run = models::whisper_greedy(*d, memory, t, o);
  std::vector<int64_t> used;
  for (const auto& h : free_run) {
    EXPECT_EQ(h.tokens.size(), 9u);
    used.insert(used.end(), h.tokens.begin(), h.tokens.end());
  }
  t.suppress = {0, used[1], used[4]};
  t.suppress_begin = {free_run[0].tokens[0], free_run[1].tokens[0], free_run[2].tokens[0]};
  for (int64_t beam : {1, 3}) {
    o.beam_size = beam;
    for (const auto& h : models::whisper_decode(*d, memory, t, o)) {
      EXPECT_EQ(h.tokens.size(), 9u) << "beam " << beam;
      for (int64_t s : t.suppress) EXPECT_EQ(std::count(h.tokens.begin(), h.tokens.end(), s), 0) << s;
      for (int64_t s : t.suppress_begin) EXPECT_NE(h.tokens[0], s) << "beam " << beam;
    }
  }
  WhisperTokens few = random_tokens(0);
  few.suppress = {5};
  few.suppress_begin = {7};
  for (bool first : {false, true}) {
    Tensor logits = ops::zeros({2, 40});
    models::suppress_logits(logits, few, first);
    const double lowest = std::numeric_limits<float>::lowest();
    EXPECT_EQ(logits.select(0, 1).select(0, 5).item(), lowest);
    EXPECT_EQ(logits.select(0, 1).select(0, 7).item(), first ? lowest : 0.0);
    EXPECT_EQ(ops::sum(ops::eq(logits, lowest)).item(), first ? 4 : 2);  // nothing else touched
  }
}

// ---------------------------------------------------------------- bad input
TEST(WhisperDecoderBadInput, TokensShapesAndPositions) {
  const auto d = random_decoder();
  const Tensor memory = random_memory(2, 4, d->config.d_model, 1);
  WhisperDecoderCache cache = d->start(memory);
  expect_error<ShapeError>([&] { d->step(ids_tensor({1, 2, 3}, 3), cache); }, {"(2, T >= 1) i64"});
  expect_error<ShapeError>([&] { d->step(ops::zeros({2, 1}), cache); }, {"i64"});
  expect_error<IndexError>([&] { d->step(ids_tensor({1, 40}, 2), cache); }, {"token id 40", "[0, 40)"});
  expect_error<ValueError>(
      [&] {
        d->step(ops::zeros({2, 21}, DType::I64), cache);
      },
      {"positions up to 21", "20"});
  expect_error<ShapeError>([&] { d->start(ops::zeros({2, 4, 7})); }, {"(2, 4, 7)", "(batch, positions, 24)"});
  WhisperDecoderCache other = hf_decoder()->start(ops::zeros({2, 4, 16}));
  expect_error<ValueError>([&] { d->step(ids_tensor({1, 2}, 2), other); }, {"1 layers", "3"});
  WhisperDecodeOptions o;
  o.max_new_tokens = 19;  // prompt 2 + 19 - 1 = 20 positions: fits
  EXPECT_NO_THROW(models::whisper_greedy(*d, memory, random_tokens(0), o));
  o.max_new_tokens = 20;
  expect_error<ValueError>([&] { models::whisper_greedy(*d, memory, random_tokens(0), o); },
                           {"need 21 positions", "decoder's 20"});
  o.max_new_tokens = 4;
  o.beam_size = 21;
  expect_error<ValueError>([&] { models::whisper_decode(*d, memory, random_tokens(0), o); },
                           {"beam_size 21"});
  expect_error<ValueError>([&] { models::whisper_greedy(*d, memory, WhisperTokens{}, o); }, {"no prompt"});
}

TEST(WhisperDecoderBadInput, Folders) {
  const TempDir tmp("hf");
  std::ifstream in(hf_dir() / "config.json");
  const std::string config((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(tmp.path / "config.json") << config;
  save_safetensors((tmp.path / "model.safetensors").string(),
                   {{"encoder.layer_norm.weight", ops::ones({16})}});
  expect_error<ValueError>([&] { models::read_whisper_decoder_hf(tmp.path); },
                           {(tmp.path / "model.safetensors").string(), "decoder.embed_tokens.weight"});
  // A config whose sizes the tensors do not have: refused before anything of that size is built.
  {
    auto j = nlohmann::json::parse(config);
    j["vocab_size"] = 65;
    std::ofstream(tmp.path / "config.json") << j.dump();
    fs::copy_file(hf_dir() / "model.safetensors", tmp.path / "model.safetensors",
                  fs::copy_options::overwrite_existing);
    expect_error<ValueError>([&] { models::read_whisper_decoder_hf(tmp.path); },
                             {"config.json", "'decoder.embed_tokens.weight' of (65, 16)", "has (64, 16)"});
    j["vocab_size"] = int64_t(1) << 40;
    std::ofstream(tmp.path / "config.json") << j.dump();
    expect_error<ValueError>([&] { models::read_whisper_decoder_hf(tmp.path); }, {"vocab_size"});
  }
  const TempDir empty("empty");
  expect_error<Error>([&] { models::read_whisper_decoder_weights(empty.path); },
                      {empty.path.string(), "model.bin"});
  // Suppressed ids outside the vocabulary, from config.json.
  const data::BpeTokenizer tok = data::BpeTokenizer::from_dir(fs::path(CW_FIXTURE_DIR) / "bpe_tiny");
  std::ofstream(tmp.path / "config.json") << R"({"suppress_ids": [1, 2, 9999], "suppress_ids_begin": [220]})";
  expect_error<ValueError>([&] { models::read_whisper_tokens(tmp.path, tok); }, {"9999", "[0, 603)"});
  std::ofstream(tmp.path / "config.json") << R"({"suppress_ids": [1, 2], "suppress_ids_begin": [5]})";
  const WhisperTokens t = models::read_whisper_tokens(tmp.path, tok);
  EXPECT_EQ(t.prompt, (std::vector<int64_t>{601, 602}));  // the tiny tokenizer's specials
  EXPECT_EQ(t.eot, 600);
  EXPECT_EQ(t.suppress, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(t.suppress_begin, (std::vector<int64_t>{5}));
}

// A CTranslate2 Whisper file whose decoder is not this one (post-norm) is refused by name.
TEST(WhisperDecoderBadInput, CTranslate2DecoderOfAnotherKind) {
  const TempDir tmp("ct2");
  const fs::path bin = tmp.path / "model.bin";
  {
    std::ofstream out(bin, std::ios::binary);
    auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    auto str = [&](const std::string& s) {
      const uint16_t len = static_cast<uint16_t>(s.size() + 1);
      out.write(reinterpret_cast<const char*>(&len), 2);
      out.write(s.c_str(), len);  // with its NUL
    };
    u32(6);
    str("WhisperSpec");
    u32(3);  // spec revision
    u32(1);  // one variable: decoder/pre_norm = 0, an i8 scalar
    str("decoder/pre_norm");
    out.put(0);  // rank 0
    out.put(1);  // dtype i8
    u32(1);      // bytes
    out.put(0);
    u32(0);  // aliases
  }
  expect_error<ValueError>([&] { models::read_whisper_decoder_ctranslate2(bin); },
                           {bin.string(), "decoder/pre_norm is 0", "needs 1"});
}

}  // namespace
}  // namespace cw
