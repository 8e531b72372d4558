// Deterministic random-weight GGUF models with the shapes of real models, for benchmarks and the
// demo: the engine's cost depends on the shape and weight type, not on what the weights learned.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "sparkv/status.h"

namespace sparkv {

struct ModelShape {
  std::string name;
  int32_t n_vocab;
  int32_t n_embd;
  int32_t n_layer;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t n_ff;
  int32_t n_ctx_train;
  float rope_theta;
  float rms_eps;
  bool tied_output;  // the classifier reuses the token embedding
  std::string arch = "llama";  // GGUF general.architecture: llama, qwen2 (QKV biases), qwen3 (QK norm)
  int32_t head_dim = 0;        // 0: n_embd / n_head
  // Llama 3 rope scaling, written as rope_freqs.weight: factor 0 means none.
  float rope_scale_factor = 0.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int32_t rope_original_context = 8192;

  int32_t head_size() const { return head_dim > 0 ? head_dim : n_embd / n_head; }
};

// The Llama 3 rope frequency divisors for head size `n_rot` and the shape's scaling parameters:
// 1 for short wavelengths, the factor for long ones, a smooth blend between them.
std::vector<float> Llama3RopeFactors(const ModelShape& shape, int32_t n_rot);

// Returns nullptr for an unknown name.
const ModelShape* FindModelShape(std::string_view name);
std::vector<std::string> ModelShapeNames();

struct SyntheticModelOptions {
  std::string shape = "tinyllama-1.1b";
  gguf::TensorType type = gguf::TensorType::kQ8_0;  // matrices; norms stay f32
  uint64_t seed = 1;
  std::string vocab_from;  // optional GGUF whose vocabulary replaces the byte-level one
  // Our approximation of a Q4_K_M file (with type Q4_K): Q6_K for the classifier (the token
  // embedding when tied) and for attn_v and ffn_down in the first and last eighth of the layers
  // and every third layer between them.
  bool q4_k_m_mix = false;
};

// Writes the model atomically to `out_path`. The same options always give the same bytes.
Status WriteSyntheticModel(const SyntheticModelOptions& options, const std::string& out_path);

// Quantizes `n` floats (a multiple of 32) to Q8_0 blocks: an f16 scale max|x|/127, then 32 int8.
void QuantizeRowQ8_0(const float* source, int64_t n, uint8_t* out);

// Round-to-nearest quantizers into the GGUF block layouts of engine/kernels.h, for synthetic models
// and tests. Scales come from each block's range without any search for a smaller error.
// REQUIRES: n a multiple of 32 for Q4_0, of 256 for Q4_K and Q6_K.
void QuantizeRowQ4_0(const float* source, int64_t n, uint8_t* out);
void QuantizeRowQ4_K(const float* source, int64_t n, uint8_t* out);
void QuantizeRowQ6_K(const float* source, int64_t n, uint8_t* out);

}  // namespace sparkv
