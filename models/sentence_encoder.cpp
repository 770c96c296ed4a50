// SentenceEncoder (see sentence_encoder.h).
#include "models/sentence_encoder.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "core/safetensors.h"

namespace cw::models {

namespace {

// The sizes config.json declares, against the tensors model.safetensors holds, before a model of
// those sizes is built: a config declaring more layers or wider ones than the file holds would
// otherwise allocate them first (a hostile one, more memory than the machine has).
void check_config_fits(const BertConfig& c, const SafetensorsFile& f, const std::filesystem::path& config) {
  const auto expect = [&](const std::string& name, const Shape& shape) {
    CW_CHECK(f.contains(name) && f.info(name).shape == shape, ValueError,
             "SentenceEncoder: ", config.string(), " declares tensor '", name, "' of ", shape_str(shape),
             ", ", f.path(), " has ", f.contains(name) ? shape_str(f.info(name).shape) : std::string("none"));
  };
  const int64_t H = c.hidden_size;
  expect("embeddings.word_embeddings.weight", {c.vocab_size, H});
  expect("embeddings.position_embeddings.weight", {c.max_position_embeddings, H});
  expect("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    expect("encoder.layer." + std::to_string(i) + ".intermediate.dense.weight", {c.intermediate_size, H});
}

}  // namespace

SentenceEncoder SentenceEncoder::load(const std::filesystem::path& dir, DType dtype) {
  SentenceEncoder e;
  const BertConfig config = BertConfig::from_json_file(dir / "config.json");
  const auto weights = dir / "model.safetensors";
  CW_CHECK(std::filesystem::exists(weights), ValueError, "SentenceEncoder: no model.safetensors in ",
           dir.string());
  const SafetensorsFile file = SafetensorsFile::open(weights.string());
  check_config_fits(config, file, dir / "config.json");
  e.model = std::make_shared<TextTransformer>(config, dtype);
  e.model->load_state_dict(file.load_all());
  e.model->eval();
  e.tokenizer = std::make_shared<WordPieceTokenizer>(WordPieceTokenizer::from_dir(dir));
  // The sequence limit of the sentence-transformers model (shorter than the 512 positions).
  const auto st_config = dir / "sentence_bert_config.json";
  if (std::filesystem::exists(st_config)) {
    const std::string where = "SentenceEncoder: " + st_config.string();
    const Json doc = read_json_file(st_config, where);
    e.max_seq_length = JsonReader(doc, where).get_or("max_seq_length", e.max_seq_length);
    CW_CHECK(e.max_seq_length >= 2, ValueError, where, ": max_seq_length ", e.max_seq_length,
             " leaves no room for [CLS] and [SEP]");
  }
  e.max_seq_length = std::min(e.max_seq_length, config.max_position_embeddings);
  return e;
}

Variable SentenceEncoder::forward(const BatchEncoding& b) const {
  const Variable hidden = model->forward(b.input_ids, b.attention_mask, b.token_type_ids);
  return l2_normalize(masked_mean_pool(hidden, b.attention_mask));
}

Tensor SentenceEncoder::encode(const std::vector<std::string>& sentences, int64_t batch_size) const {
  CW_CHECK(batch_size > 0, ValueError, "SentenceEncoder::encode: batch_size must be positive");
  NoGradGuard no_grad;
  EncodeOptions opt;
  opt.max_length = max_seq_length;
  std::vector<Tensor> parts;
  for (size_t at = 0; at < sentences.size(); at += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(sentences.size(), at + static_cast<size_t>(batch_size));
    const std::vector<std::string> chunk(sentences.begin() + at, sentences.begin() + end);
    parts.push_back(forward(tokenizer->encode_batch(chunk, opt)).data());
  }
  if (parts.empty())
    return ops::zeros({0, model->config.hidden_size}, model->embeddings->LayerNorm->weight.dtype());
  return parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
}

}  // namespace cw::models
