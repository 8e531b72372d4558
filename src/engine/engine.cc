#include "engine/engine.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "common/format.h"
#include "common/log.h"

namespace sparkv {
namespace {

// Keys per attention tile: the scores of one tile for every query head of a KV group stay in L1,
// and the online softmax rescales the accumulators once per tile rather than once per key.
constexpr int32_t kKeyTile = 64;

// Query tokens per attention work item. Each K and V row of a tile is read (and converted from
// f16) once for the query heads of this many tokens instead of one token's.
constexpr int32_t kQueryBlock = 4;

// Multiply-adds below which a matrix product runs on the calling thread: waking the pool costs
// more than the product (tiny models, single-token heads).
constexpr int64_t kMinParallelMacs = 1 << 17;

const float* F32Data(const WeightView& w) { return reinterpret_cast<const float*>(w.data); }

std::string ShapeText(const WeightView& w) {
  return "[" + std::to_string(w.n_in()) + ", " + std::to_string(w.n_out()) + "]";
}

Status CheckMatrix(const WeightView& w, const char* name, int32_t layer, int64_t n_in, int64_t n_out) {
  const std::string where = std::string(name) + (layer >= 0 ? " of layer " + std::to_string(layer) : "");
  if (!w.present()) return InvalidArgumentError("model has no " + where);
  if (w.n_in() != n_in || w.n_out() != n_out) {
    return InvalidArgumentError(where + " has shape " + ShapeText(w) + ", expected [" +
                                std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
  }
  switch (w.type()) {
    case gguf::TensorType::kF32:
    case gguf::TensorType::kF16:
    case gguf::TensorType::kBF16:
      return Status::Ok();
    case gguf::TensorType::kQ8_0:
    case gguf::TensorType::kQ4_0:
      if (n_in % kernels::kQ8BlockSize != 0) {
        return InvalidArgumentError(where + " is " + std::string(gguf::GetTypeTraits(w.type())->name) + " with " +
                                    std::to_string(n_in) + " inputs, not a multiple of 32");
      }
      return Status::Ok();
    case gguf::TensorType::kQ4_K:
    case gguf::TensorType::kQ6_K:
      if (n_in % kernels::kQKBlockSize != 0) {
        return InvalidArgumentError(where + " is " + std::string(gguf::GetTypeTraits(w.type())->name) + " with " +
                                    std::to_string(n_in) + " inputs, not a multiple of 256");
      }
      return Status::Ok();
    default:
      return UnsupportedError(where + " has weight type " + std::to_string(static_cast<int>(w.type())) +
                              "; the engine runs F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K: requantize the model");
  }
}

Status CheckVector(const WeightView& w, const char* name, int32_t layer, int64_t n, bool optional) {
  const std::string where = std::string(name) + (layer >= 0 ? " of layer " + std::to_string(layer) : "");
  if (!w.present()) return optional ? Status::Ok() : InvalidArgumentError("model has no " + where);
  if (w.type() != gguf::TensorType::kF32 || w.info->n_elements() != n) {
    return UnsupportedError(where + " must be " + std::to_string(n) + " f32 values");
  }
  return Status::Ok();
}

Status CheckModel(const Model& model) {
  const HParams& hp = model.hparams();
  if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.head_dim <= 0 ||
      hp.n_ff <= 0 || hp.n_vocab <= 0) {
    return InvalidArgumentError("model hyperparameters must be positive");
  }
  if (hp.n_head % hp.n_head_kv != 0) {
    return InvalidArgumentError("n_head " + std::to_string(hp.n_head) + " is not a multiple of n_head_kv " +
                                std::to_string(hp.n_head_kv));
  }
  if (hp.head_dim > kernels::kMaxHeadDim) {
    return UnsupportedError("head_dim " + std::to_string(hp.head_dim) + " exceeds the attention kernels' limit of " +
                            std::to_string(kernels::kMaxHeadDim));
  }
  if (hp.n_rot <= 0 || hp.n_rot % 2 != 0 || hp.n_rot > hp.head_dim) {
    return UnsupportedError("n_rot " + std::to_string(hp.n_rot) + " must be even and at most head_dim " +
                            std::to_string(hp.head_dim));
  }
  const int64_t n_q = int64_t{hp.n_head} * hp.head_dim;
  const int64_t n_kv = hp.n_embd_kv();
  SPARKV_RETURN_IF_ERROR(CheckVector(model.rope_freq_factors(), "rope_freqs", -1, hp.n_rot / 2, true));
  if (model.rope_freq_factors().present()) {
    const float* factors = F32Data(model.rope_freq_factors());
    for (int32_t i = 0; i < hp.n_rot / 2; ++i) {
      if (!(factors[i] > 0) || !std::isfinite(factors[i])) {
        return InvalidArgumentError("rope_freqs[" + std::to_string(i) + "] = " + std::to_string(factors[i]) +
                                    " must be a positive number");
      }
    }
  }
  if (!(hp.rope_freq_scale > 0) || !std::isfinite(hp.rope_freq_scale)) {
    return InvalidArgumentError("rope frequency scale " + std::to_string(hp.rope_freq_scale) + " must be positive");
  }
  if (static_cast<int64_t>(model.layers().size()) != hp.n_layer) {
    return InvalidArgumentError("model has " + std::to_string(model.layers().size()) + " layers but n_layer is " +
                                std::to_string(hp.n_layer));
  }
  SPARKV_RETURN_IF_ERROR(CheckMatrix(model.token_embedding(), "token embedding", -1, hp.n_embd, hp.n_vocab));
  SPARKV_RETURN_IF_ERROR(CheckMatrix(model.output(), "output", -1, hp.n_embd, hp.n_vocab));
  SPARKV_RETURN_IF_ERROR(CheckVector(model.output_norm(), "output norm", -1, hp.n_embd, false));
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    const LayerWeights& w = model.layers()[l];
    SPARKV_RETURN_IF_ERROR(CheckVector(w.attn_norm, "attn_norm", l, hp.n_embd, false));
    SPARKV_RETURN_IF_ERROR(CheckVector(w.ffn_norm, "ffn_norm", l, hp.n_embd, false));
    SPARKV_RETURN_IF_ERROR(CheckVector(w.bq, "bq", l, n_q, true));
    SPARKV_RETURN_IF_ERROR(CheckVector(w.bk, "bk", l, n_kv, true));
    SPARKV_RETURN_IF_ERROR(CheckVector(w.bv, "bv", l, n_kv, true));
    SPARKV_RETURN_IF_ERROR(CheckVector(w.q_norm, "q_norm", l, hp.head_dim, true));
    SPARKV_RETURN_IF_ERROR(CheckVector(w.k_norm, "k_norm", l, hp.head_dim, true));
    if (w.q_norm.present() != w.k_norm.present()) {
      return InvalidArgumentError("layer " + std::to_string(l) + " has only one of q_norm and k_norm; give both or neither");
    }
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.wq, "wq", l, hp.n_embd, n_q));
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.wk, "wk", l, hp.n_embd, n_kv));
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.wv, "wv", l, hp.n_embd, n_kv));
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.wo, "wo", l, n_q, hp.n_embd));
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.w_gate, "w_gate", l, hp.n_embd, hp.n_ff));
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.w_up, "w_up", l, hp.n_embd, hp.n_ff));
    SPARKV_RETURN_IF_ERROR(CheckMatrix(w.w_down, "w_down", l, hp.n_ff, hp.n_embd));
  }
  return Status::Ok();
}

}  // namespace

