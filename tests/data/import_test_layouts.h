// Tiny fake copies of the public speech corpora in the layouts they ship in, written by the
// importer tests (tests/data/import_*_test.cpp) and the recipe test (tests/train/): LibriSpeech,
// Common Voice, SLURP, Speech Commands v2 and Fluent Speech Commands, each a few files with the
// real names, formats (FLAC, MP3, WAV, written with libsndfile) and quirks (nested folders, a
// missing transcript, an unreadable or truncated file, non-ASCII text, quoted CSV fields, the
// background-noise folder). What each layout holds is listed in its function's comment, so the
// tests can state what the importer must keep and drop.
#pragma once

#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace cw::test {

namespace fs = std::filesystem;

inline void write_layout_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A tone of its own pitch (from `seed`) with a wobbling loudness, `seconds` long at `rate` Hz,
// written in the format the file name says: .flac (FLAC 16-bit), .mp3 (MPEG layer III), else WAV
// 16-bit. libsndfile writes all three (MP3 through LAME since 1.1; Debian 12 ships 1.2).
inline void write_sound(const fs::path& path, double seconds, int seed, int rate = 16000) {
  fs::create_directories(path.parent_path());
  const auto n = static_cast<int64_t>(seconds * rate);
  std::vector<float> x(static_cast<size_t>(n));
  const double freq = 180.0 * std::pow(1.12, seed % 20), mod = 2.0 + seed % 5;
  for (int64_t k = 0; k < n; ++k) {
    const double t = static_cast<double>(k) / rate;
    x[static_cast<size_t>(k)] =
        static_cast<float>(0.3 * (0.6 + 0.4 * std::sin(2 * std::numbers::pi * mod * t)) *
                           std::sin(2 * std::numbers::pi * freq * t));
  }
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  const std::string ext = path.extension().string();
  info.format = ext == ".flac"  ? SF_FORMAT_FLAC | SF_FORMAT_PCM_16
                : ext == ".mp3" ? SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III
                                : SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (f == nullptr)
    throw std::runtime_error("write_sound: cannot write " + path.string() + ": " + sf_strerror(nullptr));
  sf_writef_float(f, x.data(), n);
  sf_close(f);
}

// A file with an audio name that is not audio.
inline void write_not_audio(const fs::path& path) { write_layout_text(path, "this is not a sound file\n"); }

// A WAV whose data stops halfway (a download cut short): its header still opens.
inline void write_truncated_wav(const fs::path& path, double seconds, int seed) {
  write_sound(path, seconds, seed);
  fs::resize_file(path, fs::file_size(path) / 2);
}

// LibriSpeech: <root>/LibriSpeech/{train-clean-100,dev-clean,test-clean,dev-other}/<spk>/<ch>/
// with <spk>-<ch>.trans.txt (upper case) and FLACs. train-clean-100: `train` good utterances over
// two speakers (nested chapters), plus one FLAC with no transcript line, one transcript line whose
// FLAC is missing, one FLAC that is not audio, one malformed line ("BADLINE"). dev-clean: 2 good;
// test-clean: 3 good, two of them reading the same sentence; dev-other: 1 (not in the plan).
// train-clean-360 / train-other-500 are absent.
inline const std::vector<std::string>& layout_sentences() {
  static const std::vector<std::string> s = {
      "THE CAT SAT ON THE MAT",       "A SHIP SAILED INTO THE HARBOUR", "SHE READ THE LETTER TWICE",
      "THE RAIN FELL ALL NIGHT",      "HE OPENED THE OLD WOODEN DOOR",  "BIRDS SANG IN THE GARDEN",
      "THE TRAIN WAS LATE AGAIN",     "THEY WALKED ALONG THE RIVER",    "THE CANDLE BURNED LOW",
      "A DOG BARKED IN THE DISTANCE", "THE CHILDREN LAUGHED LOUDLY",    "HE WROTE A LONG BOOK",
      "THE WIND SHOOK THE TREES",     "SNOW COVERED THE HILLS",         "THE BELL RANG AT NOON",
      "SHE PAINTED THE SKY BLUE",     "THE KING RODE TO WAR",           "A STAR FELL FROM THE SKY",
  };
  return s;
}

