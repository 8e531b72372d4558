#include "test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "model/llama2c.h"

namespace sparkv::testing {

std::string DataDir() {
  const char* from_env = std::getenv("SPARKV_DATA");
  const std::string dir = from_env != nullptr ? from_env : SPARKV_DATA_DIR;
  if (!std::filesystem::is_directory(dir)) {
    ADD_FAILURE() << "test data folder '" << dir
                  << "' is missing: put the shared data beside the checkout or set SPARKV_DATA";
  }
  return dir;
}

std::string DataPath(const std::string& relative) { return DataDir() + "/" + relative; }

std::string SparkvBinary() { return SPARKV_BINARY; }

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/sparkv-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for '" << pattern << "'";
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::vector<int32_t> GoldenContextTokens() {
  std::ifstream golden(DataPath("golden/stories260K.llamacpp.kvf32.txt"));
  std::string line;
  std::getline(golden, line);
  std::istringstream stream(line);
  std::vector<int32_t> tokens;
  int32_t id = 0;
  while (stream >> id) tokens.push_back(id);
  return tokens;
}

std::string Stories260KGguf() {
  static std::mutex mutex;
  // Removed when the process exits, so a ctest run (one process per test) leaves nothing behind.
  static std::unique_ptr<TempDir> dir;
  static std::string path;
  std::lock_guard<std::mutex> lock(mutex);
  if (!path.empty()) return path;

  dir = std::make_unique<TempDir>();
  path = dir->File("stories260K.gguf");
  const Status status = ConvertLlama2c(DataPath("models/stories260K.bin"), "", path);
  if (!status.ok()) {
    ADD_FAILURE() << "converting stories260K failed: " << status.ToString();
  }
  return path;
}

std::pair<int, std::string> RunShell(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  return {::pclose(pipe), output};
}

}  // namespace sparkv::testing