Engine::Engine(const Model& model, const EngineOptions& options)
    : model_(model), hp_(model.hparams()), options_(options), k_(options.kernels != nullptr ? *options.kernels : kernels::BestKernels()), pool_(options.n_threads) {}

Result<std::unique_ptr<Engine>> Engine::Create(const Model& model, EngineOptions options) {
  SPARKV_RETURN_IF_ERROR(CheckModel(model));
  const HParams& hp = model.hparams();
  if (options.n_positions <= 0) options.n_positions = hp.n_ctx_train;
  if (options.n_positions <= 0) {
    return InvalidArgumentError("EngineOptions.n_positions is 0 and the model states no n_ctx_train; set it");
  }
  if (options.n_batch <= 0) {
    return InvalidArgumentError("EngineOptions.n_batch " + std::to_string(options.n_batch) + " must be positive");
  }
  if (options.n_threads < 0) {
    return InvalidArgumentError("EngineOptions.n_threads " + std::to_string(options.n_threads) +
                                " must be 0 (every core) or positive");
  }

  std::unique_ptr<Engine> engine(new Engine(model, options));
  options.n_threads = engine->pool_.n_threads();
  engine->options_ = options;
  KvCacheShape shape;
  shape.n_layer = hp.n_layer;
  shape.n_head_kv = hp.n_head_kv;
  shape.head_dim = hp.head_dim;
  shape.n_positions = options.n_positions;
  shape.elem = options.kv_type;
  SPARKV_ASSIGN_OR_RETURN(engine->cache_, KvCache::Create(shape));

  Engine& e = *engine;
  e.n_q_ = hp.n_head * hp.head_dim;
  e.n_kv_ = hp.n_embd_kv();
  e.n_rep_ = hp.n_head / hp.n_head_kv;
  const size_t b = static_cast<size_t>(options.n_batch);
  const size_t width = static_cast<size_t>(std::max(hp.n_embd, e.n_q_));
  e.x_.resize(b * hp.n_embd);
  e.xn_.resize(b * width);
  e.q_.resize(b * e.n_q_);
  e.kv_.resize(2 * b * e.n_kv_);
  e.att_.resize(b * e.n_q_);
  e.gate_.resize(b * hp.n_ff);
  e.up_.resize(b * hp.n_ff);
  const size_t max_in = std::max(width, static_cast<size_t>(hp.n_ff));
  e.q8_.resize(b * ((max_in + kernels::kQ8BlockSize - 1) / kernels::kQ8BlockSize));

  // Angles in double: pos * theta^(-2i/n_rot) loses digits in f32 at large positions. Linear
  // scaling multiplies the position; rope_freqs factors divide each pair's frequency.
  const int32_t half = hp.n_rot / 2;
  const float* freq_factors = model.rope_freq_factors().present() ? F32Data(model.rope_freq_factors()) : nullptr;
  e.rope_cos_.resize(static_cast<size_t>(options.n_positions) * half);
  e.rope_sin_.resize(static_cast<size_t>(options.n_positions) * half);
  for (int32_t p = 0; p < options.n_positions; ++p) {
    for (int32_t i = 0; i < half; ++i) {
      const double frequency = std::pow(static_cast<double>(hp.rope_theta), -2.0 * i / hp.n_rot) /
                               (freq_factors != nullptr ? freq_factors[i] : 1.0);
      const double angle = p * static_cast<double>(hp.rope_freq_scale) * frequency;
      e.rope_cos_[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(angle));
      e.rope_sin_[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(angle));
    }
  }
  e.attn_scratch_.resize(static_cast<size_t>(e.pool_.n_threads()));
  // Per worker, for kQueryBlock x n_rep query rows: scores, accumulators, the queries, max, sum.
  for (auto& s : e.attn_scratch_) {
    s.resize(static_cast<size_t>(kQueryBlock) * e.n_rep_ * (kKeyTile + 2 * hp.head_dim + 2));
  }

  SPARKV_LOG_INFO("engine: %d layers, n_embd %d, %d threads, %s kernels, KV cache %d positions %s (%zu bytes), "
                  "scratch %zu bytes",
                  hp.n_layer, hp.n_embd, e.pool_.n_threads(), std::string(e.k_.name).c_str(),
                  options.n_positions, options.kv_type == KvElemType::kF16 ? "f16" : "f32",
                  e.cache_->total_bytes(), e.scratch_bytes());
  return engine;
}

