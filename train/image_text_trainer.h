// The image-text experiment (`train --task image_text`), a task of the one training loop
// (run_loop.h), the paper's image-text
// setup in miniature: the image tower (pretrained by --task image_ssl, ssl_trainer.h) is frozen
// and its embeddings of every image are cached once; the text tower (MiniLM + projection,
// image_text_model.h) learns to embed each image's caption where the image tower embeds the
// image, with CWCL (weights from the frozen IMAGE tower's similarities) or InfoNCE (LiT), a
// learnable temperature; the loop brings AdamW, warmup + cosine, clipping, checkpoints and
// --run.resume. Then
// zero-shot classification of the test images from class names in every prompt template (per
// template and ensembled), caption retrieval and the structure correlation, as a table, eval.csv /
// eval.jsonl and eval_final.json. Part of train/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/image_options.h"
#include "train/run_loop.h"
#include "train/zero_shot.h"

namespace cw::train {

struct ImageTextEval {
  std::string dataset;
  ZeroShotScore zero_shot;             // test images, every template and the ensemble
  std::vector<std::string> templates;  // in per_template's order
  RetrievalScore retrieval;            // text (first caption) <-> image, on the first test rows
  double structure_correlation = 0;    // text-tower vs image-tower similarity structure, same rows
  int64_t num_classes = 0;             // chance of zero-shot: 1 / num_classes; of R@1: 1 / retrieval.n
  double seconds = 0;
  nlohmann::json to_json() const;
  std::string table() const;  // human-readable, one template per line
};

// The loop's result (losses, steps, timing; run_loop.h) and the task's own.
struct ImageTextResult : LoopResult {
  ImageTextEval initial_eval;  // before the first step (the MiniLM start with a random projection)
  ImageTextEval final_eval;
  double prepare_seconds = 0;
};

ImageTextResult run_image_text(const ImageTrainOptions& o, std::ostream& log);

// `eval` for a run of --task image_text: rebuilds the model from the run's config.ini, loads the
// checkpoint (the latest when `checkpoint` is empty), evaluates on the test split and prints the
// table and JSON (also written to json_out when given). Returns the evaluation.
ImageTextEval evaluate_image_text_run(const std::filesystem::path& run_dir,
                                      const std::filesystem::path& checkpoint, const std::string& json_out,
                                      std::ostream& out);

}  // namespace cw::train
