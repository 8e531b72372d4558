#include <memory>

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
    return Fetch(base_url_ + "/" + Store::BlobRelativePath(chunk_key, codec), get);
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

std::unique_ptr<BlobSource> MakeHttpSource(std::string base_url, HttpSourceOptions options) {
  return std::make_unique<HttpSource>(std::move(base_url), options);
}

}  // namespace sparkv
