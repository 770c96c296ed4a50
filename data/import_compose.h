// Composing the imported parts (data/import_part.h) into the corpus `train --data.corpus` and
// `eval --run` read, in the layout of tools/make_speech_corpus.py (data/README.md):
//   train.tsv, valid.tsv, retrieval_test.tsv   every part that has the split (LibriSpeech, Common
//                                              Voice), in source-name order; retrieval_test keeps
//                                              each sentence once (one right answer per query)
//   intent_test.tsv + intents.tsv              one intent part: SLURP, or FSC (--intent fsc)
//   kws_test.tsv + keywords.tsv                the Speech Commands part
//   corpus.json                                written last, and only when every split has rows;
//                                              `imported: true`, the parts and counts
// A second composition of the same parts into another folder (--from) gives the same training
// manifests with another intent test, for `eval --run R --corpus <that folder>`: its features/ and
// text_embeddings/ are links to the first folder's, so the training split's caches are shared.
// Part of data/.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cw::data {

struct ComposeOptions {
  std::filesystem::path out;    // the corpus folder written
  std::filesystem::path from;   // the corpus folder whose parts/ are read; empty: out
  std::string intent = "auto";  // the intent part: slurp, fsc, or auto (slurp when imported, else fsc)
};

struct ComposeResult {
  bool complete = false;             // corpus.json written
  std::vector<std::string> missing;  // what keeps it incomplete, with the import that supplies it
  std::string text;                  // lines for the log: per split, rows, hours, sources
};

// Writes the corpus as above; files whose bytes would not change are left alone. Throws cw::Error
// naming the file for a part that cannot be read, and refuses a folder that holds a generated
// corpus (corpus.json without `imported`).
ComposeResult compose_corpus(const ComposeOptions& o);

}  // namespace cw::data