inline void write_librispeech(const fs::path& root, int train = 6) {
  const fs::path ls = root / "LibriSpeech";
  int seed = 0;
  auto chapter = [&](const std::string& subset, const std::string& spk, const std::string& ch, int count,
                     int first_sentence) {
    const fs::path dir = ls / subset / spk / ch;
    std::string trans;
    for (int k = 0; k < count; ++k) {
      const std::string utt =
          spk + "-" + ch + "-" + std::string(4 - std::to_string(k).size(), '0') + std::to_string(k);
      write_sound(dir / (utt + ".flac"), 0.6 + 0.05 * k, seed++);
      trans += utt + " " +
               layout_sentences()[static_cast<size_t>(first_sentence + k) % layout_sentences().size()] + "\n";
    }
    write_layout_text(dir / (spk + "-" + ch + ".trans.txt"), trans);
    return dir;
  };
  const int half = train / 2;
  chapter("train-clean-100", "103", "1240", half, 0);
  const fs::path quirky = chapter("train-clean-100", "1034", "121119", train - half, half);
  // The quirks, in the second chapter: appended lines and extra files.
  std::ofstream(quirky / "1034-121119.trans.txt", std::ios::app)
      << "1034-121119-0090 THIS FLAC IS MISSING\n"
      << "BADLINE\n"
      << "1034-121119-0092 THIS FLAC IS NOT AUDIO\n";
  write_not_audio(quirky / "1034-121119-0092.flac");
  write_sound(quirky / "1034-121119-0091.flac", 0.7, seed++);  // no transcript line
  chapter("dev-clean", "84", "121123", 2, 12);
  chapter("test-clean", "61", "70968", 2, 14);
  // A second speaker reading the first test sentence again: once in the retrieval test.
  write_sound(ls / "test-clean" / "121" / "121726" / "121-121726-0000.flac", 0.8, seed++);
  write_layout_text(ls / "test-clean" / "121" / "121726" / "121-121726.trans.txt",
                    "121-121726-0000 " + layout_sentences()[14] + "\n");
  chapter("dev-other", "116", "288045", 1, 16);
}

// Common Voice: <root>/{clips/*.mp3, train.tsv, dev.tsv, test.tsv, validated.tsv} with the
// current header. train.tsv: 4 rows: 2 good (one French with accents, one with quotes), one with
// an empty sentence, one whose MP3 is missing. dev.tsv: 2 good. test.tsv: 1. validated.tsv: the
// train and dev rows again plus 1 more clip of a dev sentence and 1 new good clip.
inline void write_common_voice(const fs::path& root) {
  const std::string header =
      "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_"
      "votes\tage\tgender\taccents\tvariant\t"
      "locale\tsegment\n";
  auto row = [](const std::string& client, const std::string& clip, const std::string& sentence) {
    return client + "\t" + clip + "\tsid\t" + sentence + "\t\t2\t0\t\t\t\t\ten\t\n";
  };
  const std::string train =
      row("a1b2c3d4e5f60718293a4b5c6d7e8f90", "common_voice_en_100.mp3", "Ça va très bien, merci.") +
      row("a1b2c3d4e5f60718293a4b5c6d7e8f90", "common_voice_en_101.mp3",
          "\"Hello,\" she said, \"how are you?\"") +
      row("ffeeddccbbaa99887766554433221100", "common_voice_en_102.mp3", "") +
      row("ffeeddccbbaa99887766554433221100", "common_voice_en_103.mp3", "The clip of this row is missing.");
  const std::string dev =
      row("0123456789abcdef0123456789abcdef", "common_voice_en_200.mp3", "Where is the station?") +
      row("0123456789abcdef0123456789abcdef", "common_voice_en_201.mp3", "It is time to go home.");
  write_layout_text(root / "train.tsv", header + train);
  write_layout_text(root / "dev.tsv", header + dev);
  write_layout_text(root / "test.tsv",
                    header + row("99", "common_voice_en_300.mp3", "A test sentence stays unseen."));
  write_layout_text(root / "validated.tsv",
                    header + train + dev + row("77", "common_voice_en_202.mp3", "Where is the station?") +
                        row("77", "common_voice_en_400.mp3", "One more validated sentence."));
  int seed = 40;
  for (const char* clip : {"100", "101", "102", "200", "201", "202", "300", "400"})
    write_sound(root / "clips" / (std::string("common_voice_en_") + clip + ".mp3"), 0.8, seed++, 48000);
}

