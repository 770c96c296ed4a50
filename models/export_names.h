// The rename tables between our towers' state-dict names and the names their upstream libraries
// give the same tensors (torchaudio's Conformer, ESPnet's Conv2dSubsampling, Hugging Face's
// WhisperModel, BertModel and ViTModel), with the tensor transforms a rename needs (packing or
// splitting q/k/v projections). Written once and read in both directions: `to_upstream` is what
// `eval --export` writes (train/run_export.h), `from_upstream` reads such a file back. Part of
// models/ (DESIGN.md: models/ holds the name maps).
//
// A table is a list of rules. A rule maps one or more of our name prefixes to one or more of
// theirs; '*' in a prefix stands for a layer number (digits) and the rest of the name after the
// prefix ("weight", "bias", "running_mean", ...) is carried over unchanged. A rule with several
// names on one side packs or splits: the tensors of the side with several names are
// concatenated (or the one tensor is split into equal parts) along dim 0, in the listed order,
// which is how nn.MultiheadAttention's in_proj packs query, key and value. Rules are tried in
// order; the first whose prefix matches a name applies. Names a side has and the other lacks
// (Hugging Face BERT's position_ids buffer, torchvision's heads) are listed as dropped.
// Conversion is strict: a name no rule covers, or a packed group with a member missing, is a
// ValueError naming the tensor and the table.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw::models {

struct NameRule {
  std::vector<std::string> ours;    // our prefixes ('*': a layer number)
  std::vector<std::string> theirs;  // the upstream prefixes
};

struct NameTable {
  std::string upstream;                 // what the upstream names belong to, for messages and files
  std::vector<NameRule> rules;          // tried in order
  std::vector<std::string> our_only;    // our prefixes with no upstream tensor: dropped on export
  std::vector<std::string> their_only;  // upstream prefixes we do not keep: dropped on import
};

// Our Conformer's blocks ("layers.<i>.*", relative to models::Conformer) <->
// torchaudio.models.Conformer ("conformer_layers.<i>.*"; nn.Sequential indices inside the
// feed-forward and convolution modules, the packed in_proj of nn.MultiheadAttention).
const NameTable& torchaudio_conformer_names();
// Our Conformer's front end ("subsampling.*") <-> ESPnet's Conv2dSubsampling ("conv.0", "conv.2",
// "out.0"); its positional encoding has no parameters.
const NameTable& espnet_subsampling_names();
// Our WhisperEncoder (relative to it: "conv1.*", "layers.<i>.*", ...) <-> Hugging Face
// WhisperModel's "encoder.*". The names are the same below the prefix (whisper_encoder.h loads HF
// folders by name); the key projection has no bias on either side.
const NameTable& hf_whisper_encoder_names();
// Our TextTransformer <-> Hugging Face BertModel: the same names (text_transformer.h), less the
// embeddings.position_ids buffer, which BertModel (transformers >= 4.31) no longer saves.
const NameTable& hf_bert_names();
// Our VisionTransformer (torchvision names, vit.h) <-> Hugging Face ViTModel (no pooler): the class
// token and positions move under "embeddings.", the packed in_proj splits into query/key/value, the
// layer norms and MLP take BERT's names. torchvision's heads (our SSL projection head) have no
// ViTModel counterpart and are dropped; a ViTModel's pooler is dropped on import.
const NameTable& hf_vit_names();

// Our names -> upstream names (values converted as the rules say; tensors are not copied where a
// rule only renames). Strict, see above.
std::map<std::string, Tensor> to_upstream(const NameTable& table, const std::map<std::string, Tensor>& ours);
// Upstream names -> ours, the inverse of to_upstream on everything to_upstream produces.
std::map<std::string, Tensor> from_upstream(const NameTable& table,
                                            const std::map<std::string, Tensor>& theirs);

// The entries of `state` whose names start with `prefix`, with the prefix removed ("speech." ->
// the tower's own names); an empty result is a ValueError naming the prefix and `what`.
std::map<std::string, Tensor> with_prefix_removed(const std::map<std::string, Tensor>& state,
                                                  const std::string& prefix, const std::string& what);

}  // namespace cw::models
