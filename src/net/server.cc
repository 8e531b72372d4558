#include "net/server.h"

#include <httplib.h>
#include <limits.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/format.h"
#include "common/hash.h"
#include "common/log.h"
#include "net/pacer.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

// Unpaced bodies go out in writes of this size: large enough for few syscalls, small enough
// that Stop() is noticed between writes.
constexpr size_t kUnpacedPieceBytes = 256 * 1024;
constexpr size_t kMaxRequestBodyBytes = 64 * 1024;  // no route takes a body
constexpr size_t kKeepAliveMaxRequests = 100000;    // per connection; effectively unlimited
constexpr const char* kBlobCacheControl = "public, max-age=31536000, immutable";
// A manifest may gain codec levels when the store is re-ingested, so clients revalidate it.
constexpr const char* kManifestCacheControl = "no-cache";

enum class Route { kManifest, kChunk, kHealthz, kMetrics, kOther };

const char* RouteName(Route route) {
  switch (route) {
    case Route::kManifest: return "manifest";
    case Route::kChunk: return "chunk";
    case Route::kHealthz: return "healthz";
    case Route::kMetrics: return "metrics";
    case Route::kOther: return "other";
  }
  return "other";
}

// The route a request target names. `status` is 0 when the target is well formed, otherwise
// the 400 or 404 to respond with, and `reason` explains it.
struct Target {
  Route route = Route::kOther;
  int status = 0;
  std::string reason;
  std::string relative_path;  // under the store root, for kManifest and kChunk
};

bool IsKey(std::string_view text) {
  if (text.size() != 32) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsCodecName(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Only the raw request target is trusted here, never httplib's percent-decoded path: a store
// path never needs escaping, so any '%' (an encoded slash or dot), query, backslash or dot
// segment is refused outright rather than decoded and re-checked.
Target ClassifyTarget(std::string_view target) {
  Target out;
  auto fail = [&out](int status, std::string reason) {
    out.status = status;
    out.reason = std::move(reason);
    return out;
  };

  if (target == "/healthz") return out.route = Route::kHealthz, out;
  if (target == "/metrics") return out.route = Route::kMetrics, out;

  if (target == "/") return fail(404, "no such route; store files are under /v1/");
  if (target.empty() || target.front() != '/') {
    return fail(400, "the request target must be a path starting with '/'");
  }
  for (size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '/' || c == '.' || c == '_' || c == '-';
    if (!allowed) {
      return fail(400, "character " + std::to_string(static_cast<unsigned char>(c)) +
                           " at offset " + std::to_string(i) +
                           " is not allowed in a store path (no escapes, queries or backslashes)");
    }
  }

  std::vector<std::string_view> segments;
  for (size_t begin = 1; begin <= target.size();) {
    size_t end = target.find('/', begin);
    if (end == std::string_view::npos) end = target.size();
    segments.push_back(target.substr(begin, end - begin));
    begin = end + 1;
  }
  for (std::string_view segment : segments) {
    if (segment.empty()) return fail(400, "empty path segment ('//' or a trailing '/')");
    if (segment == "." || segment == "..") return fail(400, "dot segments are not allowed");
  }

  if (segments.size() != 4 || segments[0] != "v1") return fail(404, "no such route");
  if (segments[1] == "contexts") {
    if (!IsKey(segments[2])) return fail(400, "a context key is 32 lowercase hex digits");
    if (segments[3] != "manifest.json") return fail(404, "a context folder holds manifest.json");
    out.route = Route::kManifest;
  } else if (segments[1] == "chunks") {
    if (!IsKey(segments[2])) return fail(400, "a chunk key is 32 lowercase hex digits");
    std::string_view file = segments[3];
    constexpr std::string_view kSuffix = ".skv";
    if (file.size() <= kSuffix.size() || file.substr(file.size() - kSuffix.size()) != kSuffix) {
      return fail(404, "a chunk folder holds <codec>.skv files");
    }
    if (!IsCodecName(file.substr(0, file.size() - kSuffix.size()))) {
      return fail(400, "a codec name is lowercase [a-z0-9_-]+");
    }
    out.route = Route::kChunk;
  } else {
    return fail(404, "no such route");
  }
  out.relative_path = std::string(target.substr(1));
  return out;
}

// A single byte range resolved against a file size: [begin, end).
struct ByteRange {
  size_t begin = 0;
  size_t end = 0;
};

enum class RangeOutcome { kWholeFile, kPartial, kUnsatisfiable };

// Resolves a Range header of the form "bytes=a-b", "bytes=a-" or "bytes=-n". A header this
// server does not handle (several ranges, other units) is ignored, which RFC 9110 allows: the
// whole file is sent with 200.
RangeOutcome ResolveRange(const std::string& header, size_t size, ByteRange* range) {
  constexpr std::string_view kPrefix = "bytes=";
  std::string_view spec(header);
  if (spec.substr(0, kPrefix.size()) != kPrefix) return RangeOutcome::kWholeFile;
  spec.remove_prefix(kPrefix.size());
  if (spec.find(',') != std::string_view::npos) return RangeOutcome::kWholeFile;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeOutcome::kWholeFile;

  auto parse = [](std::string_view digits, uint64_t* value) {
    if (digits.empty() || digits.size() > 19) return false;
    uint64_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    *value = v;
    return true;
  };
  const std::string_view first_text = spec.substr(0, dash);
  const std::string_view last_text = spec.substr(dash + 1);

  uint64_t first = 0;
  uint64_t last = 0;
  if (first_text.empty()) {
    // Suffix range: the last n bytes.
    if (!parse(last_text, &last)) return RangeOutcome::kWholeFile;
    if (last == 0 || size == 0) return RangeOutcome::kUnsatisfiable;
    range->begin = size - static_cast<size_t>(std::min<uint64_t>(last, size));
    range->end = size;
    return RangeOutcome::kPartial;
  }
  if (!parse(first_text, &first)) return RangeOutcome::kWholeFile;
  if (last_text.empty()) {
    last = UINT64_MAX;
  } else if (!parse(last_text, &last) || last < first) {
    return RangeOutcome::kWholeFile;
  }
  if (first >= size) return RangeOutcome::kUnsatisfiable;
  range->begin = static_cast<size_t>(first);
  range->end = static_cast<size_t>(std::min<uint64_t>(last, size - 1)) + 1;
  return RangeOutcome::kPartial;
}

// True when an If-None-Match value lists `etag` or is "*". The comparison is the weak one the
// header calls for, so W/"x" matches "x".
bool IfNoneMatchHits(std::string_view header, std::string_view etag) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t comma = header.find(',', pos);
    if (comma == std::string_view::npos) comma = header.size();
    std::string_view item = header.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
    pos = comma + 1;
  }
  return false;
}

