#include "kv/rans.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/cpu.h"
#include "kv/rans_internal.h"
#include "kv/row_convert.h"

namespace sparkv::rans {

FrequencyTable NormalizeCounts(std::span<const uint64_t> counts) {
  FrequencyTable table;
  table.n_symbols = static_cast<int>(counts.size());
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;

  // Round each share to the nearest frequency, keeping 1 for any symbol that occurs, then move
  // the difference to or from the largest frequencies, where it costs the least precision.
  int64_t sum = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    if (counts[s] == 0) continue;
    const uint64_t scaled = (counts[s] * kRansTotal + total / 2) / total;
    table.freq[s] = static_cast<uint16_t>(std::max<uint64_t>(1, scaled));
    sum += table.freq[s];
  }
  const auto largest = [&table] {
    return static_cast<size_t>(std::max_element(table.freq.begin(),
                                                table.freq.begin() + table.n_symbols) -
                               table.freq.begin());
  };
  if (sum < static_cast<int64_t>(kRansTotal)) {
    table.freq[largest()] += static_cast<uint16_t>(kRansTotal - sum);
  }
  // Each step takes 1 from a frequency >= 2: at most 256 symbols hold 1, so one exists.
  while (sum > static_cast<int64_t>(kRansTotal)) {
    --table.freq[largest()];
    --sum;
  }
  return table;
}

std::vector<uint64_t> CountSymbols(std::span<const uint8_t> symbols, int n_symbols) {
  std::vector<uint64_t> counts(static_cast<size_t>(n_symbols), 0);
  for (uint8_t s : symbols) {
    if (s < n_symbols) ++counts[s];
  }
  return counts;
}

void AppendTable(const FrequencyTable& table, std::vector<uint8_t>& out) {
  for (int s = 0; s < table.n_symbols;) {
    uint32_t f = table.freq[s];
    if (f == 0) {
      int run = 0;
      while (s + 1 + run < table.n_symbols && run < 255 && table.freq[s + 1 + run] == 0) ++run;
      out.push_back(0);
      out.push_back(static_cast<uint8_t>(run));
      s += 1 + run;
      continue;
    }
    while (f >= 0x80) {
      out.push_back(static_cast<uint8_t>(f | 0x80));
      f >>= 7;
    }
    out.push_back(static_cast<uint8_t>(f));
    ++s;
  }
}

Result<FrequencyTable> ReadTable(std::span<const uint8_t>& in, int n_symbols,
                                 std::string_view label) {
  const auto corrupt = [&](const std::string& what) {
    return CorruptionError(std::string(label) + " frequency table: " + what);
  };
  FrequencyTable table;
  table.n_symbols = n_symbols;
  size_t pos = 0;
  uint32_t sum = 0;
  for (int s = 0; s < n_symbols;) {
    // Frequencies are at most kRansTotal = 2^12, so two varint bytes suffice.
    uint32_t f = 0;
    for (int shift = 0;; shift += 7) {
      if (pos >= in.size()) return corrupt("truncated at symbol " + std::to_string(s));
      if (shift > 7) return corrupt("varint of symbol " + std::to_string(s) + " is too long");
      const uint8_t byte = in[pos++];
      f |= static_cast<uint32_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
    }
    if (f > kRansTotal) {
      return corrupt("symbol " + std::to_string(s) + " has frequency " + std::to_string(f) +
                     " above " + std::to_string(kRansTotal));
    }
    if (f == 0) {
      if (pos >= in.size()) return corrupt("zero run after symbol " + std::to_string(s) + " is missing");
      const int run = in[pos++];
      if (s + 1 + run > n_symbols) {
        return corrupt("zero run of " + std::to_string(run) + " after symbol " + std::to_string(s) +
                       " passes the alphabet of " + std::to_string(n_symbols));
      }
      s += 1 + run;
      continue;
    }
    table.freq[s] = static_cast<uint16_t>(f);
    sum += f;
    ++s;
  }
  if (sum != kRansTotal) {
    return corrupt("frequencies sum to " + std::to_string(sum) + ", not " +
                   std::to_string(kRansTotal));
  }
  in = in.subspan(pos);
  return table;
}