// SLURP: <root>/dataset/slurp/test.jsonl and <root>/audio/slurp_real/*.flac. Records: alarm_set
// with two recordings (headset and far), iot_hue_lightoff (one), play_music with a non-ASCII
// sentence (one), weather_query whose recording is missing, a malformed JSON line; 4 recordings
// kept, 3 intents heard.
inline void write_slurp(const fs::path& root) {
  const fs::path audio = root / "audio" / "slurp_real";
  write_layout_text(
      root / "dataset" / "slurp" / "test.jsonl",
      R"({"slurp_id": 1, "sentence": "wake me up at seven am", "scenario": "alarm", "action": "set", "intent": "alarm_set", "recordings": [{"file": "audio-1490200477-headset.flac", "wer": 0.0}, {"file": "audio-1490200477.flac", "wer": 0.1}]})"
      "\n"
      R"({"slurp_id": 2, "sentence": "turn the lights off", "scenario": "iot", "action": "hue_lightoff", "recordings": [{"file": "audio-1490201111-headset.flac"}]})"
      "\n"
      R"({"slurp_id": 3, "sentence": "play beyoncé in the café", "scenario": "play", "action": "music", "recordings": [{"file": "audio-1490202222.flac"}]})"
      "\n"
      R"({"slurp_id": 4, "sentence": "is it going to rain", "scenario": "weather", "action": "query", "recordings": [{"file": "audio-1490203333.flac"}]})"
      "\n"
      R"({"slurp_id": 5, "sentence": "broken)"
      "\n");
  int seed = 60;
  for (const char* f :
       {"audio-1490200477-headset", "audio-1490200477", "audio-1490201111-headset", "audio-1490202222"})
    write_sound(audio / (std::string(f) + ".flac"), 1.1, seed++);
}

// Speech Commands v2: <root>/{yes,no,stop}/<spk>_nohash_<n>.wav, _background_noise_/ (two long
// noise files), testing_list.txt and validation_list.txt. testing_list: yes x2, no x1, stop x1
// good, one truncated WAV (no/...), one listed file that is missing; 4 good rows (5 with headers
// only: the truncated file opens).
inline void write_speech_commands(const fs::path& root) {
  int seed = 80;
  for (const char* f :
       {"yes/0a7c2a8d_nohash_0.wav", "yes/0b09edd3_nohash_1.wav", "no/0a7c2a8d_nohash_0.wav",
        "stop/c1d39ce8_nohash_2.wav", "stop/0a7c2a8d_nohash_0.wav", "no/1b4c9b89_nohash_3.wav"})
    write_sound(root / f, 1.0, seed++);
  write_truncated_wav(root / "no" / "9ff2d2f4_nohash_0.wav", 1.0, seed++);
  write_sound(root / "_background_noise_" / "white_noise.wav", 3.0, seed++);
  write_sound(root / "_background_noise_" / "running_tap.wav", 3.0, seed++);
  write_layout_text(root / "testing_list.txt",
                    "yes/0a7c2a8d_nohash_0.wav\nyes/0b09edd3_nohash_1.wav\nno/0a7c2a8d_nohash_0.wav\n"
                    "stop/c1d39ce8_nohash_2.wav\nno/9ff2d2f4_nohash_0.wav\nstop/deadbeef_nohash_0.wav\n");
  write_layout_text(root / "validation_list.txt", "stop/0a7c2a8d_nohash_0.wav\nno/1b4c9b89_nohash_3.wav\n");
  write_layout_text(root / "LICENSE", "CC BY 4.0\n");
}

// Fluent Speech Commands: <root>/data/test_data.csv (pandas' unnamed index column, a quoted
// transcription with a comma) and <root>/wavs/speakers/<spk>/<uuid>.wav. 4 rows: 3 good over 3
// intents (one of them "change language"), 1 whose WAV is missing.
inline void write_fsc(const fs::path& root) {
  const std::string spk1 = "2BqVo8kVB2Skwgyb", spk2 = "4aGjX3AG5xcxeL7a";
  write_layout_text(root / "data" / "test_data.csv",
                    ",path,speakerId,transcription,action,object,location\n"
                    "0,wavs/speakers/" +
                        spk1 + "/0a3129c0-4474-11e9-a9a5-5dbec3b8816a.wav," + spk1 +
                        ",\"Turn the heat up, please\",increase,heat,kitchen\n"
                        "1,wavs/speakers/" +
                        spk1 + "/0ee42a80-4474-11e9-a9a5-5dbec3b8816a.wav," + spk1 +
                        ",Switch on the lights,activate,lights,none\n"
                        "2,wavs/speakers/" +
                        spk2 + "/1c5a8c70-4474-11e9-a9a5-5dbec3b8816a.wav," + spk2 +
                        ",Use Chinese,change language,Chinese,none\n"
                        "3,wavs/speakers/" +
                        spk2 + "/ffffffff-4474-11e9-a9a5-5dbec3b8816a.wav," + spk2 +
                        ",Lights off,deactivate,lights,none\n");
  int seed = 100;
  write_sound(root / "wavs" / "speakers" / spk1 / "0a3129c0-4474-11e9-a9a5-5dbec3b8816a.wav", 1.5, seed++);
  write_sound(root / "wavs" / "speakers" / spk1 / "0ee42a80-4474-11e9-a9a5-5dbec3b8816a.wav", 1.4, seed++);
  write_sound(root / "wavs" / "speakers" / spk2 / "1c5a8c70-4474-11e9-a9a5-5dbec3b8816a.wav", 1.3, seed++);
}

}  // namespace cw::test
