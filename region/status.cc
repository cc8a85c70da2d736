// Status names and the errno mapping the kernel sees in dm_ulog_request.error.
#include "region/status.h"

namespace clogd {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kOk:
      return "ok";
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kOutOfRange:
      return "out of range";
    case Errc::kIoError:
      return "I/O error";
    case Errc::kCorrupt:
      return "corrupt";
    case Errc::kUnsupportedVersion:
      return "unsupported version";
    case Errc::kNoSpace:
      return "no space";
    case Errc::kNotFound:
      return "not found";
    case Errc::kBusy:
      return "busy";
  }
  return "unknown error";
}

int Status::ToErrno() const {
  switch (code_) {
    case Errc::kOk:
      return 0;
    case Errc::kInvalidArgument:
    case Errc::kOutOfRange:
    case Errc::kUnsupportedVersion:
      return -EINVAL;
    case Errc::kIoError:
    case Errc::kCorrupt:
      return -EIO;
    case Errc::kNoSpace:
      return -ENOSPC;
    case Errc::kNotFound:
      return -ENOENT;
    case Errc::kBusy:
      return -EBUSY;
  }
  return -EIO;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(ErrcName(code_)) + ": " + message_;
}

}  // namespace clogd
