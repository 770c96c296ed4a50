// Tower folders under upstream names (see tower_export.h). The names come from
// models/export_names.h alone; this file adds the configuration each library's loader reads.
#include "train/tower_export.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "models/export_names.h"

namespace cw::train {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// A state dict as the file holds it: on the host, contiguous, f32 where it is floating point
// (checkpoints are f32 already; an f64 test model is written as PyTorch's default dtype).
std::map<std::string, Tensor> host_f32(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : state) {
    Tensor h = t.to(Device::cpu());
    if (h.dtype() == DType::F64) h = h.to(DType::F32);
    out[name] = h.contiguous();
  }
  return out;
}

void write_json(const fs::path& path, const ordered_json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

const char* window_name(data::FbankWindow w) {
  switch (w) {
    case data::FbankWindow::Hann: return "hanning";
    case data::FbankWindow::Povey: return "povey";
    case data::FbankWindow::Hamming: return "hamming";
    case data::FbankWindow::Rectangular: return "rectangular";
  }
  return "hanning";
}

}  // namespace

std::map<std::string, std::string> pytorch_metadata() { return {{"format", "pt"}}; }

void export_whisper_encoder(const models::WhisperEncoder& encoder, const fs::path& dir) {
  const models::WhisperEncoderConfig& c = encoder.config;
  save_safetensors((dir / "model.safetensors").string(),
                   host_f32(models::to_upstream(models::hf_whisper_encoder_names(), encoder.state_dict())),
                   pytorch_metadata());
  // A WhisperConfig: the encoder's sizes as they are, the decoder's set equal to the encoder's
  // (no decoder is exported; transformers builds one at random and says so). Dropouts are 0: the
  // tower was trained without them.
  ordered_json j;
  j["architectures"] = {"WhisperModel"};
  j["model_type"] = "whisper";
  j["num_mel_bins"] = c.n_mels;
  j["d_model"] = c.d_model;
  j["encoder_layers"] = c.num_layers;
  j["encoder_attention_heads"] = c.num_heads;
  j["encoder_ffn_dim"] = c.ffn_dim;
  j["max_source_positions"] = c.max_positions;
  j["decoder_layers"] = c.num_layers;
  j["decoder_attention_heads"] = c.num_heads;
  j["decoder_ffn_dim"] = c.ffn_dim;
  j["activation_function"] = "gelu";
  j["dropout"] = 0.0;
  j["attention_dropout"] = 0.0;
  j["activation_dropout"] = 0.0;
  j["scale_embedding"] = false;
  j["torch_dtype"] = "float32";
  write_json(dir / "config.json", j);
}

void export_conformer(const models::Conformer& tower, const data::FbankOptions& fbank, const fs::path& dir) {
  const models::ConformerConfig& c = tower.config;
  const std::map<std::string, Tensor> state = tower.state_dict();
  save_safetensors((dir / "model.safetensors").string(),
                   host_f32(models::to_upstream(models::torchaudio_conformer_names(), state)),
                   pytorch_metadata());
  save_safetensors((dir / "frontend.safetensors").string(),
                   host_f32(models::to_upstream(models::espnet_subsampling_names(), state)),
                   pytorch_metadata());
  ordered_json j;
  j["architecture"] = "torchaudio.models.Conformer";
  // torchaudio.models.Conformer(**j["conformer"]) builds the module model.safetensors loads into.
  j["conformer"] = {{"input_dim", c.d_model},
                    {"num_heads", c.num_heads},
                    {"ffn_dim", c.ffn_dim},
                    {"num_layers", c.num_layers},
                    {"depthwise_conv_kernel_size", c.conv_kernel_size},
                    {"dropout", c.dropout},
                    {"use_group_norm", false},
                    {"convolution_first", false}};
  // ESPnet's Conv2dSubsampling(idim, odim, dropout_rate) with its PositionalEncoding: frames
  // (B, T, idim) -> two 3x3 stride-2 convs + ReLU -> Linear -> x * sqrt(odim) + sinusoids.
  j["frontend"] = {
      {"class", "espnet Conv2dSubsampling"},
      {"file", "frontend.safetensors"},
      {"idim", c.n_mels},
      {"odim", c.d_model},
      {"positions", "x * sqrt(odim) + pe, pe[t, 2i] = sin(t / 10000^(2i/odim)), pe[t, 2i+1] = cos(...)"}};
  // torchaudio.compliance.kaldi.fbank(waveform * input_scale, **j["features"]["fbank"]), then
  // per-utterance mean and variance normalization.
  j["features"] = {{"fbank",
                    {{"num_mel_bins", fbank.num_mel_bins},
                     {"frame_length", fbank.frame_length_ms},
                     {"frame_shift", fbank.frame_shift_ms},
                     {"dither", 0.0},
                     {"window_type", window_name(fbank.window)},
                     {"preemphasis_coefficient", fbank.preemphasis},
                     {"remove_dc_offset", fbank.remove_dc_offset},
                     {"low_freq", fbank.low_freq},
                     {"high_freq", fbank.high_freq},
                     {"sample_frequency", fbank.sample_rate},
                     {"snip_edges", true},
                     {"round_to_power_of_two", fbank.round_to_power_of_two},
                     {"use_power", fbank.use_power},
                     {"use_log_fbank", true},
                     {"use_energy", false}}},
                   {"input_scale", fbank.input_scale},
                   {"cmvn", "per utterance: (x - mean) / sqrt(var + 1e-5), biased variance over frames"}};
  j["pooling"] = "mean over the real frames after subsampling (lengths: ((T - 1) // 2 - 1) // 2)";
  write_json(dir / "config.json", j);
}

