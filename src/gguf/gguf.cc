#include "gguf/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <unordered_set>

namespace sparkv::gguf {
namespace {

// Arrays may nest, but no real file nests more than once; the bound keeps recursion shallow.
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;

const TypeTraits kF32Traits{"f32", 1, 4};
const TypeTraits kF16Traits{"f16", 1, 2};
const TypeTraits kQ4_0Traits{"q4_0", 32, 18};
const TypeTraits kQ4_1Traits{"q4_1", 32, 20};
const TypeTraits kQ5_0Traits{"q5_0", 32, 22};
const TypeTraits kQ5_1Traits{"q5_1", 32, 24};
const TypeTraits kQ8_0Traits{"q8_0", 32, 34};
const TypeTraits kQ8_1Traits{"q8_1", 32, 36};
const TypeTraits kQ2_KTraits{"q2_k", 256, 84};
const TypeTraits kQ3_KTraits{"q3_k", 256, 110};
const TypeTraits kQ4_KTraits{"q4_k", 256, 144};
const TypeTraits kQ5_KTraits{"q5_k", 256, 176};
const TypeTraits kQ6_KTraits{"q6_k", 256, 210};
const TypeTraits kQ8_KTraits{"q8_k", 256, 292};
const TypeTraits kI8Traits{"i8", 1, 1};
const TypeTraits kI16Traits{"i16", 1, 2};
const TypeTraits kI32Traits{"i32", 1, 4};
const TypeTraits kI64Traits{"i64", 1, 8};
const TypeTraits kF64Traits{"f64", 1, 8};
const TypeTraits kBF16Traits{"bf16", 1, 2};

// Size in bytes of a scalar metadata value, 0 for strings and arrays.
size_t ScalarBytes(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64: return 8;
    case ValueType::kString:
    case ValueType::kArray: return 0;
  }
  return 0;
}

bool IsKnownValueType(uint32_t type) { return type <= static_cast<uint32_t>(ValueType::kFloat64); }

// Bounds-checked little-endian cursor over the file image. Every read checks the remaining size
// first, so no field can make the parser read past the end or allocate more than the file holds.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }

  Status Error(const std::string& what) const {
    return CorruptionError("GGUF file '" + name_ + "' at offset " + std::to_string(offset_) +
                           ": " + what);
  }

  template <typename T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) {
      return Error(std::string("truncated while reading ") + what + " (" +
                   std::to_string(sizeof(T)) + " bytes needed, " + std::to_string(remaining()) +
                   " left)");
    }
    std::memcpy(out, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* out, const char* what) {
    uint64_t length;
    SPARKV_RETURN_IF_ERROR(Read(&length, what));
    if (length > remaining() || length > kMaxStringBytes) {
      return Error(std::string(what) + " has length " + std::to_string(length) +
                   " but only " + std::to_string(remaining()) + " bytes remain");
    }
    out->assign(reinterpret_cast<const char*>(bytes_.data() + offset_), length);
    offset_ += length;
    return Status::Ok();
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t offset_ = 0;
};

Status ReadValue(Cursor* cursor, ValueType type, int depth, Value* out);

