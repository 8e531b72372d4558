// StoreServer and HttpClient together over real loopback sockets, on a temporary store folder
// of real files: routes, validation, caching headers, ranges, metrics, keep-alive, pacing by
// rate and by trace, and every error path of the client.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <limits>
#include <random>
#include <thread>

#include "common/file_util.h"
#include "common/hash.h"
#include "net/client.h"
#include "net/link.h"
#include "net/server.h"
#include "test_support.h"

namespace sparkv {
namespace {

std::string RandomBytes(size_t n_bytes, uint32_t seed) {
  std::mt19937 random(seed);
  std::string bytes(n_bytes, '\0');
  for (char& c : bytes) c = static_cast<char>(random() & 0xff);
  return bytes;
}

std::string KeyFor(const std::string& text) {
  return Hash128Of(text.data(), text.size()).Hex();
}

std::string QuotedEtag(const std::string& bytes) {
  std::string etag = "\"";
  etag += Hash128Of(bytes.data(), bytes.size()).Hex();
  etag += '"';
  return etag;
}

// Sends `request` as is on a fresh connection and returns everything the server sends back
// until it closes the connection (requests here send "Connection: close").
std::string RawExchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string reply;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    reply.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

std::string RawGet(int port, const std::string& target, const std::string& method = "GET",
                   const std::string& extra_headers = "") {
  return RawExchange(port, method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                               extra_headers + "Connection: close\r\n\r\n");
}

int StatusOf(const std::string& reply) {
  // "HTTP/1.1 200 OK"
  if (reply.size() < 12 || reply.compare(0, 5, "HTTP/") != 0) return -1;
  return std::stoi(reply.substr(9, 3));
}

// The value of a header in a raw reply, or "" (names compared exactly as the server spells them).
std::string HeaderOf(const std::string& reply, const std::string& name) {
  const size_t end_of_headers = reply.find("\r\n\r\n");
  const std::string needle = "\r\n" + name + ": ";
  const size_t at = reply.find(needle);
  if (at == std::string::npos || at > end_of_headers) return "";
  const size_t begin = at + needle.size();
  return reply.substr(begin, reply.find("\r\n", begin) - begin);
}

std::string BodyOf(const std::string& reply) {
  const size_t end_of_headers = reply.find("\r\n\r\n");
  return end_of_headers == std::string::npos ? "" : reply.substr(end_of_headers + 4);
}

// The value of one sample line of /metrics text, 0 when the line is absent.
double MetricValue(const std::string& metrics, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = metrics.find(needle);
  if (at == std::string::npos) return 0;
  return std::stod(metrics.substr(at + needle.size()));
}

class StoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = temp_.File("store");
    manifest_ = R"({"format_version": 1, "chunks": []})";
    small_blob_ = RandomBytes(300 * 1000 + 17, 1);
    large_blob_ = RandomBytes(2 * 1000 * 1000, 2);
    context_key_ = KeyFor("context");
    small_key_ = KeyFor("small");
    large_key_ = KeyFor("large");
    Put("v1/contexts/" + context_key_ + "/manifest.json", manifest_);
    Put("v1/chunks/" + small_key_ + "/q8.skv", small_blob_);
    Put("v1/chunks/" + large_key_ + "/f16.skv", large_blob_);
  }

  void Put(const std::string& relative, const std::string& bytes) {
    const std::string path = root_ + "/" + relative;
    ASSERT_TRUE(CreateDirectories(std::filesystem::path(path).parent_path().string()).ok());
    ASSERT_TRUE(WriteFileAtomic(path, std::string_view(bytes)).ok());
  }

  std::unique_ptr<StoreServer> StartServer(ServerOptions options = {}) {
    options.root = root_;
    Result<std::unique_ptr<StoreServer>> server = StoreServer::Start(options);
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(server).value() : nullptr;
  }

  std::string SmallPath() const { return "/v1/chunks/" + small_key_ + "/q8.skv"; }
  std::string LargePath() const { return "/v1/chunks/" + large_key_ + "/f16.skv"; }
  std::string ManifestPath() const { return "/v1/contexts/" + context_key_ + "/manifest.json"; }

