// The `.skv` blob: one chunk's KV encoded by one codec, with a self-describing header.
//
// Header, kBlobHeaderBytes = 96 bytes, little-endian (docs/formats.md has the same table):
//   [0, 8)    magic "SPKVBLOB"
//   [8, 12)   format version, u32 (kFormatVersion)
//   [12, 14)  codec id, u16 (CodecId)
//   [14, 15)  element type of the source cache, u8 (KvElemType)
//   [15, 16)  reserved, 0
//   [16, 32)  model fingerprint, Hash128 (high u64, low u64)
//   [32, 48)  chunk key, Hash128 (high u64, low u64)
//   [48, 52)  begin, i32: first token position, inclusive
//   [52, 56)  end, i32: last token position, exclusive
//   [56, 60)  n_layer, i32
//   [60, 64)  n_head_kv, i32
//   [64, 68)  head_dim, i32
//   [68, 72)  reserved, 0
//   [72, 80)  payload size in bytes, u64
//   [80, 88)  payload checksum, XXH3-64 of the payload bytes
//   [88, 96)  header checksum, XXH3-64 of header bytes [0, 88)
// then exactly `payload size` bytes of payload in the codec's layout.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/hash.h"
#include "common/kv_slice.h"
#include "kv/codec.h"
#include "sparkv/status.h"

namespace sparkv {

inline constexpr size_t kBlobHeaderBytes = 96;
inline constexpr char kBlobMagic[8] = {'S', 'P', 'K', 'V', 'B', 'L', 'O', 'B'};

// Identity of a blob: the model and the chunk whose KV it contains.
struct BlobIdentity {
  Hash128 model_fingerprint;
  Hash128 chunk_key;
  int32_t begin = 0;  // first token position, inclusive
  int32_t end = 0;    // last token position, exclusive
};

struct BlobHeader {
  uint32_t format_version = 0;
  CodecId codec = CodecId::kF16;
  KvElemType source_elem = KvElemType::kF16;
  BlobIdentity identity;
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  uint64_t payload_bytes = 0;
  uint64_t payload_checksum = 0;  // XXH3-64 of the payload

  KvShape shape() const {
    return KvShape{n_layer, n_head_kv, head_dim, identity.end - identity.begin};
  }
};

// Request of a reader. DecodeBlob rejects a blob that differs from it in any field.
struct BlobExpectation {
  BlobIdentity identity;
  CodecId codec = CodecId::kF16;
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
};

// The expectation for decoding `identity` at `codec` into `destination` (shape from the slice).
BlobExpectation ExpectationFor(const BlobIdentity& identity, CodecId codec,
                               const KvSlice& destination);

// Encodes `source` with `codec` into a whole blob (header and payload).
// REQUIRES: identity.begin/end equal source.begin/end (checked; InvalidArgument otherwise).
Result<std::vector<uint8_t>> EncodeBlob(const Codec& codec, const BlobIdentity& identity,
                                        const KvSlice& source);

// Parses and checks the header at the start of `bytes` (the payload may be absent): size, magic,
// version, header checksum, reserved fields, a codec this build supports, a sane shape and a payload
// size within the codec's bound. Corruption for damaged bytes, Unsupported for a newer version or
// an unknown codec id.
Result<BlobHeader> ParseBlobHeader(std::span<const uint8_t> bytes);

// ParseBlobHeader plus: the payload is exactly `payload size` bytes and matches its checksum.
Result<BlobHeader> VerifyBlob(std::span<const uint8_t> blob);

// Verifies `blob`, checks that it is what `expected` names (Mismatch otherwise, naming the field
// with both values) and that `destination` has the expected shape (InvalidArgument otherwise),
// and only then decodes into `destination` (Codec::DecodeParallel on up to n_threads threads).
// On error the destination is untouched.
Status DecodeBlob(std::span<const uint8_t> blob, const BlobExpectation& expected,
                  const KvSlice& destination, int n_threads = 1);

}  // namespace sparkv