Status ReadScalar(Cursor* cursor, ValueType type, Value* out) {
  out->type = type;
  switch (type) {
    case ValueType::kUint8: { uint8_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "u8 value")); out->data = uint64_t{v}; break; }
    case ValueType::kInt8: { int8_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "i8 value")); out->data = int64_t{v}; break; }
    case ValueType::kUint16: { uint16_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "u16 value")); out->data = uint64_t{v}; break; }
    case ValueType::kInt16: { int16_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "i16 value")); out->data = int64_t{v}; break; }
    case ValueType::kUint32: { uint32_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "u32 value")); out->data = uint64_t{v}; break; }
    case ValueType::kInt32: { int32_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "i32 value")); out->data = int64_t{v}; break; }
    case ValueType::kUint64: { uint64_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "u64 value")); out->data = v; break; }
    case ValueType::kInt64: { int64_t v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "i64 value")); out->data = v; break; }
    case ValueType::kFloat32: { float v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "f32 value")); out->data = double{v}; break; }
    case ValueType::kFloat64: { double v; SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "f64 value")); out->data = v; break; }
    case ValueType::kBool: {
      uint8_t v;
      SPARKV_RETURN_IF_ERROR(cursor->Read(&v, "bool value"));
      if (v > 1) return cursor->Error("bool value " + std::to_string(v) + " is neither 0 nor 1");
      out->data = v == 1;
      break;
    }
    case ValueType::kString: {
      std::string text;
      SPARKV_RETURN_IF_ERROR(cursor->ReadString(&text, "string value"));
      out->data = std::move(text);
      break;
    }
    case ValueType::kArray: return cursor->Error("internal: array passed as scalar");
  }
  return Status::Ok();
}

Status ReadValue(Cursor* cursor, ValueType type, int depth, Value* out) {
  if (type != ValueType::kArray) return ReadScalar(cursor, type, out);
  if (depth >= kMaxArrayDepth) {
    return cursor->Error("arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  }

  uint32_t element_type;
  SPARKV_RETURN_IF_ERROR(cursor->Read(&element_type, "array element type"));
  if (!IsKnownValueType(element_type)) {
    return cursor->Error("unknown array element type " + std::to_string(element_type));
  }
  uint64_t count;
  SPARKV_RETURN_IF_ERROR(cursor->Read(&count, "array length"));

  // Every element takes at least one byte (strings and arrays at least 8), so a count larger
  // than the bytes left is invalid. Checking it here bounds the allocation below.
  const size_t scalar_bytes = ScalarBytes(static_cast<ValueType>(element_type));
  const size_t min_element_bytes = scalar_bytes != 0 ? scalar_bytes : 8;  // strings and arrays start with a u64
  if (count > cursor->remaining() / min_element_bytes) {
    return cursor->Error("array length " + std::to_string(count) + " exceeds the " +
                         std::to_string(cursor->remaining()) + " bytes left in the file");
  }

  Value::Array values(count);
  for (uint64_t i = 0; i < count; ++i) {
    SPARKV_RETURN_IF_ERROR(ReadValue(cursor, static_cast<ValueType>(element_type), depth + 1, &values[i]));
  }
  out->type = ValueType::kArray;
  out->array_type = static_cast<ValueType>(element_type);
  out->data = std::move(values);
  return Status::Ok();
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
  }
  return "unknown";
}

const TypeTraits* GetTypeTraits(TensorType type) {
  switch (type) {
    case TensorType::kF32: return &kF32Traits;
    case TensorType::kF16: return &kF16Traits;
    case TensorType::kQ4_0: return &kQ4_0Traits;
    case TensorType::kQ4_1: return &kQ4_1Traits;
    case TensorType::kQ5_0: return &kQ5_0Traits;
    case TensorType::kQ5_1: return &kQ5_1Traits;
    case TensorType::kQ8_0: return &kQ8_0Traits;
    case TensorType::kQ8_1: return &kQ8_1Traits;
    case TensorType::kQ2_K: return &kQ2_KTraits;
    case TensorType::kQ3_K: return &kQ3_KTraits;
    case TensorType::kQ4_K: return &kQ4_KTraits;
    case TensorType::kQ5_K: return &kQ5_KTraits;
    case TensorType::kQ6_K: return &kQ6_KTraits;
    case TensorType::kQ8_K: return &kQ8_KTraits;
    case TensorType::kI8: return &kI8Traits;
    case TensorType::kI16: return &kI16Traits;
    case TensorType::kI32: return &kI32Traits;
    case TensorType::kI64: return &kI64Traits;
    case TensorType::kF64: return &kF64Traits;
    case TensorType::kBF16: return &kBF16Traits;
  }
  return nullptr;
}

std::optional<size_t> RowBytes(TensorType type, int64_t n_elements) {
  const TypeTraits* traits = GetTypeTraits(type);
  if (traits == nullptr || n_elements < 0 || n_elements % traits->block_size != 0) return std::nullopt;
  const uint64_t n_blocks = static_cast<uint64_t>(n_elements / traits->block_size);
  if (n_blocks > std::numeric_limits<uint64_t>::max() / traits->block_bytes) return std::nullopt;
  return static_cast<size_t>(n_blocks * traits->block_bytes);
}

Value Value::StringArray(const std::vector<std::string>& values) {
  Array array;
  array.reserve(values.size());
  for (const std::string& v : values) array.push_back(Str(v));
  return MakeArray(ValueType::kString, std::move(array));
}

Value Value::F32Array(const std::vector<float>& values) {
  Array array;
  array.reserve(values.size());
  for (float v : values) array.push_back(F32(v));
  return MakeArray(ValueType::kFloat32, std::move(array));
}

Value Value::I32Array(const std::vector<int32_t>& values) {
  Array array;
  array.reserve(values.size());
  for (int32_t v : values) array.push_back(I32(v));
  return MakeArray(ValueType::kInt32, std::move(array));
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64: return true;
    default: return false;
  }
}