size_t Engine::scratch_bytes() const {
  size_t n = (x_.size() + xn_.size() + q_.size() + kv_.size() + att_.size() + gate_.size() + up_.size() +
              rope_cos_.size() + rope_sin_.size()) * sizeof(float) +
             q8_.size() * sizeof(kernels::BlockQ8Act);
  for (const auto& s : attn_scratch_) n += s.size() * sizeof(float);
  return n;
}

void Engine::MatMuls(std::initializer_list<Product> products, const float* x, int64_t x_stride, int64_t n_tokens) {
  constexpr size_t kMaxProducts = 3;
  struct Part {
    void (*kernel)(const kernels::MatMulArgs&);
    kernels::MatMulArgs args;
    int64_t first_block;  // index of its first row block among all the products' blocks
    int64_t n_blocks;
  };
  assert(products.size() >= 1);
  assert(products.size() <= kMaxProducts);
  std::array<Part, kMaxProducts> parts;
  size_t n_parts = 0;
  const int64_t n_in = products.begin()->w->n_in();
  const int64_t n_blocks_in = n_in / kernels::kQ8BlockSize;
  bool quantized = false;
  int64_t n_row_blocks = 0;
  for (const Product& product : products) {
    const WeightView& w = *product.w;
    assert(w.n_in() == n_in);
    Part& part = parts[n_parts++];
    part.args.w = w.data;
    part.args.w_row_bytes = w.row_bytes();
    part.args.n_in = n_in;
    part.args.n_tokens = n_tokens;
    part.args.y = product.y;
    part.args.ldy = product.ldy;
    part.args.row_end = w.n_out();
    switch (w.type()) {
      case gguf::TensorType::kF32: part.kernel = k_.matmul_f32; break;
      case gguf::TensorType::kF16: part.kernel = k_.matmul_f16; break;
      case gguf::TensorType::kBF16: part.kernel = k_.matmul_bf16; break;
      case gguf::TensorType::kQ4_0: part.kernel = k_.matmul_q4_0; break;
      case gguf::TensorType::kQ4_K: part.kernel = k_.matmul_q4_k; break;
      case gguf::TensorType::kQ6_K: part.kernel = k_.matmul_q6_k; break;
      default: part.kernel = k_.matmul_q8_0; break;  // Create rejects every other type
    }
    const bool float_weights = w.type() == gguf::TensorType::kF32 || w.type() == gguf::TensorType::kF16 ||
                               w.type() == gguf::TensorType::kBF16;
    if (float_weights) {
      part.args.x = x;
      part.args.x_row_bytes = x_stride * sizeof(float);
    } else {
      quantized = true;
      part.args.x = q8_.data();
      part.args.x_row_bytes = n_blocks_in * sizeof(kernels::BlockQ8Act);
    }
    // Rows go to threads in blocks of 4, the SIMD kernels' row tile, counted from each product's
    // first row so that every row gets the same tile as in a product of its own.
    part.first_block = n_row_blocks;
    part.n_blocks = (w.n_out() + 3) / 4;
    n_row_blocks += part.n_blocks;
  }
  if (quantized) {
    for (int64_t t = 0; t < n_tokens; ++t) k_.quantize_q8_act(x + t * x_stride, n_in, &q8_[t * n_blocks_in]);
  }

  const int64_t macs_per_block = 4 * n_in * n_tokens;
  const int64_t grain = std::max<int64_t>(1, kMinParallelMacs / std::max<int64_t>(macs_per_block, 1));
  pool_.ParallelFor(n_row_blocks, grain, [&](int64_t begin, int64_t end) {
    for (size_t i = 0; i < n_parts; ++i) {
      const Part& part = parts[i];
      const int64_t from = std::max(begin, part.first_block) - part.first_block;
      const int64_t to = std::min(end, part.first_block + part.n_blocks) - part.first_block;
      if (from >= to) continue;
      kernels::MatMulArgs args = part.args;
      args.row_begin = from * 4;
      args.row_end = std::min(part.args.row_end, to * 4);
      part.kernel(args);
    }
  });
}

