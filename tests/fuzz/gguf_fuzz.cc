// libFuzzer target: the GGUF parser must reject any malformed image without crashing, reading out
// of bounds or allocating more than the input could describe.
#include <cstddef>
#include <cstdint>

#include "gguf/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = sparkv::gguf::File::Parse({data, size}, "fuzz");
  if (parsed.ok()) {
    for (const auto& tensor : (*parsed)->tensors()) {
      const uint8_t* bytes = (*parsed)->TensorData(tensor);
      volatile uint8_t sink = 0;
      if (tensor.n_bytes > 0) sink = bytes[0] ^ bytes[tensor.n_bytes - 1];
      (void)sink;
    }
  }
  return 0;
}
