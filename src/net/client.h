// The device side's HTTP client: GETs over one reused HTTP/1.1 connection (libcurl easy handle),
// measuring the transfer as bytes arrive so the planner can predict bandwidth.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "sparkv/status.h"

namespace sparkv {

struct TransferStats {
  size_t bytes = 0;                // body bytes received
  double seconds = 0;              // request start to last byte, including connect if any
  double first_byte_seconds = 0;   // request start to the first response byte
};

struct GetOptions {
  double timeout_s = 30;          // whole request; TimeoutError past it; 0 = no limit
  double connect_timeout_s = 5;   // TCP connect; TimeoutError past it
  // No response byte for this long (rounded up to whole seconds) -> TimeoutError; 0 = off. Unlike
  // timeout_s it lets a slow transfer finish as long as it moves.
  double stall_timeout_s = 0;
  // Called as body bytes arrive and about once a second while none do, with the body bytes so
  // far and the seconds since the request started. Return false to cancel (CancelledError).
  std::function<bool(size_t bytes_so_far, double seconds)> on_progress;
  // A body longer than this is refused with CorruptionError, as soon as the server announces or
  // sends more. Default: 1 GiB.
  size_t max_bytes = size_t{1} << 30;
  std::string range;          // e.g. "0-1023": sends "Range: bytes=0-1023"; empty = whole body
  std::string if_none_match;  // an ETag. A 304 response is then a success with an empty body
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string etag;           // as sent, quotes included; empty if absent
  std::string content_range;  // for 206 responses
  TransferStats stats;
  int64_t n_new_connections = 0;  // connections opened for this request; 0 = reused
};

// Not thread-safe: one request at a time per client; use one client per fetching thread. The one
// exception is Interrupt(), which any thread may call.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GETs `url`. Errors, each naming the URL:
  //   connection refused, host not resolved, connection dropped -> Unavailable
  //   timeout_s or connect_timeout_s passed                     -> Timeout
  //   HTTP 404                                                  -> NotFound
  //   any other status outside 2xx (304 unless if_none_match)   -> Unavailable, with the status
  //   body beyond max_bytes                                     -> Corruption
  //   on_progress returned false                                -> Cancelled
  Result<HttpResponse> Get(const std::string& url, const GetOptions& options = {});

  // Same as Get() with a HEAD request: status, ETag and stats, no body.
  Result<HttpResponse> Head(const std::string& url, const GetOptions& options = {});

  // Ends the request in progress at once, wherever it waits (connecting, for the first byte, in
  // the body), and fails it and every later one with CancelledError. Thread-safe. Unlike
  // on_progress, which libcurl consults only when bytes arrive or about once a second, this does
  // not wait: it shuts the client's sockets down.
  void Interrupt();

  // For libcurl's socket callbacks only: they keep the list of open sockets current.
  int OpenSocket(int family, int type, int protocol);
  int CloseSocket(int fd);

 private:
  Result<HttpResponse> Perform(const std::string& url, const GetOptions& options, bool head);

  void* curl_;  // CURL*, kept across requests so its connection is reused
  std::atomic<bool> interrupted_{false};
  std::mutex sockets_mutex_;  // guards sockets_ against Interrupt() racing libcurl closing one
  std::vector<int> sockets_;  // the descriptors libcurl has open for this client
};

}  // namespace sparkv