  testing::TempDir temp_;
  std::string root_;
  std::string manifest_, small_blob_, large_blob_;
  std::string context_key_, small_key_, large_key_;
};

TEST_F(StoreServerTest, ServesFilesWithStrongEtags) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;

  Result<HttpResponse> blob = client.Get(server->base_url() + SmallPath());
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(blob->status, 200);
  EXPECT_EQ(blob->body, small_blob_);
  EXPECT_EQ(blob->etag, QuotedEtag(small_blob_));
  EXPECT_EQ(blob->stats.bytes, small_blob_.size());
  EXPECT_GT(blob->stats.seconds, 0);
  EXPECT_LE(blob->stats.first_byte_seconds, blob->stats.seconds);

  Result<HttpResponse> manifest = client.Get(server->base_url() + ManifestPath());
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  EXPECT_EQ(manifest->body, manifest_);
  EXPECT_EQ(manifest->etag, QuotedEtag(manifest_));
}

TEST_F(StoreServerTest, BlobsAreImmutableAndTyped) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string blob = RawGet(server->port(), SmallPath());
  EXPECT_EQ(StatusOf(blob), 200);
  EXPECT_EQ(HeaderOf(blob, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(HeaderOf(blob, "Content-Type"), "application/octet-stream");
  EXPECT_EQ(HeaderOf(blob, "Content-Length"), std::to_string(small_blob_.size()));
  EXPECT_EQ(HeaderOf(blob, "Accept-Ranges"), "bytes");
  EXPECT_EQ(BodyOf(blob), small_blob_);

  const std::string manifest = RawGet(server->port(), ManifestPath());
  EXPECT_EQ(HeaderOf(manifest, "Content-Type"), "application/json");
  EXPECT_NE(HeaderOf(manifest, "Cache-Control"), "public, max-age=31536000, immutable");
}

TEST_F(StoreServerTest, MissingFilesAreNotFound) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;
  const std::string missing[] = {
      "/v1/chunks/" + KeyFor("absent") + "/q8.skv",
      "/v1/chunks/" + small_key_ + "/q4.skv",
      "/v1/contexts/" + KeyFor("absent") + "/manifest.json",
      "/v1/other",
      "/",
  };
  for (const std::string& target : missing) {
    Result<HttpResponse> response = client.Get(server->base_url() + target);
    ASSERT_FALSE(response.ok()) << target;
    EXPECT_EQ(response.status().code(), ErrorCode::kNotFound) << target;
    EXPECT_NE(response.status().message().find(target), std::string::npos)
        << "the message names the URL: " << response.status().message();
  }
}

TEST_F(StoreServerTest, MalformedTargetsAreRejected) {
  // A secret beside the store, and a symlink inside the store that points at it.
  const std::string secret = "outside-the-store-secret";
  Put("../secret.skv", secret);
  const std::string link_dir = root_ + "/v1/chunks/" + KeyFor("link");
  ASSERT_TRUE(CreateDirectories(link_dir).ok());
  std::filesystem::create_symlink(temp_.File("secret.skv"), link_dir + "/q8.skv");

  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string key = small_key_;
  const struct {
    std::string target;
    int status;
  } cases[] = {
      {"/v1/chunks/../../secret.skv", 400},
      {"/v1/chunks/" + key + "/../../../../secret.skv", 400},
      {"/v1/chunks/%2e%2e/%2e%2e/secret.skv", 400},
      {"/v1/chunks/" + key + "%2Fq8.skv", 400},
      {"/v1/chunks/" + key + "/q8.skv%00", 400},
      {"/v1/chunks/" + key + "/q8.skv?x=1", 400},
      {"/v1/chunks/" + key + "\\q8.skv", 400},
      {"//v1/chunks/" + key + "/q8.skv", 400},
      {"/v1/chunks/" + key + "//q8.skv", 400},
      {"/v1/chunks/./" + key + "/q8.skv", 400},
      {"/v1/chunks/ABCDEF" + key.substr(6) + "/q8.skv", 400},
      {"/v1/chunks/" + key.substr(1) + "/q8.skv", 400},
      {"/v1/chunks/" + key + "/Q8.skv", 400},
      {"/v1/contexts/" + key + "x/manifest.json", 400},
      {temp_.File("secret.skv"), 404},
      {"http://127.0.0.1/v1/chunks/" + key + "/q8.skv", 400},
      {"/v1/chunks/" + KeyFor("link") + "/q8.skv", 404},
  };
  for (const auto& c : cases) {
    const std::string reply = RawGet(server->port(), c.target);
    EXPECT_EQ(StatusOf(reply), c.status) << c.target << "\n" << reply.substr(0, 300);
    EXPECT_EQ(reply.find(secret), std::string::npos) << c.target;
  }

  // The same through libcurl, which passes percent-escapes through untouched: the server refuses
  // them instead of decoding them.
  HttpClient client;
  Result<HttpResponse> response = client.Get(server->base_url() + "/v1/chunks/%2e%2e/secret.skv");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(response.status().message().find("400"), std::string::npos);
}

