#include "gguf/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_support.h"

namespace sparkv::gguf {
namespace {

std::vector<uint8_t> F32Bytes(const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// A small valid image with every metadata value type and two tensors.
std::vector<uint8_t> SampleImage() {
  Writer writer;
  writer.Set("u8", Value::U8(7));
  writer.Set("i8", Value{ValueType::kInt8, ValueType::kUint8, int64_t{-7}});
  writer.Set("u16", Value{ValueType::kUint16, ValueType::kUint8, uint64_t{65535}});
  writer.Set("i16", Value{ValueType::kInt16, ValueType::kUint8, int64_t{-300}});
  writer.Set("u32", Value::U32(4000000000u));
  writer.Set("i32", Value::I32(-5));
  writer.Set("u64", Value::U64(1ull << 40));
  writer.Set("i64", Value::I64(-(1ll << 40)));
  writer.Set("f32", Value::F32(1.5f));
  writer.Set("f64", Value::F64(2.25));
  writer.Set("bool", Value::Bool(true));
  writer.Set("string", Value::Str("hello"));
  writer.Set("strings", Value::StringArray({"a", "", "ccc"}));
  writer.Set("floats", Value::F32Array({0.5f, -1.0f}));
  writer.Set("nested", Value::MakeArray(ValueType::kArray, {Value::I32Array({1, 2}), Value::I32Array({3})}));
  EXPECT_TRUE(writer.AddTensor("a", TensorType::kF32, {3, 2}, F32Bytes({1, 2, 3, 4, 5, 6})).ok());
  EXPECT_TRUE(writer.AddTensor("b", TensorType::kQ8_0, {32}, std::vector<uint8_t>(34, 1)).ok());
  Result<std::vector<uint8_t>> image = writer.WriteToMemory();
  EXPECT_TRUE(image.ok());
  return std::move(image).value();
}

TEST(GgufTest, RoundTripKeepsEveryValueType) {
  const std::vector<uint8_t> image = SampleImage();
  Result<std::unique_ptr<File>> parsed = File::Parse(image, "sample");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const File& file = **parsed;

  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(*file.GetUint("u8"), 7u);
  EXPECT_EQ(*file.GetInt("i8"), -7);
  EXPECT_EQ(*file.GetUint("u16"), 65535u);
  EXPECT_EQ(*file.GetInt("i16"), -300);
  EXPECT_EQ(*file.GetUint("u32"), 4000000000u);
  EXPECT_EQ(*file.GetInt("i32"), -5);
  EXPECT_EQ(*file.GetUint("u64"), 1ull << 40);
  EXPECT_EQ(*file.GetInt("i64"), -(1ll << 40));
  EXPECT_EQ(*file.GetFloat("f32"), 1.5);
  EXPECT_EQ(*file.GetFloat("f64"), 2.25);
  EXPECT_TRUE(*file.GetBool("bool"));
  EXPECT_EQ(*file.GetString("string"), "hello");

  Result<const Value::Array*> strings = file.GetArray("strings", ValueType::kString);
  ASSERT_TRUE(strings.ok());
  ASSERT_EQ((*strings)->size(), 3u);
  EXPECT_EQ(std::get<std::string>((**strings)[2].data), "ccc");
  Result<const Value::Array*> nested = file.GetArray("nested", ValueType::kArray);
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(std::get<Value::Array>((**nested)[0].data).size(), 2u);

  const TensorInfo* a = file.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ne[0], 3);
  EXPECT_EQ(a->ne[1], 2);
  EXPECT_EQ(a->n_bytes, 24u);
  float values[6];
  std::memcpy(values, file.TensorData(*a), sizeof(values));
  EXPECT_EQ(values[5], 6.0f);
  const TensorInfo* b = file.FindTensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->n_bytes, 34u);
  EXPECT_EQ(b->offset % kDefaultAlignment, 0u);
}

TEST(GgufTest, TypedGettersRejectWrongTypeAndMissingKey) {
  const std::vector<uint8_t> image = SampleImage();
  std::unique_ptr<File> file = std::move(File::Parse(image, "sample")).value();
  EXPECT_EQ(file->GetString("u32").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(file->GetUint("missing").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(file->GetUint("i32").status().code(), ErrorCode::kInvalidArgument);  // negative
  EXPECT_EQ(*file->GetUintOr("missing", 9), 9u);
  EXPECT_EQ(file->GetArray("strings", ValueType::kInt32).status().code(), ErrorCode::kInvalidArgument);
}

TEST(GgufTest, EveryTruncationIsRejectedCleanly) {
  const std::vector<uint8_t> image = SampleImage();
  // The writer pads after the last tensor; a file cut inside that padding is still complete.
  std::unique_ptr<File> whole = std::move(File::Parse(image, "whole")).value();
  const TensorInfo* last = whole->FindTensor("b");
  const size_t complete_length = static_cast<size_t>(whole->TensorData(*last) - image.data()) + last->n_bytes;
  ASSERT_LT(complete_length, image.size());
  EXPECT_TRUE(File::Parse(std::span(image.data(), complete_length), "complete").ok());
  for (size_t length = 0; length < complete_length; ++length) {
    std::vector<uint8_t> prefix(image.begin(), image.begin() + length);
    Result<std::unique_ptr<File>> parsed = File::Parse(prefix, "truncated");
    EXPECT_FALSE(parsed.ok()) << "prefix of " << length << " bytes was accepted";
  }
}

TEST(GgufTest, WrongMagicIsRejected) {
  std::vector<uint8_t> image = SampleImage();
  image[0] = 'X';
  Result<std::unique_ptr<File>> parsed = File::Parse(image, "bad-magic");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("not a GGUF file"), std::string::npos);
}

TEST(GgufTest, UnsupportedVersionIsRejected) {
  std::vector<uint8_t> image = SampleImage();
  image[4] = 1;
  Result<std::unique_ptr<File>> parsed = File::Parse(image, "v1");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(parsed.status().message().find("version 1"), std::string::npos);
}

TEST(GgufTest, Version2IsAccepted) {
  std::vector<uint8_t> image = SampleImage();
  image[4] = 2;
  EXPECT_TRUE(File::Parse(image, "v2").ok());
}

// Writes a header by hand so that counts and lengths can lie.
struct RawImage {
  std::vector<uint8_t> bytes;
  template <typename T>
  RawImage& Put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  RawImage& PutString(const std::string& text) {
    Put<uint64_t>(text.size());
    bytes.insert(bytes.end(), text.begin(), text.end());
    return *this;
  }
};

TEST(GgufTest, OversizedCountsAreRejectedBeforeAllocating) {
  RawImage huge_kv;
  huge_kv.Put<uint32_t>(kMagic).Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1ull << 60);
  EXPECT_EQ(File::Parse(huge_kv.bytes, "huge-kv").status().code(), ErrorCode::kCorruption);

  RawImage huge_array;
  huge_array.Put<uint32_t>(kMagic).Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1);
  huge_array.PutString("k").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(1ull << 62);
  Result<std::unique_ptr<File>> parsed = File::Parse(huge_array.bytes, "huge-array");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("array length"), std::string::npos);

  RawImage huge_string;
  huge_string.Put<uint32_t>(kMagic).Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1);
  huge_string.Put<uint64_t>(~0ull);
  EXPECT_EQ(File::Parse(huge_string.bytes, "huge-string").status().code(), ErrorCode::kCorruption);
}

