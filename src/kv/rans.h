// A static rANS entropy coder for the entropy-coded codecs (f16ans, ans*): byte symbols, a
// frequency table fixed per stream and stored beside it, eight interleaved 32-bit states so the
// decoder's dependency chains overlap (and fill one AVX2 register).
//
// Numerics: probabilities are frequencies out of kRansTotal = 2^12. A state x stays in
// [kRansLow, 2^32) = [2^16, 2^32) between symbols and renormalizes one 16-bit word at a time.
// After a decode step x >= freq * (2^16 >> 12) >= 16, so one word always brings it back to
// [2^16, 2^32): renormalization is a single conditional step, which both decoders do without a
// branch.
//
// Stream layout, n symbols: the eight final encoder states (u32 each, little-endian, state 0
// first), then the renormalization words (u16, little-endian) in the order the decoder reads
// them. Symbol i uses state i % 8. Decoding exactly n symbols of a valid stream consumes every
// byte and leaves every state at kRansLow, the encoder's starting value. Any other outcome means
// a corrupt stream.
//
// This is stream version 2. Version 1 (four states, byte-wise renormalization from [2^23, 2^31))
// is no longer read; the codecs store the version in their payload header (kStreamVersion).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "sparkv/status.h"

namespace sparkv::rans {

inline constexpr int kScaleBits = 12;
inline constexpr uint32_t kRansTotal = 1u << kScaleBits;
inline constexpr uint32_t kRansLow = 1u << 16;
inline constexpr int kStates = 8;
inline constexpr size_t kStreamHeaderBytes = 4 * kStates;
// The layout above; codecs that embed streams write it into their payloads.
inline constexpr uint8_t kStreamVersion = 2;

// Normalized frequencies of an alphabet of n_symbols <= 256 byte symbols, summing to kRansTotal.
// A symbol with frequency 0 cannot be coded.
struct FrequencyTable {
  int n_symbols = 0;
  std::array<uint16_t, 256> freq{};  // [n_symbols] used, out of kRansTotal
};

// Scales `counts` ([n_symbols] occurrences, n_symbols in [1, 256]) to a table summing to
// kRansTotal in which every symbol that occurs keeps a frequency >= 1.
// REQUIRES: at least one count is positive.
FrequencyTable NormalizeCounts(std::span<const uint64_t> counts);

// Counts of each byte value of `symbols` below n_symbols, [n_symbols].
std::vector<uint64_t> CountSymbols(std::span<const uint8_t> symbols, int n_symbols);

// Compact serialization of a table: for each symbol in order a LEB128 varint of its frequency;
// after a zero frequency one byte r means that r further symbols also have frequency 0.
void AppendTable(const FrequencyTable& table, std::vector<uint8_t>& out);

// Parses a table of n_symbols symbols at the front of `in` and advances `in` past it. Rejects a
// truncated table, an overlong varint, a frequency above kRansTotal, a zero run past the
// alphabet, and a sum other than kRansTotal. `label` names the table in the message.
Result<FrequencyTable> ReadTable(std::span<const uint8_t>& in, int n_symbols,
                                 std::string_view label);

// Tables decoded from a FrequencyTable: cumulative starts, and per slot of [0, kRansTotal) the
// symbol that owns it.
class DecodeTable {
 public:
  explicit DecodeTable(const FrequencyTable& table);

  // Per slot, one word so that a decode step makes one load: bits [0, 8) the symbol, bits
  // [8, 20) its frequency minus 1, bits [20, 32) the slot minus the symbol's cumulative start.
  // [kRansTotal] entries.
  const uint32_t* slots() const { return slots_.get(); }

