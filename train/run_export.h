// `eval --run R --export DIR`: a run's checkpoint (finished or in progress) written for PyTorch
// users, every tower under its upstream library's names (tower_export.h, models/export_names.h):
//
//   DIR/speech/            speech-text and speech_asr runs: the speech tower (Whisper -> HF
//                          WhisperModel folder; Conformer -> torchaudio Conformer + ESPnet front end)
//   DIR/text/, DIR/image/  image-text runs: the trained text tower (sentence-transformers folder)
//                          and the frozen ViT (HF ViTModel folder)
//   DIR/heads.safetensors  what sits on top of the towers: the projection (speech_proj or
//                          text_proj) and logit_scale; a speech_asr run's CTC head (ctc_head) with
//                          its character vocabulary in the metadata
//   DIR/export.json        run, checkpoint, step, task, towers and their upstream classes
//   DIR/README.txt         how to load each part in PyTorch, in a few lines of Python
//
// Everything is written into DIR.tmp-<pid> beside DIR and renamed to DIR at the end, so DIR
// appears whole or not at all; an existing DIR is never touched (export into a new name). Part of
// train/.
#pragma once

#include <filesystem>
#include <iosfwd>

namespace cw::train {

// checkpoint: a step folder, or empty for the run's latest. Throws cw::Error (ValueError for a
// run folder without config.ini or checkpoint, naming it; Error for an existing or unwritable
// DIR) and leaves nothing behind. Returns DIR.
std::filesystem::path export_run(const std::filesystem::path& run_dir,
                                 const std::filesystem::path& checkpoint,
                                 const std::filesystem::path& out_dir, std::ostream& log);

}  // namespace cw::train
