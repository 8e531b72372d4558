#include "cli/cli_util.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "common/file_util.h"
#include "common/format.h"
#include "runtime/strategy.h"
#include "model/tokenizer.h"
#include "model/vocab.h"

namespace sparkv::cli {

std::string CheckNumberIn(const std::string& text, double low, double high, const std::string& advice) {
  double value = 0.0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  const bool number = !text.empty() && error == std::errc() && stop == end && std::isfinite(value);
  if (number && value >= low && value <= high) return "";
  return "'" + text + "' is not a number from " + FormatNumber(low) + " to " + FormatNumber(high) + "; " + advice;
}

std::string CheckRaceRatio(const std::string& text) {
  return CheckNumberIn(text, 1.0, 100.0,
                       "give e.g. 3 (the default: race when computing takes at most 3 times as long as streaming) "
                       "or 1 (race only after the link's predictions miss)");
}

std::string CheckEmulatedSlowdown(const std::string& text) {
  return CheckNumberIn(text, 1.0, 100.0, "give e.g. 2 (twice as slow as this device) or 1 (its own speed)");
}

void WarnUnusedRaceRatio(double ratio, const std::vector<std::string>& strategies) {
  if (ratio <= 0.0) return;
  for (const std::string& name : strategies) {
    Result<Strategy> strategy = FindStrategy(name);
    if (strategy.ok() && strategy->replan) return;
  }
  std::fprintf(stderr,
               "sparkv: warning: --race-ratio has no effect here: only hybrid (sparkv-adaptive) races, and it is not "
               "among the strategies run\n");
}


std::string DumpJson(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

int ReportError(const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "sparkv: error: %s\n", status.ToString().c_str());
  return 1;
}

std::string CacheDir() {
  if (const char* dir = std::getenv("SPARKV_CACHE"); dir != nullptr && *dir != '\0') return dir;
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir != nullptr && *dir != '\0') return std::string(dir) + "/sparkv";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return std::string(home) + "/.cache/sparkv";
  return "/tmp/sparkv-cache";
}

Result<std::vector<TokenId>> ParseTokenIds(std::string_view text, const std::string& source) {
  std::vector<TokenId> tokens;
  std::istringstream stream{std::string(text)};
  std::string word;
  while (stream >> word) {
    char* end = nullptr;
    const long value = std::strtol(word.c_str(), &end, 10);
    if (end == word.c_str() || *end != '\0' || value < 0 || value > (1L << 30)) {
      return InvalidArgumentError(source + ": '" + word + "' at index " + std::to_string(tokens.size()) +
                                  " is not a token id (expected whitespace-separated non-negative integers)");
    }
    tokens.push_back(static_cast<TokenId>(value));
  }
  if (tokens.empty()) return InvalidArgumentError(source + " contains no token ids");
  return tokens;
}

Result<std::vector<TokenId>> ReadTokenFile(const std::string& path) {
  SPARKV_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseTokenIds(text, "token file '" + path + "'");
}

Result<std::vector<TokenId>> InlineOrFileTokenIds(const std::string& value, const std::string& flag) {
  // An existing file takes precedence, so a file named "12" is read instead of being taken as the id 12.
  std::error_code error;
  if (!std::filesystem::is_regular_file(value, error)) {
    // Inline ids are separated by whitespace or commas.
    const bool inline_ids = value.find_first_not_of("0123456789, \t\n\r") == std::string::npos;
    if (inline_ids) {
      std::string spaced = value;
      std::replace(spaced.begin(), spaced.end(), ',', ' ');
      return ParseTokenIds(spaced, flag);
    }
    return InvalidArgumentError(flag + " '" + value + "' is neither token ids nor an existing file; give the ids "
                                "inline, e.g. " + flag + " '403 261' or 403,261, or a file of whitespace-separated ids");
  }
  Result<std::vector<TokenId>> ids = ReadTokenFile(value);
  if (!ids.ok()) return ids.status().WithContext(flag);
  return ids;
}

