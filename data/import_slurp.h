// Importer of SLURP (Bastianelli et al. 2020, github.com/pswietojanski/slurp) as the zero-shot
// speech-to-intent test: dataset/slurp/<split>.jsonl (one JSON object per line: sentence,
// scenario, action, recordings[{file}]) and the FLAC recordings of slurp_real (and slurp_synth,
// which only the synthetic training list names). Every recording of a listed sentence is one test
// row; its intent is scenario_action, SLURP's own intent label. intents.tsv lists the intents of
// the split with a class name and a description made from the scenario and action words (the only
// text a zero-shot model sees of a class). Part of data/.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/import_part.h"

namespace cw::data {

struct SlurpOptions {
  std::string split = "test";  // dataset/slurp/<split>.jsonl: test, devel (train is for training)
  // Folders searched for a recording, in order; empty: <root>/audio/slurp_real, <root>/slurp_real,
  // <root>/audio/slurp_synth, <root>/slurp_synth (where the archives and SLURP's script put them).
  std::vector<std::filesystem::path> audio_dirs;
};

// Rows: id "slurp-<recording file stem>", voice "slurp:<recording session>:human", label
// scenario_action. Dropped: a malformed JSON line, a record without sentence / scenario / action,
// a recording missing or unreadable, an empty or non-UTF-8 sentence.
ImportPart import_slurp(const ImportOptions& o, const SlurpOptions& so = {});

// SLURP's fused intent words as a class name and a description: "iot_hue_lightoff" ->
// {"smart home lights off", "a request to the smart home assistant: lights off"}. Unknown words are
// kept as they are, with '_' as a space.
std::pair<std::string, std::string> slurp_intent_text(const std::string& scenario, const std::string& action);

}  // namespace cw::data
