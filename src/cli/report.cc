#include "cli/report.h"

#include <algorithm>
#include <cstdio>

#include "common/format.h"

#include "model/tokenizer.h"

namespace sparkv::cli {

std::map<std::string, int32_t> StreamedCodecCounts(const RunReport& report) {
  std::map<std::string, int32_t> counts;
  for (const ChunkOutcome& chunk : report.load.chunks) {
    if (chunk.streamed) ++counts[chunk.codec];
  }
  return counts;
}

nlohmann::json RunReportJson(const RunReport& report, const std::string& text) {
  nlohmann::json chunks = nlohmann::json::array();
  for (size_t j = 0; j < report.load.chunks.size(); ++j) {
    const ChunkOutcome& chunk = report.load.chunks[j];
    nlohmann::json entry = {{"index", j},
                            {"path", chunk.streamed ? "stream" : "compute"},
                            {"planned", chunk.planned_stream ? "stream" : "compute"},
                            {"fell_back", chunk.fell_back},
                            {"prefill_stopped", chunk.prefill_abandoned},
                            {"prefill_interrupted", chunk.prefill_interrupted},
                            {"resident_s", chunk.resident_s}};
    // Chunks the controller moved to the stream path after the first plan carry a codec too.
    if (chunk.planned_stream || chunk.streamed) {
      entry["codec"] = chunk.codec;
      entry["bytes"] = chunk.bytes;
      entry["transfer_start_s"] = chunk.transfer_start_s;
      entry["transfer_end_s"] = chunk.transfer_end_s;
      entry["decode_s"] = chunk.decode_s;
    }
    if (!chunk.streamed) {
      entry["compute_start_s"] = chunk.compute_start_s;
      entry["compute_end_s"] = chunk.compute_end_s;
    }
    if (!chunk.error.empty()) entry["error"] = chunk.error;
    chunks.push_back(std::move(entry));
  }
  return {
      {"strategy", report.strategy},
      {"planner", report.planner},
      {"server", report.server},
      {"ttft_s", report.ttft_s},
      {"predicted_ttft_s", report.predicted_ttft_s},
      {"breakdown",
       {{"manifest_s", report.manifest_s},
        {"probe_s", report.probe_s},
        {"plan_s", report.plan_s},
        {"load_s", report.load_s},
        {"stream_busy_s", report.load.stream_busy_s},
        {"compute_busy_s", report.load.compute_busy_s},
        {"decode_busy_s", report.load.decode_busy_s},
        {"query_prefill_s", report.query_prefill_s},
        {"first_token_s", report.first_token_s}}},
      {"bandwidth_estimate_mbit", report.bandwidth_estimate_bps * 8 / 1e6},
      {"n_context", report.n_context},
      {"n_query", report.n_query},
      {"chunks", report.n_chunks},
      {"stream_bytes", report.load.stream_bytes + report.probe_bytes},
      {"chunks_streamed", report.load.n_streamed},
      {"chunks_computed", report.load.n_computed},
      {"chunks_fallback", report.load.n_fallback},
      {"prefills_stopped", report.load.stats.n_abandoned},
      {"races", report.load.stats.n_raced},
      {"streamed_codecs", StreamedCodecCounts(report)},
      {"tokens", report.tokens},
      {"text", text},
      {"decode_tokens_per_s", report.decode_tokens_per_s},
      {"warnings", report.warnings},
      {"chunk_timeline", chunks},
  };
}

namespace {

// Seconds with three decimals, or "<0.001" for a time too short for them to show.
std::string Seconds(double seconds) {
  if (seconds > 0.0 && seconds < 0.0005) return "<0.001";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", seconds);
  return text;
}

}  // namespace

void PrintRunReport(const RunReport& report, const std::string& text) {
  std::printf("strategy %s (planner %s): TTFT %.3f s (plan predicted %.3f s)\n", report.strategy.c_str(),
              report.planner.c_str(), report.ttft_s, report.predicted_ttft_s);
  std::printf("  context %d tokens in %s, query %d tokens\n", report.n_context,
              FormatCount(report.n_chunks, "chunk", "chunks").c_str(), report.n_query);
  std::printf("  manifest       %8.3f s\n", report.manifest_s);
  if (report.probe_s > 0 && report.bandwidth_estimate_bps > 0) {
    std::printf("  probe          %8.3f s  (%s Mbit/s estimated)\n", report.probe_s,
                FormatNumber(report.bandwidth_estimate_bps * 8 / 1e6).c_str());
  } else if (report.probe_s > 0) {
    std::printf("  probe          %8.3f s  (no estimate; the warnings below say why)\n", report.probe_s);
  }
  // The compute path may start before the manifest arrives, so the load counts from the start.
  std::printf("  load           %8.3f s  (from the request's start until every chunk is resident)\n", report.load_s);
  if (report.load.stats.n_raced > 0) {
    std::printf("    raced        %8d %s (both paths at once, the first to finish kept)\n", report.load.stats.n_raced,
                report.load.stats.n_raced == 1 ? "chunk" : "chunks");
  }
  // Bytes of the blobs that became cache rows, apart from the probe's and those of transfers that
  // failed, were cancelled or lost a race. A chunk fetched again after a restart counts both
  // transfers as delivered, since its outcome keeps one byte count.
  uint64_t delivered = 0;
  for (const ChunkOutcome& chunk : report.load.chunks) delivered += chunk.streamed ? chunk.bytes : 0;
  const uint64_t other = report.load.stream_bytes + report.probe_bytes - std::min(delivered, report.load.stream_bytes);
  std::printf("    streamed     %8d %s, %s MiB in %s s of transfers (decode %s s)\n", report.load.n_streamed,
              report.load.n_streamed == 1 ? "chunk" : "chunks", FormatNumber(delivered / 1048576.0).c_str(),
              Seconds(report.load.stream_busy_s).c_str(), Seconds(report.load.decode_busy_s).c_str());
  if (other > 0) {
    std::printf("                 %8s %s MiB more: the probe, and transfers that failed, were cancelled or lost a "
                "race\n", "", FormatNumber(other / 1048576.0).c_str());
  }
  if (report.load.n_streamed > 0) {
    std::string levels;
    for (const auto& [codec, count] : StreamedCodecCounts(report)) {
      levels += (levels.empty() ? "" : ", ") + codec + " -> " + std::to_string(count) +
                (count == 1 ? " chunk" : " chunks") + (CodecQualityRank(codec) > 0 ? " (lossy)" : "");
    }
    std::printf("      at levels  %s\n", levels.c_str());
  }
  // Prefill time includes races whose blob won, so it can be nonzero with no chunk computed.
  std::printf("    computed     %8d %s, %s s of prefill%s%s\n", report.load.n_computed,
              report.load.n_computed == 1 ? "chunk" : "chunks", Seconds(report.load.compute_busy_s).c_str(),
              report.load.stats.n_raced > 0 ? " (races included)" : "",
              report.load.n_fallback > 0 ? (" (" + std::to_string(report.load.n_fallback) + " after stream failures)").c_str() : "");
  std::printf("  query prefill  %8s s\n", Seconds(report.query_prefill_s).c_str());
  std::printf("  first token    %8s s\n", Seconds(report.first_token_s).c_str());
  for (const std::string& warning : report.warnings) std::printf("  warning: %s\n", warning.c_str());
  std::printf("generated %zu tokens (%.1f tokens/s after the first): %s\n", report.tokens.size(),
              report.decode_tokens_per_s, text.c_str());
}

std::string GeneratedText(const Model& model, const RunReport& report) {
  Result<Tokenizer> tokenizer = Tokenizer::Create(model.vocab());
  std::string ids;
  for (TokenId id : report.tokens) ids += (ids.empty() ? "" : " ") + std::to_string(id);
  if (!tokenizer.ok()) return ids;
  return tokenizer->Decode(report.tokens);
}

}  // namespace sparkv::cli
