// `eval --export` (see run_export.h): rebuild a run's towers from its config.ini and checkpoint,
// without its corpus, and write them under upstream names.
#include "train/run_export.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/model_files.h"
#include "models/asr_model.h"
#include "models/export_names.h"
#include "models/image_text_model.h"
#include "models/whisper_encoder.h"
#include "train/checkpoint.h"
#include "train/image_options.h"
#include "train/image_tower.h"
#include "train/speech_model.h"
#include "train/tower_export.h"
#include "train/train_options.h"

namespace cw::train {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// What an export holds besides the tower folders.
struct Exported {
  std::map<std::string, Tensor> heads;
  std::map<std::string, std::string> heads_metadata = pytorch_metadata();
  ordered_json towers = ordered_json::object();  // folder -> upstream class
  std::string readme;                            // the task's part of README.txt
};

const Tensor& tensor_of(const LoadedCheckpoint& ck, const std::string& name) {
  const auto it = ck.model.find(name);
  CW_CHECK(it != ck.model.end(), ValueError, ck.path.string(), ": the checkpoint has no tensor '", name, "'");
  return it->second;
}

std::map<std::string, Tensor> host(std::map<std::string, Tensor> m) {
  for (auto& [name, t] : m) t = t.to(Device::cpu()).contiguous();
  return m;
}

void load_strict(nn::Module& m, const std::map<std::string, Tensor>& state, const LoadedCheckpoint& ck,
                 const std::string& what) {
  // Strict loading throws with every tensor at fault; the checkpoint's path and the tower say where.
  try {
    m.load_state_dict(state, true);
  } catch (const ValueError& e) {
    CW_CHECK(false, ValueError, ck.path.string(), " does not fit the run's ", what,
             " (config.ini and the checkpoint disagree): ", e.what());
  }
}

std::optional<fs::path> optional_path(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<fs::path>(s);
}

const char* kConformerReadme = R"(speech/: the Conformer speech tower (torchaudio 0.13+):

  import json, math, torch, torch.nn.functional as F, torchaudio
  from safetensors.torch import load_file
  cfg = json.load(open("speech/config.json"))
  conformer = torchaudio.models.Conformer(**cfg["conformer"]).eval()
  conformer.load_state_dict(load_file("speech/model.safetensors"))
  fe, heads = load_file("speech/frontend.safetensors"), load_file("heads.safetensors")
  wave, rate = torchaudio.load("a.wav")                      # mono, 16 kHz
  x = torchaudio.compliance.kaldi.fbank(wave * cfg["features"]["input_scale"], **cfg["features"]["fbank"])
  x = (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-5).sqrt()                  # (T, n_mels)
  h = F.relu(F.conv2d(x[None, None], fe["conv.0.weight"], fe["conv.0.bias"], stride=2))
  h = F.relu(F.conv2d(h, fe["conv.2.weight"], fe["conv.2.bias"], stride=2))
  b, c, t, f = h.shape
  h = F.linear(h.transpose(1, 2).reshape(b, t, c * f), fe["out.0.weight"], fe["out.0.bias"])
  d = h.shape[-1]
  angle = torch.arange(t)[:, None] * torch.exp(torch.arange(0, d, 2) * -(math.log(10000.0) / d))
  pe = torch.stack([angle.sin(), angle.cos()], -1).reshape(t, d)
  h, _ = conformer(h * math.sqrt(d) + pe, torch.tensor([t]))
  embedding = F.linear(h.mean(1), heads["speech_proj.weight"], heads["speech_proj.bias"])

A batch of several utterances needs their lengths and a mean over each one's real frames.
)";

const char* kWhisperReadme =
    R"(speech/: the Whisper encoder (transformers; a Hugging Face WhisperModel folder, encoder only:
from_pretrained reports the decoder as newly initialized). The tower runs on the utterance's own
log-mel frames, not a 30 s window, so call the encoder's modules (WhisperEncoder.forward insists
on 3000 frames):

  import torch, torch.nn.functional as F
  from safetensors.torch import load_file
  from transformers import WhisperModel, WhisperFeatureExtractor
  enc = WhisperModel.from_pretrained("speech").encoder.eval()
  heads = load_file("heads.safetensors")
  fx = WhisperFeatureExtractor(feature_size=enc.config.num_mel_bins)
  mel = torch.from_numpy(fx(audio_16k, sampling_rate=16000, padding="longest",
                            return_tensors="np").input_features)             # (1, n_mels, T)
  h = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2)           # (1, T', d)
  h = h + enc.embed_positions.weight[: h.shape[1]]
  for layer in enc.layers:
      h = layer(h, None, layer_head_mask=None)[0]
  embedding = F.linear(enc.layer_norm(h).mean(1), heads["speech_proj.weight"], heads["speech_proj.bias"])
)";

const char* kLogitScaleReadme = R"(
heads.safetensors: logit_scale is t; the contrastive logits are min(exp(t), max_logit_scale)
(metadata) times the cosine similarities of the two towers' L2-normalized embeddings.
)";

