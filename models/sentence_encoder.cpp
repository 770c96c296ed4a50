// SentenceEncoder (see sentence_encoder.h).
#include "models/sentence_encoder.h"

#include <algorithm>
#include <optional>

#include "autograd/grad_mode.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/torch_checkpoint.h"

namespace cw::models {

namespace fs = std::filesystem;

namespace {

// The checkpoint's tensors, whichever file holds them, under BertModel's names: a "bert." prefix
// (BertForMaskedLM, BertForPreTraining) is taken off and the tensors outside it (the heads) left.
class BertWeights {
 public:
  explicit BertWeights(const fs::path& dir) {
    if (fs::exists(dir / "model.safetensors")) {
      st_ = SafetensorsFile::open((dir / "model.safetensors").string());
    } else if (fs::exists(dir / "pytorch_model.bin")) {
      pt_ = data::TorchCheckpoint::open((dir / "pytorch_model.bin").string());
    } else {
      throw ValueError(
          detail::cat("SentenceEncoder: no model.safetensors or pytorch_model.bin in ", dir.string()));
    }
    const std::string probe = "embeddings.word_embeddings.weight";
    if (!has_raw(probe) && has_raw("bert." + probe)) prefix_ = "bert.";
    CW_CHECK(has_raw(prefix_ + probe), ValueError, "SentenceEncoder: ", path(), " has no tensor '", probe,
             "' (nor 'bert.", probe, "'): not a BERT checkpoint");
  }
  std::string path() const { return st_ ? st_->path() : pt_->path(); }
  bool contains(const std::string& name) const { return has_raw(prefix_ + name); }
  Shape shape(const std::string& name) const {
    return st_ ? st_->info(prefix_ + name).shape : pt_->info(prefix_ + name).shape;
  }
  // Every tensor under the prefix, by its BertModel name.
  std::map<std::string, Tensor> load_all() const {
    std::map<std::string, Tensor> out;
    for (const std::string& raw : st_ ? st_->names() : pt_->names())
      if (raw.compare(0, prefix_.size(), prefix_) == 0)
        out.emplace(raw.substr(prefix_.size()), st_ ? st_->load(raw) : pt_->load(raw));
    return out;
  }