Result<std::unique_ptr<File>> File::Open(const std::string& path) {
  SPARKV_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(path));
  const std::span<const uint8_t> bytes = map.bytes();
  SPARKV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, Parse(bytes, path));
  file->map_ = std::move(map);  // the span stays valid: moving a map keeps its address
  return file;
}

Result<std::unique_ptr<File>> File::Parse(std::span<const uint8_t> bytes, std::string name) {
  std::unique_ptr<File> file(new File());
  file->name_ = std::move(name);
  file->bytes_ = bytes;
  Cursor cursor(bytes, file->name_);

  uint32_t magic;
  SPARKV_RETURN_IF_ERROR(cursor.Read(&magic, "magic"));
  if (magic != kMagic) {
    return CorruptionError("'" + file->name_ + "' is not a GGUF file: the first 4 bytes are not \"GGUF\" (a llama2.c "
                           "checkpoint converts with `sparkv convert-llama2c FILE -o FILE.gguf`)");
  }
  SPARKV_RETURN_IF_ERROR(cursor.Read(&file->version_, "version"));
  if (file->version_ != 2 && file->version_ != 3) {
    return UnsupportedError("GGUF file '" + file->name_ + "' has version " +
                            std::to_string(file->version_) +
                            "; versions 2 and 3 are supported (re-convert the model with a current converter)");
  }

  uint64_t n_tensors;
  uint64_t n_kv;
  SPARKV_RETURN_IF_ERROR(cursor.Read(&n_tensors, "tensor count"));
  SPARKV_RETURN_IF_ERROR(cursor.Read(&n_kv, "metadata count"));
  // A key-value pair takes at least 12 bytes and a tensor entry at least 24: larger counts lie.
  if (n_kv > cursor.remaining() / 12) {
    return cursor.Error("metadata count " + std::to_string(n_kv) + " exceeds what the file can hold");
  }
  if (n_tensors > cursor.remaining() / 24) {
    return cursor.Error("tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");
  }

  std::unordered_set<std::string> keys;
  file->metadata_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    KeyValue entry;
    SPARKV_RETURN_IF_ERROR(cursor.ReadString(&entry.key, "metadata key"));
    if (!keys.insert(entry.key).second) return cursor.Error("duplicate metadata key '" + entry.key + "'");
    uint32_t type;
    SPARKV_RETURN_IF_ERROR(cursor.Read(&type, "metadata value type"));
    if (!IsKnownValueType(type)) {
      return cursor.Error("metadata key '" + entry.key + "' has unknown value type " + std::to_string(type));
    }
    SPARKV_RETURN_IF_ERROR(ReadValue(&cursor, static_cast<ValueType>(type), 0, &entry.value));
    file->metadata_.push_back(std::move(entry));
  }

  if (const Value* alignment = file->Find("general.alignment")) {
    if (alignment->type != ValueType::kUint32) {
      return CorruptionError("GGUF file '" + file->name_ + "': general.alignment must be a u32");
    }
    const uint64_t value = std::get<uint64_t>(alignment->data);
    if (value == 0 || (value & (value - 1)) != 0 || value > 65536) {
      return CorruptionError("GGUF file '" + file->name_ + "': general.alignment " +
                             std::to_string(value) + " is not a power of two up to 65536");
    }
    file->alignment_ = static_cast<uint32_t>(value);
  }

  std::unordered_set<std::string> names;
  file->tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo info;
    SPARKV_RETURN_IF_ERROR(cursor.ReadString(&info.name, "tensor name"));
    if (!names.insert(info.name).second) return cursor.Error("duplicate tensor name '" + info.name + "'");

    uint32_t n_dims;
    SPARKV_RETURN_IF_ERROR(cursor.Read(&n_dims, "tensor dimension count"));
    if (n_dims < 1 || n_dims > kMaxDims) {
      return cursor.Error("tensor '" + info.name + "' has " + std::to_string(n_dims) +
                          " dimensions; 1 to 4 are allowed");
    }
    info.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      SPARKV_RETURN_IF_ERROR(cursor.Read(&info.ne[d], "tensor dimension"));
      if (info.ne[d] < 0) {
        return cursor.Error("tensor '" + info.name + "' has negative dimension " + std::to_string(info.ne[d]));
      }
    }
    // The element count must fit in int64 without overflow.
    int64_t n_elements = 1;
    for (int d = 0; d < kMaxDims; ++d) {
      if (info.ne[d] != 0 && n_elements > std::numeric_limits<int64_t>::max() / info.ne[d]) {
        return cursor.Error("tensor '" + info.name + "' has too many elements");
      }
      n_elements *= info.ne[d];
    }

    uint32_t type;
    SPARKV_RETURN_IF_ERROR(cursor.Read(&type, "tensor type"));
    info.type = static_cast<TensorType>(type);
    const TypeTraits* traits = GetTypeTraits(info.type);
    if (traits == nullptr) {
      return cursor.Error("tensor '" + info.name + "' has unknown type " + std::to_string(type));
    }
    if (info.ne[0] % traits->block_size != 0) {
      return cursor.Error("tensor '" + info.name + "' row of " + std::to_string(info.ne[0]) +
                          " elements is not a multiple of the " + std::string(traits->name) +
                          " block size " + std::to_string(traits->block_size));
    }
    const std::optional<size_t> n_bytes = RowBytes(info.type, n_elements);
    if (!n_bytes) return cursor.Error("tensor '" + info.name + "' size overflows");
    info.n_bytes = *n_bytes;

    SPARKV_RETURN_IF_ERROR(cursor.Read(&info.offset, "tensor data offset"));
    if (info.offset % file->alignment_ != 0) {
      return cursor.Error("tensor '" + info.name + "' data offset " + std::to_string(info.offset) +
                          " is not a multiple of the alignment " + std::to_string(file->alignment_));
    }
    file->tensors_.push_back(std::move(info));
  }

  const uint64_t data_start = AlignUp(cursor.offset(), file->alignment_);
  if (data_start > bytes.size()) {
    if (n_tensors == 0) return file;  // vocabulary-only files may end right after the header
    return cursor.Error("file ends before its tensor data section at offset " + std::to_string(data_start));
  }
  const uint64_t data_bytes = bytes.size() - data_start;
  for (const TensorInfo& info : file->tensors_) {
    if (info.offset > data_bytes || info.n_bytes > data_bytes - info.offset) {
      return CorruptionError("GGUF file '" + file->name_ + "': tensor '" + info.name + "' data [" +
                             std::to_string(data_start + info.offset) + ", " +
                             std::to_string(data_start + info.offset + info.n_bytes) +
                             ") runs past the end of the file (" + std::to_string(bytes.size()) +
                             " bytes); the file is truncated");
    }
  }
  file->data_section_ = bytes.data() + data_start;
  return file;
}

