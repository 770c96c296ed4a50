// One trained tower written as a folder a PyTorch user loads directly: config.json and
// model.safetensors under the upstream library's names (the rename tables of
// models/export_names.h). What `eval --export` (run_export.h) writes per tower. Each writer
// fills an existing, empty folder; the caller makes the whole export appear at once. Part of train/.
//
//   Whisper tower   -> Hugging Face WhisperModel folder, "encoder.*" only (config.json with the
//                      encoder's sizes; WhisperModel.from_pretrained reports the decoder as newly
//                      initialized). Our read_whisper_hf reads it back.
//   Conformer tower -> torchaudio.models.Conformer's state dict (model.safetensors), ESPnet's
//                      Conv2dSubsampling (frontend.safetensors), config.json with both
//                      constructors' arguments and the front end's features.
//   text tower      -> a sentence-transformers folder (BertModel weights, the source folder's
//                      tokenizer, pooling and normalization files). SentenceEncoder::load reads it.
//   ViT image tower -> Hugging Face ViTModel folder (config.json, model.safetensors,
//                      preprocessor_config.json with the tower's input normalization).
#pragma once

#include <filesystem>
#include <vector>

#include "data/audio_fbank.h"
#include "models/conformer.h"
#include "models/text_transformer.h"
#include "models/vit.h"
#include "models/whisper_encoder.h"

namespace cw::train {

// safetensors metadata transformers requires of a checkpoint it loads ({"format": "pt"}).
std::map<std::string, std::string> pytorch_metadata();

void export_whisper_encoder(const models::WhisperEncoder& encoder, const std::filesystem::path& dir);

// fbank: the Kaldi filterbank the tower's features come from (per-utterance CMVN after it).
void export_conformer(const models::Conformer& tower, const data::FbankOptions& fbank,
                      const std::filesystem::path& dir);

// source: the sentence-transformers (or Hugging Face BERT) folder the text tower started from; its
// files other than weights are copied, so the tokenizer and the pooling head travel with it.
void export_text_tower(const models::TextTransformer& text, const std::filesystem::path& source,
                       const std::filesystem::path& dir);

// mean, std: the tower's per-channel input normalization (of pixels in [0, 1]).
void export_vit(const models::VisionTransformer& vit, const std::vector<float>& mean,
                const std::vector<float>& std, const std::filesystem::path& dir);

}  // namespace cw::train
