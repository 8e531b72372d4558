#include "store/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <numeric>

#include "kv/blob.h"
#include "kv/chunk_key.h"
#include "kv/format.h"

namespace sparkv {
namespace {

using Json = nlohmann::json;

// A consistent manifest for 600 tokens in chunks of 256, keyed the way ingest keys them.
Manifest SampleManifest() {
  Manifest manifest;
  manifest.format_version = kFormatVersion;
  manifest.model_fingerprint = Hash128{0x0102030405060708ull, 0x1112131415161718ull};
  manifest.model_name = "stories260K";
  manifest.chunk_tokens = 256;
  manifest.n_tokens = 600;

  std::vector<int32_t> tokens(600);
  std::iota(tokens.begin(), tokens.end(), 1);
  const auto chunks = SplitIntoChunks(600, 256);
  const auto keys = ChunkKeys(RootKey(manifest.model_fingerprint, 256), tokens, chunks);
  for (size_t j = 0; j < chunks.size(); ++j) {
    ManifestChunk chunk{chunks[j].index, chunks[j].begin, chunks[j].end, keys[j], {}};
    chunk.levels["f16"] = LevelEntry{5000 + j, Hash128{j, 1}};
    chunk.levels["q8"] = LevelEntry{2700 + j, Hash128{j, 2}};
    manifest.chunks.push_back(chunk);
  }
  manifest.context_key = keys.back();
  return manifest;
}

// Parses the JSON of SampleManifest() after `edit`; returns the status.
template <typename Edit>
Status ParseEdited(Edit edit) {
  Json json = Json::parse(ToJson(SampleManifest()));
  edit(json);
  return ParseManifest(json.dump()).status();
}

void ExpectRejected(const Status& status, const std::string& needle, ErrorCode code = ErrorCode::kCorruption) {
  EXPECT_EQ(status.code(), code) << status.ToString();
  EXPECT_NE(status.message().find(needle), std::string::npos)
      << "message '" << status.message() << "' does not name '" << needle << "'";
}

TEST(Manifest, JsonRoundTripKeepsEveryField) {
  const Manifest manifest = SampleManifest();
  ASSERT_TRUE(ValidateManifest(manifest).ok()) << ValidateManifest(manifest).ToString();
  Result<Manifest> parsed = ParseManifest(ToJson(manifest));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, manifest);
}

TEST(Manifest, JsonUsesTheDocumentedFieldNames) {
  const Json json = Json::parse(ToJson(SampleManifest()));
  for (const char* field : {"format_version", "model_fingerprint", "model_name", "chunk_tokens",
                            "n_tokens", "context_key", "chunks"}) {
    EXPECT_TRUE(json.contains(field)) << field;
  }
  const Json& chunk = json["chunks"][1];
  EXPECT_EQ(chunk["index"], 1);
  EXPECT_EQ(chunk["begin"], 256);
  EXPECT_EQ(chunk["end"], 512);
  EXPECT_EQ(chunk["key"], SampleManifest().chunks[1].key.Hex());
  EXPECT_EQ(chunk["levels"]["q8"]["bytes"], 2701);
  EXPECT_EQ(chunk["levels"]["q8"]["digest"], (Hash128{1, 2}).Hex());
}

TEST(Manifest, UnknownFieldsAndLevelsAreKept) {
  // A newer writer may add fields and codec levels, and this build reads the ones it supports.
  Json json = Json::parse(ToJson(SampleManifest()));
  json["created_by"] = "a later version";
  json["chunks"][0]["levels"]["q4"] = Json{{"bytes", 1500}, {"digest", (Hash128{9, 9}).Hex()}};
  Result<Manifest> parsed = ParseManifest(json.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->chunks[0].levels.count("q4"), 1u);
}

TEST(Manifest, LyingRangesNameTheChunkAndField) {
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][2]["begin"] = 511; }), "chunk 2: field 'begin'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["end"] = 500; }), "chunk 1: field 'end'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][0]["begin"] = 1; }), "chunk 0: field 'begin'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["index"] = 2; }), "chunk 1: field 'index'");
  // The last chunk must end at n_tokens.
  ExpectRejected(ParseEdited([](Json& j) { j["n_tokens"] = 700; }), "chunk 2: field 'end'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][2]["end"] = 601; }), "chunk 2: field 'end'");
}

TEST(Manifest, WrongChunkCountIsRejected) {
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"].erase(2); }), "lists 2 chunks");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"].push_back(j["chunks"][2]); }), "lists 4 chunks");
  ExpectRejected(ParseEdited([](Json& j) { j["n_tokens"] = 1000; }), "needs 4");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"] = Json::array(); }), "lists 0 chunks");
}

TEST(Manifest, BadKeysAreRejected) {
  const std::string upper = "0123456789ABCDEF0123456789ABCDEF";
  ExpectRejected(ParseEdited([&](Json& j) { j["chunks"][1]["key"] = upper; }), "chunk 1: field 'key'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["key"] = "abc"; }), "chunk 1: field 'key'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["key"] = 12; }), "chunk 1: field 'key'");
  ExpectRejected(ParseEdited([](Json& j) { j["model_fingerprint"] = "../../etc"; }), "model_fingerprint");
  ExpectRejected(ParseEdited([](Json& j) { j["context_key"] = j["chunks"][0]["key"]; }), "context_key");
}

