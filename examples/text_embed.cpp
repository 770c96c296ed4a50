// text_embed: prints the all-MiniLM-L6-v2 sentence embeddings of the sentences given on the
// command line and their cosine-similarity matrix. Usage:
//   text_embed [--model DIR] "first sentence" "second sentence" ...
// The model folder is found as data/model_files.h describes (tools/setup.sh installs it).
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "data/model_files.h"
#include "models/sentence_encoder.h"

using namespace cw;

int main(int argc, char** argv) {
  std::optional<std::filesystem::path> dir;
  std::vector<std::string> sentences;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf("usage: text_embed [--model DIR] SENTENCE...\n");
      return 0;
    } else
      sentences.push_back(a);
  }
  if (sentences.empty())
    sentences = {"A man is playing a guitar.", "Someone plays an instrument.",
                 "The stock market fell sharply today."};
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const auto encoder = models::SentenceEncoder::load(data::find_minilm_dir(dir));
    const auto t1 = std::chrono::steady_clock::now();
    const Tensor emb = encoder.encode(sentences);  // (N, 384), unit norm
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("model loaded in %.2f s; %zu sentences embedded in %.3f s\n",
                std::chrono::duration<double>(t1 - t0).count(), sentences.size(),
                std::chrono::duration<double>(t2 - t1).count());
    for (size_t i = 0; i < sentences.size(); ++i) {
      const auto v = emb.select(0, static_cast<int64_t>(i)).to_vector<float>();
      std::printf("[%zu] %s\n    [%.4f, %.4f, %.4f, %.4f, ... ] (%zu dims)\n", i, sentences[i].c_str(), v[0],
                  v[1], v[2], v[3], v.size());
    }
    const Tensor sim = ops::matmul(emb, emb.t());  // cosines: rows are unit vectors
    std::printf("cosine similarity:\n%s\n", sim.str().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "text_embed: %s\n", e.what());
    return 1;
  }
  return 0;
}
