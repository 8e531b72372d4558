// GGUF reader and writer (the llama.cpp ecosystem's model format, versions 2 and 3).
// The reader maps the file and validates every count, size and offset before use: tensor data
// is returned as pointers into the map, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/file_util.h"
#include "sparkv/status.h"

namespace sparkv::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

// Metadata value types; the numbers are fixed by the GGUF specification.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view ValueTypeName(ValueType type);

// Tensor element types; the numbers are ggml's `enum ggml_type` and must never change.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

struct TypeTraits {
  std::string_view name;
  int64_t block_size;  // elements per block
  size_t block_bytes;  // bytes per block
};

// Returns nullptr for a type number this reader does not know.
const TypeTraits* GetTypeTraits(TensorType type);

// Bytes of `n_elements` elements of `type`; nullopt if n_elements is not a whole number of blocks
// or the size overflows.
std::optional<size_t> RowBytes(TensorType type, int64_t n_elements);

// One metadata value. Arrays hold values of a single element type (nested arrays allowed).
struct Value {
  using Array = std::vector<Value>;
  ValueType type = ValueType::kUint8;
  ValueType array_type = ValueType::kUint8;  // meaningful when type == kArray
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  static Value U8(uint8_t v) { return {ValueType::kUint8, ValueType::kUint8, uint64_t{v}}; }
  static Value U32(uint32_t v) { return {ValueType::kUint32, ValueType::kUint8, uint64_t{v}}; }
  static Value U64(uint64_t v) { return {ValueType::kUint64, ValueType::kUint8, v}; }
  static Value I32(int32_t v) { return {ValueType::kInt32, ValueType::kUint8, int64_t{v}}; }
  static Value I64(int64_t v) { return {ValueType::kInt64, ValueType::kUint8, v}; }
  static Value F32(float v) { return {ValueType::kFloat32, ValueType::kUint8, double{v}}; }
  static Value F64(double v) { return {ValueType::kFloat64, ValueType::kUint8, v}; }
  static Value Bool(bool v) { return {ValueType::kBool, ValueType::kUint8, v}; }
  static Value Str(std::string v) { return {ValueType::kString, ValueType::kUint8, std::move(v)}; }
  static Value MakeArray(ValueType element_type, Array values) {
    return {ValueType::kArray, element_type, std::move(values)};
  }
  static Value StringArray(const std::vector<std::string>& values);
  static Value F32Array(const std::vector<float>& values);
  static Value I32Array(const std::vector<int32_t>& values);

  bool is_integer() const;
  bool is_float() const { return type == ValueType::kFloat32 || type == ValueType::kFloat64; }
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::kF32;
  int n_dims = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ne[0] is the contiguous (innermost) dimension
  uint64_t offset = 0;                  // from the start of the data section
  size_t n_bytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// A parsed, validated GGUF file. Tensor data points into the memory map.
class File {
 public:
  // Opens and validates `path`. Errors name the file, the byte offset and what was wrong.
  static Result<std::unique_ptr<File>> Open(const std::string& path);

  // Parses a GGUF image already in memory; `bytes` must outlive the File. Used by fuzzers and tests.
  static Result<std::unique_ptr<File>> Parse(std::span<const uint8_t> bytes, std::string name);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return name_; }
  const std::vector<KeyValue>& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* Find(std::string_view key) const;
  const TensorInfo* FindTensor(std::string_view name) const;
  const uint8_t* TensorData(const TensorInfo& tensor) const { return data_section_ + tensor.offset; }

  // Typed look-ups. A missing key is NotFound; a value of another type is InvalidArgument.
  Result<std::string> GetString(std::string_view key) const;
  Result<uint64_t> GetUint(std::string_view key) const;  // any unsigned or non-negative signed
  Result<int64_t> GetInt(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;   // f32 or f64
  Result<bool> GetBool(std::string_view key) const;
  Result<const Value::Array*> GetArray(std::string_view key, ValueType element_type) const;

  // Same, returning `fallback` when the key is missing (other errors still fail).
  Result<uint64_t> GetUintOr(std::string_view key, uint64_t fallback) const;
  Result<double> GetFloatOr(std::string_view key, double fallback) const;
  Result<bool> GetBoolOr(std::string_view key, bool fallback) const;

  // Bytes of the whole file image.
  std::span<const uint8_t> bytes() const { return bytes_; }

 private:
  File() = default;

  MappedFile map_;  // empty when parsed from caller memory
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  std::vector<KeyValue> metadata_;
  std::vector<TensorInfo> tensors_;
  const uint8_t* data_section_ = nullptr;
};

// Writes GGUF version 3. Tensor data is produced on demand by a callback, one tensor at a time,
// so writing a multi-gigabyte model needs memory for its largest tensor only.
class Writer {
 public:
  using FillFunction = std::function<void(uint8_t* out, size_t n_bytes)>;

  void SetAlignment(uint32_t alignment) { alignment_ = alignment; }

  // Adds or replaces a metadata key.
  void Set(std::string key, Value value);

  // REQUIRES: ne has 1..4 entries and is a whole number of blocks of `type` along ne[0].
  Status AddTensor(std::string name, TensorType type, std::vector<int64_t> ne, FillFunction fill);
  Status AddTensor(std::string name, TensorType type, std::vector<int64_t> ne,
                   std::vector<uint8_t> data);

  // Writes the file atomically (temporary file, fsync, rename).
  Status WriteFile(const std::string& path) const;

  // Serializes into memory; for tests.
  Result<std::vector<uint8_t>> WriteToMemory() const;

 private:
  struct PendingTensor {
    TensorInfo info;
    FillFunction fill;
  };
  Status WriteTo(const std::function<Status(const uint8_t*, size_t)>& sink) const;

  uint32_t alignment_ = kDefaultAlignment;
  std::vector<KeyValue> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace sparkv::gguf
