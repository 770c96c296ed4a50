// SentenceEncoder (see sentence_encoder.h).
#include "models/sentence_encoder.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/safetensors.h"

namespace cw::models {

SentenceEncoder SentenceEncoder::load(const std::filesystem::path& dir, DType dtype) {
  SentenceEncoder e;
  const BertConfig config = BertConfig::from_json_file(dir / "config.json");
  e.model = std::make_shared<TextTransformer>(config, dtype);
  const auto weights = dir / "model.safetensors";
  CW_CHECK(std::filesystem::exists(weights), ValueError, "SentenceEncoder: no model.safetensors in ",
           dir.string());
  e.model->load_state_dict(SafetensorsFile::open(weights.string()).load_all());
  e.model->eval();
  e.tokenizer = std::make_shared<WordPieceTokenizer>(WordPieceTokenizer::from_dir(dir));
  // The sequence limit of the sentence-transformers model (shorter than the 512 positions).
  std::ifstream st(dir / "sentence_bert_config.json");
  if (st.good()) {
    try {
      nlohmann::json j = nlohmann::json::parse(st);
      if (j.contains("max_seq_length")) e.max_seq_length = j.at("max_seq_length").get<int64_t>();
    } catch (const nlohmann::json::exception& ex) {
      throw ValueError(detail::cat("SentenceEncoder: ", (dir / "sentence_bert_config.json").string(),
                                   " is malformed: ", ex.what()));
    }
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
