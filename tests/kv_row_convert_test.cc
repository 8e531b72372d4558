#include "kv/row_convert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace sparkv::internal {
namespace {

bool IsF16Nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

TEST(RowConvert, F16ToF32MatchesScalarOnEveryPattern) {
  std::vector<uint8_t> f16(2 * 65536 + 3);
  for (size_t offset : {0, 1, 3}) {
    for (uint32_t h = 0; h < 65536; ++h) {
      const uint16_t value = static_cast<uint16_t>(h);
      std::memcpy(f16.data() + offset + 2 * h, &value, 2);
    }
    // Lengths 0..40 exercise the tail; the full range exercises the vector loop.
    for (int64_t n : std::vector<int64_t>{0, 1, 7, 8, 9, 23, 40, 65536}) {
      std::vector<uint8_t> fast(4 * n + 1), reference(4 * n + 1);
      ConvertF16ToF32(f16.data() + offset, n, fast.data() + (offset & 1));
      ConvertF16ToF32Scalar(f16.data() + offset, n, reference.data() + (offset & 1));
      for (int64_t i = 0; i < n; ++i) {
        float a, b;
        std::memcpy(&a, fast.data() + (offset & 1) + 4 * i, 4);
        std::memcpy(&b, reference.data() + (offset & 1) + 4 * i, 4);
        if (std::isnan(b)) {
          ASSERT_TRUE(std::isnan(a)) << "pattern " << i;
        } else {
          ASSERT_EQ(std::memcmp(&a, &b, 4), 0) << "pattern " << i << " offset " << offset;
        }
      }
    }
  }
}

TEST(RowConvert, F32ToF16MatchesScalarOnTies) {
  std::mt19937 rng(3);
  std::vector<float> values;
  // Every finite f16 value and the exact midpoints between neighbours: the ties-to-even cases.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    uint16_t lo = static_cast<uint16_t>(h);
    uint16_t hi = static_cast<uint16_t>(h + 1);
    float a, b;
    std::vector<uint8_t> pair(4), out(8);
    std::memcpy(pair.data(), &lo, 2);
    std::memcpy(pair.data() + 2, &hi, 2);
    ConvertF16ToF32Scalar(pair.data(), 2, out.data());
    std::memcpy(&a, out.data(), 4);
    std::memcpy(&b, out.data() + 4, 4);
    for (float sign : {1.0f, -1.0f}) {
      values.push_back(sign * a);
      values.push_back(sign * (a + (b - a) / 2));
    }
  }
  // Random magnitudes from below the smallest f16 subnormal to past the largest f16.
  std::uniform_int_distribution<int> exponent(-30, 17);
  for (int i = 0; i < 100000; ++i) {
    const float magnitude = std::ldexp(1.0f + static_cast<float>(i % 97) / 97.0f, exponent(rng));
    values.push_back((i & 1) ? -magnitude : magnitude);
  }
  for (float special : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e30f, std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                        std::numeric_limits<float>::quiet_NaN()}) {
    values.push_back(special);
  }

  for (size_t offset : {0, 2}) {
    const int64_t n = static_cast<int64_t>(values.size());
    const size_t n_bytes = values.size() * sizeof(float);
    std::vector<uint8_t> input(n_bytes + 2);
    std::memcpy(input.data() + offset, values.data(), n_bytes);
    std::vector<uint8_t> fast(2 * n + 1), reference(2 * n + 1);
    ConvertF32ToF16(input.data() + offset, n, fast.data() + offset / 2);
    ConvertF32ToF16Scalar(input.data() + offset, n, reference.data() + offset / 2);
    for (int64_t i = 0; i < n; ++i) {
      uint16_t a, b;
      std::memcpy(&a, fast.data() + offset / 2 + 2 * i, 2);
      std::memcpy(&b, reference.data() + offset / 2 + 2 * i, 2);
      if (IsF16Nan(b)) {
        ASSERT_TRUE(IsF16Nan(a)) << values[i];
      } else {
        ASSERT_EQ(a, b) << "value " << values[i] << " index " << i;
      }
    }
  }
}

}  // namespace
}  // namespace sparkv::internal