const Value* File::Find(std::string_view key) const {
  for (const KeyValue& entry : metadata_) {
    if (entry.key == key) return &entry.value;
  }
  return nullptr;
}

const TensorInfo* File::FindTensor(std::string_view name) const {
  for (const TensorInfo& info : tensors_) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

namespace {

Status KeyMissing(const std::string& file, std::string_view key) {
  return NotFoundError("GGUF file '" + file + "' has no metadata key '" + std::string(key) + "'");
}

Status WrongType(const std::string& file, std::string_view key, const Value& value, const char* expected) {
  return InvalidArgumentError("GGUF file '" + file + "': metadata key '" + std::string(key) +
                              "' is a " + std::string(ValueTypeName(value.type)) + ", expected " + expected);
}

}  // namespace

Result<std::string> File::GetString(std::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr) return KeyMissing(name_, key);
  if (value->type != ValueType::kString) return WrongType(name_, key, *value, "a string");
  return std::get<std::string>(value->data);
}

Result<uint64_t> File::GetUint(std::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr) return KeyMissing(name_, key);
  if (!value->is_integer()) return WrongType(name_, key, *value, "an integer");
  if (std::holds_alternative<int64_t>(value->data)) {
    const int64_t signed_value = std::get<int64_t>(value->data);
    if (signed_value < 0) {
      return InvalidArgumentError("GGUF file '" + name_ + "': metadata key '" + std::string(key) +
                                  "' is negative (" + std::to_string(signed_value) + ")");
    }
    return static_cast<uint64_t>(signed_value);
  }
  return std::get<uint64_t>(value->data);
}

