// Device profiler: decode costs for every codec on the real stories260K model, and saved profiles
// from older builds (f16 and q8 only) completed instead of planned with no decode cost.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/file_util.h"
#include "kv/codec.h"
#include "runtime/profiler.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr int32_t kChunkTokens = 64;

class ProfilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::move(Model::Load(testing::Stories260KGguf())).value();
    EngineOptions options;
    options.n_threads = 2;
    options.n_positions = 256;
    engine_ = std::move(Engine::Create(*model_, options)).value();
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ProfilerTest, MeasuresEveryCodec) {
  ProfileOptions options;
  options.chunk_tokens = kChunkTokens;
  Result<Profile> profile = MeasureProfile(*model_, *engine_, options, nullptr);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  ASSERT_EQ(profile->decode.size(), AllCodecs().size());
  // A 64-token chunk of this model is 5 layers * 2 * 64 rows * 32 f16 values = 40 KiB at f16.
  const uint64_t f16_bytes = 5 * 2 * kChunkTokens * 32 * 2;
  for (const Codec* codec : AllCodecs()) {
    const DecodeCost* cost = profile->FindDecode(codec->name());
    ASSERT_NE(cost, nullptr) << codec->name();
    EXPECT_TRUE(std::isfinite(cost->seconds_per_chunk)) << codec->name();
    EXPECT_GE(cost->seconds_per_chunk, 0.0) << codec->name();
    EXPECT_TRUE(std::isfinite(cost->seconds_per_byte)) << codec->name();
    EXPECT_GE(cost->seconds_per_byte, 0.0) << codec->name();
    EXPECT_GT(cost->Seconds(f16_bytes), 0.0) << codec->name() << " would be planned as free to decode";
    std::printf("decode %-6s %.3g s per chunk + %.3g s per byte\n", cost->codec.c_str(), cost->seconds_per_chunk,
                cost->seconds_per_byte);
  }
  // Measuring leaves no rows behind.
  EXPECT_FALSE(engine_->kv_cache().IsResident(0, 1));
}

TEST_F(ProfilerTest, RejectsUnknownAndRepeatedCodecs) {
  Result<std::vector<DecodeCost>> unknown = MeasureDecodeCosts(*model_, *engine_, kChunkTokens, {"f16", "q9"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("'q9'"), std::string::npos) << unknown.status().ToString();

  Result<std::vector<DecodeCost>> repeated = MeasureDecodeCosts(*model_, *engine_, kChunkTokens, {"q8", "q8"});
  ASSERT_FALSE(repeated.ok());
  EXPECT_NE(repeated.status().message().find("twice"), std::string::npos) << repeated.status().ToString();
}

TEST_F(ProfilerTest, AddMissingKeepsMeasuredEntries) {
  Profile profile;
  profile.decode = {{"f16", 0.125, 0.25}};
  Result<int> added = AddMissingDecodeCosts(profile, *model_, *engine_, kChunkTokens, {"f16", "ans4", "q4", "ans4"});
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(*added, 2);
  ASSERT_EQ(profile.decode.size(), 3u);
  EXPECT_EQ(profile.decode[0].seconds_per_chunk, 0.125);
  EXPECT_EQ(profile.decode[0].seconds_per_byte, 0.25);
  ASSERT_NE(profile.FindDecode("ans4"), nullptr);
  ASSERT_NE(profile.FindDecode("q4"), nullptr);
  EXPECT_GT(profile.FindDecode("ans4")->Seconds(1000), 0.0);

  Result<int> again = AddMissingDecodeCosts(profile, *model_, *engine_, kChunkTokens, {"f16", "q4"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(profile.decode.size(), 3u);
}

// A profile file as builds before every codec was profiled wrote it: version 1, f16 and q8 only.
std::string OldProfileJson(const std::string& fingerprint_hex) {
  return R"({
  "compute": {"a": 0.0005, "c": 2e-09, "d": 0.001},
  "cpu_name": "Old CPU",
  "decode": [
    {"codec": "f16", "seconds_per_byte": 1e-09, "seconds_per_chunk": 0.0},
    {"codec": "q8", "seconds_per_byte": 3e-09, "seconds_per_chunk": 0.0}
  ],
  "decode_on_spare_core": false,
  "format": "sparkv-profile",
  "model_fingerprint": ")" + fingerprint_hex + R"(",
  "n_threads": 2,
  "version": 1
}
)";
}

TEST_F(ProfilerTest, OldSavedProfileIsCompleted) {
  testing::TempDir dir;
  const std::string path = ProfilePath(dir.path(), *model_, engine_->thread_pool().n_threads());
  ASSERT_TRUE(WriteFileAtomic(path, OldProfileJson(model_->fingerprint().Hex())).ok());
  ASSERT_TRUE(LoadProfile(path).ok()) << "the old format must still load";

  ProfileOptions options;
  options.chunk_tokens = kChunkTokens;
  Result<Profile> profile = LoadOrMeasureProfile(dir.path(), *model_, *engine_, options);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  // The saved compute fit and decode costs are kept, so only the decode costs were measured.
  EXPECT_EQ(profile->compute.a, 0.0005);
  EXPECT_EQ(profile->compute.c, 2e-09);
  EXPECT_EQ(profile->FindDecode("q8")->seconds_per_byte, 3e-09);
  for (const Codec* codec : AllCodecs()) {
    const DecodeCost* cost = profile->FindDecode(codec->name());
    ASSERT_NE(cost, nullptr) << codec->name();
    EXPECT_GT(cost->Seconds(1000), 0.0) << codec->name();
  }

  // The completed profile replaced the file, so the next run measures nothing.
  Result<Profile> saved = LoadProfile(path);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->decode.size(), AllCodecs().size());
  EXPECT_EQ(saved->compute.a, 0.0005);
}

TEST_F(ProfilerTest, OtherModelProfileIsRemeasured) {
  testing::TempDir dir;
  const std::string path = ProfilePath(dir.path(), *model_, engine_->thread_pool().n_threads());
  ASSERT_TRUE(WriteFileAtomic(path, OldProfileJson("0123456789abcdef0123456789abcdef")).ok());
  ProfileOptions options;
  options.chunk_tokens = kChunkTokens;
  Result<Profile> profile = LoadOrMeasureProfile(dir.path(), *model_, *engine_, options);
  ASSERT_TRUE(profile.ok()) << profile.status().ToString();
  EXPECT_EQ(profile->model_fingerprint_hex, model_->fingerprint().Hex());
  EXPECT_NE(profile->compute.a, 0.0005);
  EXPECT_EQ(profile->decode.size(), AllCodecs().size());
}

}  // namespace
}  // namespace sparkv
