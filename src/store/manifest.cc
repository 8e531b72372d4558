#include "store/manifest.h"

#include <nlohmann/json.hpp>

#include <limits>

#include "common/json_error.h"
#include "kv/blob.h"
#include "kv/chunk_key.h"
#include "kv/format.h"

namespace sparkv {
namespace {

using Json = nlohmann::json;

// Appended to the errors of a manifest that does not parse: a manifest is written by `sparkv
// ingest`, so a damaged one is replaced, not repaired by hand.
constexpr const char* kManifestFix = "; ingest the context again with `sparkv ingest` to rewrite the manifest";

std::string ChunkPrefix(size_t index) { return "manifest chunk " + std::to_string(index) + ": "; }

// Reads member `name` of `object` as an integer in [min, max]. `where` prefixes the message.
Result<int64_t> ReadInt(const Json& object, const char* name, int64_t min, int64_t max,
                        const std::string& where) {
  const auto it = object.find(name);
  if (it == object.end()) return CorruptionError(where + "field '" + name + "' is missing");
  if (!it->is_number_integer()) {
    return CorruptionError(where + "field '" + name + "' is " + it->type_name() +
                           ", not an integer");
  }
  // An unsigned above INT64_MAX would wrap in get<int64_t>(), so it is ruled out first.
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) {
    return CorruptionError(where + "field '" + name + "' is " + it->dump() + ", above " +
                           std::to_string(max));
  }
  const int64_t value = it->get<int64_t>();
  if (value < min || value > max) {
    return CorruptionError(where + "field '" + name + "' is " + std::to_string(value) +
                           "; it must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                           "]");
  }
  return value;
}

Result<std::string> ReadString(const Json& object, const char* name, const std::string& where) {
  const auto it = object.find(name);
  if (it == object.end()) return CorruptionError(where + "field '" + name + "' is missing");
  if (!it->is_string()) {
    return CorruptionError(where + "field '" + name + "' is " + it->type_name() +
                           ", not a string");
  }
  return it->get<std::string>();
}

Result<Hash128> ReadHash(const Json& object, const char* name, const std::string& where) {
  SPARKV_ASSIGN_OR_RETURN(const std::string text, ReadString(object, name, where));
  Hash128 hash;
  if (!Hash128::FromHex(text, &hash)) {
    return CorruptionError(where + "field '" + name + "' is \"" + text.substr(0, 40) +
                           "\", not 32 lowercase hex digits");
  }
  return hash;
}

Result<ManifestChunk> ReadChunk(const Json& object, size_t position) {
  const std::string where = ChunkPrefix(position);
  if (!object.is_object()) return CorruptionError(where + "is " + object.type_name() + ", not an object");

  ManifestChunk chunk;
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  SPARKV_ASSIGN_OR_RETURN(chunk.index, ReadInt(object, "index", 0, kIntMax, where));
  SPARKV_ASSIGN_OR_RETURN(chunk.begin, ReadInt(object, "begin", 0, kIntMax, where));
  SPARKV_ASSIGN_OR_RETURN(chunk.end, ReadInt(object, "end", 0, kIntMax, where));
  SPARKV_ASSIGN_OR_RETURN(chunk.key, ReadHash(object, "key", where));

  const auto levels = object.find("levels");
  if (levels == object.end() || !levels->is_object()) {
    return CorruptionError(where + "field 'levels' is missing or not an object");
  }
  for (const auto& [name, level] : levels->items()) {
    const std::string level_where = where + "level '" + name.substr(0, 40) + "': ";
    if (!level.is_object()) return CorruptionError(level_where + "is not an object");
    LevelEntry entry;
    SPARKV_ASSIGN_OR_RETURN(const int64_t bytes,
                            ReadInt(level, "bytes", 0, static_cast<int64_t>(kMaxBlobBytes), level_where));
    entry.bytes = static_cast<uint64_t>(bytes);
    SPARKV_ASSIGN_OR_RETURN(entry.digest, ReadHash(level, "digest", level_where));
    chunk.levels.emplace(name, entry);
  }
  return chunk;
}

Result<Manifest> ParseJson(const Json& root) {
  if (!root.is_object()) return CorruptionError("manifest is " + std::string(root.type_name()) + ", not an object");

  Manifest manifest;
  const std::string where = "manifest: ";
  SPARKV_ASSIGN_OR_RETURN(const int64_t version,
                          ReadInt(root, "format_version", 0, std::numeric_limits<uint32_t>::max(), where));
  manifest.format_version = static_cast<uint32_t>(version);
  if (manifest.format_version != kFormatVersion) {
    return UnsupportedError("manifest format version is " + std::to_string(version) +
                            "; this build reads version " + std::to_string(kFormatVersion) +
                            " (re-ingest the context or update SparKV)");
  }
  SPARKV_ASSIGN_OR_RETURN(manifest.model_fingerprint, ReadHash(root, "model_fingerprint", where));
  SPARKV_ASSIGN_OR_RETURN(manifest.model_name, ReadString(root, "model_name", where));
  SPARKV_ASSIGN_OR_RETURN(manifest.chunk_tokens, ReadInt(root, "chunk_tokens", 1, kMaxChunkTokens, where));
  SPARKV_ASSIGN_OR_RETURN(manifest.n_tokens,
                          ReadInt(root, "n_tokens", 1, std::numeric_limits<int32_t>::max(), where));
  SPARKV_ASSIGN_OR_RETURN(manifest.context_key, ReadHash(root, "context_key", where));

  const auto chunks = root.find("chunks");
  if (chunks == root.end() || !chunks->is_array()) {
    return CorruptionError("manifest: field 'chunks' is missing or not an array");
  }
  // Checked before reading them all, so a huge array is rejected without building every chunk.
  const uint64_t expected_chunks =
      (static_cast<uint64_t>(manifest.n_tokens) + manifest.chunk_tokens - 1) / manifest.chunk_tokens;
  if (chunks->size() != expected_chunks) {
    return CorruptionError("manifest lists " + std::to_string(chunks->size()) + " chunks; n_tokens " +
                           std::to_string(manifest.n_tokens) + " in chunks of " +
                           std::to_string(manifest.chunk_tokens) + " needs " +
                           std::to_string(expected_chunks));
  }
  manifest.chunks.reserve(chunks->size());
  for (size_t j = 0; j < chunks->size(); ++j) {
    SPARKV_ASSIGN_OR_RETURN(ManifestChunk chunk, ReadChunk((*chunks)[j], j));
    manifest.chunks.push_back(std::move(chunk));
  }

  const Status valid = ValidateManifest(manifest);
  if (!valid.ok()) return CorruptionError(valid.message());
  return manifest;
}

}  // namespace