TEST_F(StoreServerTest, MatchingEtagGets304) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;
  GetOptions revalidate;
  revalidate.if_none_match = QuotedEtag(small_blob_);
  Result<HttpResponse> same = client.Get(server->base_url() + SmallPath(), revalidate);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->status, 304);
  EXPECT_TRUE(same->body.empty());
  EXPECT_EQ(same->etag, QuotedEtag(small_blob_));

  revalidate.if_none_match = QuotedEtag(large_blob_);
  Result<HttpResponse> other = client.Get(server->base_url() + SmallPath(), revalidate);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(other->body, small_blob_);

  const std::string list = RawGet(server->port(), SmallPath(), "GET",
                                  "If-None-Match: \"abc\", W/" + QuotedEtag(small_blob_) + "\r\n");
  EXPECT_EQ(StatusOf(list), 304);
  EXPECT_EQ(StatusOf(RawGet(server->port(), SmallPath(), "GET", "If-None-Match: *\r\n")), 304);
}

TEST_F(StoreServerTest, RangesGet206Or416) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;
  const size_t size = small_blob_.size();
  const std::string total = "/" + std::to_string(size);
  const struct {
    std::string range;
    size_t begin;
    size_t end;
  } cases[] = {
      {"100-199", 100, 200},
      {"0-0", 0, 1},
      {"1000-", 1000, size},
      {"-50", size - 50, size},
      {"-" + std::to_string(size * 2), 0, size},          // longer suffix than the file
      {"5-" + std::to_string(size * 10), 5, size},         // end clamped to the file
      {std::to_string(size - 1) + "-", size - 1, size},
  };
  for (const auto& c : cases) {
    GetOptions options;
    options.range = c.range;
    Result<HttpResponse> response = client.Get(server->base_url() + SmallPath(), options);
    ASSERT_TRUE(response.ok()) << c.range << ": " << response.status().ToString();
    EXPECT_EQ(response->status, 206) << c.range;
    EXPECT_EQ(response->body, small_blob_.substr(c.begin, c.end - c.begin)) << c.range;
    EXPECT_EQ(response->content_range,
              "bytes " + std::to_string(c.begin) + "-" + std::to_string(c.end - 1) + total);
  }

  for (const std::string& range : {std::to_string(size) + "-", std::to_string(size + 5) + "-" +
                                                                    std::to_string(size + 9),
                                   std::string("-0")}) {
    const std::string reply = RawGet(server->port(), SmallPath(), "GET", "Range: bytes=" + range + "\r\n");
    EXPECT_EQ(StatusOf(reply), 416) << range;
    EXPECT_EQ(HeaderOf(reply, "Content-Range"), "bytes */" + std::to_string(size)) << range;
    GetOptions options;
    options.range = range;
    Result<HttpResponse> response = client.Get(server->base_url() + SmallPath(), options);
    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.status().code(), ErrorCode::kUnavailable);
    EXPECT_NE(response.status().message().find("416"), std::string::npos);
  }

  // Several ranges are not served as multipart: the whole file comes back with 200.
  const std::string several =
      RawGet(server->port(), SmallPath(), "GET", "Range: bytes=0-9,20-29\r\n");
  EXPECT_EQ(StatusOf(several), 200);
  EXPECT_EQ(BodyOf(several), small_blob_);
}

