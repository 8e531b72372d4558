#include "kv/blob.h"

#include <cstring>
#include <string>

#include "kv/codec.h"
#include "kv/format.h"

namespace sparkv {
namespace {

// Field offsets of the header; the table in blob.h is the specification.
constexpr size_t kVersionAt = 8;
constexpr size_t kCodecAt = 12;
constexpr size_t kElemAt = 14;
constexpr size_t kReserved1At = 15;
constexpr size_t kFingerprintAt = 16;
constexpr size_t kKeyAt = 32;
constexpr size_t kBeginAt = 48;
constexpr size_t kEndAt = 52;
constexpr size_t kLayerAt = 56;
constexpr size_t kHeadKvAt = 60;
constexpr size_t kHeadDimAt = 64;
constexpr size_t kReserved2At = 68;
constexpr size_t kPayloadBytesAt = 72;
constexpr size_t kPayloadChecksumAt = 80;
constexpr size_t kHeaderChecksumAt = 88;
static_assert(kHeaderChecksumAt + 8 == kBlobHeaderBytes);

template <typename T>
void Put(uint8_t* header, size_t at, T value) {
  std::memcpy(header + at, &value, sizeof(T));
}

template <typename T>
T Get(const uint8_t* header, size_t at) {
  T value;
  std::memcpy(&value, header + at, sizeof(T));
  return value;
}

void PutHash(uint8_t* header, size_t at, const Hash128& hash) {
  Put(header, at, hash.high);
  Put(header, at + 8, hash.low);
}

Hash128 GetHash(const uint8_t* header, size_t at) {
  return Hash128{Get<uint64_t>(header, at), Get<uint64_t>(header, at + 8)};
}

std::string Range(int32_t begin, int32_t end) {
  // Appends rather than `"[" + ...`, which trips g++ 12's false -Wrestrict (GCC bug 105651).
  std::string text = "[";
  text += std::to_string(begin);
  text += ", ";
  text += std::to_string(end);
  text += ")";
  return text;
}

Status FieldMismatch(std::string_view field, const std::string& expected,
                     const std::string& actual) {
  return MismatchError("blob " + std::string(field) + " is " + actual + " but " + expected +
                       " was requested; the store or server holds another blob under this name");
}

}  // namespace

BlobExpectation ExpectationFor(const BlobIdentity& identity, CodecId codec,
                               const KvSlice& destination) {
  return BlobExpectation{identity, codec, destination.n_layer, destination.n_head_kv,
                         destination.head_dim};
}

Result<std::vector<uint8_t>> EncodeBlob(const Codec& codec, const BlobIdentity& identity,
                                        const KvSlice& source) {
  if (identity.begin != source.begin || identity.end != source.end) {
    return InvalidArgumentError("blob identity range " + Range(identity.begin, identity.end) +
                                " differs from the source slice's " +
                                Range(source.begin, source.end));
  }
  SPARKV_ASSIGN_OR_RETURN(std::vector<uint8_t> payload, codec.Encode(source));

  std::vector<uint8_t> blob(kBlobHeaderBytes + payload.size());
  uint8_t* header = blob.data();
  std::memcpy(header, kBlobMagic, sizeof(kBlobMagic));
  Put(header, kVersionAt, kFormatVersion);
  Put(header, kCodecAt, static_cast<uint16_t>(codec.id()));
  Put(header, kElemAt, static_cast<uint8_t>(source.elem));
  Put(header, kReserved1At, uint8_t{0});
  PutHash(header, kFingerprintAt, identity.model_fingerprint);
  PutHash(header, kKeyAt, identity.chunk_key);
  Put(header, kBeginAt, identity.begin);
  Put(header, kEndAt, identity.end);
  Put(header, kLayerAt, source.n_layer);
  Put(header, kHeadKvAt, source.n_head_kv);
  Put(header, kHeadDimAt, source.head_dim);
  Put(header, kReserved2At, uint32_t{0});
  Put(header, kPayloadBytesAt, static_cast<uint64_t>(payload.size()));
  Put(header, kPayloadChecksumAt, Checksum64(payload.data(), payload.size()));
  Put(header, kHeaderChecksumAt, Checksum64(header, kHeaderChecksumAt));
  std::memcpy(blob.data() + kBlobHeaderBytes, payload.data(), payload.size());
  return blob;
}

Result<BlobHeader> ParseBlobHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < kBlobHeaderBytes) {
    return CorruptionError("blob is " + std::to_string(bytes.size()) + " bytes, shorter than its " +
                           std::to_string(kBlobHeaderBytes) + "-byte header (truncated download?)");
  }
  const uint8_t* header = bytes.data();
  if (std::memcmp(header, kBlobMagic, sizeof(kBlobMagic)) != 0) {
    return CorruptionError("blob magic is wrong: not a SparKV .skv file");
  }

  // The version decides the rest of the layout, so it is read before the header checksum.
  BlobHeader parsed;
  parsed.format_version = Get<uint32_t>(header, kVersionAt);
  if (parsed.format_version != kFormatVersion) {
    return UnsupportedError("blob format version is " + std::to_string(parsed.format_version) +
                            "; this build reads version " + std::to_string(kFormatVersion) +
                            " (re-ingest the context or update SparKV)");
  }
  const uint64_t header_checksum = Get<uint64_t>(header, kHeaderChecksumAt);
  if (header_checksum != Checksum64(header, kHeaderChecksumAt)) {
    return CorruptionError("blob header checksum does not match its bytes");
  }
  if (header[kReserved1At] != 0 || Get<uint32_t>(header, kReserved2At) != 0) {
    return CorruptionError("blob reserved header fields are not zero");
  }

  const uint16_t codec_id = Get<uint16_t>(header, kCodecAt);
  const Codec* codec = FindCodec(static_cast<CodecId>(codec_id));
  if (codec == nullptr) {
    return UnsupportedError("blob codec id " + std::to_string(codec_id) +
                            " is unknown to this build (update SparKV or fetch another level)");
  }
  parsed.codec = codec->id();

  const uint8_t elem = header[kElemAt];
  if (elem != static_cast<uint8_t>(KvElemType::kF32) &&
      elem != static_cast<uint8_t>(KvElemType::kF16)) {
    return CorruptionError("blob source element type is " + std::to_string(elem) +
                           "; expected 0 (f32) or 1 (f16)");
  }
  parsed.source_elem = static_cast<KvElemType>(elem);

  parsed.identity.model_fingerprint = GetHash(header, kFingerprintAt);
  parsed.identity.chunk_key = GetHash(header, kKeyAt);
  parsed.identity.begin = Get<int32_t>(header, kBeginAt);
  parsed.identity.end = Get<int32_t>(header, kEndAt);
  parsed.n_layer = Get<int32_t>(header, kLayerAt);
  parsed.n_head_kv = Get<int32_t>(header, kHeadKvAt);
  parsed.head_dim = Get<int32_t>(header, kHeadDimAt);
  parsed.payload_bytes = Get<uint64_t>(header, kPayloadBytesAt);
  parsed.payload_checksum = Get<uint64_t>(header, kPayloadChecksumAt);

  // int64_t: end - begin of two arbitrary int32 values can overflow int32.
  const int64_t n_tokens = static_cast<int64_t>(parsed.identity.end) - parsed.identity.begin;
  if (parsed.identity.begin < 0 || n_tokens <= 0) {
    return CorruptionError("blob token range " + Range(parsed.identity.begin, parsed.identity.end) +
                           " is not a non-empty range of positions");
  }
  const Status shape_status = CheckShape(parsed.shape(), "blob header");
  if (!shape_status.ok()) return CorruptionError(shape_status.message());

  const uint64_t max_payload = codec->MaxPayloadBytes(parsed.shape());
  if (parsed.payload_bytes > max_payload) {
    return CorruptionError("blob payload size is " + std::to_string(parsed.payload_bytes) +
                           " bytes; codec " + std::string(codec->name()) +
                           " needs at most " + std::to_string(max_payload) + " for this shape");
  }
  return parsed;
}