Result<int64_t> File::GetInt(std::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr) return KeyMissing(name_, key);
  if (!value->is_integer()) return WrongType(name_, key, *value, "an integer");
  if (std::holds_alternative<int64_t>(value->data)) return std::get<int64_t>(value->data);
  const uint64_t unsigned_value = std::get<uint64_t>(value->data);
  if (unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgumentError("GGUF file '" + name_ + "': metadata key '" + std::string(key) + "' overflows int64");
  }
  return static_cast<int64_t>(unsigned_value);
}

Result<double> File::GetFloat(std::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr) return KeyMissing(name_, key);
  if (!value->is_float()) return WrongType(name_, key, *value, "a float");
  return std::get<double>(value->data);
}

Result<bool> File::GetBool(std::string_view key) const {
  const Value* value = Find(key);
  if (value == nullptr) return KeyMissing(name_, key);
  if (value->type != ValueType::kBool) return WrongType(name_, key, *value, "a bool");
  return std::get<bool>(value->data);
}

Result<const Value::Array*> File::GetArray(std::string_view key, ValueType element_type) const {
  const Value* value = Find(key);
  if (value == nullptr) return KeyMissing(name_, key);
  if (value->type != ValueType::kArray || value->array_type != element_type) {
    return InvalidArgumentError("GGUF file '" + name_ + "': metadata key '" + std::string(key) +
                                "' is not an array of " + std::string(ValueTypeName(element_type)));
  }
  return &std::get<Value::Array>(value->data);
}

Result<uint64_t> File::GetUintOr(std::string_view key, uint64_t fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetUint(key);
}

Result<double> File::GetFloatOr(std::string_view key, double fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetFloat(key);
}

Result<bool> File::GetBoolOr(std::string_view key, bool fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetBool(key);
}

// ----------------------------------------------------------------------------------------------
// Writer