TEST_F(StoreServerTest, HeadSendsNoBody) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string reply = RawGet(server->port(), SmallPath(), "HEAD");
  EXPECT_EQ(StatusOf(reply), 200);
  EXPECT_EQ(HeaderOf(reply, "Content-Length"), std::to_string(small_blob_.size()));
  EXPECT_EQ(HeaderOf(reply, "ETag"), QuotedEtag(small_blob_));
  EXPECT_TRUE(BodyOf(reply).empty());

  HttpClient client;
  Result<HttpResponse> head = client.Head(server->base_url() + SmallPath());
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->etag, QuotedEtag(small_blob_));
  // The handle is usable for a full GET after a HEAD.
  Result<HttpResponse> get = client.Get(server->base_url() + SmallPath());
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->body, small_blob_);
}

TEST_F(StoreServerTest, HealthzOkAndWritesRejected) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;
  Result<HttpResponse> health = client.Get(server->base_url() + "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->body, "ok\n");

  const std::string post = RawExchange(
      server->port(), "POST " + SmallPath() +
                          " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
  EXPECT_EQ(StatusOf(post), 405);
  EXPECT_EQ(HeaderOf(post, "Allow"), "GET, HEAD");
}

TEST_F(StoreServerTest, MetricsCountRequests) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;
  auto metrics = [&] {
    Result<HttpResponse> response = client.Get(server->base_url() + "/metrics");
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? "\n" + response->body : std::string();
  };
  const std::string ok_chunks = "sparkv_http_requests_total{route=\"chunk\",status=\"200\"}";
  const std::string missing_chunks = "sparkv_http_requests_total{route=\"chunk\",status=\"404\"}";
  const std::string bytes = "sparkv_http_body_bytes_sent_total";

  const std::string before = metrics();
  EXPECT_NE(before.find("# TYPE sparkv_http_requests_total counter"), std::string::npos);
  ASSERT_TRUE(client.Get(server->base_url() + SmallPath()).ok());
  ASSERT_TRUE(client.Get(server->base_url() + SmallPath()).ok());
  ASSERT_FALSE(client.Get(server->base_url() + "/v1/chunks/" + KeyFor("x") + "/q8.skv").ok());
  const std::string after = metrics();

  EXPECT_EQ(MetricValue(after, ok_chunks) - MetricValue(before, ok_chunks), 2);
  EXPECT_EQ(MetricValue(after, missing_chunks) - MetricValue(before, missing_chunks), 1);
  EXPECT_GE(MetricValue(after, bytes) - MetricValue(before, bytes), 2.0 * small_blob_.size());
  EXPECT_GE(MetricValue(after, "sparkv_http_connections_active"), 1);
  EXPECT_GE(MetricValue(after, "sparkv_http_connections_accepted_total"), 1);
  EXPECT_GE(MetricValue(after, "sparkv_http_requests_total{route=\"metrics\",status=\"200\"}"), 1);
}

TEST_F(StoreServerTest, KeepAliveReusesOneConnection) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const int64_t accepted_before = server->connections_accepted();
  HttpClient client;
  int64_t n_new_connections = 0;
  for (int i = 0; i < 25; ++i) {
    Result<HttpResponse> response =
        client.Get(server->base_url() + (i % 2 == 0 ? SmallPath() : ManifestPath()));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    if (i > 0) {
      EXPECT_EQ(response->n_new_connections, 0) << "request " << i;
    }
    n_new_connections += response->n_new_connections;
  }
  EXPECT_EQ(n_new_connections, 1);
  EXPECT_EQ(server->connections_accepted() - accepted_before, 1);
}

// Rate of a transfer as the client measured it, in Mbit/s.
double MeasuredMbit(const TransferStats& stats) { return stats.bytes * 8.0 / stats.seconds / 1e6; }