// A TaskQueue that counts connections: httplib enqueues one task per accepted socket, and the
// task runs until that connection closes.
class CountingTaskQueue : public httplib::TaskQueue {
 public:
  CountingTaskQueue(size_t n_threads, std::atomic<int64_t>* accepted, std::atomic<int64_t>* active)
      : pool_(n_threads), accepted_(accepted), active_(active) {}

  void enqueue(std::function<void()> fn) override {
    accepted_->fetch_add(1);
    pool_.enqueue([fn = std::move(fn), active = active_] {
      active->fetch_add(1);
      fn();
      active->fetch_sub(1);
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  std::atomic<int64_t>* accepted_;
  std::atomic<int64_t>* active_;
};

std::string BracketHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

struct StoreServer::Impl {
  ServerOptions options;
  std::string root_real;  // realpath of options.root, for the containment check
  httplib::Server http;
  // Null when unpaced. Each response holds its own reference, so RestartPacing can swap the
  // pacer while earlier bodies are still being written.
  std::shared_ptr<Pacer> pacer;  // guarded by pacer_mutex
  std::mutex pacer_mutex;
  int port = 0;
  std::thread listen_thread;

  std::atomic<bool> stopping{false};
  std::mutex wait_mutex;  // for the interruptible sleeps of pacing and rtt
  std::condition_variable wait_cv;

  std::mutex stop_mutex;  // serialises Stop(); guards stopped
  std::condition_variable stopped_cv;
  bool stopped = false;

  std::atomic<int64_t> n_connections_accepted{0};
  std::atomic<int64_t> n_connections_active{0};
  std::atomic<uint64_t> n_body_bytes_sent{0};
  std::mutex metrics_mutex;
  std::map<std::pair<std::string, int>, uint64_t> n_requests;  // (route, status) -> count

  struct EtagEntry {
    size_t size = 0;
    int64_t mtime_ns = 0;
    std::string etag;
  };
  std::mutex etag_mutex;
  std::unordered_map<std::string, EtagEntry> etags;  // real path -> entry

  // Sleeps until `deadline`; returns false at once when the server is stopping.
  bool SleepUntil(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(wait_mutex);
    return !wait_cv.wait_until(lock, deadline, [this] { return stopping.load(); });
  }

  std::string EtagFor(const std::string& real_path, const MappedFile& file, int64_t mtime_ns);
  void ServeStoreFile(const Target& target, const httplib::Request& req, httplib::Response& res);
  std::string MetricsText();
  void OnResponse(const httplib::Request& req, const httplib::Response& res);
};

std::string StoreServer::Impl::EtagFor(const std::string& real_path, const MappedFile& file,
                                       int64_t mtime_ns) {
  {
    std::lock_guard<std::mutex> lock(etag_mutex);
    auto it = etags.find(real_path);
    if (it != etags.end() && it->second.size == file.size() && it->second.mtime_ns == mtime_ns) {
      return it->second.etag;
    }
  }

  // Hashed outside the lock: two first requests for one file may both hash it, which is
  // harmless, while a lock held across hashing would stall every other request.
  std::string etag = "\"";
  etag += Hash128Of(file.data(), file.size()).Hex();
  etag += '"';
  std::lock_guard<std::mutex> lock(etag_mutex);
  etags[real_path] = EtagEntry{file.size(), mtime_ns, etag};
  return etag;
}

void StoreServer::Impl::ServeStoreFile(const Target& target, const httplib::Request& req,
                                       httplib::Response& res) {
  auto reply_text = [&res](int status, const std::string& text) {
    res.status = status;
    res.set_content(text + "\n", "text/plain; charset=utf-8");
  };

  if (options.rtt_ms > 0) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double, std::milli>(options.rtt_ms));
    if (!SleepUntil(deadline)) return reply_text(503, "server is stopping");
  }

  // The target was checked character by character, yet a symlink inside the store could still
  // lead out of it, so the resolved path must stay under the resolved root.
  const std::string path = options.root + "/" + target.relative_path;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return reply_text(404, std::string(RouteName(target.route)) + " not found: " + req.target);
  }
  const std::string real_path(resolved);
  if (real_path.compare(0, root_real.size() + 1, root_real + "/") != 0) {
    return reply_text(404, std::string(RouteName(target.route)) + " not found: " + req.target);
  }
  struct stat info;
  if (::stat(real_path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return reply_text(404, std::string(RouteName(target.route)) + " not found: " + req.target);
  }
  Result<MappedFile> mapped = MappedFile::Open(real_path);
  if (!mapped.ok()) {
    SPARKV_LOG_WARN("cannot open %s for %s: %s", real_path.c_str(), req.target.c_str(),
                    mapped.status().ToString().c_str());
    return reply_text(500, "cannot read " + req.target);
  }
  auto file = std::make_shared<MappedFile>(std::move(mapped).value());
  const int64_t mtime_ns = int64_t{info.st_mtim.tv_sec} * 1000000000 + info.st_mtim.tv_nsec;
  const std::string etag = EtagFor(real_path, *file, mtime_ns);

  res.set_header("ETag", etag);
  res.set_header("Cache-Control",
                 target.route == Route::kChunk ? kBlobCacheControl : kManifestCacheControl);
  res.set_header("Accept-Ranges", "bytes");
  const char* content_type =
      target.route == Route::kManifest ? "application/json" : "application/octet-stream";

  if (req.has_header("If-None-Match") &&
      IfNoneMatchHits(req.get_header_value("If-None-Match"), etag)) {
    res.status = 304;
    return;
  }

  ByteRange range{0, file->size()};
  res.status = 200;
  const bool range_applies =
      req.has_header("Range") &&
      (!req.has_header("If-Range") || req.get_header_value("If-Range") == etag);
  if (range_applies) {
    switch (ResolveRange(req.get_header_value("Range"), file->size(), &range)) {
      case RangeOutcome::kWholeFile:
        range = ByteRange{0, file->size()};
        break;
      case RangeOutcome::kPartial:
        res.status = 206;
        res.set_header("Content-Range", "bytes " + std::to_string(range.begin) + "-" +
                                            std::to_string(range.end - 1) + "/" +
                                            std::to_string(file->size()));
        break;
      case RangeOutcome::kUnsatisfiable:
        res.set_header("Content-Range", "bytes */" + std::to_string(file->size()));
        return reply_text(416, "range " + req.get_header_value("Range") + " lies outside the " +
                                   std::to_string(file->size()) + " bytes of " + req.target);
    }
  }

  // An empty body goes out through set_content: httplib only writes Content-Length for a
  // content provider when the length is above zero.
  const size_t n_body = range.end - range.begin;
  if (n_body == 0) {
    res.set_content(std::string(), content_type);
    return;
  }
  std::shared_ptr<Pacer> body_pacer;
  {
    std::lock_guard<std::mutex> lock(pacer_mutex);
    body_pacer = pacer;
  }
  res.set_content_provider(
      n_body, content_type,
      [this, file, begin = range.begin, body_pacer](size_t offset, size_t length,
                                                     httplib::DataSink& sink) {
        const size_t piece =
            std::min(length, body_pacer != nullptr ? body_pacer->piece_bytes() : kUnpacedPieceBytes);
        if (body_pacer != nullptr && !SleepUntil(body_pacer->Reserve(piece))) return false;
        if (stopping.load()) return false;
        if (!sink.write(reinterpret_cast<const char*>(file->data() + begin + offset), piece)) {
          return false;
        }
        n_body_bytes_sent.fetch_add(piece);
        return true;
      });
}

std::string StoreServer::Impl::MetricsText() {
  std::string out;
  out += "# HELP sparkv_http_requests_total HTTP responses sent, by route and status code.\n";
  out += "# TYPE sparkv_http_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(metrics_mutex);
    for (const auto& [key, count] : n_requests) {
      out += "sparkv_http_requests_total{route=\"" + key.first + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
    }
  }
  out += "# HELP sparkv_http_body_bytes_sent_total Response body bytes written to sockets.\n";
  out += "# TYPE sparkv_http_body_bytes_sent_total counter\n";
  out += "sparkv_http_body_bytes_sent_total " + std::to_string(n_body_bytes_sent.load()) + "\n";
  out += "# HELP sparkv_http_connections_accepted_total Connections accepted since start.\n";
  out += "# TYPE sparkv_http_connections_accepted_total counter\n";
  out += "sparkv_http_connections_accepted_total " +
         std::to_string(n_connections_accepted.load()) + "\n";
  out += "# HELP sparkv_http_connections_active Connections open and being served now.\n";
  out += "# TYPE sparkv_http_connections_active gauge\n";
  out += "sparkv_http_connections_active " + std::to_string(n_connections_active.load()) + "\n";
  return out;
}

