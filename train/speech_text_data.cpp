// Corpus, features and frozen embeddings of a speech-text run (see speech_text_data.h).
#include "train/speech_text_data.h"

#include <cstdio>
#include <ostream>
#include <thread>

#include "core/error.h"
#include "core/ops.h"
#include "data/model_files.h"
#include "models/whisper_encoder.h"
#include "train/progress.h"
#include "train/stopwatch.h"
#include "train/subprocess.h"

#ifndef CW_PROJECT_DIR
#define CW_PROJECT_DIR "."
#endif

namespace cw::train {
namespace fs = std::filesystem;

const std::vector<std::string>& intent_templates() {
  // Ways a person might state an intent, and the bare class name and description: the ensemble
  // averages them as CLIP averages its 80 ImageNet templates. None of them is a test phrasing.
  static const std::vector<std::string> t = {
      "{name}",
      "{description}",
      "{name}: {description}",
      "i want to {name}",
      "please {name}",
      "can you {name} for me",
      "the user asks the assistant to {name}",
      "a request to {name}",
      "help me {name}",
      "i would like to {description}",
      "command: {name}",
      "hey assistant, {name}",
  };
  return t;
}

const std::vector<std::string>& keyword_templates() {
  // Keyword spotting prompts: the word alone and in the short frames a speech-commands model card
  // or a person would use for "a recording of one spoken word".
  static const std::vector<std::string> t = {
      "{name}",
      "{name}.",
      "{name}!",
      "the word {name}",
      "someone says {name}",
      "a person saying the word {name}",
      "a recording of the word {name}",
      "say {name}",
      "the spoken command {name}",
      "keyword: {name}",
      "i heard {name}",
  };
  return t;
}

std::string fill_template(const std::string& tmpl, const std::string& name, const std::string& description) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] == '{') {
      const size_t close = tmpl.find('}', i);
      CW_CHECK(close != std::string::npos, ValueError, "template '", tmpl, "': unclosed '{'");
      const std::string field = tmpl.substr(i + 1, close - i - 1);
      if (field == "name")
        out += name;
      else if (field == "description")
        out += description;
      else
        throw ValueError("template '" + tmpl + "': unknown field {" + field +
                         "} (use {name} or {description})");
      i = close + 1;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

namespace {

fs::path generator_script() {
  for (const fs::path& root : {fs::current_path(), fs::path(CW_PROJECT_DIR)}) {
    const fs::path p = root / "tools" / "make_speech_corpus.py";
    if (fs::exists(p)) return p;
  }
  throw Error(
      "tools/make_speech_corpus.py not found (looked in the current folder and the project it was built "
      "from)");
}

// The front end of the tower: Kaldi fbank (Conformer, CMVN per utterance) or Whisper's log-mel.
struct FrontEnd {
  bool whisper = false;
  data::FbankOptions fbank;  // 80 bins, 25 ms / 10 ms, Kaldi's fbank (data/audio_fbank.h)
  data::WhisperMelOptions mel;
  data::AudioLimits limits;  // --data.max_audio_seconds, min_audio_rate, max_audio_rate
};

FrontEnd front_end_of(const TrainOptions& o) {
  FrontEnd f;
  f.whisper = o.speech_tower == "whisper";
  f.limits.max_seconds = o.max_audio_seconds;
  f.limits.min_rate = o.min_audio_rate;
  f.limits.max_rate = o.max_audio_rate;
  if (f.whisper)  // 80 bins (tiny ... large-v2) or 128 (large-v3): what the weights read
    f.mel.n_mels = models::whisper_num_mel_bins(data::find_whisper_dir(
        o.speech_weights.empty() ? std::nullopt : std::optional<fs::path>(o.speech_weights)));
  return f;
}

}  // namespace

data::FrameSource with_progress(data::FrameSource source, const std::string& what, int64_t rows) {
  // compute() is called only for rows being built, never for a cache that loads: a cached split
  // prints nothing. The key does not depend on compute.
  auto meter = std::make_shared<ProgressMeter>(what, "utterances", rows);
  source.compute = [inner = std::move(source.compute), meter](int64_t i) {
    Tensor t = inner(i);
    meter->add();
    return t;
  };
  return source;
}

Tensor audio_features(const TrainOptions& o, const std::filesystem::path& audio) {
  const FrontEnd f = front_end_of(o);
  if (f.whisper) return data::WhisperMel(f.mel).compute(data::load_audio(audio, 16000, f.limits));
  return data::Fbank(f.fbank).compute(
      data::load_audio(audio, static_cast<int64_t>(f.fbank.sample_rate), f.limits));
}

namespace {

SpeechSplit load_split(const fs::path& corpus, const std::string& name, const fs::path& cache_dir,
                       const FrontEnd& front, std::ostream& log) {
  const auto t0 = Clock::now();
  const fs::path tsv = corpus / (name + ".tsv");
  CW_CHECK(fs::exists(tsv), Error, "corpus '", corpus.string(), "' has no ", name,
           ".tsv (incomplete corpus?)");
  SpeechSplit s;
  s.name = name;
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const data::SpeechManifest manifest = data::SpeechManifest::read(tsv);
  data::FrameSource source =
      front.whisper ? data::FeatureCache::whisper_mel_source(manifest, front.mel, threads, front.limits)
                    : data::FeatureCache::fbank_source(manifest, front.fbank, threads, front.limits);
  s.cmvn = !front.whisper;
  s.features = std::make_shared<const data::FeatureCache>(data::FeatureCache::build_or_load(
      manifest, with_progress(source, "features: " + name, manifest.size()), cache_dir));
  for (const auto& u : s.manifest().utterances())
    s.human.push_back(u.voice.find("human") != std::string::npos);
  log << "data: " << name << ": " << s.size() << " utterances, " << s.features->total_frames() << " frames, "
      << (s.features->was_built() ? "features computed" : "features cached") << " (" << seconds_since(t0)
      << " s)\n";
  return s;
}

// Class index of each benchmark row's label.
void attach_labels(SpeechSplit& split, const std::vector<std::string>& classes) {
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<int64_t>(i);
  for (int64_t i = 0; i < split.size(); ++i) {
    const auto& u = split.manifest()[i];
    const auto it = index.find(u.label);
    CW_CHECK(it != index.end(), ValueError, split.manifest().path().string(), ": row '", u.id,
             "' has label '", u.label, "', which is not among the ", classes.size(), " classes");
    split.labels.push_back(it->second);
  }
}

ClassPrompts make_prompts(const FrozenTextTower& text, const std::vector<std::string>& labels,
                          const std::vector<std::string>& names, const std::vector<std::string>& descriptions,
                          const std::vector<std::string>& templates, const fs::path& cache_dir,
                          const std::string& cache_name) {
  ClassPrompts p{labels, templates, {}};
  std::vector<std::string> sentences;
  for (const auto& t : templates)
    for (size_t c = 0; c < names.size(); ++c)
      sentences.push_back(fill_template(t, names[c], descriptions[c]));
  const Tensor all = embed_with_cache(text, sentences, cache_dir, cache_name).embeddings;  // (K * C, D)
  const int64_t c = static_cast<int64_t>(names.size());
  for (size_t k = 0; k < templates.size(); ++k)
    p.embeddings.push_back(all.narrow(0, static_cast<int64_t>(k) * c, c).contiguous());
  return p;
}

std::vector<std::string> transcripts(const SpeechSplit& s) {
  std::vector<std::string> t;
  for (const auto& u : s.manifest().utterances()) t.push_back(u.transcript);
  return t;
}

}  // namespace

void ensure_corpus(const TrainOptions& o, std::ostream& log) {
  const fs::path corpus(o.corpus);
  if (fs::exists(corpus / "corpus.json")) return;
  const std::string cmd_hint = "python3 tools/make_speech_corpus.py --size " +
                               (o.corpus_size == "none" ? std::string("small") : o.corpus_size) + " --out " +
                               corpus.string();
  CW_CHECK(
      o.corpus_size != "none", Error, "corpus '", corpus.string(),
      "' is missing or incomplete (no corpus.json) and --data.corpus_size is none; make it with: ", cmd_hint);
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::vector<std::string> args = {
      python, generator_script().string(), "--size", o.corpus_size, "--out", o.corpus, "--seed", "0"};
  if (o.corpus_jobs > 0) {
    args.push_back("--jobs");
    args.push_back(std::to_string(o.corpus_jobs));
  }
  log << "data: generating the " << o.corpus_size << " speech corpus into " << o.corpus << " ...\n"
      << std::flush;
  const auto t0 = Clock::now();
  // The generator's lines go to the run's log; its "i/N utterances" lines get an ETA.
  const int rc = run_process_lines(args, [&](const std::string& line) {
    long long done = 0, total = 0;
    log << line;
    if (std::sscanf(line.c_str(), "make_speech_corpus: %lld/%lld utterances", &done, &total) == 2 &&
        done > 0 && total > done)
      log << ", ETA "
          << eta_string(seconds_since(t0) * static_cast<double>(total - done) / static_cast<double>(done));
    log << "\n" << std::flush;
  });
  CW_CHECK(rc == 0 && fs::exists(corpus / "corpus.json"), Error, "corpus generation failed (exit status ", rc,
           "); rerun it alone to see why: ", cmd_hint);
  log << "data: corpus generated in " << seconds_since(t0) << " s\n";
}

SpeechSplit load_speech_split(const TrainOptions& o, const std::string& name, std::ostream& log) {
  const fs::path corpus(o.corpus);
  const fs::path feature_dir = o.feature_cache.empty() ? corpus / "features" : fs::path(o.feature_cache);
  return load_split(corpus, name, feature_dir, front_end_of(o), log);
}

data::SpeechLoaderOptions training_loader_options(const TrainOptions& o, int64_t frames_per_input) {
  data::SpeechLoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.seed;
  lo.spec_augment = o.spec_augment;
  lo.bucket_by_length = o.bucket_by_length;
  lo.max_frames = o.max_frames / frames_per_input;
  lo.num_workers = static_cast<int>(o.loader_workers);
  return lo;
}

int64_t evaluation_batch_frames(const TrainOptions& o, int64_t frames_per_input) {
  const data::SpeechLoaderOptions lo = training_loader_options(o, frames_per_input);
  return lo.max_frames > 0 ? lo.batch_size * lo.max_frames : 0;
}

SpeechTextData prepare_speech_text_data(const TrainOptions& o, const FrozenTextTower& text,
                                        std::ostream& log) {
  ensure_corpus(o, log);
  SpeechTextData d;
  d.corpus = o.corpus;
  const fs::path feature_dir = o.feature_cache.empty() ? d.corpus / "features" : fs::path(o.feature_cache);
  const fs::path text_dir = d.corpus / "text_embeddings";
  const FrontEnd fbank = front_end_of(o);
  d.train = load_split(d.corpus, "train", feature_dir, fbank, log);
  d.valid = load_split(d.corpus, "valid", feature_dir, fbank, log);
  d.intent = load_split(d.corpus, "intent_test", feature_dir, fbank, log);
  d.kws = load_split(d.corpus, "kws_test", feature_dir, fbank, log);
  d.retrieval = load_split(d.corpus, "retrieval_test", feature_dir, fbank, log);

  const data::LabelTable intents = data::read_label_table(d.corpus / "intents.tsv");
  const data::LabelTable keywords = data::read_label_table(d.corpus / "keywords.tsv");
  std::vector<std::string> il, in, idesc, kl, kn;
  for (int64_t i = 0; i < intents.size(); ++i) {
    il.push_back(intents.get(i, "label"));
    in.push_back(intents.get(i, "name"));
    idesc.push_back(intents.get(i, "description"));
  }
  for (int64_t i = 0; i < keywords.size(); ++i) {
    kl.push_back(keywords.get(i, "label"));
    kn.push_back(keywords.get(i, "keyword"));
  }
  attach_labels(d.intent, il);
  attach_labels(d.kws, kl);

  auto embed = [&](const SpeechSplit& s) {
    const CachedEmbeddings e = embed_with_cache(text, transcripts(s), text_dir, s.name);
    log << "data: frozen text embeddings of " << s.name << ": " << shape_str(e.embeddings.shape()) << ", "
        << (e.from_cache ? "cached" : "computed") << " (" << e.seconds << " s)\n";
    return e.embeddings;
  };
  const CachedEmbeddingRows train = embed_rows_with_cache(text, transcripts(d.train), text_dir, d.train.name);
  if (!train.repaired.empty())
    log << "data: frozen text embeddings: " << train.repaired << "; recomputed from that shard on\n";
  d.train_text = train.table;
  log << "data: frozen text embeddings of " << d.train.name << ": (" << d.train_text.size() << ", "
      << d.train_text.dim() << "), " << (train.from_cache ? "cached" : "computed") << " (" << train.seconds
      << " s; " << d.train_text.distinct() << " distinct transcripts in "
      << d.train_text.shards().num_shards() << " shard(s), read by rows)\n";
  d.valid_text = embed(d.valid);
  d.retrieval_text = embed(d.retrieval);
  d.intent_classes = make_prompts(text, il, in, idesc, intent_templates(), text_dir, "intent_prompts");
  d.kws_classes = make_prompts(text, kl, kn, std::vector<std::string>(kn.size()), keyword_templates(),
                               text_dir, "keyword_prompts");
  log << "data: " << il.size() << " intents x " << intent_templates().size() << " templates, " << kl.size()
      << " keywords x " << keyword_templates().size() << " templates\n";
  return d;
}

}  // namespace cw::train