TEST(Manifest, BadLevelsNameTheChunkAndLevel) {
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["q8"]["bytes"] = 0; }),
                 "chunk 1: level 'q8' field 'bytes'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["q8"]["bytes"] = kBlobHeaderBytes; }),
                 "chunk 1: level 'q8' field 'bytes'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["q8"]["bytes"] = -5; }),
                 "chunk 1: level 'q8': field 'bytes'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["q8"]["bytes"] = uint64_t{1} << 41; }),
                 "chunk 1: level 'q8': field 'bytes'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["q8"]["bytes"] = 1.5; }),
                 "field 'bytes' is number, not an integer");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["q8"]["bytes"] = "2700"; }),
                 "field 'bytes' is string");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][0]["levels"]["q8"]["digest"] = "xyz"; }),
                 "chunk 0: level 'q8': field 'digest'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][0]["levels"]["q8"].erase("digest"); }),
                 "field 'digest' is missing");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][2]["levels"] = Json::object(); }),
                 "chunk 2: field 'levels' is empty");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][2]["levels"] = Json::array(); }),
                 "chunk 2: field 'levels'");
  for (const char* name : {"../f16", "F16", "q8.skv", "a b", "", "x/y"}) {
    ExpectRejected(ParseEdited([name](Json& j) { j["chunks"][0]["levels"][name] = j["chunks"][0]["levels"]["q8"]; }),
                   "chunk 0: level name");
  }
}

TEST(Manifest, BadTopLevelFieldsAreRejected) {
  ExpectRejected(ParseEdited([](Json& j) { j["format_version"] = kFormatVersion + 1; }), "format version",
                 ErrorCode::kUnsupported);
  ExpectRejected(ParseEdited([](Json& j) { j["chunk_tokens"] = 0; }), "'chunk_tokens'");
  ExpectRejected(ParseEdited([](Json& j) { j["chunk_tokens"] = kMaxChunkTokens + 1; }), "'chunk_tokens'");
  ExpectRejected(ParseEdited([](Json& j) { j["n_tokens"] = 0; }), "'n_tokens'");
  ExpectRejected(ParseEdited([](Json& j) { j["n_tokens"] = uint64_t{18446744073709551615ull}; }), "'n_tokens'");
  ExpectRejected(ParseEdited([](Json& j) { j["n_tokens"] = int64_t{1} << 40; }), "'n_tokens'");
  ExpectRejected(ParseEdited([](Json& j) { j["model_name"] = 7; }), "'model_name'");
  ExpectRejected(ParseEdited([](Json& j) { j["model_name"] = std::string(300, 'm'); }), "model name");
  for (const char* field : {"format_version", "model_fingerprint", "model_name", "chunk_tokens", "n_tokens",
                            "context_key", "chunks"}) {
    ExpectRejected(ParseEdited([field](Json& j) { j.erase(field); }), field);
  }
}

TEST(Manifest, NonJsonAndTruncatedTextIsCorruption) {
  for (const char* text : {"", "null", "[]", "42", "\"manifest\"", "{", "{\"chunks\": [}", "\xff\xfe"}) {
    EXPECT_EQ(ParseManifest(text).status().code(), ErrorCode::kCorruption) << text;
  }
  const std::string json = ToJson(SampleManifest());
  for (size_t length = 0; length + 2 < json.size(); length += 7) {
    EXPECT_EQ(ParseManifest(json.substr(0, length)).status().code(), ErrorCode::kCorruption) << length;
  }
}

// A person reading the error learns where the file broke and what to do, in our words rather
// than the JSON library's exception text.
TEST(Manifest, ErrorsPlaceFaultAndNameFix) {
  const std::string json = ToJson(SampleManifest());
  const std::string broken[] = {"", "{", "{\"chunks\": [}", "\xff\xfe", json.substr(0, json.size() / 2), "[1, 2]"};
  for (const std::string& text : broken) {
    const Status status = ParseManifest(text).status();
    ASSERT_FALSE(status.ok()) << text;
    EXPECT_EQ(status.message().find("json.exception"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find("sparkv ingest"), std::string::npos) << status.message();
  }
  ExpectRejected(ParseManifest("{\n  \"format_version\": 1,\n  \"chunks\": [}").status(), "line 3, column 14");
  ExpectRejected(ParseEdited([](Json& j) { j["chunks"][1]["levels"]["f16"]["bytes"] = "many"; }),
                 "manifest chunk 1: level 'f16': field 'bytes' is string, not an integer; ingest the context again");
  // A newer format is no damage: its advice stays the version's own.
  const Status newer = ParseEdited([](Json& j) { j["format_version"] = kFormatVersion + 1; });
  EXPECT_EQ(newer.message().find("sparkv ingest` to rewrite"), std::string::npos) << newer.message();
}

TEST(Manifest, DeepNestingIsRejectedWithoutCrashing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(ParseManifest(deep).status().code(), ErrorCode::kCorruption);
}

TEST(Manifest, ValidateRejectsInconsistentManifestsInMemory) {
  Manifest manifest = SampleManifest();
  manifest.chunks[1].end += 1;
  EXPECT_EQ(ValidateManifest(manifest).code(), ErrorCode::kInvalidArgument);
  manifest = SampleManifest();
  manifest.format_version = 0;
  EXPECT_EQ(ValidateManifest(manifest).code(), ErrorCode::kInvalidArgument);
}

TEST(Manifest, InvalidUtf8ModelNameSerializesWithoutThrowing) {
  Manifest manifest = SampleManifest();
  manifest.model_name = "bad \xff\xfe name";
  const std::string json = ToJson(manifest);
  Result<Manifest> parsed = ParseManifest(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_NE(parsed->model_name, manifest.model_name);  // the bad bytes were replaced
}

}  // namespace
}  // namespace sparkv