TEST_F(StoreServerTest, PacedFetchMatchesRate) {
  ServerOptions options;
  options.rate_mbit = 16;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  Result<HttpResponse> response = client.Get(server->base_url() + LargePath());
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  ASSERT_EQ(response->body, large_blob_);
  RecordProperty("measured_mbit", std::to_string(MeasuredMbit(response->stats)));
  EXPECT_NEAR(MeasuredMbit(response->stats), 16.0, 16.0 * 0.15);
}

TEST_F(StoreServerTest, ConcurrentFetchesShareLink) {
  ServerOptions options;
  options.rate_mbit = 16;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);

  // Two transfers at once through one 16 Mbit/s link: together they get 16, not 32.
  Result<HttpResponse> results[2] = {InternalError("not run"), InternalError("not run")};
  std::thread fetchers[2];
  for (int i = 0; i < 2; ++i) {
    fetchers[i] = std::thread([&, i] {
      HttpClient client;
      GetOptions get;
      get.range = "0-" + std::to_string(large_blob_.size() / 2 - 1);
      results[i] = client.Get(server->base_url() + LargePath(), get);
    });
  }
  for (std::thread& fetcher : fetchers) fetcher.join();
  ASSERT_TRUE(results[0].ok()) << results[0].status().ToString();
  ASSERT_TRUE(results[1].ok()) << results[1].status().ToString();
  const double n_bytes = static_cast<double>(results[0]->stats.bytes + results[1]->stats.bytes);
  const double seconds = std::max(results[0]->stats.seconds, results[1]->stats.seconds);
  RecordProperty("aggregate_mbit", std::to_string(n_bytes * 8 / seconds / 1e6));
  RecordProperty("per_flow_mbit", std::to_string(MeasuredMbit(results[0]->stats)) + " " +
                                      std::to_string(MeasuredMbit(results[1]->stats)));
  EXPECT_NEAR(n_bytes * 8 / seconds / 1e6, 16.0, 16.0 * 0.15);
  // Fair sharing: each got about half the link while both ran.
  EXPECT_NEAR(MeasuredMbit(results[0]->stats), 8.0, 8.0 * 0.25);
  EXPECT_NEAR(MeasuredMbit(results[1]->stats), 8.0, 8.0 * 0.25);
}

TEST_F(StoreServerTest, TraceFetchMatchesTraceMean) {
  // An uneven 30 ms schedule with bursts and gaps: 20 packets per loop, 8 Mbit/s on average.
  const std::string trace_path = temp_.File("uneven.down");
  ASSERT_TRUE(WriteFileAtomic(trace_path, std::string_view("0\n0\n0\n0\n2\n3\n3\n7\n11\n11\n11\n"
                                                          "12\n19\n19\n21\n22\n26\n28\n30\n30\n"))
                  .ok());
  Result<Link> link = Link::LoadMahimahi(trace_path);
  ASSERT_TRUE(link.ok());

  ServerOptions options;
  options.trace_path = trace_path;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  GetOptions get;
  get.range = "0-999999";
  Result<HttpResponse> response = client.Get(server->base_url() + LargePath(), get);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, large_blob_.substr(0, 1000000));
  RecordProperty("measured_mbit", std::to_string(MeasuredMbit(response->stats)));
  RecordProperty("trace_mean_mbit", std::to_string(link->mean_mbit()));
  EXPECT_NEAR(MeasuredMbit(response->stats), link->mean_mbit(), link->mean_mbit() * 0.15);
}

TEST_F(StoreServerTest, RttDelaysFirstByte) {
  ServerOptions options;
  options.rtt_ms = 150;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  Result<HttpResponse> response = client.Get(server->base_url() + ManifestPath());
  ASSERT_TRUE(response.ok());
  // A lower bound only: the server sleeps at least this long before it responds.
  EXPECT_GE(response->stats.first_byte_seconds, 0.150);
}

