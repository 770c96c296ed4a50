// Builds the speech-text model of a run (see speech_model.h).
#include "train/speech_model.h"

#include <chrono>
#include <cmath>
#include <ostream>
#include <sstream>

#include "core/error.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "models/whisper_encoder.h"
#include "train/speech_tower_file.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// Size and modification time of the weights file, so that other weights give another cache.
std::string file_stamp(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto time = fs::last_write_time(path, ec);
  std::ostringstream s;
  s << fs::weakly_canonical(path, ec).string() << " size=" << size
    << " mtime=" << std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  return s.str();
}

// The frozen prefix's outputs (T', D) of one utterance's log-mel (T, n_mels). Whisper's window is
// 30 s: a longer utterance keeps its first 30 s (as transcription's first window); the corpora
// here hold none.
Tensor prefix_of(const models::WhisperSpeechTower& tower, Tensor f) {
  const int64_t max_frames = 2 * tower.encoder->config.max_positions;
  if (f.size(0) > max_frames) f = f.narrow(0, 0, max_frames);
  f = f.contiguous();
  const Tensor len = ops::from_vector(std::vector<int64_t>{f.size(0)}, {1});
  return tower.frozen_prefix(f.unsqueeze(0), len).squeeze(0).contiguous();  // (T', D)
}

// Replaces a split's log-mel frames by the frozen prefix's outputs (B = 1 per row: no padding
// work; the ops thread inside). Stored beside the log-mel cache, keyed by it and the weights.
void cache_prefix(SpeechSplit& split, const models::WhisperSpeechTower& tower,
                  const std::string& weights_stamp, const fs::path& cache_dir, std::ostream& log) {
  const auto t0 = Clock::now();
  const std::shared_ptr<const data::FeatureCache> mel = split.features;
  data::FrameSource src;
  std::ostringstream settings;
  settings << "whisper-prefix-1 blocks=" << tower.first_trained_layer() << "/"
           << tower.encoder->config.num_layers << " weights=" << weights_stamp
           << " mel-cache=" << mel->file().filename().string();
  src.settings = settings.str();
  src.num_bins = tower.encoder->config.d_model;
  src.from_audio = false;
  src.workers = 1;
  src.compute = [mel, &tower](int64_t i) { return prefix_of(tower, mel->features(i)); };
  split.features = std::make_shared<const data::FeatureCache>(data::FeatureCache::build_or_load(
      mel->manifest(), with_progress(src, "frozen Whisper blocks: " + split.name, mel->size()), cache_dir));
  split.cmvn = false;
  const int64_t first = tower.first_trained_layer();
  log << "data: " << split.name << ": frozen Whisper "
      << (first == 0 ? std::string("stem") : "blocks 0-" + std::to_string(first - 1)) << " "
      << (split.features->was_built() ? "computed" : "cached") << ", " << split.features->total_frames()
      << " positions (" << seconds_since(t0) << " s)\n";
}

}  // namespace

models::ConformerConfig speech_tower_config(const TrainOptions& o, int64_t n_mels, int64_t embed_dim) {
  models::ConformerConfig c = o.speech_preset == "small"  ? models::ConformerConfig::small()
                              : o.speech_preset == "mini" ? models::ConformerConfig::mini()
                                                          : models::ConformerConfig::tiny();
  if (o.d_model) c.d_model = o.d_model;
  if (o.num_layers) c.num_layers = o.num_layers;
  if (o.num_heads) c.num_heads = o.num_heads;
  if (o.ffn_dim) c.ffn_dim = o.ffn_dim;
  if (o.conv_kernel) c.conv_kernel_size = o.conv_kernel;
  if (o.dropout >= 0) c.dropout = o.dropout;
  CW_CHECK(c.d_model % c.num_heads == 0, ValueError, "--model.d_model (", c.d_model,
           ") must be a multiple of --model.num_heads (", c.num_heads, ")");
  c.n_mels = n_mels;        // from the features
  c.embed_dim = embed_dim;  // the frozen tower's dimension
  return c;
}

