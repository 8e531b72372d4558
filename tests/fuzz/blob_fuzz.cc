// libFuzzer target: blob headers and codec payloads. Any input must be rejected cleanly or decode
// into a small cache without reading past the input or writing past the cache.
//
// Random bytes rarely pass the XXH3 checksums, so the codecs' Decode also gets the input directly:
// byte 0 picks the codec and bytes 1..3 a small shape, the rest is the payload.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/blob.h"
#include "kv/codec.h"

namespace {

// Owns the rows of a small cache of the given shape, as an f16 or f32 cache.
struct SmallCache {
  std::vector<std::vector<uint8_t>> rows;  // [2 * n_layer][n_tokens * row_width * elem bytes]
  sparkv::KvSlice slice;

  SmallCache(sparkv::KvElemType elem, const sparkv::KvShape& shape, int32_t begin) {
    slice.elem = elem;
    slice.n_layer = shape.n_layer;
    slice.n_head_kv = shape.n_head_kv;
    slice.head_dim = shape.head_dim;
    slice.begin = begin;
    slice.end = begin + shape.n_tokens;
    rows.assign(2 * static_cast<size_t>(shape.n_layer), std::vector<uint8_t>(slice.layer_bytes()));
    for (int32_t l = 0; l < shape.n_layer; ++l) {
      slice.k.push_back(rows[2 * l].data());
      slice.v.push_back(rows[2 * l + 1].data());
    }
  }
};

constexpr uint64_t kMaxFuzzElements = 1 << 16;

uint64_t ElementsOf(const sparkv::KvShape& shape) {
  return 2 * static_cast<uint64_t>(shape.n_layer) * shape.block_elements();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);

  // Whole blobs: decode into a cache of the header's own shape when it is small.
  sparkv::Result<sparkv::BlobHeader> header = sparkv::ParseBlobHeader(bytes);
  if (header.ok() && ElementsOf(header->shape()) <= kMaxFuzzElements) {
    const sparkv::BlobExpectation expected{header->identity, header->codec, header->n_layer,
                                           header->n_head_kv, header->head_dim};
    for (sparkv::KvElemType elem : {sparkv::KvElemType::kF16, sparkv::KvElemType::kF32}) {
      SmallCache cache(elem, header->shape(), header->identity.begin);
      (void)sparkv::DecodeBlob(bytes, expected, cache.slice);
    }
  }

  // Bare payloads straight into the codecs.
  if (size < 4) return 0;
  const auto codecs = sparkv::AllCodecs();
  const sparkv::Codec* codec = codecs[data[0] % codecs.size()];
  const sparkv::KvShape shape{1 + data[1] % 4, 1 + data[2] % 3, 1 + data[3] % 40, 1 + data[0] / 16};
  const sparkv::KvElemType elem = (data[0] & 8) ? sparkv::KvElemType::kF32 : sparkv::KvElemType::kF16;
  SmallCache cache(elem, shape, 0);
  (void)codec->Decode(bytes.subspan(4), cache.slice);
  return 0;
}