DecodeTable::DecodeTable(const FrequencyTable& table) : slots_(new uint32_t[kRansTotal]) {
  // Built for every run a codec decodes, so the slots are written once, without zeroing first.
  uint32_t* const slots = slots_.get();
  uint32_t start = 0;
  for (int s = 0; s < table.n_symbols && start < kRansTotal; ++s) {
    const uint32_t f = std::min<uint32_t>(table.freq[s], kRansTotal - start);
    const uint32_t first = static_cast<uint32_t>(s) | (static_cast<uint32_t>(table.freq[s]) - 1) << 8;
    for (uint32_t i = 0; i < f; ++i) slots[start + i] = first + (i << 20);
    start += f;
  }
  // Tables whose frequencies sum below kRansTotal are never decoded with (ReadTable rejects
  // them), but the slots stay defined.
  std::fill(slots + start, slots + kRansTotal, 0u);
}

void Encode(std::span<const uint8_t> symbols, const FrequencyTable& table,
            std::vector<uint8_t>& out) {
  std::array<uint32_t, 256> start{};
  uint32_t cumulative = 0;
  for (int s = 0; s < table.n_symbols; ++s) {
    start[s] = cumulative;
    cumulative += table.freq[s];
  }

  // rANS is last-in first-out: code the symbols backwards and emit words backwards, so the
  // decoder reads both forwards. Within a group of kStates symbols the decoder refills lanes in
  // ascending order, so emitting in descending order and reversing at the end matches it.
  std::vector<uint16_t> reversed;
  reversed.reserve(symbols.size() / 4 + 16);
  std::array<uint32_t, kStates> x;
  x.fill(kRansLow);
  for (size_t i = symbols.size(); i-- > 0;) {
    uint32_t& state = x[i % kStates];
    const uint32_t f = table.freq[symbols[i]];
    // Largest state that still codes below 2^32: (kRansLow >> kScaleBits) * 2^16 * f, which is
    // 2^32 for f = kRansTotal, hence 64 bits.
    const uint64_t x_max = static_cast<uint64_t>((kRansLow >> kScaleBits) << 16) * f;
    if (state >= x_max) {
      reversed.push_back(static_cast<uint16_t>(state));
      state >>= 16;
    }
    state = ((state / f) << kScaleBits) + (state % f) + start[symbols[i]];
  }

  const size_t offset = out.size();
  out.resize(offset + kStreamHeaderBytes + 2 * reversed.size());
  std::memcpy(out.data() + offset, x.data(), kStreamHeaderBytes);
  uint8_t* words = out.data() + offset + kStreamHeaderBytes;
  for (size_t k = 0; k < reversed.size(); ++k) {
    std::memcpy(words + 2 * k, &reversed[reversed.size() - 1 - k], 2);
  }
}

