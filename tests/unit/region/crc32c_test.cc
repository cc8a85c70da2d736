// CRC32C: the standard check value, RFC 3720 vectors, Extend and a bitwise reference.
#include "region/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace clogd::region {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// One bit at a time, straight from the definition.
uint32_t Reference(std::span<const uint8_t> data) {
  uint32_t c = 0xFFFFFFFF;
  for (uint8_t byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78 : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c(Bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c({}), 0u);
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), ascending(32);
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, MatchesBitwiseReferenceAndExtends) {
  std::mt19937 rng(7);
  for (size_t len : {0u, 1u, 7u, 8u, 9u, 15u, 16u, 17u, 100u, 4092u, 4096u}) {
    std::vector<uint8_t> data(len);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    const uint32_t whole = Crc32c(data);
    EXPECT_EQ(whole, Reference(data)) << len;
    for (size_t split = 0; split <= len; split += len / 3 + 1) {
      std::span<const uint8_t> s(data);
      EXPECT_EQ(Crc32cExtend(Crc32c(s.first(split)), s.subspan(split)), whole) << len;
    }
  }
}

}  // namespace
}  // namespace clogd::region