Status CheckTokenIds(std::span<const TokenId> ids, int32_t n_vocab, const std::string& flag) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) {
      return InvalidArgumentError(flag + ": token " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                                  " is outside the model's vocabulary of " + std::to_string(n_vocab) +
                                  " tokens; give ids 0 to " + std::to_string(n_vocab - 1));
    }
  }
  return Status::Ok();
}

Result<std::vector<TokenId>> ReadContext(const Model& model, const std::string& text_path,
                                         const std::string& tokens_path) {
  if (text_path.empty() == tokens_path.empty()) {
    return InvalidArgumentError("give the context with exactly one of --text FILE or --tokens FILE");
  }
  if (tokens_path.empty()) return TokenizeTextFile(model, text_path);
  SPARKV_ASSIGN_OR_RETURN(std::vector<TokenId> tokens, ReadTokenFile(tokens_path));
  SPARKV_RETURN_IF_ERROR(CheckTokenIds(tokens, model.hparams().n_vocab, "--tokens " + tokens_path));
  return tokens;
}

namespace {

// Warns that a placeholder vocabulary spells text byte by byte, once per process. `ids_flag` is
// the flag that takes the same input as token ids.
void WarnPlaceholderVocab(const Model& model, const char* ids_flag) {
  static bool warned = false;
  if (warned || !IsPlaceholderVocab(model.vocab())) return;
  warned = true;
  std::fprintf(stderr,
               "sparkv: warning: the model has a placeholder vocabulary (converted without --tokenizer), so text is "
               "spelled byte by byte and generated tokens print as [id]; convert the model with --tokenizer "
               "tokenizer.bin, or give token ids with %s\n",
               ids_flag);
}

}  // namespace

Result<std::vector<TokenId>> TokenizeTextFile(const Model& model, const std::string& path) {
  WarnPlaceholderVocab(model, "--tokens");
  SPARKV_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  SPARKV_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Create(model.vocab()));
  std::vector<TokenId> tokens = tokenizer.Encode(text, /*add_special=*/true);
  if (tokens.size() <= 1) return InvalidArgumentError("text file '" + path + "' is empty");
  return tokens;
}

Result<std::vector<TokenId>> TokenizeQuery(const Model& model, const std::string& text) {
  WarnPlaceholderVocab(model, "--query-tokens (the default query is a newline)");
  SPARKV_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Create(model.vocab()));
  std::vector<TokenId> tokens = tokenizer.Encode(text, /*add_special=*/false);
  if (tokens.empty()) return InvalidArgumentError("the query '" + text + "' tokenizes to nothing; give a non-empty --query");
  return tokens;
}

Result<std::vector<std::string>> SplitList(const std::string& text, const std::string& flag) {
  // ASCII whitespace, as std::isspace in the C locale: space, tab, newline, vertical tab, form feed, CR.
  constexpr const char* kWhitespace = " \t\n\v\f\r";
  std::vector<std::string> items;
  if (text.find_first_not_of(kWhitespace) == std::string::npos) return items;
  size_t begin = 0;
  while (true) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    const size_t first = text.find_first_not_of(kWhitespace, begin);
    if (first >= comma) {
      return InvalidArgumentError(flag + " '" + text + "': item " + std::to_string(items.size() + 1) +
                                  " is empty; separate the items by single commas, e.g. " + flag + " a,b");
    }
    // At least `first`, because text[first] is not whitespace.
    const size_t last = text.find_last_not_of(kWhitespace, comma - 1);
    items.push_back(text.substr(first, last - first + 1));
    if (comma == text.size()) return items;
    begin = comma + 1;
  }
}

Result<std::unique_ptr<Engine>> MakeEngine(const Model& model, int n_threads, int32_t n_positions) {
  EngineOptions options;
  options.n_threads = n_threads;
  options.n_positions = n_positions;
  return Engine::Create(model, options);
}

}  // namespace sparkv::cli