// Causal attention for the n tokens of a micro-batch at positions [pos, pos + n): token t attends
// to keys [0, pos + t], already in the cache. One work item is a block of kQueryBlock tokens and
// one KV head, so each K/V row is read once for the n_rep query heads of every token of the
// block. Softmax is computed online over key tiles (running max and sum, accumulators rescaled
// when the max grows), in f32. A key beyond a token's causal limit gets probability 0, and a
// token skips the tiles wholly beyond it. The scores and value kernels compute each row and each
// key the same way, whatever the other rows and the tile's length. So a token's result depends
// neither on its block nor on how a prefill is split into micro-batches.
void Engine::Attention(int32_t layer, int32_t n, Position pos) {
  const int32_t head_dim = hp_.head_dim;
  const int32_t n_rep = n_rep_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const bool f16 = cache_->shape().elem == KvElemType::kF16;
  const size_t elem_bytes = KvElemBytes(cache_->shape().elem);
  const int32_t n_blocks = (n + kQueryBlock - 1) / kQueryBlock;

  // Items of the last block cost the most; keep chunks above the pool's break-even work.
  const int64_t macs_per_item = 2 * int64_t{pos + n} * kQueryBlock * n_rep * head_dim;
  const int64_t grain = std::max<int64_t>(1, kMinParallelMacs / std::max<int64_t>(macs_per_item, 1));
  pool_.ParallelFor(int64_t{n_blocks} * hp_.n_head_kv, grain, [&](int64_t begin, int64_t end, int worker) {
    const int32_t max_rows = kQueryBlock * n_rep;
    float* scores = attn_scratch_[worker].data();  // [max_rows][kKeyTile]
    float* acc = scores + max_rows * kKeyTile;     // [max_rows][head_dim]
    float* q = acc + max_rows * head_dim;          // [max_rows][head_dim]
    float* max = q + max_rows * head_dim;          // [max_rows]
    float* sum = max + max_rows;                   // [max_rows]
    for (int64_t item = begin; item < end; ++item) {
      const int32_t t0 = static_cast<int32_t>(item / hp_.n_head_kv) * kQueryBlock;
      const int32_t g = static_cast<int32_t>(item % hp_.n_head_kv);
      const int32_t n_tokens = std::min(kQueryBlock, n - t0);
      const int32_t rows = n_tokens * n_rep;
      for (int32_t tt = 0; tt < n_tokens; ++tt) {
        const float* src = q_.data() + static_cast<size_t>(t0 + tt) * n_q_ + static_cast<size_t>(g) * n_rep * head_dim;
        std::memcpy(q + static_cast<size_t>(tt) * n_rep * head_dim, src, sizeof(float) * n_rep * head_dim);
      }
      const int32_t n_keys = pos + t0 + n_tokens;  // the keys of the block's last token
      const size_t head_offset = static_cast<size_t>(g) * head_dim * elem_bytes;
      std::fill(acc, acc + rows * head_dim, 0.0f);
      std::fill(max, max + rows, -std::numeric_limits<float>::infinity());
      std::fill(sum, sum + rows, 0.0f);

      for (int32_t j0 = 0; j0 < n_keys; j0 += kKeyTile) {
        const int32_t nj = std::min(kKeyTile, n_keys - j0);
        const uint8_t* keys = cache_->k_row(layer, j0) + head_offset;
        const uint8_t* values = cache_->v_row(layer, j0) + head_offset;
        if (f16) {
          k_.attn_scores_f16(q, rows, head_dim, reinterpret_cast<const uint16_t*>(keys), n_kv_, nj, scale, scores,
                             kKeyTile);
        } else {
          k_.attn_scores_f32(q, rows, head_dim, reinterpret_cast<const float*>(keys), n_kv_, nj, scale, scores,
                             kKeyTile);
        }
        for (int32_t tt = 0; tt < n_tokens; ++tt) {
          // Keys [j0, j0 + valid) of this tile are within the token's causal limit.
          const int32_t valid = std::min(nj, pos + t0 + tt + 1 - j0);
          for (int32_t r = tt * n_rep; r < (tt + 1) * n_rep; ++r) {
            float* s = scores + r * kKeyTile;
            if (valid <= 0) {
              std::fill(s, s + nj, 0.0f);
              continue;
            }
            const float tile_max = *std::max_element(s, s + valid);
            if (tile_max > max[r]) {
              // exp(-inf) = 0 clears the empty accumulators on the first tile.
              const float correction = std::exp(max[r] - tile_max);
              sum[r] *= correction;
              k_.scale(acc + r * head_dim, head_dim, correction);
              max[r] = tile_max;
            }
            sum[r] += k_.exp_shift_sum(s, valid, max[r]);
            std::fill(s + valid, s + nj, 0.0f);
          }
        }
        if (f16) {
          k_.attn_values_f16(scores, rows, kKeyTile, reinterpret_cast<const uint16_t*>(values), n_kv_, nj, head_dim,
                             acc);
        } else {
          k_.attn_values_f32(scores, rows, kKeyTile, reinterpret_cast<const float*>(values), n_kv_, nj, head_dim,
                             acc);
        }
      }

      for (int32_t tt = 0; tt < n_tokens; ++tt) {
        float* out = att_.data() + static_cast<size_t>(t0 + tt) * n_q_ + static_cast<size_t>(g) * n_rep * head_dim;
        for (int32_t r = 0; r < n_rep; ++r) {
          const int32_t row = tt * n_rep + r;
          std::memcpy(out + r * head_dim, acc + row * head_dim, head_dim * sizeof(float));
          k_.scale(out + r * head_dim, head_dim, 1.0f / sum[row]);
        }
      }
    }
  });
}

