// Parsed model of a device-mapper `mirror` target line (dm-raid1) and its exact formatter.
// Covers every log form a clustered mirror can carry (core, disk, userspace clustered-core /
// clustered-disk as LVM 2.02 emitted, and the historic `cluster` seed syntax), plus the
// rewrites the leg-failure path needs (drop a leg, add a leg). No exceptions: every
// fallible call returns Expected<T>, a value or a TableError whose message names the bad
// argument, its value and its position ("argument N", counted from 1 in the given text).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace clogd::dmtable {

// dm-raid1 accepts 2..MAX_NR_MIRRORS legs, MAX_NR_MIRRORS = DM_KCOPYD_MAX_REGIONS + 1 = 9.
inline constexpr unsigned kMinLegs = 2;
inline constexpr unsigned kMaxLegs = 9;
// dm-log refuses region sizes below 2 sectors (and above the target length).
inline constexpr uint32_t kMinRegionSize = 2;
// The kernel's uuid buffer is DM_UUID_LEN = 129 bytes including the terminating NUL.
inline constexpr std::size_t kMaxUuidLength = 128;

// Why a table line (or a rewrite) was refused. The message starts with "mirror table: ".
struct TableError {
  std::string message;
  bool operator==(const TableError&) const = default;
};

// A T, or the TableError saying why there is none. Deliberately tiny: ok(), value(),
// error(), and pointer-style access. Check ok() first: value() on an error, or error() on
// a value, is a programming error and aborts (no exceptions are thrown).
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}           // NOLINT: implicit by design
  Expected(TableError error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return *Checked(std::get_if<T>(&v_)); }
  const T& value() const& { return *Checked(std::get_if<T>(&v_)); }
  T&& value() && { return std::move(*Checked(std::get_if<T>(&v_))); }
  const TableError& error() const { return *Checked(std::get_if<TableError>(&v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  template <typename P>
  static P* Checked(P* p) {
    if (p == nullptr) std::abort();
    return p;
  }

  std::variant<T, TableError> v_;
};

// The dirty-log type named after `mirror`.
enum class LogKind : uint8_t {
  kCore,       // core <region_size> [[no]sync] [block_on_error]
  kDisk,       // disk <logdev> <region_size> [[no]sync] [block_on_error]
  kUserspace,  // userspace <uuid> [integrated_flush] clustered-core|clustered-disk ...
  kCluster,    // cluster <disk|core> <uuid> [logdev] <region_size> ... (seed syntax)
};

// The optional [[no]sync] log argument.
enum class SyncMode : uint8_t {
  kDefault,  // neither given: resync what the log says is out of sync
  kSync,     // "sync": force a full resync
  kNoSync,   // "nosync": assume the legs are in sync
};

const char* LogKindName(LogKind kind);    // "core", "disk", "userspace", "cluster"
const char* SyncModeName(SyncMode mode);  // "", "sync", "nosync"

// The log part of the table. Which fields apply depends on kind:
//   core:      region_size, sync, block_on_error
//   disk:      device, region_size, sync, block_on_error
//   userspace: uuid, integrated_flush, clustered_disk, device (iff clustered_disk), ...
//   cluster:   uuid, clustered_disk ("disk" vs "core"), device (iff clustered_disk), ...
// Fields that do not apply must stay empty/false (Validate() checks this).
struct LogSpec {
  LogKind kind = LogKind::kCore;
  std::string uuid;
  bool integrated_flush = false;
  bool clustered_disk = false;
  std::string device;        // a path ("/dev/sda") or "major:minor"
  uint32_t region_size = 0;  // sectors, a power of two >= 2
  SyncMode sync = SyncMode::kDefault;
  bool block_on_error = false;

  bool operator==(const LogSpec&) const = default;
};

// One mirror leg: a device and the sector offset on it where the mirror's data starts.
struct Leg {
  std::string device;   // a path or "major:minor"
  uint64_t offset = 0;  // sectors

  bool operator==(const Leg&) const = default;
};

// A whole `mirror` target. start/length are 0 for a table parsed with ParseParams
// (length 0 means "unknown": the region size is then not checked against it).
struct MirrorTable {
  uint64_t start = 0;   // sectors
  uint64_t length = 0;  // sectors
  LogSpec log;
  std::vector<Leg> legs;  // the first is the primary (resync source)
  bool handle_errors = false;
  bool keep_log = false;  // requires handle_errors (the kernel refuses it alone)

  bool operator==(const MirrorTable&) const = default;
};

// Parses a full target line: "<start> <length> mirror <log type> <#log args> <log args...>
// <#legs> <dev> <offset>... [<#features> <feature>...]". Words are separated by any
// whitespace (a trailing newline, as dmsetup prints it, is fine).
Expected<MirrorTable> Parse(std::string_view line);

// Parses only the target parameters (everything after "mirror"), as libdevmapper hands
// them out; start and length of the result are 0.
Expected<MirrorTable> ParseParams(std::string_view params);

// The canonical line: single spaces, log options in the order [[no]sync] [block_on_error],
// features in the order handle_errors keep_log, no "0" feature count. For a table that
// passes Validate(), Parse(Format(t)) == t. Format of an invalid table is unspecified text.
std::string Format(const MirrorTable& table);
// The canonical parameters (Format without "<start> <length> mirror ").
std::string FormatParams(const MirrorTable& table);

// Checks a table built by hand against everything Parse enforces; nullopt when valid.
std::optional<TableError> Validate(const MirrorTable& table);

// The table without the leg on `device` (matched exactly as written in the table).
// Refused when no leg has that device, or when fewer than kMinLegs legs would remain
// (dm-raid1 refuses such a table; the caller must replace the mirror by a linear target).
Expected<MirrorTable> WithoutLeg(const MirrorTable& table, std::string_view device);

// The table with a new last leg. Refused when the device is malformed, already a leg or
// the log device, or when the table already has kMaxLegs legs.
Expected<MirrorTable> WithLeg(const MirrorTable& table, std::string_view device, uint64_t offset);

// The log device (disk, userspace clustered-disk, cluster disk), or nullopt for core logs.
std::optional<std::string> LogDevice(const MirrorTable& table);

// True for the cluster-wide log forms (userspace and cluster).
bool IsClustered(const MirrorTable& table);

// The number of log arguments the table's log type takes (the <#log args> Format writes).
unsigned LogArgCount(const LogSpec& log);

}  // namespace clogd::dmtable