void Writer::Set(std::string key, Value value) {
  for (KeyValue& entry : metadata_) {
    if (entry.key == key) {
      entry.value = std::move(value);
      return;
    }
  }
  metadata_.push_back({std::move(key), std::move(value)});
}

Status Writer::AddTensor(std::string name, TensorType type, std::vector<int64_t> ne, FillFunction fill) {
  if (ne.empty() || ne.size() > kMaxDims) {
    return InvalidArgumentError("tensor '" + name + "' needs 1 to 4 dimensions, got " + std::to_string(ne.size()));
  }
  TensorInfo info;
  info.name = std::move(name);
  info.type = type;
  info.n_dims = static_cast<int>(ne.size());
  for (size_t d = 0; d < ne.size(); ++d) info.ne[d] = ne[d];
  const std::optional<size_t> n_bytes = RowBytes(type, info.n_elements());
  const TypeTraits* traits = GetTypeTraits(type);
  if (!n_bytes || traits == nullptr || info.ne[0] % traits->block_size != 0) {
    return InvalidArgumentError("tensor '" + info.name + "': shape does not fit whole blocks of its type");
  }
  info.n_bytes = *n_bytes;
  tensors_.push_back({std::move(info), std::move(fill)});
  return Status::Ok();
}

Status Writer::AddTensor(std::string name, TensorType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(data));
  const size_t n_data = shared->size();
  SPARKV_RETURN_IF_ERROR(AddTensor(std::move(name), type, std::move(ne),
                                   [shared](uint8_t* out, size_t n_bytes) {
                                     std::memcpy(out, shared->data(), std::min(n_bytes, shared->size()));
                                   }));
  if (tensors_.back().info.n_bytes != n_data) {
    const std::string tensor_name = tensors_.back().info.name;
    const size_t expected = tensors_.back().info.n_bytes;
    tensors_.pop_back();
    return InvalidArgumentError("tensor '" + tensor_name + "' has " + std::to_string(n_data) +
                                " bytes of data but its shape needs " + std::to_string(expected));
  }
  return Status::Ok();
}

namespace {

void PutBytes(std::vector<uint8_t>* out, const void* data, size_t n) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + n);
}

template <typename T>
void Put(std::vector<uint8_t>* out, T value) {
  PutBytes(out, &value, sizeof(value));
}

void PutString(std::vector<uint8_t>* out, const std::string& text) {
  Put<uint64_t>(out, text.size());
  PutBytes(out, text.data(), text.size());
}

void PutValue(std::vector<uint8_t>* out, const Value& value) {
  switch (value.type) {
    case ValueType::kUint8: Put<uint8_t>(out, static_cast<uint8_t>(std::get<uint64_t>(value.data))); break;
    case ValueType::kInt8: Put<int8_t>(out, static_cast<int8_t>(std::get<int64_t>(value.data))); break;
    case ValueType::kUint16: Put<uint16_t>(out, static_cast<uint16_t>(std::get<uint64_t>(value.data))); break;
    case ValueType::kInt16: Put<int16_t>(out, static_cast<int16_t>(std::get<int64_t>(value.data))); break;
    case ValueType::kUint32: Put<uint32_t>(out, static_cast<uint32_t>(std::get<uint64_t>(value.data))); break;
    case ValueType::kInt32: Put<int32_t>(out, static_cast<int32_t>(std::get<int64_t>(value.data))); break;
    case ValueType::kUint64: Put<uint64_t>(out, std::get<uint64_t>(value.data)); break;
    case ValueType::kInt64: Put<int64_t>(out, std::get<int64_t>(value.data)); break;
    case ValueType::kFloat32: Put<float>(out, static_cast<float>(std::get<double>(value.data))); break;
    case ValueType::kFloat64: Put<double>(out, std::get<double>(value.data)); break;
    case ValueType::kBool: Put<uint8_t>(out, std::get<bool>(value.data) ? 1 : 0); break;
    case ValueType::kString: PutString(out, std::get<std::string>(value.data)); break;
    case ValueType::kArray: {
      const auto& array = std::get<Value::Array>(value.data);
      Put<uint32_t>(out, static_cast<uint32_t>(value.array_type));
      Put<uint64_t>(out, array.size());
      for (const Value& element : array) PutValue(out, element);
      break;
    }
  }
}

}  // namespace

