#include "runtime/codec_eval.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "common/log.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "kv/chunk_key.h"
#include "kv/codec.h"

namespace sparkv {
namespace {

// Natural-log softmax of each row, in double so KL sums over large vocabularies do not lose the
// small terms. `logits` is [n_rows][n_vocab] f32; the result has the same shape.
std::vector<double> LogSoftmaxRows(const std::vector<float>& logits, int32_t n_vocab) {
  std::vector<double> out(logits.size());
  for (size_t row = 0; row < logits.size(); row += static_cast<size_t>(n_vocab)) {
    const float* x = logits.data() + row;
    const double max = *std::max_element(x, x + n_vocab);
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(x[i] - max);
    const double log_sum = max + std::log(sum);
    for (int32_t i = 0; i < n_vocab; ++i) out[row + i] = x[i] - log_sum;
  }
  return out;
}

// Mean negative log-likelihood of `next[i]` under row i of `log_probs` ([n][n_vocab]).
double MeanNll(const std::vector<double>& log_probs, std::span<const TokenId> next, int32_t n_vocab) {
  double total = 0.0;
  for (size_t i = 0; i < next.size(); ++i) total -= log_probs[i * n_vocab + next[i]];
  return total / static_cast<double>(next.size());
}

// Feeds `tokens` at [begin, begin + n) and returns the log-probabilities at every one of them:
// [n][n_vocab].
Result<std::vector<double>> TeacherForce(Engine& engine, std::span<const TokenId> tokens, Position begin) {
  std::vector<Position> wanted(tokens.size());
  std::iota(wanted.begin(), wanted.end(), begin);
  std::vector<float> logits;
  SPARKV_RETURN_IF_ERROR(engine.PrefillWithLogits(tokens, begin, wanted, &logits));
  return LogSoftmaxRows(logits, engine.hparams().n_vocab);
}

// Picks a token from `first_logits` (the context's last position), then feeds each pick at the
// next position from `begin` n times. Returns the n + 1 picks.
Result<std::vector<TokenId>> Continue(Engine& engine, Sampler& sampler, const std::vector<float>& first_logits,
                                      Position begin, int32_t n) {
  std::vector<TokenId> tokens = {sampler.Sample(first_logits)};
  std::vector<float> logits;
  for (int32_t i = 0; i < n; ++i) {
    SPARKV_RETURN_IF_ERROR(engine.Decode(tokens.back(), begin + i, &logits));
    tokens.push_back(sampler.Sample(logits));
  }
  return tokens;
}

Status CheckOptions(const Model& model, std::span<const TokenId> context, const CodecEvalOptions& options) {
  const HParams& hp = model.hparams();
  if (context.empty()) return InvalidArgumentError("the context is empty: give at least one token (BOS)");
  if (options.n_continuation < 1) {
    return InvalidArgumentError("continuation of " + std::to_string(options.n_continuation) +
                                " tokens: it must be at least 1");
  }
  const int64_t needed = static_cast<int64_t>(context.size()) + options.n_continuation;
  if (needed > hp.n_ctx_train) {
    return InvalidArgumentError("a context of " + std::to_string(context.size()) + " tokens plus a continuation of " +
                                std::to_string(options.n_continuation) + " tokens needs " + std::to_string(needed) +
                                " positions, more than the model's context of " + std::to_string(hp.n_ctx_train) +
                                ": shorten the context or the continuation");
  }
  if (options.chunk_tokens <= 0 || options.chunk_tokens > kMaxChunkTokens) {
    return InvalidArgumentError("chunk size " + std::to_string(options.chunk_tokens) + " is outside [1, " +
                                std::to_string(kMaxChunkTokens) + "]");
  }
  for (size_t i = 0; i < context.size(); ++i) {
    if (context[i] < 0 || context[i] >= hp.n_vocab) {
      return InvalidArgumentError("context token " + std::to_string(context[i]) + " at index " + std::to_string(i) +
                                  " is outside the model's vocabulary [0, " + std::to_string(hp.n_vocab) + ")");
    }
  }
  for (const std::string& level : options.levels) {
    if (FindCodec(level) == nullptr) {
      return InvalidArgumentError("unknown codec level '" + level + "'; known: " + CodecNames());
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Engine>> MakeEvalEngine(const Model& model, const CodecEvalOptions& options,
                                               int32_t n_positions) {
  EngineOptions engine_options;
  engine_options.n_threads = options.n_threads;
  engine_options.kv_type = options.kv_type;
  engine_options.n_positions = n_positions;
  return Engine::Create(model, engine_options);
}

}  // namespace

Result<CodecEvalReport> EvaluateCodecs(const Model& model, std::span<const TokenId> context,
                                       const CodecEvalOptions& options) {
  SPARKV_RETURN_IF_ERROR(CheckOptions(model, context, options));
  const HParams& hp = model.hparams();
  const int32_t n_vocab = hp.n_vocab;
  const auto n_context = static_cast<Position>(context.size());
  const int32_t n_cont = options.n_continuation;

  std::vector<const Codec*> codecs;
  if (options.levels.empty()) {
    codecs.assign(AllCodecs().begin(), AllCodecs().end());
  } else {
    for (const std::string& level : options.levels) codecs.push_back(FindCodec(level));
  }

  // Two engines so the exact context KV stays intact while each level's decoded KV is scored:
  // `exact` owns the reference rows, `work` receives the decoded ones.
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<Engine> exact, MakeEvalEngine(model, options, n_context + n_cont));
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<Engine> work, MakeEvalEngine(model, options, n_context + n_cont));

  CodecEvalReport report;
  report.n_context = n_context;
  report.n_continuation = n_cont;
  report.chunk_tokens = options.chunk_tokens;
  report.kv_type = options.kv_type;
  report.f16_bytes_per_token = 2.0 * hp.n_layer * hp.n_embd_kv() * 2.0;

  std::vector<float> context_logits;
  SPARKV_RETURN_IF_ERROR(exact->Prefill(context, 0, &context_logits));

  // Both continuations are generated one Decode at a time, the way `sparkv run` generates. The
  // scored rows below come from one batched prefill for exact and decoded KV alike, so the two
  // sides differ only in the context KV.
  Sampler greedy({0.0f, 1.0f, 0});
  SPARKV_ASSIGN_OR_RETURN(report.greedy_continuation, Continue(*exact, greedy, context_logits, n_context, n_cont));
  Sampler sampler({1.0f, 1.0f, options.seed});
  SPARKV_ASSIGN_OR_RETURN(report.sampled_continuation, Continue(*exact, sampler, context_logits, n_context, n_cont));

  const std::span<const TokenId> greedy_fed(report.greedy_continuation.data(), n_cont);
  const std::span<const TokenId> sampled_fed(report.sampled_continuation.data(), n_cont);
  const std::span<const TokenId> sampled_next(report.sampled_continuation.data() + 1, n_cont);
  SPARKV_ASSIGN_OR_RETURN(const std::vector<double> exact_greedy, TeacherForce(*exact, greedy_fed, n_context));
  SPARKV_ASSIGN_OR_RETURN(const std::vector<double> exact_sampled, TeacherForce(*exact, sampled_fed, n_context));
  const double ppl_exact = std::exp(MeanNll(exact_sampled, sampled_next, n_vocab));
  std::vector<TokenId> exact_argmax(n_cont);
  for (int32_t i = 0; i < n_cont; ++i) {
    const double* row = exact_greedy.data() + static_cast<size_t>(i) * n_vocab;
    exact_argmax[i] = static_cast<TokenId>(std::max_element(row, row + n_vocab) - row);
  }

  const std::vector<ChunkRange> chunks = SplitIntoChunks(n_context, options.chunk_tokens);
  report.n_chunks = static_cast<int32_t>(chunks.size());
  SPARKV_LOG_INFO("evaluating %zu codec levels on %d context tokens in %zu chunks, %d continuation tokens",
                  codecs.size(), n_context, chunks.size(), n_cont);

  for (const Codec* codec : codecs) {
    CodecLevelQuality q;
    q.level = std::string(codec->name());

    // Each chunk is encoded and decoded alone, as ingest writes it and a device reads it.
    work->kv_cache().Clear();
    for (const ChunkRange& chunk : chunks) {
      SPARKV_ASSIGN_OR_RETURN(const std::vector<uint8_t> payload,
                              codec->Encode(exact->kv_cache().Slice(chunk.begin, chunk.end)));
      q.payload_bytes += payload.size();
      const Status decoded = codec->Decode(payload, work->kv_cache().Slice(chunk.begin, chunk.end));
      if (!decoded.ok()) return decoded.WithContext(q.level + " chunk " + std::to_string(chunk.index));
    }
    work->kv_cache().MarkResident(0, n_context);
    q.bytes_per_token = static_cast<double>(q.payload_bytes) / n_context;
    q.size_vs_f16 = q.bytes_per_token / report.f16_bytes_per_token;

    SPARKV_ASSIGN_OR_RETURN(const std::vector<double> level_greedy, TeacherForce(*work, greedy_fed, n_context));
    int32_t n_agree = 0;
    double kl_sum = 0.0;
    for (int32_t i = 0; i < n_cont; ++i) {
      const size_t row = static_cast<size_t>(i) * n_vocab;
      double kl = 0.0;
      for (int32_t t = 0; t < n_vocab; ++t) {
        const double lp = exact_greedy[row + t];
        kl += std::exp(lp) * (lp - level_greedy[row + t]);
      }
      // KL is never negative; a rounding residue of the order of 1e-17 is.
      kl = std::max(kl, 0.0);
      kl_sum += kl;
      q.max_kl = std::max(q.max_kl, kl);
      const double* level_row = level_greedy.data() + row;
      if (std::max_element(level_row, level_row + n_vocab) - level_row == exact_argmax[i]) ++n_agree;
    }
    q.mean_kl = kl_sum / n_cont;
    q.top1_agreement = static_cast<double>(n_agree) / n_cont;

    SPARKV_ASSIGN_OR_RETURN(const std::vector<double> level_sampled, TeacherForce(*work, sampled_fed, n_context));
    q.ppl_exact = ppl_exact;
    q.ppl_level = std::exp(MeanNll(level_sampled, sampled_next, n_vocab));
    q.ppl_change_pct = 100.0 * (q.ppl_level / ppl_exact - 1.0);

    // Free running from the shared first token; stops at the first token that differs.
    TokenId token = report.greedy_continuation[0];
    std::vector<float> logits;
    for (int32_t i = 0; i < n_cont; ++i) {
      SPARKV_RETURN_IF_ERROR(work->Decode(token, n_context + i, &logits));
      token = Sampler::Argmax(logits);
      if (token != report.greedy_continuation[i + 1]) break;
      ++q.identical_prefix;
    }

    SPARKV_LOG_INFO("%s: %.1f bytes/token, mean KL %.3g, top-1 %.1f%%, identical prefix %d, ppl change %.3f%%",
                    q.level.c_str(), q.bytes_per_token, q.mean_kl, 100.0 * q.top1_agreement, q.identical_prefix,
                    q.ppl_change_pct);
    report.levels.push_back(std::move(q));
  }
  return report;
}

Result<std::vector<TokenId>> SampleContext(const Model& model, int32_t n_tokens, uint64_t seed, int n_threads) {
  const HParams& hp = model.hparams();
  if (n_tokens < 1 || n_tokens > hp.n_ctx_train) {
    return InvalidArgumentError("a generated context of " + std::to_string(n_tokens) +
                                " tokens is outside [1, " + std::to_string(hp.n_ctx_train) +
                                "], the model's context");
  }
  CodecEvalOptions options;
  options.n_threads = n_threads;
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, MakeEvalEngine(model, options, n_tokens));

  std::vector<TokenId> tokens = {model.vocab().bos_id};
  Sampler sampler({1.0f, 1.0f, seed});
  std::vector<float> logits;
  while (static_cast<int32_t>(tokens.size()) < n_tokens) {
    const auto pos = static_cast<Position>(tokens.size() - 1);
    SPARKV_RETURN_IF_ERROR(engine->Decode(tokens.back(), pos, &logits));
    tokens.push_back(sampler.Sample(logits));
  }
  return tokens;
}

}  // namespace sparkv