 private:
  bool has_raw(const std::string& name) const { return st_ ? st_->contains(name) : pt_->contains(name); }
  std::optional<SafetensorsFile> st_;
  std::optional<data::TorchCheckpoint> pt_;
  std::string prefix_;
};

// The sizes config.json declares, against the tensors the weights file holds, before a model of
// those sizes is built: a config declaring more layers or wider ones than the file holds would
// otherwise allocate them first (a hostile one, more memory than the machine has).
void check_config_fits(const BertConfig& c, const BertWeights& w, const fs::path& config) {
  const auto expect = [&](const std::string& name, const Shape& shape) {
    CW_CHECK(w.contains(name) && w.shape(name) == shape, ValueError, "SentenceEncoder: ", config.string(),
             " declares tensor '", name, "' of ", shape_str(shape), ", ", w.path(), " has ",
             w.contains(name) ? shape_str(w.shape(name)) : std::string("none"));
  };
  const int64_t H = c.hidden_size;
  expect("embeddings.word_embeddings.weight", {c.vocab_size, H});
  expect("embeddings.position_embeddings.weight", {c.max_position_embeddings, H});
  expect("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    expect("encoder.layer." + std::to_string(i) + ".intermediate.dense.weight", {c.intermediate_size, H});
}

// A sentence-transformers Pooling module's config.json (models/Pooling.py's keys and defaults).
nn::PoolingModes read_pooling_config(const fs::path& file, int64_t hidden_size) {
  const std::string where = "SentenceEncoder: " + file.string();
  CW_CHECK(fs::is_regular_file(file), ValueError, where, ": missing (the Pooling module's configuration)");
  const Json doc = read_json_file(file, where);
  const JsonReader j(doc, where);
  j.expect(doc.is_object(), "a JSON object");
  nn::PoolingModes m;
  m.cls_token = j.get_or("pooling_mode_cls_token", false);
  m.max_tokens = j.get_or("pooling_mode_max_tokens", false);
  m.mean_tokens = j.get_or("pooling_mode_mean_tokens", true);
  m.mean_sqrt_len_tokens = j.get_or("pooling_mode_mean_sqrt_len_tokens", false);
  for (const char* key : {"pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"})
    if (j.get_or(key, false))
      j.at(key).fail("this pooling mode is not supported (cls, max, mean, mean_sqrt_len are)");
  if (j.has("word_embedding_dimension") && j.get<int64_t>("word_embedding_dimension") != hidden_size)
    j.at("word_embedding_dimension").fail("does not match the model's hidden_size ", hidden_size);
  if (m.count() == 0) j.fail("no pooling mode is on");
  return m;
}

// modules.json: the sentence-transformers pipeline. Sets the pooling modes and normalization.
void read_modules(const fs::path& dir, const BertConfig& config, SentenceEncoder& e) {
  const fs::path file = dir / "modules.json";
  const std::string where = "SentenceEncoder: " + file.string();
  const Json doc = read_json_file(file, where);
  const JsonReader j(doc, where);
  j.expect(doc.is_array(), "a JSON array of modules");
  bool transformer = false, pooling = false;
  e.normalize = false;
  for (size_t i = 0; i < j.size(); ++i) {
    const JsonReader m = j.at(i);
    const std::string type = m.get<std::string>("type"), path = m.get_or("path", std::string());
    const fs::path rel(path);
    if (rel.is_absolute() || std::find(rel.begin(), rel.end(), fs::path("..")) != rel.end())
      m.at("path").fail("expected a folder inside the model folder");
    if (type == "sentence_transformers.models.Transformer") {
      if (!path.empty())
        m.at("path").fail(
            "a Transformer module in a subfolder is not supported (only the model folder itself)");
      transformer = true;
    } else if (type == "sentence_transformers.models.Pooling") {
      e.pooling = read_pooling_config(dir / rel / "config.json", config.hidden_size);
      pooling = true;
    } else if (type == "sentence_transformers.models.Normalize") {
      e.normalize = true;
    } else {
      m.at("type").fail("module type '", type, "' is not supported (Transformer, Pooling and Normalize are)");
    }
  }
  if (!transformer || !pooling) j.fail("expected a Transformer and a Pooling module");
}

}  // namespace

SentenceEncoder SentenceEncoder::load(const fs::path& dir, DType dtype) {
  SentenceEncoder e;
  const BertConfig config = BertConfig::from_json_file(dir / "config.json");
  const BertWeights weights(dir);
  check_config_fits(config, weights, dir / "config.json");
  // The head first: a bad modules.json fails before the model is built.
  if (fs::exists(dir / "modules.json")) {
    read_modules(dir, config, e);
  } else {
    e.pooling = nn::PoolingModes{};  // what sentence-transformers builds for a plain HF folder
    e.normalize = false;
  }
  e.model = std::make_shared<TextTransformer>(config, dtype, weights.contains("pooler.dense.weight"));
  std::map<std::string, Tensor> state = weights.load_all();
  // transformers >= 4.31 no longer saves the position ids (a constant arange): use the model's own.
  if (!state.count("embeddings.position_ids"))
    state.emplace("embeddings.position_ids", e.model->embeddings->state_dict().at("position_ids"));
  e.model->load_state_dict(state);
  e.model->eval();
  e.tokenizer = std::make_shared<data::WordPieceTokenizer>(data::WordPieceTokenizer::from_dir(dir));
  // The sequence limit of the sentence-transformers model (shorter than the 512 positions).
  const auto st_config = dir / "sentence_bert_config.json";
  if (fs::exists(st_config)) {
    const std::string where = "SentenceEncoder: " + st_config.string();
    const Json doc = read_json_file(st_config, where);
    e.max_seq_length = JsonReader(doc, where).get_or("max_seq_length", e.max_seq_length);
    CW_CHECK(e.max_seq_length >= 2, ValueError, where, ": max_seq_length ", e.max_seq_length,
             " leaves no room for [CLS] and [SEP]");
  }
  e.max_seq_length = std::min(e.max_seq_length, config.max_position_embeddings);
  return e;
}

Variable SentenceEncoder::forward(const data::BatchEncoding& b) const {
  const Variable hidden = model->forward(b.input_ids, b.attention_mask, b.token_type_ids);
  const Variable pooled = nn::pool(hidden, b.attention_mask, pooling);
  return normalize ? nn::l2_normalize(pooled) : pooled;
}

Tensor SentenceEncoder::encode(const std::vector<std::string>& sentences, int64_t batch_size) const {
  CW_CHECK(batch_size > 0, ValueError, "SentenceEncoder::encode: batch_size must be positive");
  NoGradGuard no_grad;
  data::EncodeOptions opt;
  opt.max_length = max_seq_length;
  std::vector<Tensor> parts;
  for (size_t at = 0; at < sentences.size(); at += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(sentences.size(), at + static_cast<size_t>(batch_size));
    const std::vector<std::string> chunk(sentences.begin() + at, sentences.begin() + end);
    parts.push_back(forward(tokenizer->encode_batch(chunk, opt)).data());
  }
  if (parts.empty()) return ops::zeros({0, embedding_dim()}, model->embeddings->LayerNorm->weight.dtype());
  return parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
}

}  // namespace cw::models