bool Engine::ForwardBatch(const TokenId* tokens, int32_t n, Position pos, bool need_outputs) {
  const int32_t n_embd = hp_.n_embd;
  const int32_t n_ff = hp_.n_ff;
  const int32_t half = hp_.n_rot / 2;
  const bool neox = hp_.rope_layout == RopeLayout::kNeox;
  const WeightView& emb = model_.token_embedding();
  float* k_new = kv_.data();                                  // [n][n_kv]
  float* v_new = kv_.data() + static_cast<size_t>(options_.n_batch) * n_kv_;  // [n][n_kv]

  const auto batch_start = std::chrono::steady_clock::now();
  // Embedding rows (row per token in the GGUF layout).
  for (int32_t t = 0; t < n; ++t) {
    kernels::DequantizeRow(static_cast<uint32_t>(emb.type()), emb.data + static_cast<size_t>(tokens[t]) * emb.row_bytes(),
                           n_embd, x_.data() + static_cast<size_t>(t) * n_embd);
  }

  for (int32_t l = 0; l < hp_.n_layer; ++l) {
    if (Interrupted()) return false;
    const LayerWeights& w = model_.layers()[l];

    // Attention block: norm, Q/K/V projections, RoPE, new rows into the cache, attention, output
    // projection added to the residual.
    for (int32_t t = 0; t < n; ++t) {
      k_.rms_norm(x_.data() + static_cast<size_t>(t) * n_embd, F32Data(w.attn_norm), n_embd, hp_.rms_eps,
                  xn_.data() + static_cast<size_t>(t) * n_embd);
    }
    MatMuls({{&w.wq, q_.data(), n_q_}, {&w.wk, k_new, n_kv_}, {&w.wv, v_new, n_kv_}}, xn_.data(), n_embd, n);
    for (int32_t t = 0; t < n; ++t) {
      float* q = q_.data() + static_cast<size_t>(t) * n_q_;
      float* k = k_new + static_cast<size_t>(t) * n_kv_;
      float* v = v_new + static_cast<size_t>(t) * n_kv_;
      if (w.bq.present()) k_.axpy_f32(1.0f, F32Data(w.bq), n_q_, q);
      if (w.bk.present()) k_.axpy_f32(1.0f, F32Data(w.bk), n_kv_, k);
      if (w.bv.present()) k_.axpy_f32(1.0f, F32Data(w.bv), n_kv_, v);
      if (w.q_norm.present()) {
        for (int32_t h = 0; h < hp_.n_head; ++h) {
          float* head = q + static_cast<size_t>(h) * hp_.head_dim;
          k_.rms_norm(head, F32Data(w.q_norm), hp_.head_dim, hp_.rms_eps, head);
        }
        for (int32_t h = 0; h < hp_.n_head_kv; ++h) {
          float* head = k + static_cast<size_t>(h) * hp_.head_dim;
          k_.rms_norm(head, F32Data(w.k_norm), hp_.head_dim, hp_.rms_eps, head);
        }
      }
      const float* cos = rope_cos_.data() + static_cast<size_t>(pos + t) * half;
      const float* sin = rope_sin_.data() + static_cast<size_t>(pos + t) * half;
      k_.rope(q, hp_.n_head, hp_.head_dim, hp_.n_rot, cos, sin, neox);
      k_.rope(k, hp_.n_head_kv, hp_.head_dim, hp_.n_rot, cos, sin, neox);
      if (cache_->shape().elem == KvElemType::kF16) {
        k_.f32_to_f16(k, n_kv_, reinterpret_cast<uint16_t*>(cache_->k_row(l, pos + t)));
        k_.f32_to_f16(v, n_kv_, reinterpret_cast<uint16_t*>(cache_->v_row(l, pos + t)));
      } else {
        std::memcpy(cache_->k_row(l, pos + t), k, n_kv_ * sizeof(float));
        std::memcpy(cache_->v_row(l, pos + t), v, n_kv_ * sizeof(float));
      }
    }
    // The last layer's K/V rows are all the cache needs; its attention and feed-forward only
    // feed the logits.
    if (l == hp_.n_layer - 1 && !need_outputs) break;
    Attention(l, n, pos);
    MatMul(w.wo, att_.data(), n_q_, n, xn_.data(), n_embd);
    for (int32_t t = 0; t < n; ++t) {
      k_.axpy_f32(1.0f, xn_.data() + static_cast<size_t>(t) * n_embd, n_embd, x_.data() + static_cast<size_t>(t) * n_embd);
    }

    // Feed-forward block: norm, SiLU(gate) * up, down projection added to the residual.
    for (int32_t t = 0; t < n; ++t) {
      k_.rms_norm(x_.data() + static_cast<size_t>(t) * n_embd, F32Data(w.ffn_norm), n_embd, hp_.rms_eps,
                  xn_.data() + static_cast<size_t>(t) * n_embd);
    }
    MatMuls({{&w.w_gate, gate_.data(), n_ff}, {&w.w_up, up_.data(), n_ff}}, xn_.data(), n_embd, n);
    k_.silu_mul(gate_.data(), up_.data(), static_cast<int64_t>(n) * n_ff, gate_.data());
    MatMul(w.w_down, gate_.data(), n_ff, n, xn_.data(), n_embd);
    for (int32_t t = 0; t < n; ++t) {
      k_.axpy_f32(1.0f, xn_.data() + static_cast<size_t>(t) * n_embd, n_embd, x_.data() + static_cast<size_t>(t) * n_embd);
    }
  }
  return IdleForSlowdown(batch_start);
}

