// The checks `sparkv run` makes before it loads a model: the store URL and the options that need
// no model. Each bad value is rejected with its name and the expected form.
#include <gtest/gtest.h>

#include <string>

#include "runtime/blob_source.h"
#include "runtime/session.h"

namespace sparkv {
namespace {

TEST(ServerUrlTest, AcceptsStoreUrls) {
  for (const char* url : {"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "https://store.example:443",
                          "http://[::1]:8080", "http://[::1]", "http://localhost", "http://proxy:80/sparkv/",
                          "HTTP://127.0.0.1:8080"}) {
    EXPECT_TRUE(CheckServerUrl(url).ok()) << url << ": " << CheckServerUrl(url).ToString();
  }
}

TEST(ServerUrlTest, RejectsMalformedUrls) {
  const struct {
    const char* url;
    const char* reason;
  } cases[] = {
      {"http//foo", "must start with http://"},
      {"ftp://127.0.0.1:8080", "must start with http://"},
      {"127.0.0.1:8080", "must start with http://"},
      {"http://", "the host is missing"},
      {"http://:8080", "the host is missing"},
      {"http://127.0.0.1:80x", "the port '80x'"},
      {"http://127.0.0.1:0", "the port '0'"},
      {"http://127.0.0.1:70000", "the port '70000'"},
      {"http://[::1:8080", "IPv6 host is not closed"},
      {"http://[::1]x:8080", "only ':PORT' may follow"},
      {"http://127.0.0.1:8080?x=1", "a query or fragment"},
  };
  for (const auto& c : cases) {
    const Status status = CheckServerUrl(c.url);
    ASSERT_FALSE(status.ok()) << c.url;
    EXPECT_NE(status.message().find(c.reason), std::string::npos) << c.url << ": " << status.ToString();
    EXPECT_NE(status.message().find("http://HOST:PORT"), std::string::npos) << status.ToString();
  }
}

TEST(ServerUrlTest, NamesTrailingApiVersion) {
  const Status status = CheckServerUrl("http://127.0.0.1:8080/v1/");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("e.g. http://127.0.0.1:8080"), std::string::npos) << status.ToString();
}

TEST(RunOptionsTest, RejectsBadValuesBeforeAnyModel) {
  RunOptions good;
  good.server_url = "http://127.0.0.1:8080";
  EXPECT_TRUE(CheckRunOptions(good).ok()) << CheckRunOptions(good).ToString();

  RunOptions strategy = good;
  strategy.strategy = "bogus";
  EXPECT_NE(CheckRunOptions(strategy).message().find("unknown strategy 'bogus'"), std::string::npos);

  RunOptions level = good;
  level.levels = {"f16", "q9"};
  EXPECT_NE(CheckRunOptions(level).message().find("unknown codec level 'q9'"), std::string::npos);

  RunOptions server = good;
  server.server_url = "http//foo";
  EXPECT_NE(CheckRunOptions(server).message().find("--server 'http//foo'"), std::string::npos);

  RunOptions no_server = good;
  no_server.server_url.clear();
  EXPECT_TRUE(CheckRunOptions(no_server).ok()) << "no server means a local run, not an error";
}

}  // namespace
}  // namespace sparkv
