// CRC32C (Castagnoli): the checksum of every superblock and slot copy on the log device.
// Chosen over CRC32 because it detects more error patterns at this block size and is the
// checksum storage formats commonly use (ext4 metadata, iSCSI, LevelDB).
#pragma once

#include <cstdint>
#include <span>

namespace clogd::region {

// CRC32C of `data` (reflected polynomial 0x82F63B78, initial value ~0, final xor ~0).
// Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(std::span<const uint8_t> data);

// CRC32C of A||data, given crc == Crc32c(A). Crc32cExtend(0, data) == Crc32c(data).
uint32_t Crc32cExtend(uint32_t crc, std::span<const uint8_t> data);

}  // namespace clogd::region