TEST_F(StoreServerTest, StopMidTransferFailsClient) {
  ServerOptions options;
  options.rate_mbit = 2;  // the 2 MB blob would take 8 s
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  std::thread stopper;
  std::atomic<bool> stop_requested{false};
  GetOptions get;
  get.timeout_s = 60;  // a hang would end in TimeoutError after a minute, not in Unavailable
  get.on_progress = [&](size_t bytes_so_far, double) {
    if (bytes_so_far >= 100 * 1000 && !stop_requested.exchange(true)) {
      stopper = std::thread([&] { server->Stop(); });
    }
    return true;
  };
  HttpClient client;
  Result<HttpResponse> response = client.Get(server->base_url() + LargePath(), get);
  if (stopper.joinable()) stopper.join();
  ASSERT_TRUE(stop_requested.load());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), ErrorCode::kUnavailable) << response.status().ToString();
  EXPECT_NE(response.status().message().find(LargePath()), std::string::npos);
}

TEST_F(StoreServerTest, ProgressCallbackCancels) {
  ServerOptions options;
  options.rate_mbit = 8;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  size_t last_seen = 0;
  GetOptions get;
  get.on_progress = [&](size_t bytes_so_far, double seconds) {
    EXPECT_GE(bytes_so_far, last_seen);
    EXPECT_GE(seconds, 0);
    last_seen = bytes_so_far;
    return bytes_so_far < 64 * 1024;
  };
  Result<HttpResponse> cancelled = client.Get(server->base_url() + LargePath(), get);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().code(), ErrorCode::kCancelled) << cancelled.status().ToString();
  EXPECT_LT(last_seen, large_blob_.size());

  Result<HttpResponse> next = client.Get(server->base_url() + ManifestPath());
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->body, manifest_);
}

TEST_F(StoreServerTest, RefusedConnectionIsUnavailable) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string url = server->base_url() + SmallPath();
  server->Stop();
  HttpClient client;
  Result<HttpResponse> response = client.Get(url);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), ErrorCode::kUnavailable) << response.status().ToString();
  EXPECT_NE(response.status().message().find(url), std::string::npos);
}

TEST_F(StoreServerTest, SlowServerTimesOut) {
  ServerOptions options;
  options.rtt_ms = 3000;
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  GetOptions get;
  get.timeout_s = 0.3;
  Result<HttpResponse> response = client.Get(server->base_url() + SmallPath(), get);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), ErrorCode::kTimeout) << response.status().ToString();
}

TEST_F(StoreServerTest, StallTimeoutLetsSlowTransferFinish) {
  ServerOptions options;
  options.rate_mbit = 6;  // the 2 MB blob takes about 2.7 s, past the 1 s stall limit
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  GetOptions get;
  get.timeout_s = 0;
  get.stall_timeout_s = 1;
  Result<HttpResponse> response = client.Get(server->base_url() + LargePath(), get);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, large_blob_);
  EXPECT_GT(response->stats.seconds, get.stall_timeout_s);
}

TEST_F(StoreServerTest, StallTimeoutEndsSilentResponse) {
  ServerOptions options;
  options.rtt_ms = 3000;  // no byte for 3 s
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  // Limits below a second apply too; the error names the limit.
  const std::pair<double, const char*> limits[] = {{1.0, "stall limit of 1 s"}, {0.5, "stall limit of 0.5 s"}};
  for (const auto& [limit_s, named] : limits) {
    HttpClient client;
    GetOptions get;
    get.timeout_s = 0;
    get.stall_timeout_s = limit_s;
    Result<HttpResponse> response = client.Get(server->base_url() + SmallPath(), get);
    ASSERT_FALSE(response.ok()) << limit_s;
    EXPECT_EQ(response.status().code(), ErrorCode::kTimeout) << response.status().ToString();
    EXPECT_NE(response.status().message().find(named), std::string::npos)
        << response.status().ToString();
  }
}

