#include <memory>
#include <algorithm>
#include <cctype>
#include <string>

#include "net/client.h"
#include "runtime/blob_source.h"
#include "store/store.h"

namespace sparkv {
namespace {

class HttpSource final : public BlobSource {
 public:
  HttpSource(std::string base_url, HttpSourceOptions options)
      : base_url_(std::move(base_url)), options_(options) {
    while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  }

  std::string Describe() const override { return base_url_; }

  Result<FetchedBytes> FetchManifest(const Hash128& context_key, const ProgressFunction& on_progress) override {
    GetOptions get;
    get.on_progress = on_progress;
    get.timeout_s = options_.timeout_s;
    get.connect_timeout_s = options_.connect_timeout_s;
    get.stall_timeout_s = options_.stall_timeout_s;
    get.max_bytes = 64 << 20;  // a manifest of 100k chunks stays far below this
    return Fetch(base_url_ + "/" + Store::ManifestRelativePath(context_key), get);
  }

  Result<FetchedBytes> FetchBlob(const Hash128& chunk_key, std::string_view codec, uint64_t max_bytes,
                                 uint64_t range_end, const ProgressFunction& on_progress) override {
    GetOptions get;
    get.timeout_s = options_.timeout_s;
    get.connect_timeout_s = options_.connect_timeout_s;
    get.stall_timeout_s = options_.stall_timeout_s;
    get.max_bytes = max_bytes;
    get.on_progress = on_progress;
    if (range_end > 0) get.range = "0-" + std::to_string(range_end - 1);
    Result<FetchedBytes> fetched = Fetch(base_url_ + "/" + Store::BlobRelativePath(chunk_key, codec), get);
    // The limit is the manifest's size of the blob, so a longer body means the two disagree.
    if (!fetched.ok() && fetched.status().code() == ErrorCode::kCorruption && max_bytes > 0) {
      return fetched.status().WithContext("the manifest lists this blob at " + std::to_string(max_bytes) +
                                          " bytes, but the server sent more; ingest the context again");
    }
    return fetched;
  }

  void Interrupt() override { client_.Interrupt(); }

 private:
  Result<FetchedBytes> Fetch(const std::string& url, const GetOptions& get) {
    SPARKV_ASSIGN_OR_RETURN(HttpResponse response, client_.Get(url, get));
    FetchedBytes fetched;
    fetched.bytes = std::move(response.body);
    fetched.seconds = response.stats.seconds;
    fetched.first_byte_seconds = response.stats.first_byte_seconds;
    return fetched;
  }

  std::string base_url_;
  HttpSourceOptions options_;
  HttpClient client_;
};

}  // namespace

Status CheckServerUrl(std::string_view base_url) {
  const std::string value(base_url);
  const auto invalid = [&value](const std::string& why) {
    return InvalidArgumentError("--server '" + value + "' is not a store URL: " + why +
                                "; pass the form http://HOST:PORT, e.g. http://127.0.0.1:8080");
  };
  // URL schemes are case-insensitive.
  std::string scheme = value.substr(0, std::min(value.size(), value.find("://")));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return invalid("it must start with http:// or https://");
  std::string_view rest = base_url.substr(scheme.size() + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return invalid("a query or fragment ('?' or '#') has no meaning here");
  }

  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.empty()) return invalid("the host is missing");
  // The host may be a bracketed IPv6 address, whose colons are not the port's.
  const bool bracketed = authority.front() == '[';
  const size_t host_end = bracketed ? authority.find(']') : 0;
  if (host_end == std::string_view::npos) return invalid("the '[' of the IPv6 host is not closed");
  const size_t colon = authority.find(':', host_end);
  if (colon == 0) return invalid("the host is missing");
  if (bracketed && host_end + 1 != authority.size() && colon != host_end + 1) {
    return invalid("only ':PORT' may follow the ']' of the IPv6 host");
  }
  if (colon != std::string_view::npos) {
    const std::string port(authority.substr(colon + 1));
    const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return invalid("the port '" + port + "' is not a number in [1, 65535]");
    }
  }

  while (path.ends_with('/')) path.remove_suffix(1);
  if (path == "/v1" || path.ends_with("/v1")) {
    return InvalidArgumentError("--server '" + value + "' ends in /v1, which the device adds itself; pass the URL "
                                "without it, e.g. " + value.substr(0, value.rfind("/v1")));
  }
  return Status::Ok();
}

std::unique_ptr<BlobSource> MakeHttpSource(std::string base_url, HttpSourceOptions options) {
  return std::make_unique<HttpSource>(std::move(base_url), options);
}

}  // namespace sparkv
