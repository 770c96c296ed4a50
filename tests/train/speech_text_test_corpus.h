// A miniature speech-text corpus in the layout of tools/make_speech_corpus.py, written by the
// training-run tests in a scratch folder: 24 training utterances of distinct synthetic sounds
// (amplitude-modulated tones, each at its own pitch and rate) paired with distinct sentences, and
// a few rows of every benchmark split, so `train` can run end to end in seconds.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include "data/audio_io.h"
#include "data/speech_test_corpus.h"

namespace cw::test {

// One utterance: a tone of `freq` Hz whose loudness swings `mod_hz` times a second, over a little
// seeded noise, at 16 kHz.
inline std::vector<float> synthetic_sound(double freq, double mod_hz, double seconds, uint32_t seed) {
  const int64_t rate = 16000;
  const auto n = static_cast<int64_t>(seconds * rate);
  std::vector<float> x(static_cast<size_t>(n));
  uint32_t state = seed * 2654435761u + 1u;
  for (int64_t k = 0; k < n; ++k) {
    const double t = static_cast<double>(k) / rate;
    state = state * 1664525u + 1013904223u;
    const double noise = ((state >> 8) * (1.0 / 16777216.0) - 0.5) * 0.02;
    const double envelope = 0.55 + 0.45 * std::sin(2 * std::numbers::pi * mod_hz * t);
    x[static_cast<size_t>(k)] =
        static_cast<float>(0.4 * envelope * std::sin(2 * std::numbers::pi * freq * t) + noise);
  }
  return x;
}

struct TestRow {
  std::string transcript, voice, label;
};

// Writes <corpus>/<split>.tsv and its WAVs; the k-th row's sound is synthetic_sound number
// first_sound + k (pitch 200 Hz * 1.15^n, modulation 2 + n % 5 Hz), 0.5 + 0.02 * (n % 6) s long.
inline void write_split(const fs::path& corpus, const std::string& split, const std::vector<TestRow>& rows,
                        int first_sound) {
  std::string tsv = kManifestHeader;
  for (size_t k = 0; k < rows.size(); ++k) {
    const int n = first_sound + static_cast<int>(k);
    const double seconds = 0.5 + 0.02 * (n % 6);
    const std::string id = split + "-" + std::to_string(100000 + k).substr(1);
    const std::string rel = "audio/" + split + "/" + id + ".wav";
    fs::create_directories(corpus / "audio" / split);
    data::write_audio(corpus / rel, synthetic_sound(200.0 * std::pow(1.15, n % 24), 2.0 + n % 5, seconds, n),
                      1, 16000, data::SampleFormat::PCM_16);
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.3f", seconds);
    tsv += id + "\t" + rel + "\t" + rows[k].transcript + "\t" + rows[k].voice + "\t" + dur + "\t" + split +
           "\t" + rows[k].label + "\n";
  }
  write_text(corpus / (split + ".tsv"), tsv);
}

// The whole corpus under `corpus`: train (24 rows), valid (4), intent_test (6, 3 intents),
// kws_test (6, 3 keywords, 2 spoken by a "human" voice), retrieval_test (6), intents.tsv,
// keywords.tsv and corpus.json (the completion record the trainer looks for).
inline void write_speech_text_corpus(const fs::path& corpus) {
  const std::vector<std::string> sentences = {
      "turn on the kitchen lights",
      "what is the weather tomorrow",
      "play some jazz music",
      "set an alarm for seven am",
      "call my mother",
      "how far is the moon",
      "order a large pizza",
      "read me the news",
      "turn the volume down",
      "remind me to buy milk",
      "what time is it in tokyo",
      "open the garage door",
      "tell me a joke",
      "book a table for two",
      "start the vacuum cleaner",
      "how many calories in an apple",
      "send an email to my boss",
      "dim the bedroom lights",
      "what is on my calendar today",
      "play the next song",
      "is it going to rain",
      "translate hello into french",
      "find a nearby gas station",
      "stop the timer",
  };
  std::vector<TestRow> train;
  for (size_t i = 0; i < sentences.size(); ++i)
    train.push_back({sentences[i], "espeak:en-us+m" + std::to_string(i % 4), ""});
  write_split(corpus, "train", train, 0);
  write_split(corpus, "valid",
              {{"switch off the lamp", "flite:kal", ""},
               {"what is the forecast", "flite:kal", ""},
               {"put on some music", "flite:kal", ""},
               {"wake me at six", "flite:kal", ""}},
              2);
  write_split(corpus, "intent_test",
              {{"wake me up at eight", "espeak:en-gb", "alarm_set"},
               {"play something relaxing", "espeak:en-gb", "play_music"},
               {"will it be sunny", "espeak:en-gb", "weather_query"},
               {"set my alarm", "festival:kal", "alarm_set"},
               {"i want to hear rock", "festival:kal", "play_music"},
               {"how cold is it outside", "festival:kal", "weather_query"}},
              5);
  write_split(corpus, "kws_test",
              {{"yes", "espeak:en-us", "yes"},
               {"no", "espeak:en-us", "no"},
               {"stop", "espeak:en-us", "stop"},
               {"yes", "flite:kal", "yes"},
               {"no", "asterisk:human", "no"},
               {"stop", "asterisk:human", "stop"}},
              11);
  write_split(corpus, "retrieval_test",
              {{"turn on the hallway lights", "espeak:en-gb", ""},
               {"what is the weather in paris", "espeak:en-gb", ""},
               {"play some classical music", "festival:kal", ""},
               {"call my brother", "festival:kal", ""},
               {"order sushi for dinner", "flite:kal", ""},
               {"remind me to water the plants", "flite:kal", ""}},
              17);
  write_text(corpus / "intents.tsv",
             "label\tscenario\tname\tdescription\n"
             "alarm_set\talarm\tset alarm\tset an alarm for a given time\n"
             "play_music\tmusic\tplay music\tstart playing a song or genre\n"
             "weather_query\tweather\tweather\task about the weather forecast\n");
  write_text(corpus / "keywords.tsv", "label\tkeyword\nyes\tyes\nno\tno\nstop\tstop\n");
  write_text(corpus / "corpus.json", "{\"size\": \"test\", \"complete\": true}\n");
}

}  // namespace cw::test
