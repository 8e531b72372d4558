// `sparkv serve`: an HTTP/1.1 server over a store folder of static files.
//
// Routes (anything else is 400 or 404; see server.cc for the exact rules):
//   GET|HEAD /v1/contexts/<32 hex>/manifest.json
//   GET|HEAD /v1/chunks/<32 hex>/<codec>.skv     codec: [a-z0-9_-]+
//   GET /healthz                                 "ok"
//   GET /metrics                                 Prometheus text format
// Store files carry a strong ETag: the quoted XXH3-128 hex of the file, computed once per file
// and cached. If-None-Match gets 304, a single byte range 206 (416 when it cannot be
// satisfied). Blobs are immutable, and their Cache-Control header says so.
//
// Shaping: with a rate or a mahimahi trace, the bodies of store files are paced so that all
// concurrent responses together follow the one link (see net/link.h); rtt_ms delays the first
// byte of every store response.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "net/link.h"
#include "sparkv/status.h"

namespace sparkv {

struct ServerOptions {
  std::string root;                // the store folder, parent of v1/contexts and v1/chunks
  std::string host = "127.0.0.1";  // address to listen on
  int port = 0;                    // 0 picks a free port; read it back with StoreServer::port()
  double rate_mbit = 0;            // link rate for pacing bodies, Mbit/s; 0 = unlimited
  std::string trace_path;          // optional mahimahi trace to pace by; wins over rate_mbit
  double rtt_ms = 0;               // delay before the first byte of each store response, ms
  int n_threads = 8;               // worker threads; each open connection occupies one
  int keep_alive_timeout_s = 5;    // an idle connection closes after this; Stop() may wait
                                   // this long for idle connections to notice
};

class StoreServer {
 public:
  // Validates the options, binds the socket and starts serving on background threads.
  // Errors: InvalidArgument for a bad root, rate, thread count or trace; Unavailable when the
  // address cannot be bound.
  static Result<std::unique_ptr<StoreServer>> Start(ServerOptions options);

  ~StoreServer();  // stops the server
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  int port() const;
  // "http://127.0.0.1:<port>" (IPv6 hosts in brackets), without a trailing slash.
  std::string base_url() const;

  // Stops accepting, aborts paced bodies in progress (their clients see a short body) and joins
  // the worker threads. Idempotent; safe from any thread except a request handler.
  void Stop();

  // Blocks until Stop() has finished, e.g. the CLI's main thread while a signal handler thread
  // calls Stop().
  void Wait();

  // Replaces the pacing of store bodies. From now on they follow `link` (nullopt: unpaced), whose
  // origin lies `offset_s` seconds before this call, with nothing sent yet. A benchmark calls it
  // right before each run so that every repetition meets the same stretch of the link.
  // Responses already in progress keep the link they started with.
  // Errors: InvalidArgument for a negative or non-finite offset.
  Status RestartPacing(std::optional<Link> link, double offset_s = 0.0);

  // Counters also shown on /metrics.
  int64_t connections_accepted() const;
  int64_t connections_active() const;

  struct Impl;

 private:
  explicit StoreServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparkv
