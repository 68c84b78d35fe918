// GptShape from a model spec (compiled by the host compiler: model/model.hpp is C++20).
#include <stdexcept>

#include "executor/cuda/gpt_cuda.hpp"
#include "model/model.hpp"

namespace scaleplan::executor::cuda {

GptShape shape_of(const model::ModelSpec& m) {
  if (m.kv_heads != m.heads) throw std::runtime_error(m.name + ": grouped-query attention is not in the GPU executor");
  if (m.position != model::Position::learned) throw std::runtime_error(m.name + ": only learned positions");
  if (m.activation != model::Activation::gelu && m.activation != model::Activation::swiglu)
    throw std::runtime_error(m.name + ": the GPU executor implements the gelu and swiglu activations only");
  GptShape s;
  s.layers = static_cast<int>(m.layers);
  s.hidden = static_cast<int>(m.hidden);
  s.heads = static_cast<int>(m.heads);
  s.ffn = static_cast<int>(m.ffn);
  s.vocab = static_cast<int>(m.vocab);
  s.seq = static_cast<int>(m.seq);
  s.swiglu = m.activation == model::Activation::swiglu;
  return s;
}

}  // namespace scaleplan::executor::cuda
