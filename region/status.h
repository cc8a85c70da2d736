// Errors as values for the core: Status (ok or a code plus a message naming what is
// wrong) and Result<T> (a value or a non-ok Status). Exceptions never cross the core;
// they stop at the program edges (main, CLI parsing).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace clogd {

enum class Errc {
  kOk = 0,
  kInvalidArgument,     // bad input from a caller: request, table line, CTR string
  kOutOfRange,          // a region number or offset past the end
  kIoError,             // the device said no
  kCorrupt,             // bad magic or checksum on disk, malformed message
  kUnsupportedVersion,  // a format or protocol version we do not speak
  kNoSpace,             // the device is too small for what was asked
  kNotFound,            // no such log, slot or node
  kBusy,                // the operation conflicts with one in progress
};

// Returns a short lower-case name for an error code ("invalid argument", ...).
const char* ErrcName(Errc code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Errc::kOk; }
  Errc code() const { return code_; }
  const std::string& message() const { return message_; }

  // The negative errno the kernel should see for this status (0 when ok).
  int ToErrno() const;
  // "<code name>: <message>", or "ok".
  std::string ToString() const;

 private:
  Errc code_ = Errc::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Errc::kInvalidArgument, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {Errc::kOutOfRange, std::move(m)}; }
inline Status IoError(std::string m) { return {Errc::kIoError, std::move(m)}; }
inline Status Corrupt(std::string m) { return {Errc::kCorrupt, std::move(m)}; }
inline Status UnsupportedVersion(std::string m) {
  return {Errc::kUnsupportedVersion, std::move(m)};
}
inline Status NoSpace(std::string m) { return {Errc::kNoSpace, std::move(m)}; }
inline Status NotFound(std::string m) { return {Errc::kNotFound, std::move(m)}; }
inline Status Busy(std::string m) { return {Errc::kBusy, std::move(m)}; }

// A value of type T, or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status(Errc::kInvalidArgument, "ok status as error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace clogd

// Propagates a non-ok Status from an expression returning Status.
#define CLOG_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::clogd::Status clog_status_ = (expr);       \
    if (!clog_status_.ok()) return clog_status_; \
  } while (0)