Exported export_speech_text(const LoadedCheckpoint& ck, const fs::path& config, const fs::path& tmp,
                            std::ostream& log) {
  const std::string cfg_arg = config.string();
  const char* args[] = {"train", "--config", cfg_arg.c_str(), "--data.corpus_size", "none"};
  std::ostringstream quiet;
  const TrainOptions o = parse_train_options(5, args, quiet).options;
  const int64_t embed_dim = tensor_of(ck, "speech.proj.weight").size(0);
  const std::map<std::string, Tensor> speech =
      models::with_prefix_removed(ck.model, "speech.", ck.path.string());
  Exported e;
  fs::create_directories(tmp / "speech");
  if (o.speech_tower == "conformer") {
    const data::FbankOptions fbank;  // the front end of a Conformer run (speech_text_data.cpp)
    models::Conformer tower(speech_tower_config(o, fbank.num_mel_bins, embed_dim));
    load_strict(tower, speech, ck, "Conformer");
    export_conformer(tower, fbank, tmp / "speech");
    e.towers["speech"] = models::torchaudio_conformer_names().upstream;
    e.readme = kConformerReadme;
    log << "export: speech/ Conformer (torchaudio.models.Conformer + ESPnet Conv2dSubsampling)\n";
  } else {
    // The encoder's sizes are the pretrained weights' (num_heads is not in the tensor shapes).
    const fs::path weights = data::find_whisper_dir(optional_path(o.speech_weights));
    const models::WhisperEncoderConfig cfg = models::read_whisper_weights(weights).config;
    models::WhisperSpeechTower tower(cfg, embed_dim, 0, models::WhisperInput::Mel);
    load_strict(tower, speech, ck, "Whisper tower");
    export_whisper_encoder(*tower.encoder, tmp / "speech");
    e.towers["speech"] = models::hf_whisper_encoder_names().upstream;
    e.readme = kWhisperReadme;
    log << "export: speech/ Whisper encoder (Hugging Face WhisperModel, sizes of " << weights.string()
        << ")\n";
  }
  e.heads["speech_proj.weight"] = speech.at("proj.weight");
  e.heads["speech_proj.bias"] = speech.at("proj.bias");
  e.heads["logit_scale"] = tensor_of(ck, "logit_scale");
  e.heads_metadata["max_logit_scale"] = std::to_string(o.loss.max_logit_scale);
  e.readme += kLogitScaleReadme;
  return e;
}

Exported export_speech_asr(const LoadedCheckpoint& ck, const fs::path& run_dir, const fs::path& config,
                           const fs::path& tmp, std::ostream& log) {
  const std::string cfg_arg = config.string();
  const char* args[] = {"train", "--config", cfg_arg.c_str(), "--data.corpus_size", "none"};
  std::ostringstream quiet;
  const TrainOptions o = parse_train_options(5, args, quiet).options;
  const data::FbankOptions fbank;
  const int64_t embed_dim = tensor_of(ck, "speech.proj.weight").size(0);
  models::Conformer tower(speech_tower_config(o, fbank.num_mel_bins, embed_dim));
  load_strict(tower, models::with_prefix_removed(ck.model, "speech.", ck.path.string()), ck, "Conformer");
  Exported e;
  fs::create_directories(tmp / "speech");
  export_conformer(tower, fbank, tmp / "speech");
  e.towers["speech"] = models::torchaudio_conformer_names().upstream;
  e.heads["ctc_head.weight"] = tensor_of(ck, "head.weight");
  e.heads["ctc_head.bias"] = tensor_of(ck, "head.bias");
  // The character vocabulary (CTC blank at index 0), as the run's tower file records it.
  const fs::path tower_file = run_dir / "speech_tower.safetensors";
  if (fs::is_regular_file(tower_file)) {
    const SafetensorsFile f = SafetensorsFile::open(tower_file.string());
    if (f.metadata().count("vocab")) e.heads_metadata["vocab"] = f.metadata().at("vocab");
  }
  e.readme =
      std::string(kConformerReadme) +
      "\nheads.safetensors: ctc_head (Linear over the frames h, before pooling: log_softmax gives CTC's\n"
      "per-frame character log-probabilities, blank first; metadata 'vocab' lists the characters).\n";
  log << "export: speech/ Conformer (CTC recognizer's tower), heads: ctc_head\n";
  return e;
}