namespace internal_rans {

Status ReadStates(std::span<const uint8_t> stream, std::string_view label,
                  std::array<uint32_t, kStates>& x) {
  if (stream.size() < kStreamHeaderBytes) {
    return CorruptionError(std::string(label) + ": rANS stream of " + std::to_string(stream.size()) +
                           " bytes is shorter than its " + std::to_string(kStreamHeaderBytes) +
                           "-byte state header");
  }
  std::memcpy(x.data(), stream.data(), kStreamHeaderBytes);
  for (int k = 0; k < kStates; ++k) {
    if (x[k] < kRansLow) {
      return CorruptionError(std::string(label) + ": rANS start state " + std::to_string(k) +
                             " is " + std::to_string(x[k]) + ", below 2^16");
    }
  }
  return Status::Ok();
}

Status DecodeTail(const uint8_t* in, const uint8_t* end, size_t stream_size, const uint32_t* slots,
                  std::array<uint32_t, kStates>& x, size_t i, std::span<uint8_t> symbols,
                  std::string_view label) {
  const size_t n = symbols.size();
  for (; i < n; ++i) {
    uint32_t& state = x[i % kStates];
    const uint32_t entry = slots[state & (kRansTotal - 1)];
    symbols[i] = static_cast<uint8_t>(entry);
    state = ((entry >> 8 & 0xfff) + 1) * (state >> kScaleBits) + (entry >> 20);
    if (state < kRansLow) {
      if (end - in < 2) {
        return CorruptionError(std::string(label) + ": rANS stream ends after " +
                               std::to_string(stream_size) + " bytes, before symbol " +
                               std::to_string(i) + " of " + std::to_string(n));
      }
      uint16_t word;
      std::memcpy(&word, in, 2);
      in += 2;
      state = state << 16 | word;
    }
  }
  if (in != end) {
    return CorruptionError(std::string(label) + ": rANS stream has " + std::to_string(end - in) +
                           " bytes left after its " + std::to_string(n) + " symbols");
  }
  for (int k = 0; k < kStates; ++k) {
    if (x[k] != kRansLow) {
      return CorruptionError(std::string(label) + ": rANS final state " + std::to_string(k) +
                             " is " + std::to_string(x[k]) + ", not 2^16; the stream is damaged");
    }
  }
  return Status::Ok();
}

}  // namespace internal_rans

Status DecodeScalar(std::span<const uint8_t> stream, const DecodeTable& table,
                    std::span<uint8_t> symbols, std::string_view label) {
  std::array<uint32_t, kStates> x;
  SPARKV_RETURN_IF_ERROR(internal_rans::ReadStates(stream, label, x));

  const uint32_t* const slots = table.slots();
  const uint8_t* in = stream.data() + kStreamHeaderBytes;
  const uint8_t* const end = stream.data() + stream.size();
  const size_t n = symbols.size();
  uint8_t* const out = symbols.data();

  // One decode step on `state`, which must be a local: stores to `out` may alias any memory the
  // compiler cannot see is private, and states in an array would be reloaded after each store.
  // The word is read even when it is not needed, which is safe because the fast loop keeps at
  // least one word per state in reach.
  const auto step = [slots](uint32_t& state, const uint8_t*& words) {
    const uint32_t entry = slots[state & (kRansTotal - 1)];
    state = ((entry >> 8 & 0xfff) + 1) * (state >> kScaleBits) + (entry >> 20);
    // Branch-free renormalization: whether a word is needed is close to random, so a branch
    // would mispredict often. Written as arithmetic because GCC turns a select into a branch.
    uint16_t word;
    std::memcpy(&word, words, 2);
    const uint32_t need = state < kRansLow;  // 0 or 1
    state = state << (need << 4) | (word & (0u - need));
    words += need << 1;
    return static_cast<uint8_t>(entry);
  };

  // While 2 * kStates bytes remain, a group of kStates symbols cannot run out and needs no
  // per-word check. The tail checks every word.
  static_assert(kStates == 8, "the unrolled loop below decodes eight states");
  uint32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3], x4 = x[4], x5 = x[5], x6 = x[6], x7 = x[7];
  size_t i = 0;
  for (; i + kStates <= n && end - in >= 2 * kStates; i += kStates) {
    out[i] = step(x0, in);
    out[i + 1] = step(x1, in);
    out[i + 2] = step(x2, in);
    out[i + 3] = step(x3, in);
    out[i + 4] = step(x4, in);
    out[i + 5] = step(x5, in);
    out[i + 6] = step(x6, in);
    out[i + 7] = step(x7, in);
  }
  x = {x0, x1, x2, x3, x4, x5, x6, x7};
  return internal_rans::DecodeTail(in, end, stream.size(), slots, x, i, symbols, label);
}

bool HasAvx2Decoder() { return internal::HasAvx2(); }

bool HasAvx512Decoder() { return CpuHasAvx512Vnni(); }