Status Writer::WriteTo(const std::function<Status(const uint8_t*, size_t)>& sink) const {
  std::vector<KeyValue> metadata = metadata_;
  if (alignment_ != kDefaultAlignment) {
    bool present = false;
    for (KeyValue& entry : metadata) {
      if (entry.key == "general.alignment") {
        entry.value = Value::U32(alignment_);
        present = true;
      }
    }
    if (!present) metadata.push_back({"general.alignment", Value::U32(alignment_)});
  }

  std::vector<uint8_t> header;
  Put<uint32_t>(&header, kMagic);
  Put<uint32_t>(&header, 3);
  Put<uint64_t>(&header, tensors_.size());
  Put<uint64_t>(&header, metadata.size());
  for (const KeyValue& entry : metadata) {
    PutString(&header, entry.key);
    Put<uint32_t>(&header, static_cast<uint32_t>(entry.value.type));
    PutValue(&header, entry.value);
  }

  uint64_t offset = 0;
  for (const PendingTensor& tensor : tensors_) {
    PutString(&header, tensor.info.name);
    Put<uint32_t>(&header, static_cast<uint32_t>(tensor.info.n_dims));
    for (int d = 0; d < tensor.info.n_dims; ++d) Put<int64_t>(&header, tensor.info.ne[d]);
    Put<uint32_t>(&header, static_cast<uint32_t>(tensor.info.type));
    Put<uint64_t>(&header, offset);
    offset = AlignUp(offset + tensor.info.n_bytes, alignment_);
  }
  header.resize(AlignUp(header.size(), alignment_), 0);
  SPARKV_RETURN_IF_ERROR(sink(header.data(), header.size()));

  std::vector<uint8_t> buffer;
  for (const PendingTensor& tensor : tensors_) {
    const size_t padded = AlignUp(tensor.info.n_bytes, alignment_);
    buffer.assign(padded, 0);
    tensor.fill(buffer.data(), tensor.info.n_bytes);
    SPARKV_RETURN_IF_ERROR(sink(buffer.data(), buffer.size()));
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> Writer::WriteToMemory() const {
  std::vector<uint8_t> image;
  SPARKV_RETURN_IF_ERROR(WriteTo([&image](const uint8_t* data, size_t n) {
    image.insert(image.end(), data, data + n);
    return Status::Ok();
  }));
  return image;
}

Status Writer::WriteFile(const std::string& path) const {
  static std::atomic<uint64_t> counter{0};
  const std::string temporary =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return IoError("create '" + temporary + "' failed: " + std::strerror(errno) +
                   " (check that the output folder exists and is writable)");
  }

  Status status = WriteTo([fd, &temporary](const uint8_t* data, size_t n) {
    while (n > 0) {
      const ssize_t written = ::write(fd, data, n);
      if (written < 0) {
        if (errno == EINTR) continue;
        return IoError("write to '" + temporary + "' failed: " + std::strerror(errno));
      }
      data += written;
      n -= static_cast<size_t>(written);
    }
    return Status::Ok();
  });
  if (status.ok() && ::fsync(fd) != 0) status = IoError("fsync '" + temporary + "' failed: " + std::strerror(errno));
  ::close(fd);
  if (status.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    status = IoError("rename to '" + path + "' failed: " + std::strerror(errno));
  }
  if (!status.ok()) ::unlink(temporary.c_str());
  return status;
}

}  // namespace sparkv::gguf