Result<BlobHeader> VerifyBlob(std::span<const uint8_t> blob) {
  SPARKV_ASSIGN_OR_RETURN(BlobHeader header, ParseBlobHeader(blob));
  const uint64_t actual_payload = blob.size() - kBlobHeaderBytes;
  if (actual_payload != header.payload_bytes) {
    return CorruptionError("blob payload is " + std::to_string(actual_payload) +
                           " bytes but its header says " + std::to_string(header.payload_bytes) +
                           (actual_payload < header.payload_bytes ? " (truncated)"
                                                                  : " (trailing bytes)"));
  }
  const uint64_t checksum = Checksum64(blob.data() + kBlobHeaderBytes, actual_payload);
  if (checksum != header.payload_checksum) {
    return CorruptionError("blob payload checksum does not match its header (damaged bytes)");
  }
  return header;
}

Status DecodeBlob(std::span<const uint8_t> blob, const BlobExpectation& expected,
                  const KvSlice& destination, int n_threads) {
  SPARKV_ASSIGN_OR_RETURN(BlobHeader header, VerifyBlob(blob));

  const BlobIdentity& actual = header.identity;
  if (actual.model_fingerprint != expected.identity.model_fingerprint) {
    return FieldMismatch("model fingerprint", expected.identity.model_fingerprint.Hex(),
                         actual.model_fingerprint.Hex());
  }
  if (actual.chunk_key != expected.identity.chunk_key) {
    return FieldMismatch("chunk key", expected.identity.chunk_key.Hex(), actual.chunk_key.Hex());
  }
  if (actual.begin != expected.identity.begin || actual.end != expected.identity.end) {
    return FieldMismatch("token range", Range(expected.identity.begin, expected.identity.end),
                         Range(actual.begin, actual.end));
  }
  if (header.codec != expected.codec) {
    const auto codec_text = [](CodecId id) {
      const Codec* codec = FindCodec(id);
      const std::string number = "id " + std::to_string(static_cast<int>(id));
      return codec != nullptr ? std::string(codec->name()) + " (" + number + ")" : number;
    };
    return FieldMismatch("codec", codec_text(expected.codec), codec_text(header.codec));
  }
  const auto shape_text = [](int32_t n_layer, int32_t n_head_kv, int32_t head_dim) {
    return std::to_string(n_layer) + " layers x " + std::to_string(n_head_kv) + " KV heads x " +
           std::to_string(head_dim);
  };
  if (header.n_layer != expected.n_layer || header.n_head_kv != expected.n_head_kv ||
      header.head_dim != expected.head_dim) {
    return FieldMismatch("shape", shape_text(expected.n_layer, expected.n_head_kv, expected.head_dim),
                         shape_text(header.n_layer, header.n_head_kv, header.head_dim));
  }

  if (destination.begin != actual.begin || destination.end != actual.end ||
      destination.n_layer != header.n_layer || destination.n_head_kv != header.n_head_kv ||
      destination.head_dim != header.head_dim) {
    return InvalidArgumentError(
        "destination slice " + Range(destination.begin, destination.end) + " of " +
        shape_text(destination.n_layer, destination.n_head_kv, destination.head_dim) +
        " does not match the expected blob " + Range(actual.begin, actual.end) + " of " +
        shape_text(header.n_layer, header.n_head_kv, header.head_dim));
  }

  const Codec* codec = FindCodec(header.codec);  // non-null: ParseBlobHeader checked the id
  return codec->DecodeParallel(blob.subspan(kBlobHeaderBytes), destination, n_threads);
}

}  // namespace sparkv
