// Helpers shared by the subcommands: inputs, engines, cache folders and error reporting.
#pragma once

#include <memory>
#include <span>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/model.h"
#include "sparkv/status.h"

namespace sparkv::cli {

// Upper bound for --threads; more threads than this only add contention.
inline constexpr int kMaxThreads = 256;

// Serializes JSON for output; invalid UTF-8 in generated text becomes U+FFFD instead of an error.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

// Checks a --race-ratio value: a decimal number from 1 to 100. Returns "" when valid, else the
// message CLI11 prints after the flag's name.
std::string CheckRaceRatio(const std::string& text);
// CLI validator of --emulate-slowdown: a finite number in [1, 100], as the bench's slowdown.
std::string CheckEmulatedSlowdown(const std::string& text);
// Returns "" when `text` is a finite number in [low, high], else a message that names the text
// and the range, then `advice`.
std::string CheckNumberIn(const std::string& text, double low, double high, const std::string& advice);

// Prints a warning when --race-ratio was given (`ratio` > 0) but none of `strategies` re-plans,
// since only those race.
void WarnUnusedRaceRatio(double ratio, const std::vector<std::string>& strategies);

// Prints "sparkv: error: <status>" to stderr and returns exit code 1 (0 for an ok status).
int ReportError(const Status& status);

// The folder for profiles and demo files: $SPARKV_CACHE, else $XDG_CACHE_HOME/sparkv, else
// ~/.cache/sparkv.
std::string CacheDir();

// Parses whitespace-separated token ids; `source` names the input in errors (a file or a flag).
Result<std::vector<TokenId>> ParseTokenIds(std::string_view text, const std::string& source);

// Whitespace-separated token ids from a file.
Result<std::vector<TokenId>> ReadTokenFile(const std::string& path);

// Reads the token ids given to `flag` (e.g. "--query-tokens"): from the file `value` names if it
// exists, else from `value` itself when it is only digits and whitespace ("403 261"). Errors name
// the flag, the value and both forms.
Result<std::vector<TokenId>> InlineOrFileTokenIds(const std::string& value, const std::string& flag);

// Checks that every id is in the vocabulary [0, n_vocab). The error names `flag`, the first id
// outside it, its index and the valid ids.
Status CheckTokenIds(std::span<const TokenId> ids, int32_t n_vocab, const std::string& flag);

// The context from exactly one of a text file (tokenized, BOS first) or a token-id file, whose
// ids must be in the model's vocabulary.
Result<std::vector<TokenId>> ReadContext(const Model& model, const std::string& text_path,
                                         const std::string& tokens_path);

// Tokenizes the contents of `path` with the model's vocabulary, BOS first.
Result<std::vector<TokenId>> TokenizeTextFile(const Model& model, const std::string& path);

// Tokenizes `text` without BOS (a query continues the context).
Result<std::vector<TokenId>> TokenizeQuery(const Model& model, const std::string& text);

// Parses the comma-separated list given to `flag` (e.g. "--levels") and removes the ASCII
// whitespace (spaces, tabs, newlines) around each item. A text of only whitespace gives an empty list. An empty item ("a,,b", "a,") is an error that
// names the flag and the item's position, counted from 1.
Result<std::vector<std::string>> SplitList(const std::string& text, const std::string& flag);

// Creates an engine with a KV cache of `n_positions` positions.
Result<std::unique_ptr<Engine>> MakeEngine(const Model& model, int n_threads, int32_t n_positions);

}  // namespace sparkv::cli