TEST(GgufTest, BadTensorEntriesAreRejected) {
  auto tensor_image = [](uint32_t n_dims, int64_t ne0, uint32_t type, uint64_t offset) {
    RawImage image;
    image.Put<uint32_t>(kMagic).Put<uint32_t>(3).Put<uint64_t>(1).Put<uint64_t>(0);
    image.PutString("t").Put<uint32_t>(n_dims);
    for (uint32_t d = 0; d < std::min(n_dims, 8u); ++d) image.Put<int64_t>(d == 0 ? ne0 : 1);
    image.Put<uint32_t>(type).Put<uint64_t>(offset);
    image.bytes.resize((image.bytes.size() + 31) / 32 * 32 + 64, 0);
    return image.bytes;
  };
  EXPECT_TRUE(File::Parse(tensor_image(1, 16, 0, 0), "ok").ok());
  EXPECT_FALSE(File::Parse(tensor_image(5, 16, 0, 0), "too-many-dims").ok());
  EXPECT_FALSE(File::Parse(tensor_image(1, -1, 0, 0), "negative-dim").ok());
  EXPECT_FALSE(File::Parse(tensor_image(1, 16, 99, 0), "unknown-type").ok());
  EXPECT_FALSE(File::Parse(tensor_image(1, 16, 8, 0), "partial-q8-block").ok());
  EXPECT_FALSE(File::Parse(tensor_image(1, 16, 0, 4), "unaligned-offset").ok());
  EXPECT_FALSE(File::Parse(tensor_image(1, 1024, 0, 0), "data-past-end").ok());
  Result<std::unique_ptr<File>> past_end = File::Parse(tensor_image(1, 1024, 0, 0), "data-past-end");
  EXPECT_NE(past_end.status().message().find("truncated"), std::string::npos);
}

TEST(GgufTest, DuplicateKeysAreRejected) {
  RawImage image;
  image.Put<uint32_t>(kMagic).Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(2);
  image.PutString("k").Put<uint32_t>(4).Put<uint32_t>(1);
  image.PutString("k").Put<uint32_t>(4).Put<uint32_t>(2);
  Result<std::unique_ptr<File>> parsed = File::Parse(image.bytes, "dup");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("duplicate"), std::string::npos);
}

TEST(GgufTest, ErrorsNameFileAndOffset) {
  std::vector<uint8_t> image = SampleImage();
  image.resize(30);
  Result<std::unique_ptr<File>> parsed = File::Parse(image, "model.gguf");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("model.gguf"), std::string::npos);
  EXPECT_NE(parsed.status().message().find("offset"), std::string::npos);
}

TEST(GgufTest, WriteFileThenOpenMapsTensorData) {
  testing::TempDir dir;
  Writer writer;
  writer.SetAlignment(64);
  writer.Set("general.architecture", Value::Str("llama"));
  ASSERT_TRUE(writer.AddTensor("w", TensorType::kF32, {4}, F32Bytes({1, 2, 3, 4})).ok());
  ASSERT_TRUE(writer.WriteFile(dir.File("m.gguf")).ok());

  Result<std::unique_ptr<File>> opened = File::Open(dir.File("m.gguf"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ((*opened)->alignment(), 64u);
  const TensorInfo* w = (*opened)->FindTensor("w");
  ASSERT_NE(w, nullptr);
  float values[4];
  std::memcpy(values, (*opened)->TensorData(*w), sizeof(values));
  EXPECT_EQ(values[3], 4.0f);
}

TEST(GgufTest, WriterRejectsDataOfWrongSize) {
  Writer writer;
  EXPECT_FALSE(writer.AddTensor("w", TensorType::kF32, {4}, std::vector<uint8_t>(15)).ok());
  EXPECT_FALSE(writer.AddTensor("q", TensorType::kQ8_0, {31}, std::vector<uint8_t>(34)).ok());
}

TEST(GgufTest, OpenMissingFileNamesPath) {
  Result<std::unique_ptr<File>> opened = File::Open("/nonexistent/model.gguf");
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(opened.status().message().find("/nonexistent/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace sparkv::gguf