bool IsLevelName(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (const char c : name) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

Status ValidateManifest(const Manifest& manifest) {
  if (manifest.format_version != kFormatVersion) {
    return InvalidArgumentError("manifest format version is " + std::to_string(manifest.format_version) +
                                "; expected " + std::to_string(kFormatVersion));
  }
  if (manifest.model_name.size() > kMaxModelNameBytes) {
    return InvalidArgumentError("manifest model name is " + std::to_string(manifest.model_name.size()) +
                                " bytes; at most " + std::to_string(kMaxModelNameBytes) + " are allowed");
  }
  if (manifest.chunk_tokens < 1 || manifest.chunk_tokens > kMaxChunkTokens) {
    return InvalidArgumentError("manifest chunk_tokens is " + std::to_string(manifest.chunk_tokens) +
                                "; it must be in [1, " + std::to_string(kMaxChunkTokens) + "]");
  }
  if (manifest.n_tokens < 1) {
    return InvalidArgumentError("manifest n_tokens is " + std::to_string(manifest.n_tokens) +
                                "; a context holds at least one token");
  }

  const std::vector<ChunkRange> expected = SplitIntoChunks(manifest.n_tokens, manifest.chunk_tokens);
  if (manifest.chunks.size() != expected.size()) {
    return InvalidArgumentError("manifest lists " + std::to_string(manifest.chunks.size()) +
                                " chunks; n_tokens " + std::to_string(manifest.n_tokens) +
                                " in chunks of " + std::to_string(manifest.chunk_tokens) + " needs " +
                                std::to_string(expected.size()));
  }
  for (size_t j = 0; j < expected.size(); ++j) {
    const ManifestChunk& chunk = manifest.chunks[j];
    const std::string where = ChunkPrefix(j);
    const auto field = [&where](const char* name, int64_t actual, int64_t wanted) {
      return InvalidArgumentError(where + "field '" + name + "' is " + std::to_string(actual) +
                                  " but the chunking needs " + std::to_string(wanted));
    };
    if (chunk.index != expected[j].index) return field("index", chunk.index, expected[j].index);
    if (chunk.begin != expected[j].begin) return field("begin", chunk.begin, expected[j].begin);
    if (chunk.end != expected[j].end) return field("end", chunk.end, expected[j].end);
    if (chunk.levels.empty()) return InvalidArgumentError(where + "field 'levels' is empty");
    for (const auto& [name, level] : chunk.levels) {
      if (!IsLevelName(name)) {
        return InvalidArgumentError(where + "level name '" + name.substr(0, 40) +
                                    "' is not 1 to 32 characters of [a-z0-9_-]");
      }
      if (level.bytes <= kBlobHeaderBytes || level.bytes > kMaxBlobBytes) {
        return InvalidArgumentError(where + "level '" + name + "' field 'bytes' is " +
                                    std::to_string(level.bytes) + "; a blob has more than " +
                                    std::to_string(kBlobHeaderBytes) + " and at most " +
                                    std::to_string(kMaxBlobBytes) + " bytes");
      }
    }
  }
  if (manifest.context_key != manifest.chunks.back().key) {
    return InvalidArgumentError("manifest context_key " + manifest.context_key.Hex() +
                                " differs from the last chunk's key " +
                                manifest.chunks.back().key.Hex());
  }
  return Status::Ok();
}

std::string ToJson(const Manifest& manifest) {
  Json root = Json::object();
  root["format_version"] = manifest.format_version;
  root["model_fingerprint"] = manifest.model_fingerprint.Hex();
  root["model_name"] = manifest.model_name;
  root["chunk_tokens"] = manifest.chunk_tokens;
  root["n_tokens"] = manifest.n_tokens;
  root["context_key"] = manifest.context_key.Hex();
  Json chunks = Json::array();
  for (const ManifestChunk& chunk : manifest.chunks) {
    Json levels = Json::object();
    for (const auto& [name, level] : chunk.levels) {
      levels[name] = Json{{"bytes", level.bytes}, {"digest", level.digest.Hex()}};
    }
    chunks.push_back(Json{{"index", chunk.index},
                          {"begin", chunk.begin},
                          {"end", chunk.end},
                          {"key", chunk.key.Hex()},
                          {"levels", std::move(levels)}});
  }
  root["chunks"] = std::move(chunks);
  // `replace` turns invalid UTF-8 in a model name into U+FFFD instead of throwing.
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Manifest> ParseManifest(std::string_view json) {
  if (json.size() > kMaxManifestBytes) {
    return CorruptionError("manifest is " + std::to_string(json.size()) + " bytes; at most " +
                           std::to_string(kMaxManifestBytes) + " are accepted");
  }
  // nlohmann-json reports errors by exception, and none may leave this function. Its text names
  // the library's internals rather than the file, so it is not passed on.
  Result<Manifest> manifest = InternalError("manifest was not parsed");
  try {
    manifest = ParseJson(Json::parse(json.begin(), json.end()));
  } catch (const Json::parse_error& error) {
    return CorruptionError("manifest is not valid JSON: the syntax breaks at " + JsonErrorPlace(json, error.byte) +
                           kManifestFix);
  } catch (const Json::exception&) {
    return CorruptionError(std::string("manifest does not hold the expected JSON types") + kManifestFix);
  } catch (const std::exception& error) {
    return InternalError(std::string("manifest parsing failed: ") + error.what());
  }
  // A version this build cannot read has its own advice; every other fault is damage to the file.
  if (!manifest.ok() && manifest.status().code() == ErrorCode::kCorruption) {
    return CorruptionError(manifest.status().message() + kManifestFix);
  }
  return manifest;
}

}  // namespace sparkv
