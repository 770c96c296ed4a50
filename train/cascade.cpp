// The ASR cascade baseline (see cascade.h).
#include "train/cascade.h"

#include <fstream>
#include <map>
#include <ostream>

#include "core/error.h"
#include "core/ops.h"
#include "data/audio_io.h"
#include "data/speech_manifest.h"
#include "models/whisper_transcriber.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace fs = std::filesystem;

namespace {

// The settings a transcript depends on: the weights file (name, size) and the search.
std::string decoder_key(const fs::path& whisper_dir, const models::WhisperDecodeOptions& d) {
  std::error_code ec;
  const fs::path weights =
      fs::exists(whisper_dir / "model.bin") ? whisper_dir / "model.bin" : whisper_dir / "model.safetensors";
  const std::string stamp = weights.filename().string() + std::to_string(fs::file_size(weights, ec)) +
                            "-beam" + std::to_string(d.beam_size) + "-lp" + std::to_string(d.length_penalty) +
                            "-max" + std::to_string(d.max_new_tokens);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(data::fnv1a64(stamp.data(), stamp.size())));
  return "whisper-beam" + std::to_string(d.beam_size) + "-" + std::string(hex, 10);
}

// The transcripts already in `file` (id -> text). A line cut by a killed process (no tab, or an
// id the split does not have) is dropped, and its utterance transcribed again.
std::map<std::string, std::string> read_kept(const fs::path& file) {
  std::map<std::string, std::string> kept;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    if (tab != std::string::npos && tab > 0) kept[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return kept;
}

// Transcripts of every row of `split`, in row order.
std::vector<std::string> transcribe_split(const SpeechSplit& split, const models::WhisperTranscriber& asr,
                                          const models::WhisperTranscribeOptions& options,
                                          const fs::path& file, std::ostream& log) {
  const auto& rows = split.manifest().utterances();
  std::map<std::string, std::string> kept = read_kept(file);
  std::vector<int64_t> todo;
  for (size_t i = 0; i < rows.size(); ++i)
    if (!kept.count(rows[i].id)) todo.push_back(static_cast<int64_t>(i));
  log << "cascade: " << split.name << ": " << rows.size() - todo.size() << " of " << rows.size()
      << " transcripts kept in " << file.string() << "\n"
      << std::flush;
  std::ofstream out(file, std::ios::app);
  CW_CHECK(out.good(), Error, "cascade: cannot write '", file.string(), "'");
  const auto t0 = Clock::now();
  constexpr size_t kBatch = 8;  // utterances per transcribe call (one 30 s window each)
  for (size_t b = 0; b < todo.size(); b += kBatch) {
    std::vector<std::vector<float>> audio;
    const size_t end = std::min(todo.size(), b + kBatch);
    for (size_t k = b; k < end; ++k)
      audio.push_back(data::load_audio(rows[static_cast<size_t>(todo[k])].audio).samples);
    const std::vector<std::string> texts = asr.transcribe(audio, options);
    for (size_t k = b; k < end; ++k) {
      const auto& u = rows[static_cast<size_t>(todo[k])];
      std::string t = texts[k - b];
      for (char& c : t)
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';  // the file is TSV
      kept[u.id] = t;
      out << u.id << '\t' << t << '\n';
    }
    out.flush();
    const double s = seconds_since(t0);
    if (end == todo.size() || (b / kBatch) % 8 == 7)
      log << "cascade: " << split.name << ": " << end << "/" << todo.size() << " transcribed (" << s / end
          << " s per utterance, ETA " << static_cast<int64_t>(s / end * (todo.size() - end)) << " s)\n"
          << std::flush;
  }
  std::vector<std::string> texts;
  for (const auto& u : rows) texts.push_back(kept.at(u.id));
  return texts;
}

}  // namespace

CascadeResult evaluate_cascade(const SpeechTextData& data, const FrozenTextTower& text,
                               const fs::path& whisper_dir, const models::WhisperDecodeOptions& decode,
                               std::ostream& log) {
  const models::WhisperTranscriber asr(whisper_dir);
  models::WhisperTranscribeOptions options;
  options.decode = decode;
  const fs::path dir = data.corpus / "transcripts";
  fs::create_directories(dir);
  const std::string key = decoder_key(whisper_dir, decode);

  CascadeResult result;
  std::map<std::string, Tensor> embedded;  // split name -> (N, D) text embeddings of its transcripts
  std::vector<std::string> all_hyp, all_ref;
  for (const SpeechSplit* s : {&data.intent, &data.kws, &data.retrieval}) {
    const fs::path file = dir / (s->name + "-" + key + ".tsv");
    const std::vector<std::string> hyp = transcribe_split(*s, asr, options, file, log);
    for (size_t i = 0; i < hyp.size(); ++i) {
      all_hyp.push_back(hyp[i]);
      all_ref.push_back(s->manifest()[static_cast<int64_t>(i)].transcript);
    }
    embedded[s->name] =
        embed_with_cache(text, hyp, data.corpus / "text_embeddings", s->name + "_" + key).embeddings;
    result.transcript_files.push_back(file);
  }
  result.word_errors = word_errors(all_hyp, all_ref);
  result.eval = evaluate_embeddings(data, [&](const SpeechSplit& s, const std::vector<int64_t>& rows) {
    return ops::index_select(embedded.at(s.name), 0,
                             ops::from_vector(rows, {static_cast<int64_t>(rows.size())}));
  });
  return result;
}

}  // namespace cw::train
