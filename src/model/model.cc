#include "model/model.h"

#include <cmath>

#include "common/log.h"

namespace sparkv {
namespace {

using gguf::TensorType;

bool IsMatrixType(TensorType type) {
  return type == TensorType::kF32 || type == TensorType::kF16 || type == TensorType::kBF16 ||
         type == TensorType::kQ8_0 || type == TensorType::kQ4_0 || type == TensorType::kQ4_K ||
         type == TensorType::kQ6_K;
}

// Looks up tensor `name`, checks its shape against `ne` (trailing ones omitted) and its type.
Status BindTensor(const gguf::File& file, const std::string& name, std::initializer_list<int64_t> ne,
                  bool is_matrix, bool required, WeightView* out) {
  const gguf::TensorInfo* info = file.FindTensor(name);
  if (info == nullptr) {
    if (!required) return Status::Ok();
    std::string arch = "its architecture";
    if (Result<std::string> value = file.GetString("general.architecture"); value.ok()) arch = "a " + *value + " model";
    return NotFoundError("model '" + file.path() + "' has no tensor '" + name + "', which " + arch +
                         " needs (is the file truncated or mislabelled?)");
  }

  int d = 0;
  bool shape_ok = true;
  for (int64_t expected : ne) shape_ok = shape_ok && info->ne[d++] == expected;
  for (; d < gguf::kMaxDims; ++d) shape_ok = shape_ok && info->ne[d] == 1;
  if (!shape_ok) {
    std::string expected_text, actual_text;
    for (int64_t v : ne) expected_text += (expected_text.empty() ? "" : ", ") + std::to_string(v);
    for (int i = 0; i < info->n_dims; ++i) actual_text += (i ? ", " : "") + std::to_string(info->ne[i]);
    return InvalidArgumentError("model '" + file.path() + "': tensor '" + name + "' has shape [" +
                                actual_text + "], expected [" + expected_text + "]");
  }

  const bool type_ok = is_matrix ? IsMatrixType(info->type) : info->type == TensorType::kF32;
  if (!type_ok) {
    return UnsupportedError("model '" + file.path() + "': tensor '" + name + "' has type " +
                            std::string(gguf::GetTypeTraits(info->type)->name) + "; supported: " +
                            (is_matrix ? "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k" : "f32"));
  }
  out->info = info;
  out->data = file.TensorData(*info);
  return Status::Ok();
}

Result<int32_t> ReadCount(const gguf::File& file, const std::string& key, int64_t fallback) {
  Result<uint64_t> value = fallback >= 0 ? file.GetUintOr(key, static_cast<uint64_t>(fallback)) : file.GetUint(key);
  if (!value.ok()) return value.status();
  if (*value == 0 || *value > (1u << 24)) {
    return InvalidArgumentError("model '" + file.path() + "': " + key + " = " + std::to_string(*value) +
                                " is out of range");
  }
  return static_cast<int32_t>(*value);
}

// Reads {arch}.rope.scaling.*: none, or linear (positions divided by the factor). Llama 3.1
// and later store their scaling as the rope_freqs.weight tensor instead, bound with the weights.
Status ReadRopeScaling(const gguf::File& file, const std::string& prefix, HParams* hp) {
  std::string type = "none";
  if (file.Find(prefix + "rope.scaling.type") != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(type, file.GetString(prefix + "rope.scaling.type"));
  }
  SPARKV_ASSIGN_OR_RETURN(const double factor, file.GetFloatOr(prefix + "rope.scaling.factor", 1.0));
  if (type == "none" || (type == "linear" && factor == 1.0)) return Status::Ok();
  if (type != "linear") {
    return UnsupportedError("model '" + file.path() + "': " + prefix + "rope.scaling.type '" + type +
                            "' is not supported; supported: none, linear, and rope_freqs.weight factors");
  }
  if (!(factor > 0) || !std::isfinite(factor)) {
    return InvalidArgumentError("model '" + file.path() + "': " + prefix + "rope.scaling.factor " +
                                std::to_string(factor) + " must be a positive number");
  }
  hp->rope_freq_scale = static_cast<float>(1.0 / factor);
  return Status::Ok();
}

}  // namespace

const char* const kSupportedArchitectures = "llama (incl. llama2.c exports, TinyLlama, Llama 3), qwen2, qwen3";

Result<std::unique_ptr<Model>> Model::Load(const std::string& path) {
  std::unique_ptr<Model> model(new Model());
  SPARKV_ASSIGN_OR_RETURN(model->file_, gguf::File::Open(path));
  const gguf::File& file = *model->file_;
  HParams& hp = model->hparams_;

  SPARKV_ASSIGN_OR_RETURN(hp.arch, file.GetString("general.architecture"));
  const bool qwen2 = hp.arch == "qwen2";
  const bool qwen3 = hp.arch == "qwen3";
  if (hp.arch != "llama" && !qwen2 && !qwen3) {
    return UnsupportedError("model '" + path + "' has architecture '" + hp.arch + "'; supported: " +
                            kSupportedArchitectures);
  }
  if (file.Find("general.name") != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(hp.name, file.GetString("general.name"));
  }

  const std::string prefix = hp.arch + ".";
  SPARKV_ASSIGN_OR_RETURN(hp.n_embd, ReadCount(file, prefix + "embedding_length", -1));
  SPARKV_ASSIGN_OR_RETURN(hp.n_layer, ReadCount(file, prefix + "block_count", -1));
  SPARKV_ASSIGN_OR_RETURN(hp.n_ff, ReadCount(file, prefix + "feed_forward_length", -1));
  SPARKV_ASSIGN_OR_RETURN(hp.n_head, ReadCount(file, prefix + "attention.head_count", -1));
  SPARKV_ASSIGN_OR_RETURN(hp.n_head_kv, ReadCount(file, prefix + "attention.head_count_kv", hp.n_head));
  SPARKV_ASSIGN_OR_RETURN(hp.n_ctx_train, ReadCount(file, prefix + "context_length", 2048));
  if (hp.n_embd % hp.n_head != 0 || hp.n_head % hp.n_head_kv != 0) {
    return InvalidArgumentError("model '" + path + "': n_embd " + std::to_string(hp.n_embd) + ", n_head " +
                                std::to_string(hp.n_head) + " and n_head_kv " + std::to_string(hp.n_head_kv) +
                                " do not divide evenly");
  }
  SPARKV_ASSIGN_OR_RETURN(hp.head_dim, ReadCount(file, prefix + "attention.key_length", hp.n_embd / hp.n_head));
  SPARKV_ASSIGN_OR_RETURN(const int32_t value_dim, ReadCount(file, prefix + "attention.value_length", hp.head_dim));
  if (value_dim != hp.head_dim) {
    return UnsupportedError("model '" + path + "': attention.value_length " + std::to_string(value_dim) +
                            " differs from attention.key_length " + std::to_string(hp.head_dim) +
                            "; the KV cache needs equal K and V head sizes");
  }
  SPARKV_ASSIGN_OR_RETURN(hp.n_rot, ReadCount(file, prefix + "rope.dimension_count", hp.head_dim));
  if (hp.n_rot != hp.head_dim || hp.head_dim % 2 != 0) {
    return UnsupportedError("model '" + path + "': partial RoPE (rope.dimension_count " + std::to_string(hp.n_rot) +
                            " != head_dim " + std::to_string(hp.head_dim) + ") is not supported");
  }
  SPARKV_ASSIGN_OR_RETURN(const double eps, file.GetFloatOr(prefix + "attention.layer_norm_rms_epsilon", 1e-5));
  SPARKV_ASSIGN_OR_RETURN(const double theta, file.GetFloatOr(prefix + "rope.freq_base", 10000.0));
  if (!(eps > 0 && eps < 1) || !(theta > 0) || !std::isfinite(theta)) {
    return InvalidArgumentError("model '" + path + "': rms epsilon " + std::to_string(eps) + " or rope theta " +
                                std::to_string(theta) + " is out of range");
  }
  hp.rms_eps = static_cast<float>(eps);
  hp.rope_theta = static_cast<float>(theta);
  // Llama GGUFs store Q and K permuted for adjacent-pair RoPE; qwen2 and qwen3 keep the
  // half-split layout of their checkpoints.
  hp.rope_layout = qwen2 || qwen3 ? RopeLayout::kNeox : RopeLayout::kNormal;
  SPARKV_RETURN_IF_ERROR(ReadRopeScaling(file, prefix, &hp));

  // Weights.
  const gguf::TensorInfo* embedding = file.FindTensor("token_embd.weight");
  if (embedding == nullptr) return NotFoundError("model '" + path + "' has no tensor 'token_embd.weight'");
  hp.n_vocab = static_cast<int32_t>(embedding->ne[1]);
  const int64_t n_q = int64_t{hp.n_head} * hp.head_dim;
  const int64_t n_kv = int64_t{hp.n_head_kv} * hp.head_dim;
  SPARKV_RETURN_IF_ERROR(BindTensor(file, "token_embd.weight", {hp.n_embd, hp.n_vocab}, true, true, &model->token_embedding_));
  SPARKV_RETURN_IF_ERROR(BindTensor(file, "output_norm.weight", {hp.n_embd}, false, true, &model->output_norm_));
  SPARKV_RETURN_IF_ERROR(BindTensor(file, "output.weight", {hp.n_embd, hp.n_vocab}, true, false, &model->output_));
  if (!model->output_.present()) model->output_ = model->token_embedding_;  // tied classifier
  SPARKV_RETURN_IF_ERROR(BindTensor(file, "rope_freqs.weight", {hp.n_rot / 2}, false, false,
                                    &model->rope_freq_factors_));

  model->layers_.resize(hp.n_layer);
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    LayerWeights& layer = model->layers_[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_norm.weight", {hp.n_embd}, false, true, &layer.attn_norm));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_q.weight", {hp.n_embd, n_q}, true, true, &layer.wq));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_k.weight", {hp.n_embd, n_kv}, true, true, &layer.wk));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_v.weight", {hp.n_embd, n_kv}, true, true, &layer.wv));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_output.weight", {n_q, hp.n_embd}, true, true, &layer.wo));
    // qwen2 always has Q/K/V biases; llama GGUFs may carry them too.
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_q.bias", {n_q}, false, qwen2, &layer.bq));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_k.bias", {n_kv}, false, qwen2, &layer.bk));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_v.bias", {n_kv}, false, qwen2, &layer.bv));
    if (qwen3) {
      SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_q_norm.weight", {hp.head_dim}, false, true, &layer.q_norm));
      SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "attn_k_norm.weight", {hp.head_dim}, false, true, &layer.k_norm));
    }
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "ffn_norm.weight", {hp.n_embd}, false, true, &layer.ffn_norm));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "ffn_gate.weight", {hp.n_embd, hp.n_ff}, true, true, &layer.w_gate));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "ffn_up.weight", {hp.n_embd, hp.n_ff}, true, true, &layer.w_up));
    SPARKV_RETURN_IF_ERROR(BindTensor(file, p + "ffn_down.weight", {hp.n_ff, hp.n_embd}, true, true, &layer.w_down));
  }

  // Vocabulary: a model without tokenizer metadata still runs on token ids.
  if (file.Find("tokenizer.ggml.tokens") != nullptr) {
    SPARKV_ASSIGN_OR_RETURN(model->vocab_, ReadVocab(file));
    if (model->vocab_.size() != hp.n_vocab) {
      return InvalidArgumentError("model '" + path + "': the vocabulary has " + std::to_string(model->vocab_.size()) +
                                  " tokens but token_embd.weight has " + std::to_string(hp.n_vocab) + " rows");
    }
  } else {
    SPARKV_LOG_WARN("model '%s' has no tokenizer metadata; using a placeholder vocabulary of %d ids",
                    path.c_str(), hp.n_vocab);
    model->vocab_ = MakePlaceholderVocab(hp.n_vocab);
  }

  // Fingerprint: everything that changes the KV a prefill produces.
  Hasher128 hasher;
  hasher.UpdateString("sparkv-model-fingerprint-v1");
  hasher.UpdateString(hp.arch);
  for (int64_t v : {hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff, hp.n_rot,
                    static_cast<int32_t>(hp.rope_layout)}) {
    hasher.UpdateU64(static_cast<uint64_t>(v));
  }
  hasher.Update(&hp.rms_eps, sizeof(hp.rms_eps));
  hasher.Update(&hp.rope_theta, sizeof(hp.rope_theta));
  // Hashed only when set, so that fingerprints of models without scaling stay as they were.
  if (hp.rope_freq_scale != 1.0f) hasher.Update(&hp.rope_freq_scale, sizeof(hp.rope_freq_scale));
  for (const gguf::TensorInfo& info : file.tensors()) {
    hasher.UpdateString(info.name);
    hasher.UpdateU64(static_cast<uint64_t>(info.type));
    for (int64_t n : info.ne) hasher.UpdateU64(static_cast<uint64_t>(n));
    hasher.Update(file.TensorData(info), info.n_bytes);
  }
  model->fingerprint_ = hasher.Finish();

  SPARKV_LOG_INFO("loaded %s (%s): %d layers, n_embd %d, %d heads (%d kv), n_ff %d, vocab %d, %.1f MiB of weights",
                  path.c_str(), hp.arch.c_str(), hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ff, hp.n_vocab,
                  model->weight_bytes() / 1048576.0);
  return model;
}

size_t Model::weight_bytes() const {
  size_t total = 0;
  for (const gguf::TensorInfo& info : file_->tensors()) total += info.n_bytes;
  return total;
}

}  // namespace sparkv