// Runs after every response httplib writes, including the 400s and 416s it produces itself
// before routing, so the counters see everything.
void StoreServer::Impl::OnResponse(const httplib::Request& req, const httplib::Response& res) {
  const Target target = ClassifyTarget(req.target);
  {
    std::lock_guard<std::mutex> lock(metrics_mutex);
    ++n_requests[{RouteName(target.route), res.status}];
  }
  if (req.method != "HEAD" && !res.body.empty()) n_body_bytes_sent.fetch_add(res.body.size());

  if (res.status >= 400) {
    std::string reason = res.body;
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    SPARKV_LOG_WARN("%s %s from %s:%d -> %d: %s", req.method.c_str(), req.target.c_str(),
                    req.remote_addr.c_str(), req.remote_port, res.status, reason.c_str());
  } else {
    SPARKV_LOG_DEBUG("%s %s from %s:%d -> %d", req.method.c_str(), req.target.c_str(),
                     req.remote_addr.c_str(), req.remote_port, res.status);
  }
}

Result<std::unique_ptr<StoreServer>> StoreServer::Start(ServerOptions options) {
  struct stat info;
  if (options.root.empty() || ::stat(options.root.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return InvalidArgumentError("store root '" + options.root +
                                "' is not a folder; pass the folder that holds v1/");
  }
  if (options.n_threads < 1 || options.n_threads > 1024) {
    return InvalidArgumentError("n_threads " + std::to_string(options.n_threads) +
                                " is outside [1, 1024]");
  }
  constexpr double kMaxRateMbit = 1e6;  // 1 Tbit/s, past any link a device has
  if (!(options.rate_mbit >= 0 && options.rate_mbit <= kMaxRateMbit)) {
    return InvalidArgumentError("rate " + FormatNumber(options.rate_mbit) +
                                " Mbit/s is invalid; pass 0 (unlimited) or a rate up to 1000000 (--rate)");
  }
  if (options.rate_mbit > 0 && !options.trace_path.empty()) {
    return InvalidArgumentError("both a rate (" + FormatNumber(options.rate_mbit) + " Mbit/s) and a trace (" +
                                options.trace_path + ") were given; pass only one of --rate and --trace");
  }
  // The delay becomes a steady_clock duration, and an hour is far past any real round trip.
  constexpr double kMaxRttMs = 3'600'000;
  if (!(options.rtt_ms >= 0 && options.rtt_ms <= kMaxRttMs)) {
    return InvalidArgumentError("rtt " + FormatNumber(options.rtt_ms) + " ms is invalid; pass a value from 0 to " +
                                FormatNumber(kMaxRttMs) + " ms (--rtt-ms)");
  }
  if (options.keep_alive_timeout_s < 1) {
    return InvalidArgumentError("keep_alive_timeout_s " +
                                std::to_string(options.keep_alive_timeout_s) + " must be >= 1");
  }

  auto impl = std::make_unique<Impl>();
  char resolved[PATH_MAX];
  if (::realpath(options.root.c_str(), resolved) == nullptr) {
    return InvalidArgumentError("cannot resolve store root '" + options.root + "'");
  }
  impl->root_real = resolved;

  if (!options.trace_path.empty()) {
    Result<Link> link = Link::LoadMahimahi(options.trace_path);
    if (!link.ok()) return link.status().WithContext("pacing trace");
    impl->pacer = std::make_shared<Pacer>(std::move(link).value());
  } else if (options.rate_mbit > 0) {
    SPARKV_ASSIGN_OR_RETURN(Link link, Link::Constant(options.rate_mbit));
    impl->pacer = std::make_shared<Pacer>(std::move(link));
  }
  impl->options = std::move(options);

  Impl* self = impl.get();
  httplib::Server& http = impl->http;
  const size_t n_threads = static_cast<size_t>(self->options.n_threads);
  http.new_task_queue = [self, n_threads] {
    return new CountingTaskQueue(n_threads, &self->n_connections_accepted,
                                 &self->n_connections_active);
  };
  // httplib's default sets SO_REUSEPORT, which lets a second server bind a port already in use
  // and silently split the connections with it. SO_REUSEADDR alone still allows a quick
  // restart on a port whose old connections linger in TIME_WAIT. TCP_NODELAY, inherited by
  // accepted sockets on Linux, sends each paced piece at once instead of holding it back until
  // the previous one is acknowledged (Nagle), which would shift pieces off their schedule.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  });
  http.set_keep_alive_max_count(kKeepAliveMaxRequests);
  http.set_keep_alive_timeout(self->options.keep_alive_timeout_s);
  http.set_payload_max_length(kMaxRequestBodyBytes);
  http.set_logger([self](const httplib::Request& req, const httplib::Response& res) {
    self->OnResponse(req, res);
  });

  // GET and HEAD are handled here, before httplib's own routing, because the decision rests on
  // the raw target. Other methods fall through to the 405 handlers below, which let httplib read
  // and discard any request body so the connection stays usable.
  http.set_pre_routing_handler([self](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") return httplib::Server::HandlerResponse::Unhandled;

    // NOTE: httplib 0.11 applies parsed ranges itself after the handler, without clamping the
    // end to the file size and without 416 for a start past the end. Clearing them leaves all
    // range handling to ServeStoreFile. The Request is a non-const local inside httplib, so the
    // cast is well defined.
    const_cast<httplib::Request&>(req).ranges.clear();

    const Target target = ClassifyTarget(req.target);
    if (target.status != 0) {
      res.status = target.status;
      res.set_content(target.reason + ": " + req.target + "\n", "text/plain; charset=utf-8");
    } else if (target.route == Route::kHealthz) {
      res.status = 200;
      res.set_content("ok\n", "text/plain; charset=utf-8");
    } else if (target.route == Route::kMetrics) {
      res.status = 200;
      res.set_content(self->MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
    } else {
      self->ServeStoreFile(target, req, res);
    }
    return httplib::Server::HandlerResponse::Handled;
  });
  auto method_not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content(req.method + " is not supported; the store is read-only (GET, HEAD)\n",
                    "text/plain; charset=utf-8");
  };
  http.Post(".*", method_not_allowed);
  http.Put(".*", method_not_allowed);
  http.Patch(".*", method_not_allowed);
  http.Delete(".*", method_not_allowed);
  http.Options(".*", method_not_allowed);

  const std::string& host = self->options.host;
  if (self->options.port == 0) {
    self->port = http.bind_to_any_port(host);
  } else {
    self->port = http.bind_to_port(host, self->options.port) ? self->options.port : -1;
  }
  if (self->port <= 0) {
    return UnavailableError("cannot listen on " + BracketHost(host) + ":" +
                            std::to_string(self->options.port) +
                            " (is the address local and the port free?)");
  }

  auto listen_returned = std::make_shared<std::atomic<bool>>(false);
  self->listen_thread = std::thread([self, listen_returned] {
    self->http.listen_after_bind();
    listen_returned->store(true);
  });
  // Stop() only works once the listen loop runs, so Start() returns after it has begun.
  while (!self->http.is_running() && !listen_returned->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (listen_returned->load()) {
    self->listen_thread.join();
    return UnavailableError("the listen loop on " + BracketHost(host) + ":" +
                            std::to_string(self->port) + " ended at once");
  }

  std::string pacing = "unpaced";
  if (self->pacer != nullptr) {
    char text[160];
    std::snprintf(text, sizeof(text), "paced at %.3f Mbit/s mean%s", self->pacer->link().mean_mbit(),
                  self->pacer->link().is_trace() ? " (trace)" : "");
    pacing = text;
  }
  SPARKV_LOG_INFO("serving %s on http://%s:%d with %d threads, %s, rtt %.1f ms",
                  self->root_real.c_str(), BracketHost(host).c_str(), self->port,
                  self->options.n_threads, pacing.c_str(), self->options.rtt_ms);
  return std::unique_ptr<StoreServer>(new StoreServer(std::move(impl)));
}

StoreServer::StoreServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StoreServer::~StoreServer() { Stop(); }

int StoreServer::port() const { return impl_->port; }

Status StoreServer::RestartPacing(std::optional<Link> link, double offset_s) {
  if (!(offset_s >= 0) || !std::isfinite(offset_s)) {
    return InvalidArgumentError("pacing offset " + std::to_string(offset_s) + " s must be 0 or positive");
  }
  std::shared_ptr<Pacer> fresh;
  if (link.has_value()) fresh = std::make_shared<Pacer>(std::move(*link), offset_s);
  std::lock_guard<std::mutex> lock(impl_->pacer_mutex);
  impl_->pacer = std::move(fresh);
  return Status::Ok();
}

std::string StoreServer::base_url() const {
  return "http://" + BracketHost(impl_->options.host) + ":" + std::to_string(impl_->port);
}

void StoreServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mutex);
  if (impl_->stopped) return;

  {
    std::lock_guard<std::mutex> wait_lock(impl_->wait_mutex);
    impl_->stopping = true;
  }
  impl_->wait_cv.notify_all();
  impl_->http.stop();
  if (impl_->listen_thread.joinable()) impl_->listen_thread.join();

  impl_->stopped = true;
  impl_->stopped_cv.notify_all();
  SPARKV_LOG_INFO("stopped serving %s", impl_->root_real.c_str());
}

void StoreServer::Wait() {
  std::unique_lock<std::mutex> lock(impl_->stop_mutex);
  impl_->stopped_cv.wait(lock, [this] { return impl_->stopped; });
}

int64_t StoreServer::connections_accepted() const { return impl_->n_connections_accepted.load(); }
int64_t StoreServer::connections_active() const { return impl_->n_connections_active.load(); }

}  // namespace sparkv