 private:
  std::unique_ptr<uint32_t[]> slots_;  // [kRansTotal] packed as slots() describes
};

// Appends the stream of `symbols` coded with `table` to `out`.
// REQUIRES: table.freq[s] > 0 for every s in `symbols`.
void Encode(std::span<const uint8_t> symbols, const FrequencyTable& table,
            std::vector<uint8_t>& out);

// Decodes exactly symbols.size() symbols from `stream` (the whole stream, no more) into
// `symbols`. Never reads outside `stream`. Corruption naming `label` when the stream is shorter
// than its header, a start state is out of range, the words run out, bytes are left over, or the
// final states differ from kRansLow. Uses DecodeAvx512 or DecodeAvx2 when the CPU has them.
Status Decode(std::span<const uint8_t> stream, const DecodeTable& table, std::span<uint8_t> symbols,
              std::string_view label);

// The portable decoder, the AVX2 one (eight states in one register) and the AVX-512 one. All
// behave exactly like Decode, including on corrupt streams. DecodeAvx2 REQUIRES
// HasAvx2Decoder(), DecodeAvx512 REQUIRES HasAvx512Decoder().
Status DecodeScalar(std::span<const uint8_t> stream, const DecodeTable& table,
                    std::span<uint8_t> symbols, std::string_view label);
Status DecodeAvx2(std::span<const uint8_t> stream, const DecodeTable& table,
                  std::span<uint8_t> symbols, std::string_view label);
Status DecodeAvx512(std::span<const uint8_t> stream, const DecodeTable& table,
                    std::span<uint8_t> symbols, std::string_view label);
bool HasAvx2Decoder();
// Returns whether the CPU has AVX-512 F, BW, VL, DQ and VNNI (common/cpu.h), the instructions
// rans_avx512.cc is compiled for.
bool HasAvx512Decoder();

// One stream for DecodeStreams: Decode's arguments. `table` and the spans must outlive the call.
struct StreamJob {
  std::span<const uint8_t> stream;
  const DecodeTable* table = nullptr;
  std::span<uint8_t> symbols;
  std::string_view label;
};

// Streams the AVX2 decoder steps in one loop. A step of one stream is a long dependency chain,
// and a second stream fills the time the first waits. Three or four streams measured slower in
// codec_bench on AMD EPYC (family 23), because each brings its own 16 KiB decode table and two
// already fill its 32 KiB L1 data cache.
inline constexpr int kMaxInterleave = 2;
// The AVX-512 decoder keeps two streams per 512-bit register and steps four registers together.
// Their eight tables (128 KiB) exceed the 48 KiB L1 data cache of the Xeon it was measured on,
// but the decoder waits on latency, not on the cache: codec_bench (BM_RansDecodeStreams) gave
// 1.14 G symbols/s with four streams, 1.65 G with eight and 1.46 G with twelve.
inline constexpr int kMaxInterleaveAvx512 = 8;

// Decodes every job: statuses[k] and jobs[k].symbols end up exactly as Decode of jobs[k] leaves
// them, so errors are reported per stream. The outputs must not overlap.
// REQUIRES: statuses.size() == jobs.size().
void DecodeStreams(std::span<const StreamJob> jobs, std::span<Status> statuses);
// The reference: DecodeScalar on one job after the other. And the interleaved AVX2 decoder,
// which REQUIRES HasAvx2Decoder().
void DecodeStreamsScalar(std::span<const StreamJob> jobs, std::span<Status> statuses);
void DecodeStreamsAvx2(std::span<const StreamJob> jobs, std::span<Status> statuses);
// The AVX-512 decoder, up to kMaxInterleaveAvx512 streams at a time. REQUIRES HasAvx512Decoder().
void DecodeStreamsAvx512(std::span<const StreamJob> jobs, std::span<Status> statuses);

// A run: n symbols with its framing, as the codecs store it. Layout: u8 kind, then
//   kind 0 (coded): frequency table (AppendTable), u32 stream bytes, the stream;
//   kind 1 (raw): the n symbols, one byte each.
// AppendRun codes `symbols` (each < n_symbols) and keeps the raw form when coding would not make
// it smaller, so a run never takes more than 1 + n bytes.
void AppendRun(std::span<const uint8_t> symbols, int n_symbols, std::vector<uint8_t>& out);

// Reads a run of symbols.size() symbols from the front of `in` and advances `in` past it. Every
// symbol written is < n_symbols; anything inconsistent is a Corruption naming `label`.
Status ReadRun(std::span<const uint8_t>& in, int n_symbols, std::span<uint8_t> symbols,
               std::string_view label);

// ReadRun in two halves, so that the coded runs of a payload can be decoded together
// (DecodeStreams). ParseRun checks the framing of a run of n symbols and advances `in` past it.
// It returns a raw run's symbols (checked against n_symbols), or a coded run's stream and table
// to decode.
struct ParsedRun {
  bool coded = false;
  std::span<const uint8_t> bytes;  // raw: the n symbols; coded: the rANS stream. A view into `in`.
  FrequencyTable table;            // coded only
};
Result<ParsedRun> ParseRun(std::span<const uint8_t>& in, int n_symbols, size_t n,
                           std::string_view label);

// The runs of one part of a payload, decoded together: Add parses each run in payload order
// (ParseRun), and Finish decodes the coded ones with DecodeStreams. To report the error that
// reading run by run with ReadRun would, stop adding at a parse error, check Finish's statuses in
// order, and only then return the parse error.
class RunBatch {
 public:
  // ParseRun of the next run, whose symbols go to `symbols` (valid until Finish): a raw run's at
  // once, a coded run's in Finish. With `raw_view` given, a raw run is not copied: *raw_view
  // points at its symbols inside `in`, and is null for a coded run.
  Status Add(std::span<const uint8_t>& in, int n_symbols, std::span<uint8_t> symbols,
             std::string label, const uint8_t** raw_view = nullptr);
  // Decodes every coded run added. Returns one status per added run, in order (Ok for raw runs).
  std::span<const Status> Finish();

 private:
  struct Pending {
    std::span<const uint8_t> stream;  // coded runs only
    FrequencyTable table;
    std::span<uint8_t> symbols;
    std::string label;
    bool coded = false;
  };
  std::vector<Pending> runs_;
  std::vector<Status> statuses_;  // [runs_.size()] after Finish
};

}  // namespace sparkv::rans