SpeechModel build_speech_model(const TrainOptions& o, SpeechTextData& data, std::ostream& log) {
  SpeechModel m;
  const double init_scale = std::log(1.0 / o.loss.init_temperature);
  const int64_t embed_dim = data.train_text.dim();
  std::ostringstream d;
  if (o.speech_tower == "conformer") {
    const models::ConformerConfig cfg = speech_tower_config(o, data.train.features->num_bins(), embed_dim);
    m.model = std::make_unique<models::SpeechTextModel>(cfg, init_scale, o.loss.learn_temperature);
    if (!o.speech_init.empty()) {
      const int64_t n = init_speech_tower(m.model->conformer(), o.speech_init);
      log << "model: speech tower initialized from " << o.speech_init << " (" << n
          << " tensors; the projection head starts fresh)\n";
    }
    d << "Conformer d_model " << cfg.d_model << ", " << cfg.num_layers << " blocks, " << cfg.num_heads
      << " heads, ffn " << cfg.ffn_dim << ", kernel " << cfg.conv_kernel_size << ": "
      << m.model->num_parameters() << " parameters";
    m.description = d.str();
    return m;
  }

  const fs::path dir = data::find_whisper_dir(
      o.speech_weights.empty() ? std::nullopt : std::optional<fs::path>(o.speech_weights));
  const models::WhisperWeights w = models::read_whisper_weights(dir);
  CW_CHECK(w.config.n_mels == data.train.features->num_bins(), ValueError, w.source, ": the encoder reads ",
           w.config.n_mels, " mel bins, the features have ", data.train.features->num_bins());
  CW_CHECK(o.speech_train_layers <= w.config.num_layers, ValueError, "--model.speech_train_layers ",
           o.speech_train_layers, " is more than the ", w.config.num_layers, " blocks of ", w.source);
  // SpecAugment changes the input every step, so the frozen part must run every step then.
  const models::WhisperInput input =
      o.spec_augment ? models::WhisperInput::Mel : models::WhisperInput::Hidden;
  auto tower =
      std::make_shared<models::WhisperSpeechTower>(w.config, embed_dim, o.speech_train_layers, input);
  const nn::LoadReport rep = tower->encoder->load_state_dict(w.encoder, true);
  CW_CHECK(rep.ok(), ValueError, w.source, " does not fit the Whisper encoder: ", rep.str());
  m.model = std::make_unique<models::SpeechTextModel>(tower, init_scale, o.loss.learn_temperature);
  int64_t trainable = 0;
  for (const auto& [name, p] : m.model->named_parameters())
    if (p.requires_grad()) trainable += p.numel();
  d << "Whisper encoder from " << w.source << ": d_model " << w.config.d_model << ", " << w.config.num_layers
    << " blocks, " << w.config.num_heads << " heads; top " << o.speech_train_layers
    << " blocks, final norm and projection trained (" << trainable << " of " << m.model->num_parameters()
    << " parameters)" << (input == models::WhisperInput::Hidden ? ", frozen blocks cached" : "");
  m.description = d.str();
  if (input == models::WhisperInput::Hidden) {
    const fs::path cache_dir = o.feature_cache.empty() ? data.corpus / "features" : fs::path(o.feature_cache);
    const std::string stamp = file_stamp(w.source);
    for (SpeechSplit* s : {&data.train, &data.valid, &data.intent, &data.kws, &data.retrieval})
      cache_prefix(*s, *tower, stamp, cache_dir, log);
    m.cached_hidden = true;
    m.frames_per_input = 2;
  }
  return m;
}

Tensor tower_input(const SpeechModel& m, const Tensor& features) {
  if (!m.cached_hidden) return features;
  const auto* tower = dynamic_cast<const models::WhisperSpeechTower*>(m.model->speech.get());
  CW_CHECK(tower != nullptr, Error, "tower_input: cached hidden states without a Whisper tower");
  return prefix_of(*tower, features);
}

}  // namespace cw::train
