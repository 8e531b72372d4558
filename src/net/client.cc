#include "net/client.h"

#include <curl/curl.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "common/format.h"
#include "common/log.h"

namespace sparkv {
namespace {

using Clock = std::chrono::steady_clock;

// libcurl requires curl_global_init before any handle exists and is not thread-safe itself.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) {
      SPARKV_LOG_ERROR("curl_global_init failed: %s", curl_easy_strerror(code));
      std::abort();
    }
  });
}

// State shared with the libcurl callbacks for one request.
struct Transfer {
  const GetOptions* options = nullptr;
  HttpResponse* response = nullptr;
  Clock::time_point start;
  Clock::time_point last_progress_call;
  Clock::time_point last_byte;  // the last body bytes, or the start before any
  bool cancelled = false;
  bool too_large = false;
  bool stalled = false;  // no body bytes for longer than the stall limit

  double SecondsSinceStart() const {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
  // Returns false when the caller asked to cancel.
  bool ReportProgress() {
    last_progress_call = Clock::now();
    if (!options->on_progress) return true;
    if (!options->on_progress(response->body.size(), SecondsSinceStart())) cancelled = true;
    return !cancelled;
  }
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n_bytes = size * count;
  if (transfer->response->body.size() + n_bytes > transfer->options->max_bytes) {
    transfer->too_large = true;
    return CURL_WRITEFUNC_ERROR;
  }
  transfer->response->body.append(data, n_bytes);
  transfer->last_byte = Clock::now();
  return transfer->ReportProgress() ? n_bytes : CURL_WRITEFUNC_ERROR;
}

// Gives on_progress a chance to cancel while no bytes arrive (a stalled or slow server, or a
// connection being set up). libcurl ticks at least once a second; more often while it waits on
// a socket with a shorter timeout.
int OnTick(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  // The stall limit is checked here rather than by libcurl's low-speed rule. That rule takes
  // whole seconds and judges the measured speed, and it fired 2 to 7 s after the limit once a
  // paced server stopped sending. A tick comes at least once a second, so a stall now ends
  // within about a second after the limit.
  const double stall_limit_s = transfer->options->stall_timeout_s;
  if (stall_limit_s > 0 &&
      std::chrono::duration<double>(Clock::now() - transfer->last_byte).count() > stall_limit_s) {
    transfer->stalled = true;
    return 1;
  }
  if (Clock::now() - transfer->last_progress_call < std::chrono::milliseconds(100)) return 0;
  return transfer->ReportProgress() ? 0 : 1;
}

// Keeps the ETag and Content-Range of the final response; a status line (after a 100 Continue,
// for instance) starts a new header block.
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n_bytes = size * count;
  std::string_view line(data, n_bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);

  if (line.substr(0, 5) == "HTTP/") {
    transfer->response->etag.clear();
    transfer->response->content_range.clear();
    return n_bytes;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n_bytes;
  const std::string_view name = line.substr(0, colon);
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);

  auto is = [name](const char* wanted) {
    return name.size() == std::strlen(wanted) && strncasecmp(name.data(), wanted, name.size()) == 0;
  };
  if (is("ETag")) transfer->response->etag = std::string(value);
  if (is("Content-Range")) transfer->response->content_range = std::string(value);
  return n_bytes;
}

Status CurlError(CURLcode code, const Transfer& transfer, const char* detail,
                 const std::string& method_url, const GetOptions& options) {
  const std::string what = std::string(curl_easy_strerror(code)) +
                           (detail[0] != '\0' ? std::string(" (") + detail + ")" : std::string());
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return TimeoutError(method_url + " timed out (connect limit " +
                          FormatNumber(options.connect_timeout_s) + " s, total limit " +
                          FormatNumber(options.timeout_s) + " s, stall limit " +
                          FormatNumber(options.stall_timeout_s) + " s, 0 = none): " + what);
    case CURLE_ABORTED_BY_CALLBACK:
      if (transfer.stalled) {
        return TimeoutError(method_url + " timed out: no byte for more than the stall limit of " +
                            FormatNumber(options.stall_timeout_s) + " s, after " +
                            std::to_string(transfer.response->body.size()) + " bytes");
      }
      return CancelledError(method_url + " cancelled by the caller after " +
                            std::to_string(transfer.response->body.size()) + " bytes");
    case CURLE_WRITE_ERROR:
      if (transfer.cancelled) {
        return CancelledError(method_url + " cancelled by the caller after " +
                              std::to_string(transfer.response->body.size()) + " bytes");
      }
      if (transfer.too_large) {
        return CorruptionError(method_url + ": body exceeds the expected maximum of " +
                               std::to_string(options.max_bytes) + " bytes");
      }
      return UnavailableError(method_url + ": " + what);
    case CURLE_FILESIZE_EXCEEDED:
      return CorruptionError(method_url + ": the announced body exceeds the expected maximum of " +
                             std::to_string(options.max_bytes) + " bytes");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgumentError(method_url + ": " + what + "; pass an http:// URL");
    default:
      // Refused, unresolved, reset, or a body cut short: the server is not there (any more).
      return UnavailableError(method_url + ": " + what);
  }
}

