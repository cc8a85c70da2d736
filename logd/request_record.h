// RequestRecord: the seq of the last kernel request clogd took, kept in a small file on
// tmpfs (by default /run/clogd.seq, beside the pidfile) through a shared mapping, so the
// record outlives the process at the cost of one store per request.
//
// Why: dm-log-userspace's transfer waits 15 s for the answer to a request before it resends
// it ("Request timed out ... - retrying"). A clogd killed after it took a request and before
// it answered leaves the kernel's writes on that mirror stalled for those 15 s. A restarted
// clogd reads the record and answers the seqs around the last one with -EAGAIN, on which the
// kernel resends at once; the kernel ignores an answer to a seq it no longer waits for, and
// an -EAGAIN to a request it does wait for only makes it send that request again, so the
// release can never change what the kernel is told.
//
// Format (native byte order, 16 bytes): u32 magic 0x51534c43 ("CLSQ"), u32 version 1,
// u32 last seq taken, u32 1 once a request was taken (0: none yet).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "region/status.h"

namespace clogd::logd {

class RequestRecord {
 public:
  // Seqs released around the previous process's last one: the kernel can have several
  // requests in flight (one per waiting thread), and some may have been sent after the last
  // one the dead process read, still queued on its socket.
  static constexpr uint32_t kReleaseBehind = 64;
  static constexpr uint32_t kReleaseAhead = 64;

  // Opens (creating it, mode 0600) the record at `path` and maps it. A file that is not a
  // record (wrong size, magic or version) is named in the error and left as it is.
  static Result<RequestRecord> Open(const std::string& path);

  RequestRecord(RequestRecord&& other) noexcept;
  RequestRecord& operator=(RequestRecord&& other) noexcept;
  RequestRecord(const RequestRecord&) = delete;
  RequestRecord& operator=(const RequestRecord&) = delete;
  ~RequestRecord();

  // The last seq the previous process took, as found at Open (none: a fresh record).
  std::optional<uint32_t> previous_last() const { return previous_last_; }
  // Notes that the kernel request `seq` was taken.
  void Note(uint32_t seq);

  // The seqs to answer with -EAGAIN after a restart whose predecessor last took `last`
  // (wrapping like the kernel's u32 counter), highest first: a request the kernel resends
  // takes a seq above every one it left waiting, so answering downwards never hits a resend
  // (upwards, each -EAGAIN would hit the resend of the one before, up the whole window).
  static std::vector<uint32_t> SeqsToRelease(uint32_t last);

 private:
  explicit RequestRecord(uint32_t* words) : words_(words) {}
  uint32_t* words_ = nullptr;  // the mapping: magic, version, last seq, taken
  std::optional<uint32_t> previous_last_;
};

// "/run/clogd.pid" -> "/run/clogd.seq" (a path not ending in ".pid" gets ".seq" appended).
std::string RequestRecordPathFor(const std::string& pidfile_path);

}  // namespace clogd::logd
