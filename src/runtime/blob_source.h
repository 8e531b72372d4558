// The source of manifests and blobs for the stream path: an HTTP server such as sparkv serve,
// nginx or a CDN.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/hash.h"
#include "sparkv/status.h"

namespace sparkv {

struct FetchedBytes {
  std::string bytes;
  double seconds = 0.0;             // request start to last byte
  double first_byte_seconds = 0.0;  // request start to first byte
};

// Called as bytes arrive with the count so far and seconds since the request started; returning
// false cancels the transfer (it then fails with kCancelled).
using ProgressFunction = std::function<bool(size_t bytes_so_far, double seconds)>;

class BlobSource {
 public:
  virtual ~BlobSource() = default;

  // A short name for logs and reports, e.g. the base URL.
  virtual std::string Describe() const = 0;

  // `on_progress` may cancel the request, as for blobs; an empty function never does.
  virtual Result<FetchedBytes> FetchManifest(const Hash128& context_key, const ProgressFunction& on_progress) = 0;

  // Fetches blob `codec` of chunk `chunk_key`. `max_bytes` bounds the body (a longer body is
  // corruption); `range_end` > 0 requests bytes [0, range_end) only.
  virtual Result<FetchedBytes> FetchBlob(const Hash128& chunk_key, std::string_view codec, uint64_t max_bytes,
                                         uint64_t range_end, const ProgressFunction& on_progress) = 0;

  // Ends the fetch in progress at once and fails it and every later one with kCancelled. The one
  // method any thread may call: the loader calls it when the compute path has finished the load.
  virtual void Interrupt() = 0;
};

struct HttpSourceOptions {
  double timeout_s = 60.0;         // per request, including the body; 0 = no limit
  double stall_timeout_s = 0.0;    // no byte for this long fails a request; 0 = off
  double connect_timeout_s = 3.0;
};

// Returns true for a failure of the connection rather than of one blob: refused, unreachable or
// timed out. Such a failure ends the stream path; a missing or damaged blob fails only its chunk.
inline bool IsTransportError(const Status& status) {
  return status.code() == ErrorCode::kUnavailable || status.code() == ErrorCode::kTimeout;
}

// Checks that `base_url` has the form http://HOST[:PORT][/PREFIX] (or https), where PREFIX is a
// path under which a proxy serves the store. InvalidArgument names the value and the fix otherwise.
Status CheckServerUrl(std::string_view base_url);

// A source over HTTP with one kept-alive connection. `base_url` is e.g. "http://127.0.0.1:8080".
// NOTE: not thread-safe; each path that fetches owns its own source.
std::unique_ptr<BlobSource> MakeHttpSource(std::string base_url, HttpSourceOptions options = {});

}  // namespace sparkv
