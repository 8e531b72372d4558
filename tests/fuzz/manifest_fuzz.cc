// libFuzzer target: manifest.json parsing. Any input must be rejected cleanly (no exception, no
// crash); an accepted manifest must serialize and parse back to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sparkv::Result<sparkv::Manifest> manifest = sparkv::ParseManifest(text);
  if (!manifest.ok()) return 0;

  sparkv::Result<sparkv::Manifest> again = sparkv::ParseManifest(sparkv::ToJson(*manifest));
  if (!again.ok() || !(*again == *manifest)) std::abort();
  return 0;
}
