#pragma once
// Hugging Face config.json -> ModelSpec, for the decoder-only architectures people train today
// (docs/huggingface.md lists the model_types and the key mapping). A registry keyed by model_type;
// each entry reads the keys its transformers modeling_*.py builds the weights from.
#include <string>
#include <vector>

#include "model/model.hpp"

namespace scaleplan::model {

// text: the JSON; file: its name in errors. Unknown model_type, a missing key or a value the model
// cannot represent -> ConfigError naming the key and file:line:col.
ModelSpec parse_hf_config(const std::string& text, const std::string& file);
// path: a config.json, or a folder holding one.
ModelSpec load_hf_config(const std::string& path);
std::vector<std::string> hf_model_types();  // the registry's keys, sorted

}  // namespace scaleplan::model
