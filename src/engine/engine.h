// The CPU forward pass for Llama-family models: llama, qwen2 (QKV biases) and qwen3 (QK norm).
//
// The engine prefills any range [begin, end) of positions on top of its KV cache, as long as every
// position before `begin` is resident, whoever wrote it: an earlier prefill or a codec that decoded
// a streamed chunk into a KvSlice. Weights are read in place from the model's memory map; the only
// allocations are the KV cache and scratch for one micro-batch, both made in Create.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "common/kv_slice.h"
#include "engine/kernels.h"
#include "engine/kv_cache.h"
#include "engine/thread_pool.h"
#include "model/model.h"
#include "sparkv/status.h"

namespace sparkv {

struct EngineOptions {
  int n_threads = 0;                     // Default: 0 = every core
  KvElemType kv_type = KvElemType::kF16;
  int32_t n_positions = 0;               // KV cache capacity. Default: 0 = the model's n_ctx_train
  // Tokens per forward pass inside a prefill; bounds scratch memory. Larger batches reuse each
  // weight row for more tokens. Default: 64.
  int32_t n_batch = 64;
  // Kernel table to run. Default: nullptr = kernels::BestKernels(); tests pass ScalarKernels().
  const kernels::KernelTable* kernels = nullptr;
};

class Engine {
 public:
  // Checks that the model's shapes and weight types are ones the kernels run (F32, F16, BF16, Q8_0,
  // Q4_0, Q4_K, Q6_K matrices; F32 norms and biases), then allocates the KV cache and scratch.
  // `model` must outlive the engine.
  static Result<std::unique_ptr<Engine>> Create(const Model& model, EngineOptions options);

  const HParams& hparams() const { return hp_; }
  const EngineOptions& options() const { return options_; }
  KvCache& kv_cache() { return *cache_; }
  ThreadPool& thread_pool() { return pool_; }
  const kernels::KernelTable& kernel_table() const { return k_; }
  // Bytes of scratch allocated besides the KV cache.
  size_t scratch_bytes() const;

  // Runs `tokens` at positions [begin, begin + n), writes their K/V rows and marks them resident.
  // REQUIRES: positions [0, begin) resident (else InvalidArgument naming the first missing one),
  // begin + n <= KV capacity, every token id < n_vocab.
  // last_logits (nullable) receives the n_vocab logits of the last position.
  // Not reentrant: one Prefill/Decode at a time per engine. Other threads may write rows outside
  // [0, begin + n) through KvSlices meanwhile.
  Status Prefill(std::span<const TokenId> tokens, Position begin, std::vector<float>* last_logits);

  // Same, and `out` receives [wanted.size()][n_vocab] logits, row i for position wanted[i].
  // REQUIRES: every wanted position in [begin, begin + n).
  Status PrefillWithLogits(std::span<const TokenId> tokens, Position begin,
                           std::span<const Position> wanted, std::vector<float>* out);

  // One token at `pos`; logits (nullable) receives its n_vocab logits.
  Status Decode(TokenId token, Position pos, std::vector<float>* logits);

  // Sets a flag that Prefill and Decode read between layers (nullptr: none). Once another thread
  // sets it, the call returns Cancelled within one layer. The micro-batch in progress and the ones
  // after it are then not resident, and some of their K/V rows are overwritten. Earlier
  // micro-batches stay resident. The caller clears the flag before the next call. The two-path
  // loader uses this to stop a prefill that a blob of the same rows has overtaken.
  void set_interrupt(const std::atomic<bool>* flag) { interrupt_ = flag; }

  // Emulates a device `factor` times slower than this one: after each micro-batch of Prefill and
  // each Decode step, every engine thread spins for (factor - 1) times its time, watching the
  // interrupt flag. For benchmarks and tests of the adaptation to a slow device. Work beside the
  // engine (blob decodes) shares the cores with the spinning threads. Default: 1.
  Status set_emulated_slowdown(double factor);
  double emulated_slowdown() const { return slowdown_; }

 private:
  Engine(const Model& model, const EngineOptions& options);

  // One micro-batch of n tokens at positions [pos, pos + n). Without need_outputs the last layer
  // stops after writing its K/V rows, and x_ is not the final hidden state.
  // Returns false when the interrupt flag stopped it, between layers or during the wait of an
  // emulated slowdown.
  bool ForwardBatch(const TokenId* tokens, int32_t n, Position pos, bool need_outputs);
  bool Interrupted() const { return interrupt_ != nullptr && interrupt_->load(std::memory_order_relaxed); }
  // Waits out the emulated slowdown after a forward pass that began at `batch_start`. Returns
  // false when the interrupt flag stopped the wait.
  bool IdleForSlowdown(std::chrono::steady_clock::time_point batch_start);
  // One product of a MatMuls call: y[t * ldy + r] = w[r] . x[t] for every output row r.
  struct Product {
    const WeightView* w;
    float* y;
    int64_t ldy;
  };
  // Runs products that share their input x (n_tokens rows, x_stride floats apart) in one pass
  // over the thread pool: the input is quantized once, and the threads wait for each other once.
  void MatMuls(std::initializer_list<Product> products, const float* x, int64_t x_stride, int64_t n_tokens);
  void MatMul(const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y, int64_t ldy) {
    MatMuls({{&w, y, ldy}}, x, x_stride, n_tokens);
  }
  void Attention(int32_t layer, int32_t n, Position pos);
  // Logits of rows `rows` of the last micro-batch into out[out_index[i] * n_vocab].
  void Logits(const std::vector<int32_t>& rows, const std::vector<int32_t>& out_index, float* out);

  const Model& model_;
  HParams hp_;
  EngineOptions options_;
  const kernels::KernelTable& k_;
  ThreadPool pool_;
  std::unique_ptr<KvCache> cache_;

  int32_t n_q_ = 0;    // n_head * head_dim
  int32_t n_kv_ = 0;   // n_head_kv * head_dim
  int32_t n_rep_ = 0;  // query heads per KV head

  // Scratch for one micro-batch of up to n_batch tokens; f32 unless stated.
  std::vector<float> x_;      // [n_batch][n_embd] residual stream
  std::vector<float> xn_;     // [n_batch][max(n_embd, n_q)] normed input of a matmul
  std::vector<float> q_;      // [n_batch][n_q]
  std::vector<float> kv_;     // [2][n_batch][n_kv] new K rows, then new V rows
  std::vector<float> att_;    // [n_batch][n_q] attention output
  std::vector<float> gate_;   // [n_batch][n_ff]
  std::vector<float> up_;     // [n_batch][n_ff]
  std::vector<kernels::BlockQ8Act> q8_;  // [n_batch][max_in / 32] quantized activations
  std::vector<float> rope_cos_;  // [n_positions][n_rot / 2]
  std::vector<float> rope_sin_;  // [n_positions][n_rot / 2]
  // Per thread: scores [n_rep][kKeyTile], accumulators [n_rep][head_dim], max and sum [n_rep].
  std::vector<std::vector<float>> attn_scratch_;  // [n_threads]
  const std::atomic<bool>* interrupt_ = nullptr;  // see set_interrupt
  double slowdown_ = 1.0;                         // see set_emulated_slowdown
};

}  // namespace sparkv
