// RequestRecord: the last kernel seq taken, in a shared mapping of a tmpfs file.
#include "logd/request_record.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace clogd::logd {
namespace {

constexpr uint32_t kMagic = 0x51534c43;  // "CLSQ"
constexpr uint32_t kVersion = 1;
constexpr size_t kWords = 4;
constexpr size_t kSize = kWords * sizeof(uint32_t);

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

Result<RequestRecord> RequestRecord::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return IoError(Errno("cannot open the request record", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = IoError(Errno("cannot stat the request record", path));
    ::close(fd);
    return s;
  }
  const bool fresh = st.st_size == 0;
  if (!fresh && st.st_size != static_cast<off_t>(kSize)) {
    ::close(fd);
    return Corrupt("the request record " + path + " is " + std::to_string(st.st_size) +
                   " bytes, not " + std::to_string(kSize) + ": not a clogd request record");
  }
  if (fresh && ::ftruncate(fd, kSize) != 0) {
    Status s = IoError(Errno("cannot size the request record", path));
    ::close(fd);
    return s;
  }
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (map == MAP_FAILED) return IoError(Errno("cannot map the request record", path));
  auto* words = static_cast<uint32_t*>(map);
  if (!fresh && (words[0] != kMagic || words[1] != kVersion)) {
    Status s = Corrupt("the request record " + path + " has magic " + std::to_string(words[0]) +
                       " version " + std::to_string(words[1]) + ": not a clogd request record");
    ::munmap(map, kSize);
    return s;
  }
  RequestRecord record(words);
  if (!fresh && words[3] == 1) record.previous_last_ = words[2];
  words[0] = kMagic;
  words[1] = kVersion;
  words[3] = 0;  // nothing taken by this process yet
  return record;
}

RequestRecord::RequestRecord(RequestRecord&& other) noexcept
    : words_(other.words_), previous_last_(other.previous_last_) {
  other.words_ = nullptr;
}

RequestRecord& RequestRecord::operator=(RequestRecord&& other) noexcept {
  if (this != &other) {
    if (words_ != nullptr) ::munmap(words_, kSize);
    words_ = other.words_;
    previous_last_ = other.previous_last_;
    other.words_ = nullptr;
  }
  return *this;
}

RequestRecord::~RequestRecord() {
  if (words_ != nullptr) ::munmap(words_, kSize);
}

void RequestRecord::Note(uint32_t seq) {
  if (words_ == nullptr) return;
  // Plain stores into the shared page: they reach the file when the process dies however
  // it dies (the page cache holds them); the seq before the flag, so a set flag never
  // pairs with a stale seq from this process.
  std::atomic_ref<uint32_t>(words_[2]).store(seq, std::memory_order_relaxed);
  std::atomic_ref<uint32_t>(words_[3]).store(1, std::memory_order_release);
}

std::vector<uint32_t> RequestRecord::SeqsToRelease(uint32_t last) {
  std::vector<uint32_t> seqs;
  seqs.reserve(kReleaseBehind + 1 + kReleaseAhead);
  for (uint32_t ahead = kReleaseAhead; ahead > 0; --ahead) seqs.push_back(last + ahead);
  for (uint32_t back = 0; back <= kReleaseBehind; ++back) seqs.push_back(last - back);
  return seqs;
}

std::string RequestRecordPathFor(const std::string& pidfile_path) {
  constexpr std::string_view kPid = ".pid";
  if (pidfile_path.size() > kPid.size() && pidfile_path.ends_with(kPid)) {
    return pidfile_path.substr(0, pidfile_path.size() - kPid.size()) + ".seq";
  }
  return pidfile_path + ".seq";
}

}  // namespace clogd::logd