void export_text_tower(const models::TextTransformer& text, const fs::path& source, const fs::path& dir) {
  CW_CHECK(fs::is_directory(source), Error, "text tower export: the source folder '", source.string(),
           "' is gone (its tokenizer and pooling files travel with the export)");
  // Everything of the source but its weights: config.json, the tokenizer, modules.json, 1_Pooling/...
  const auto is_weights = [](const fs::path& p) {
    const std::string ext = p.extension().string(), name = p.filename().string();
    return ext == ".safetensors" || ext == ".bin" || ext == ".h5" || ext == ".onnx" || ext == ".ot" ||
           ext == ".msgpack" || ext == ".tflite" || name.starts_with("openvino");
  };
  for (const auto& e : fs::recursive_directory_iterator(source)) {
    const fs::path rel = fs::relative(e.path(), source);
    if (rel.string().starts_with("onnx") || rel.string().starts_with("openvino") ||
        rel.string().starts_with("."))
      continue;
    if (e.is_directory()) {
      fs::create_directories(dir / rel);
    } else if (e.is_regular_file() && !is_weights(e.path())) {
      fs::copy_file(e.path(), dir / rel, fs::copy_options::overwrite_existing);
    }
  }
  save_safetensors((dir / "model.safetensors").string(),
                   host_f32(models::to_upstream(models::hf_bert_names(), text.state_dict())),
                   pytorch_metadata());
}

void export_vit(const models::VisionTransformer& vit, const std::vector<float>& mean,
                const std::vector<float>& std, const fs::path& dir) {
  const models::ViTConfig& c = vit.config;
  CW_CHECK(c.representation_size == 0, ValueError, "ViT export: heads.pre_logits (representation_size ",
           c.representation_size, ") has no ViTModel counterpart");
  save_safetensors((dir / "model.safetensors").string(),
                   host_f32(models::to_upstream(models::hf_vit_names(), vit.state_dict())),
                   pytorch_metadata());
  ordered_json j;
  j["architectures"] = {"ViTModel"};
  j["model_type"] = "vit";
  j["hidden_size"] = c.hidden_dim;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["intermediate_size"] = c.mlp_dim;
  j["hidden_act"] = "gelu";  // erf GELU, as torchvision's MLPBlock
  j["hidden_dropout_prob"] = 0.0;
  j["attention_probs_dropout_prob"] = 0.0;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["image_size"] = c.image_size;
  j["patch_size"] = c.patch_size;
  j["num_channels"] = c.in_channels;
  j["qkv_bias"] = true;
  j["torch_dtype"] = "float32";
  // The tower's representation: last_hidden_state[:, 0] (class token) or the mean of the patch
  // tokens last_hidden_state[:, 1:] (ViTModel's pooler is not used: build it with
  // add_pooling_layer=False).
  j["cw_pooling"] = c.pooling == models::ViTPooling::ClassToken ? "class_token" : "mean_patch_tokens";
  write_json(dir / "config.json", j);
  // ViTImageProcessor: pixels / 255, then (x - mean) / std per channel, at the tower's size.
  ordered_json p;
  p["image_processor_type"] = "ViTImageProcessor";
  p["do_resize"] = true;
  p["size"] = {{"height", c.image_size}, {"width", c.image_size}};
  p["resample"] = 2;  // bilinear, as the image loader resizes
  p["do_rescale"] = true;
  p["rescale_factor"] = 1.0 / 255.0;
  p["do_normalize"] = true;
  p["image_mean"] = mean;
  p["image_std"] = std;
  write_json(dir / "preprocessor_config.json", p);
}

}  // namespace cw::train