TEST_F(StoreServerTest, InterruptEndsAWaitingRequestAtOnce) {
  ServerOptions options;
  options.rtt_ms = 20000;  // the first byte would come after 20 s
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  HttpClient client;
  GetOptions get;
  get.timeout_s = 30;
  std::atomic<bool> started{false};
  std::thread interrupter([&] {
    while (!started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the request reach the server
    client.Interrupt();
  });
  started.store(true);
  Result<HttpResponse> response = client.Get(server->base_url() + SmallPath(), get);
  interrupter.join();
  ASSERT_FALSE(response.ok());
  // Without the interrupt the request would end by a timeout or succeed after 20 s.
  EXPECT_EQ(response.status().code(), ErrorCode::kCancelled) << response.status().ToString();
  EXPECT_NE(response.status().message().find("interrupted"), std::string::npos) << response.status().ToString();

  // Later requests fail at once without touching the network.
  Result<HttpResponse> later = client.Get(server->base_url() + SmallPath(), get);
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.status().code(), ErrorCode::kCancelled) << later.status().ToString();
  EXPECT_NE(later.status().message().find("not sent"), std::string::npos) << later.status().ToString();
}

TEST_F(StoreServerTest, InterruptedClientLeavesOthersWorking) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient interrupted;
  ASSERT_TRUE(interrupted.Get(server->base_url() + SmallPath()).ok());
  interrupted.Interrupt();
  EXPECT_FALSE(interrupted.Get(server->base_url() + SmallPath()).ok());
  HttpClient other;
  Result<HttpResponse> response = other.Get(server->base_url() + SmallPath());
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, small_blob_);
}

TEST_F(StoreServerTest, OversizedBodyIsCorruption) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  HttpClient client;
  GetOptions get;
  get.max_bytes = small_blob_.size() - 1;
  Result<HttpResponse> response = client.Get(server->base_url() + SmallPath(), get);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), ErrorCode::kCorruption) << response.status().ToString();

  get.max_bytes = small_blob_.size();
  EXPECT_TRUE(client.Get(server->base_url() + SmallPath(), get).ok());
}

TEST_F(StoreServerTest, StartRejectsBadOptions) {
  ServerOptions no_root;
  no_root.root = temp_.File("does-not-exist");
  EXPECT_EQ(StoreServer::Start(no_root).status().code(), ErrorCode::kInvalidArgument);

  ServerOptions bad_trace;
  bad_trace.root = root_;
  bad_trace.trace_path = temp_.File("bad.down");
  ASSERT_TRUE(WriteFileAtomic(bad_trace.trace_path, std::string_view("3\n1\n")).ok());
  EXPECT_EQ(StoreServer::Start(bad_trace).status().code(), ErrorCode::kCorruption);

  ServerOptions negative_rate;
  negative_rate.root = root_;
  negative_rate.rate_mbit = -1;
  EXPECT_EQ(StoreServer::Start(negative_rate).status().code(), ErrorCode::kInvalidArgument);

  ServerOptions rate_and_trace;
  rate_and_trace.root = root_;
  rate_and_trace.rate_mbit = 5;
  rate_and_trace.trace_path = temp_.File("good.down");
  ASSERT_TRUE(WriteFileAtomic(rate_and_trace.trace_path, std::string_view("1\n2\n")).ok());
  const Status both = StoreServer::Start(rate_and_trace).status();
  EXPECT_EQ(both.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(both.message().find("--trace"), std::string::npos) << both.ToString();

  ServerOptions huge_rate;
  huge_rate.root = root_;
  huge_rate.rate_mbit = 1e300;
  EXPECT_EQ(StoreServer::Start(huge_rate).status().code(), ErrorCode::kInvalidArgument);

  for (const double rtt_ms : {-1.0, 1e300, std::numeric_limits<double>::quiet_NaN()}) {
    ServerOptions bad_rtt;
    bad_rtt.root = root_;
    bad_rtt.rtt_ms = rtt_ms;
    const Status status = StoreServer::Start(bad_rtt).status();
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << rtt_ms;
    EXPECT_NE(status.message().find("--rtt-ms"), std::string::npos) << status.ToString();
  }

  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ServerOptions same_port;
  same_port.root = root_;
  same_port.port = server->port();
  EXPECT_EQ(StoreServer::Start(same_port).status().code(), ErrorCode::kUnavailable);
}

TEST_F(StoreServerTest, WaitReturnsAfterStop) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::thread stopper([&] { server->Stop(); });
  server->Wait();
  stopper.join();
  server->Stop();  // idempotent
  HttpClient client;
  EXPECT_EQ(client.Get(server->base_url() + "/healthz").status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace sparkv