Status Decode(std::span<const uint8_t> stream, const DecodeTable& table, std::span<uint8_t> symbols,
              std::string_view label) {
  if (HasAvx512Decoder()) return DecodeAvx512(stream, table, symbols, label);
  if (HasAvx2Decoder()) return DecodeAvx2(stream, table, symbols, label);
  return DecodeScalar(stream, table, symbols, label);
}

void AppendRun(std::span<const uint8_t> symbols, int n_symbols, std::vector<uint8_t>& out) {
  const size_t start = out.size();
  if (!symbols.empty()) {
    const FrequencyTable table = NormalizeCounts(CountSymbols(symbols, n_symbols));
    out.push_back(0);
    AppendTable(table, out);
    const size_t length_at = out.size();
    out.resize(length_at + 4);
    Encode(symbols, table, out);
    const auto stream_bytes = static_cast<uint32_t>(out.size() - length_at - 4);
    std::memcpy(out.data() + length_at, &stream_bytes, 4);
    if (out.size() - start < 1 + symbols.size()) return;
    out.resize(start);
  }
  out.push_back(1);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void DecodeStreamsScalar(std::span<const StreamJob> jobs, std::span<Status> statuses) {
  for (size_t k = 0; k < jobs.size(); ++k) {
    statuses[k] = DecodeScalar(jobs[k].stream, *jobs[k].table, jobs[k].symbols, jobs[k].label);
  }
}

void DecodeStreamsAvx512(std::span<const StreamJob> jobs, std::span<Status> statuses) {
  for (size_t begin = 0; begin < jobs.size(); begin += kMaxInterleaveAvx512) {
    const size_t count = std::min<size_t>(kMaxInterleaveAvx512, jobs.size() - begin);
    internal_rans::StreamCursor cursors[kMaxInterleaveAvx512];
    size_t job_of_cursor[kMaxInterleaveAvx512];
    int n_cursors = 0;
    for (size_t k = begin; k < begin + count; ++k) {
      std::array<uint32_t, kStates> x;
      statuses[k] = internal_rans::ReadStates(jobs[k].stream, jobs[k].label, x);
      if (!statuses[k].ok()) continue;
      internal_rans::StreamCursor& cursor = cursors[n_cursors];
      cursor.slots = jobs[k].table->slots();
      cursor.in = jobs[k].stream.data() + kStreamHeaderBytes;
      cursor.end = jobs[k].stream.data() + jobs[k].stream.size();
      cursor.out = jobs[k].symbols.data();
      cursor.n = jobs[k].symbols.size();
      std::memcpy(cursor.x, x.data(), sizeof(cursor.x));
      job_of_cursor[n_cursors++] = k;
    }
    internal_rans::StepStreamsAvx512(cursors, n_cursors);
    for (int c = 0; c < n_cursors; ++c) {
      const StreamJob& job = jobs[job_of_cursor[c]];
      std::array<uint32_t, kStates> x;
      std::memcpy(x.data(), cursors[c].x, sizeof(cursors[c].x));
      statuses[job_of_cursor[c]] =
          internal_rans::DecodeTail(cursors[c].in, cursors[c].end, job.stream.size(),
                                    job.table->slots(), x, cursors[c].i, job.symbols, job.label);
    }
  }
}

Status DecodeAvx512(std::span<const uint8_t> stream, const DecodeTable& table,
                    std::span<uint8_t> symbols, std::string_view label) {
  const StreamJob job{stream, &table, symbols, label};
  Status status;
  DecodeStreamsAvx512(std::span(&job, 1), std::span(&status, 1));
  return status;
}

void DecodeStreams(std::span<const StreamJob> jobs, std::span<Status> statuses) {
  if (HasAvx512Decoder()) {
    DecodeStreamsAvx512(jobs, statuses);
  } else if (HasAvx2Decoder()) {
    DecodeStreamsAvx2(jobs, statuses);
  } else {
    DecodeStreamsScalar(jobs, statuses);
  }
}

Status ReadRun(std::span<const uint8_t>& in, int n_symbols, std::span<uint8_t> symbols,
               std::string_view label) {
  SPARKV_ASSIGN_OR_RETURN(const ParsedRun run, ParseRun(in, n_symbols, symbols.size(), label));
  if (run.coded) return Decode(run.bytes, DecodeTable(run.table), symbols, label);
  if (!symbols.empty()) std::memcpy(symbols.data(), run.bytes.data(), symbols.size());
  return Status::Ok();
}

Result<ParsedRun> ParseRun(std::span<const uint8_t>& in, int n_symbols, size_t n,
                           std::string_view label) {
  const auto corrupt = [&](const std::string& what) {
    return CorruptionError(std::string(label) + ": " + what);
  };
  if (in.empty()) return corrupt("the run's kind byte is missing");
  const uint8_t kind = in[0];
  in = in.subspan(1);
  if (kind == 1) {
    if (in.size() < n) {
      return corrupt("raw run needs " + std::to_string(n) + " bytes, " +
                     std::to_string(in.size()) + " remain");
    }
    uint8_t largest = 0;
    for (size_t i = 0; i < n; ++i) largest = std::max(largest, in[i]);
    if (n > 0 && largest >= n_symbols) {
      return corrupt("raw run holds symbol " + std::to_string(largest) + ", outside the alphabet of " +
                     std::to_string(n_symbols));
    }
    ParsedRun run;
    run.bytes = in.first(n);
    in = in.subspan(n);
    return run;
  }
  if (kind != 0) return corrupt("run kind " + std::to_string(kind) + " is neither 0 (coded) nor 1 (raw)");

  ParsedRun run;
  run.coded = true;
  SPARKV_ASSIGN_OR_RETURN(run.table, ReadTable(in, n_symbols, label));
  if (in.size() < 4) return corrupt("the stream length is truncated");
  uint32_t stream_bytes;
  std::memcpy(&stream_bytes, in.data(), 4);
  in = in.subspan(4);
  if (stream_bytes > in.size()) {
    return corrupt("stream length " + std::to_string(stream_bytes) + " exceeds the " +
                   std::to_string(in.size()) + " bytes that remain");
  }
  run.bytes = in.first(stream_bytes);
  in = in.subspan(stream_bytes);
  return run;
}

Status RunBatch::Add(std::span<const uint8_t>& in, int n_symbols, std::span<uint8_t> symbols,
                     std::string label, const uint8_t** raw_view) {
  SPARKV_ASSIGN_OR_RETURN(ParsedRun run, ParseRun(in, n_symbols, symbols.size(), label));
  if (raw_view != nullptr) *raw_view = run.coded ? nullptr : run.bytes.data();
  if (!run.coded && raw_view == nullptr && !symbols.empty()) {
    std::memcpy(symbols.data(), run.bytes.data(), symbols.size());
  }
  runs_.push_back(Pending{run.bytes, run.table, symbols, std::move(label), run.coded});
  return Status::Ok();
}

std::span<const Status> RunBatch::Finish() {
  statuses_.assign(runs_.size(), Status::Ok());
  std::vector<DecodeTable> tables;
  std::vector<StreamJob> jobs;
  std::vector<size_t> run_of_job;
  tables.reserve(runs_.size());  // jobs point into it
  for (size_t r = 0; r < runs_.size(); ++r) {
    if (!runs_[r].coded) continue;
    tables.emplace_back(runs_[r].table);
    jobs.push_back(StreamJob{runs_[r].stream, &tables.back(), runs_[r].symbols, runs_[r].label});
    run_of_job.push_back(r);
  }
  std::vector<Status> job_statuses(jobs.size());
  DecodeStreams(jobs, job_statuses);
  for (size_t k = 0; k < jobs.size(); ++k) statuses_[run_of_job[k]] = std::move(job_statuses[k]);
  return statuses_;
}

}  // namespace sparkv::rans
