// A loaded model: hyperparameters, weight views into the GGUF memory map, the vocabulary and the
// fingerprint that names the model in chunk keys.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/hash.h"
#include "gguf/gguf.h"
#include "model/vocab.h"
#include "sparkv/status.h"

namespace sparkv {

using TokenId = int32_t;
using Position = int32_t;

enum class RopeLayout {
  kNormal,  // rotates adjacent pairs (2i, 2i+1): llama.cpp LLAMA_ROPE_TYPE_NORM, llama2.c
  kNeox,    // rotates (i, i + head_dim/2): llama.cpp LLAMA_ROPE_TYPE_NEOX, qwen2
};

struct HParams {
  std::string arch;          // GGUF general.architecture: "llama", "qwen2" or "qwen3"
  std::string name;          // GGUF general.name, informational
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;      // per-head size of Q and K (and V)
  int32_t n_ff = 0;
  int32_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  // Linear RoPE scaling: positions are multiplied by this before rotation (1 / rope.scaling.factor
  // for rope.scaling.type "linear"; 1 without scaling).
  float rope_freq_scale = 1.0f;
  int32_t n_rot = 0;         // rotated dimensions per head; equals head_dim for the supported models
  RopeLayout rope_layout = RopeLayout::kNormal;

  int32_t n_embd_kv() const { return n_head_kv * head_dim; }  // K (or V) row width per position
};

// A view of one weight tensor inside the memory map. For a matrix, ne[0] is the input dimension
// (contiguous) and ne[1] the output dimension: row r holds the weights of output r.
struct WeightView {
  const gguf::TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;

  bool present() const { return data != nullptr; }
  gguf::TensorType type() const { return info->type; }
  int64_t n_in() const { return info->ne[0]; }
  int64_t n_out() const { return info->ne[1]; }
  size_t row_bytes() const { return info->n_bytes / static_cast<size_t>(info->ne[1] * info->ne[2] * info->ne[3]); }
};

struct LayerWeights {
  WeightView attn_norm;  // [n_embd], f32
  WeightView wq;         // [n_embd in][n_head * head_dim out]
  WeightView wk;         // [n_embd in][n_head_kv * head_dim out]
  WeightView wv;         // [n_embd in][n_head_kv * head_dim out]
  WeightView wo;         // [n_head * head_dim in][n_embd out]
  WeightView bq, bk, bv; // [n_q], [n_kv], [n_kv] f32 biases: required for qwen2, optional for llama
  WeightView q_norm;     // [head_dim] f32 RMS norm weight of each query head (qwen3), else absent
  WeightView k_norm;     // [head_dim] f32 RMS norm weight of each key head (qwen3), else absent
  WeightView ffn_norm;   // [n_embd], f32
  WeightView w_gate;     // [n_embd in][n_ff out]
  WeightView w_up;       // [n_embd in][n_ff out]
  WeightView w_down;     // [n_ff in][n_embd out]
};

// The architectures Model::Load accepts, as text for messages.
extern const char* const kSupportedArchitectures;

class Model {
 public:
  // Maps `path` and checks that the architecture, shapes and types are ones the engine runs.
  // Architectures: llama (normal RoPE, optional QKV biases and rope_freqs), qwen2 (NeoX RoPE, QKV
  // biases) and qwen3 (NeoX RoPE, RMS norm of each query and key head).
  static Result<std::unique_ptr<Model>> Load(const std::string& path);

  const HParams& hparams() const { return hparams_; }
  const Vocab& vocab() const { return vocab_; }
  const gguf::File& file() const { return *file_; }

  const WeightView& token_embedding() const { return token_embedding_; }  // [n_embd][n_vocab]
  const WeightView& output_norm() const { return output_norm_; }          // [n_embd], f32
  const WeightView& output() const { return output_; }  // [n_embd][n_vocab]; token_embedding when tied
  const std::vector<LayerWeights>& layers() const { return layers_; }
  // [n_rot / 2] f32 divisors of the RoPE frequencies (GGUF rope_freqs.weight, as Llama 3.1 and
  // later store their rope scaling); absent for models without it.
  const WeightView& rope_freq_factors() const { return rope_freq_factors_; }

  // Changes whenever the weights, the architecture or any hyperparameter that shapes the KV cache
  // changes: XXH3-128 over the hyperparameters and every tensor's name, type, shape and bytes.
  const Hash128& fingerprint() const { return fingerprint_; }

  // Bytes of all weight tensors.
  size_t weight_bytes() const;

 private:
  Model() = default;

  std::unique_ptr<gguf::File> file_;
  HParams hparams_;
  Vocab vocab_;
  WeightView token_embedding_, output_norm_, output_, rope_freq_factors_;
  std::vector<LayerWeights> layers_;
  Hash128 fingerprint_;
};

}  // namespace sparkv