curl_socket_t OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  const int fd = static_cast<HttpClient*>(user)->OpenSocket(address->family, address->socktype, address->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

int OnCloseSocket(void* user, curl_socket_t fd) { return static_cast<HttpClient*>(user)->CloseSocket(fd); }

}  // namespace

int HttpClient::OpenSocket(int family, int type, int protocol) {
  std::lock_guard<std::mutex> lock(sockets_mutex_);
  // Checked under the lock: a socket opened after Interrupt() would escape its shutdown.
  if (interrupted_.load()) return -1;
  const int fd = ::socket(family, type | SOCK_CLOEXEC, protocol);
  if (fd >= 0) sockets_.push_back(fd);
  return fd;
}

int HttpClient::CloseSocket(int fd) {
  std::lock_guard<std::mutex> lock(sockets_mutex_);
  // Closed under the lock, so Interrupt() never shuts down a descriptor number that was reused.
  sockets_.erase(std::remove(sockets_.begin(), sockets_.end(), fd), sockets_.end());
  return ::close(fd);
}

void HttpClient::Interrupt() {
  std::lock_guard<std::mutex> lock(sockets_mutex_);
  interrupted_.store(true);
  for (const int fd : sockets_) ::shutdown(fd, SHUT_RDWR);
}

HttpClient::HttpClient() {
  InitCurlOnce();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) {
    SPARKV_LOG_ERROR("curl_easy_init failed (out of memory?)");
    std::abort();
  }
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<HttpResponse> HttpClient::Get(const std::string& url, const GetOptions& options) {
  return Perform(url, options, /*head=*/false);
}

Result<HttpResponse> HttpClient::Head(const std::string& url, const GetOptions& options) {
  return Perform(url, options, /*head=*/true);
}

Result<HttpResponse> HttpClient::Perform(const std::string& url, const GetOptions& options,
                                         bool head) {
  const std::string method_url = (head ? "HEAD " : "GET ") + url;
  if (interrupted_.load()) return CancelledError(method_url + " not sent: the client was interrupted");
  CURL* curl = static_cast<CURL*>(curl_);
  HttpResponse response;
  Transfer transfer;
  transfer.options = &options;
  transfer.response = &response;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  // Every option is set on every request: the handle keeps options between requests, and only
  // its connection cache is meant to carry over.
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts; threads are safe
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout_s * 1000));
  // Stalls are detected in OnTick; libcurl's own low-speed rule stays off.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 0L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 0L);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  if (head) {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(curl, CURLOPT_RANGE, options.range.empty() ? nullptr : options.range.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnTick);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, OnCloseSocket);
  curl_easy_setopt(curl, CURLOPT_CLOSESOCKETDATA, this);

  curl_slist* headers = nullptr;
  if (!options.if_none_match.empty()) {
    headers = curl_slist_append(headers, ("If-None-Match: " + options.if_none_match).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  transfer.start = Clock::now();
  transfer.last_progress_call = transfer.start;
  transfer.last_byte = transfer.start;
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);

  if (code != CURLE_OK && interrupted_.load()) {
    return CancelledError(method_url + " interrupted after " + std::to_string(response.body.size()) + " bytes");
  }
  if (code != CURLE_OK) {
    Status status = CurlError(code, transfer, error_buffer, method_url, options);
    SPARKV_LOG_DEBUG("%s", status.ToString().c_str());
    return status;
  }

  long status_code = 0;
  curl_off_t total_us = 0;
  curl_off_t first_byte_us = 0;
  long n_connects = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status_code);
  curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &total_us);
  curl_easy_getinfo(curl, CURLINFO_STARTTRANSFER_TIME_T, &first_byte_us);
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &n_connects);
  response.status = static_cast<int>(status_code);
  response.n_new_connections = n_connects;
  response.stats.bytes = response.body.size();
  response.stats.seconds = static_cast<double>(total_us) / 1e6;
  response.stats.first_byte_seconds = static_cast<double>(first_byte_us) / 1e6;

  const bool not_modified_ok = response.status == 304 && !options.if_none_match.empty();
  if ((response.status >= 200 && response.status < 300) || not_modified_ok) return response;

  // The body of an error response is short text from the server explaining the error.
  std::string detail = response.body.substr(0, 200);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
  const std::string message = (head ? "HEAD " : "GET ") + url + " returned HTTP " +
                              std::to_string(response.status) +
                              (detail.empty() ? std::string() : ": " + detail);
  if (response.status == 404) return NotFoundError(message);
  return UnavailableError(message);
}

}  // namespace sparkv