Status Engine::set_emulated_slowdown(double factor) {
  if (!(factor >= 1.0 && factor <= 1000.0)) {
    return InvalidArgumentError("emulated slowdown " + FormatNumber(factor) +
                                " is outside [1, 1000]; 1 runs at this device's own speed, 2 twice as slow");
  }
  slowdown_ = factor;
  return Status::Ok();
}

bool Engine::IdleForSlowdown(std::chrono::steady_clock::time_point batch_start) {
  if (slowdown_ <= 1.0) return true;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  const Clock::time_point until =
      now + std::chrono::duration_cast<Clock::duration>((now - batch_start) * (slowdown_ - 1.0));
  // Every thread of the pool spins until the same deadline, as it would compute on a slower chip.
  // Sleeping instead let the workers park, and on a 2-thread engine waking them took up to half
  // the next layer's time again, so a 4x emulation ran about 6x slower. One wait per micro-batch
  // rather than per layer keeps the pool's own cost per call out of small models' figures.
  std::atomic<bool> stopped{false};
  pool_.ParallelFor(pool_.n_threads(), [&](int64_t, int64_t) {
    while (Clock::now() < until) {
      if (Interrupted()) {
        stopped.store(true, std::memory_order_relaxed);
        return;
      }
      CpuRelax();
    }
  });
  return !stopped.load(std::memory_order_relaxed);
}

