// The pretrained speech tower file: what `train --task speech_asr` writes and what
// `--model.speech_init` starts a speech-text run from. A safetensors file with every tensor of
// the Conformer except its projection head (proj.*: the speech-text run's own, fitted to the
// frozen text tower's width; recognition never trains it), plus metadata: the format tag, the
// Conformer's shape (checked against the run's before anything loads, so a mismatch names the
// field rather than a tensor), the CTC character vocabulary, steps and validation CER. Part of
// train/.
#pragma once

#include <filesystem>
#include <string>

#include "models/conformer.h"
#include "train/char_vocab.h"

namespace cw::train {

// Writes atomically (safetensors' temp file + rename); tensors on a device are copied to the host.
void save_speech_tower(const std::filesystem::path& path, const models::Conformer& tower,
                       const CharVocab& vocab, int64_t steps, double valid_cer);

// Loads the file's weights into `tower` (everything but proj.*, which keeps its initialization).
// Throws ValueError naming the file: not a speech tower file, a different Conformer shape
// (n_mels, d_model, num_heads, ffn_dim, num_layers or conv_kernel_size, with both values), or a
// missing tensor. Returns the number of tensors loaded.
int64_t init_speech_tower(models::Conformer& tower, const std::filesystem::path& path);

}  // namespace cw::train
