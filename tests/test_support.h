// Helpers shared by the tests: where the shared data lives, temporary folders, the CLI binary.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sparkv::testing {

// The folder with models, golden logits, vocabularies and traces: $SPARKV_DATA if set, else the
// `shared/data` folder beside the checkout. Fails the calling test if it is missing.
std::string DataDir();

// Path of a file inside DataDir(), e.g. DataPath("models/stories260K.bin").
std::string DataPath(const std::string& relative);

// Path of the built `sparkv` executable.
std::string SparkvBinary();

// A fresh empty folder under the system temporary folder, removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Converts stories260K to GGUF F32 once per test process (cached in a temporary folder) and
// returns the GGUF's path.
std::string Stories260KGguf();

// The 201 token ids of the context in the golden llama.cpp file for stories260K (its first line).
std::vector<int32_t> GoldenContextTokens();

// Runs a shell command; returns its exit status and standard output.
std::pair<int, std::string> RunShell(const std::string& command);

}  // namespace sparkv::testing