Exported export_image_text(const LoadedCheckpoint& ck, const fs::path& config, const fs::path& tmp,
                           std::ostream& log) {
  const std::string cfg_arg = config.string();
  const char* args[] = {"train", "--config", cfg_arg.c_str()};
  std::ostringstream quiet;
  const ImageTrainOptions o = parse_image_train_options(3, args, quiet).options;
  const fs::path text_dir = data::find_minilm_dir(optional_path(o.text_model));
  const models::SentenceEncoder minilm = models::SentenceEncoder::load(text_dir);
  models::ImageTextModel model(minilm, tensor_of(ck, "proj.weight").size(0), o.text_train_layers, 0.0, false);
  load_strict(model, ck.model, ck, "image-text model");
  Exported e;
  fs::create_directories(tmp / "text");
  export_text_tower(*model.text, text_dir, tmp / "text");
  e.towers["text"] = models::hf_bert_names().upstream;
  // The frozen image tower is the file the run names (trained by an image_ssl run).
  const ImageTower tower = load_image_tower(o.image_tower);
  fs::create_directories(tmp / "image");
  export_vit(*tower.model, tower.mean, tower.std, tmp / "image");
  e.towers["image"] = models::hf_vit_names().upstream;
  e.heads["text_proj.weight"] = model.proj->weight.data();
  e.heads["text_proj.bias"] = model.proj->bias.data();
  e.heads["logit_scale"] = tensor_of(ck, "logit_scale");
  e.heads_metadata["max_logit_scale"] = std::to_string(o.loss.max_logit_scale);
  e.readme =
      R"(text/: the trained text tower, a sentence-transformers folder (its sentence embedding, then text_proj):

  import torch, torch.nn.functional as F
  from safetensors.torch import load_file
  from sentence_transformers import SentenceTransformer
  heads = load_file("heads.safetensors")
  s = torch.from_numpy(SentenceTransformer("text").encode(["a photo of a shoe"]))
  text_embedding = F.linear(s, heads["text_proj.weight"], heads["text_proj.bias"])

image/: the frozen image tower, a Hugging Face ViTModel folder (config.json's cw_pooling says
which token(s) make the embedding; preprocessor_config.json holds the input normalization):

  from transformers import ViTModel
  vit = ViTModel.from_pretrained("image", add_pooling_layer=False).eval()
  h = vit(pixel_values).last_hidden_state                 # pixel_values (B, C, H, W), normalized
  image_embedding = h[:, 0]                               # class_token; mean_patch_tokens: h[:, 1:].mean(1)
)";
  e.readme += kLogitScaleReadme;
  log << "export: text/ (sentence-transformers, BertModel), image/ (ViTModel from " << o.image_tower << ")\n";
  return e;
}

}  // namespace

fs::path export_run(const fs::path& run_dir, const fs::path& checkpoint, const fs::path& out_dir,
                    std::ostream& log) {
  const fs::path config = run_dir / "config.ini";
  CW_CHECK(fs::is_regular_file(config), ValueError, "--run ", run_dir.string(),
           ": no config.ini (not a folder written by train?)");
  CW_CHECK(!out_dir.empty(), OptionError, "--export needs a folder name");
  CW_CHECK(!fs::exists(out_dir), Error, "--export ", out_dir.string(),
           ": already exists; export writes a new folder and never replaces one");
  const std::string cfg_arg = config.string();
  const char* task_args[] = {"eval", "--config", cfg_arg.c_str()};
  const std::string task = requested_task(3, task_args);
  CW_CHECK(task == "speech_text" || task == "image_text" || task == "speech_asr", ValueError, "--export: a ",
           task, " run has no exported form (speech_text, image_text and speech_asr runs do)");
  const LoadedCheckpoint ck = checkpoint.empty() ? [&] {
    auto latest = load_latest_checkpoint(run_dir / "checkpoints");
    CW_CHECK(latest.has_value(), ValueError, "--run ", run_dir.string(), ": no checkpoint in ",
             (run_dir / "checkpoints").string());
    return *latest;
  }()
                                                 : load_checkpoint(checkpoint);

  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  CW_CHECK(!ec && fs::is_directory(parent), Error, "--export ", out_dir.string(),
           ": cannot create its folder '", parent.string(), "'",
           ec ? " (" + ec.message() + ")" : std::string());
  const fs::path tmp = parent / (out_dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  CW_CHECK(!ec, Error, "--export ", out_dir.string(), ": cannot create '", tmp.string(), "' (", ec.message(),
           ")");
  try {
    Exported e = task == "image_text"   ? export_image_text(ck, config, tmp, log)
                 : task == "speech_asr" ? export_speech_asr(ck, run_dir, config, tmp, log)
                                        : export_speech_text(ck, config, tmp, log);
    save_safetensors((tmp / "heads.safetensors").string(), host(e.heads), e.heads_metadata);
    ordered_json j;
    j["format"] = "cw-export-1";
    j["task"] = task;
    j["run"] = fs::weakly_canonical(run_dir).string();
    j["checkpoint"] = ck.path.string();
    j["step"] = ck.state.step;
    j["towers"] = e.towers;
    j["heads"] = "heads.safetensors";
    write_file_atomic(tmp / "export.json", j.dump(2) + "\n");
    write_file_atomic(tmp / "README.txt",
                      "A " + task + " run of cwcl (step " + std::to_string(ck.state.step) +
                          ") under the upstream libraries' names; export.json says what each folder holds.\n"
                          "Paths below are relative to this folder.\n\n" +
                          e.readme);
    fsync_path(tmp, true);
    fs::rename(tmp, out_dir);
    fsync_path(parent, true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  log << "export: " << out_dir.string() << " (" << task << ", step " << ck.state.step << ")\n";
  return out_dir;
}

}  // namespace cw::train