void Engine::Logits(const std::vector<int32_t>& rows, const std::vector<int32_t>& out_index, float* out) {
  const int32_t n_embd = hp_.n_embd;
  for (size_t i = 0; i < rows.size(); ++i) {
    float* normed = xn_.data() + i * n_embd;
    k_.rms_norm(x_.data() + static_cast<size_t>(rows[i]) * n_embd, F32Data(model_.output_norm()), n_embd,
                hp_.rms_eps, normed);
  }
  // Consecutive output rows share one product, so the classifier streams once for them.
  size_t i = 0;
  while (i < rows.size()) {
    size_t j = i + 1;
    while (j < rows.size() && out_index[j] == out_index[j - 1] + 1) ++j;
    MatMul(model_.output(), xn_.data() + i * n_embd, n_embd, static_cast<int64_t>(j - i),
           out + static_cast<size_t>(out_index[i]) * hp_.n_vocab, hp_.n_vocab);
    i = j;
  }
}

Status Engine::PrefillWithLogits(std::span<const TokenId> tokens, Position begin, std::span<const Position> wanted,
                                 std::vector<float>* out) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return InvalidArgumentError("prefill needs at least one token");
  if (begin < 0 || begin + n > cache_->n_positions()) {
    return InvalidArgumentError("prefill of positions [" + std::to_string(begin) + ", " + std::to_string(begin + n) +
                                ") does not fit the KV cache of " + std::to_string(cache_->n_positions()) +
                                " positions; raise EngineOptions.n_positions");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp_.n_vocab) {
      return InvalidArgumentError("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                                  " is outside the vocabulary [0, " + std::to_string(hp_.n_vocab) + ")");
    }
  }
  for (const Position p : wanted) {
    if (p < begin || p >= begin + n) {
      return InvalidArgumentError("logits wanted at position " + std::to_string(p) + ", outside the prefill [" +
                                  std::to_string(begin) + ", " + std::to_string(begin + n) + ")");
    }
  }
  const int32_t missing = cache_->FirstNotResident(0, begin);
  if (missing != begin) {
    return InvalidArgumentError("prefill from position " + std::to_string(begin) + " needs positions [0, " +
                                std::to_string(begin) + ") resident, but position " + std::to_string(missing) +
                                " is not: prefill or stream it first");
  }

  if (out != nullptr) out->assign(wanted.size() * static_cast<size_t>(hp_.n_vocab), 0.0f);
  std::vector<int32_t> rows, out_index;
  for (int64_t b0 = 0; b0 < n; b0 += options_.n_batch) {
    const int32_t nb = static_cast<int32_t>(std::min<int64_t>(options_.n_batch, n - b0));
    const Position pos = begin + static_cast<Position>(b0);
    rows.clear();
    out_index.clear();
    for (size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i] >= pos && wanted[i] < pos + nb) {
        rows.push_back(wanted[i] - pos);
        out_index.push_back(static_cast<int32_t>(i));
      }
    }
    const bool need_outputs = out != nullptr && !rows.empty();
    if (!ForwardBatch(tokens.data() + b0, nb, pos, need_outputs)) {
      return CancelledError("prefill interrupted at position " + std::to_string(pos) + ": positions [" +
                            std::to_string(pos) + ", " + std::to_string(begin + n) + ") are not resident");
    }
    cache_->MarkResident(pos, pos + nb);
    if (need_outputs) Logits(rows, out_index, out->data());
  }
  return Status::Ok();
}

Status Engine::Prefill(std::span<const TokenId> tokens, Position begin, std::vector<float>* last_logits) {
  if (last_logits == nullptr) return PrefillWithLogits(tokens, begin, {}, nullptr);
  const Position last = begin + static_cast<Position>(tokens.size()) - 1;
  return PrefillWithLogits(tokens, begin, std::span<const Position>(&last, 1), last_logits);
}

Status Engine::Decode(TokenId token, Position pos, std::vector<float>* logits) {
  return Prefill(std::span<const TokenId>(&token, 1), pos, logits);
}

}  // namespace sparkv
