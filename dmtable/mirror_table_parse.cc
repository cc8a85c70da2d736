// Parser for device-mapper `mirror` target lines (Parse, ParseParams). It reads the log
// arguments by their grammar (each position has a distinct shape: device, number or
// keyword) and only then compares the count with <#log args>, so a wrong count is reported
// with both numbers and a missing argument by its name.
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "dmtable/mirror_table.h"
#include "dmtable/table_text.h"

namespace clogd::dmtable {
namespace {

using text::AllDigits;
using text::DeviceProblem;
using text::Err;
using text::Num;
using text::ParseUnsigned;
using text::Plural;
using text::Quote;
using text::Split;

bool IsOption(std::string_view w) { return w == "sync" || w == "nosync" || w == "block_on_error"; }

bool IsKeyword(std::string_view w) {
  return IsOption(w) || w == "integrated_flush" || w == "clustered-core" || w == "clustered-disk";
}

bool IsFeature(std::string_view w) { return w == "handle_errors" || w == "keep_log"; }

// Walks the words of a line; Arg() is the 1-based argument number of the current word.
class Cursor {
 public:
  Cursor(std::vector<std::string_view> words, std::size_t base)
      : words_(std::move(words)), base_(base) {}

  bool Done() const { return i_ >= words_.size(); }
  std::string_view Peek() const { return Done() ? std::string_view() : words_[i_]; }
  std::string_view Next() { return words_[i_++]; }
  std::size_t Index() const { return i_; }
  std::size_t Arg() const { return base_ + i_; }
  // The words [from, Index()) joined by single spaces.
  std::string Since(std::size_t from) const {
    std::string out;
    for (std::size_t j = from; j < i_ && j < words_.size(); ++j) {
      if (!out.empty()) out += ' ';
      out += words_[j];
    }
    return out;
  }
  // " (argument N)" for the current word.
  std::string At() const { return " (argument " + std::to_string(Arg()) + ")"; }
  // What stands where something was expected: "found 'x', argument N" or "end of line".
  std::string Found() const {
    if (Done()) return "end of line";
    return "found " + Quote(Peek()) + ", argument " + std::to_string(Arg());
  }

 private:
  std::vector<std::string_view> words_;
  std::size_t base_;
  std::size_t i_ = 0;
};

// Parser state shared by the pieces below.
struct Parser {
  Cursor c;
  uint64_t length;  // 0: unknown
  MirrorTable t;

  std::optional<TableError> Device(const std::string& what, std::string* out) {
    if (Done() || AllDigits(c.Peek()) || IsKeyword(c.Peek())) {
      return Err(what + ": missing log device (" + c.Found() + ")");
    }
    std::string problem = DeviceProblem(c.Peek());
    if (!problem.empty()) {
      return Err(what + ": log device " + Quote(c.Peek()) + " " + problem + c.At());
    }
    *out = std::string(c.Next());
    return std::nullopt;
  }

  std::optional<TableError> Uuid(const std::string& what) {
    if (Done() || IsKeyword(c.Peek())) {
      return Err(what + ": missing uuid (" + c.Found() + ")");
    }
    if (c.Peek().size() > kMaxUuidLength) {
      return Err(what + ": uuid " + Quote(c.Peek()) + c.At() + " is " +
                 std::to_string(c.Peek().size()) + " characters long (at most " +
                 std::to_string(kMaxUuidLength) + ")");
    }
    t.log.uuid = std::string(c.Next());
    return std::nullopt;
  }

  std::optional<TableError> RegionSize(const std::string& what) {
    if (Done() || IsKeyword(c.Peek()) || DeviceProblem(c.Peek()).empty()) {
      return Err(what + ": missing region size (" + c.Found() + ")");
    }
    std::string_view w = c.Peek();
    uint64_t v = 0;
    switch (ParseUnsigned(w, std::numeric_limits<uint32_t>::max(), &v)) {
      case Num::kNotNumber:
        return Err("region size " + Quote(w) + " is not a number" + c.At());
      case Num::kOutOfRange:
        return Err("region size " + Quote(w) + " is out of range" + c.At() +
                   "; at most 4294967295 sectors");
      case Num::kOk:
        break;
    }
    if (v < kMinRegionSize) {
      return Err("region size " + std::to_string(v) + c.At() +
                 " must be a power of two of at least 2 sectors");
    }
    if ((v & (v - 1)) != 0) {
      return Err("region size " + std::to_string(v) + c.At() + " is not a power of two");
    }
    if (length != 0 && v > length) {
      return Err("region size " + std::to_string(v) + c.At() + " exceeds the target length " +
                 std::to_string(length));
    }
    t.log.region_size = static_cast<uint32_t>(v);
    c.Next();
    return std::nullopt;
  }

  // [[no]sync] [block_on_error], in any order, each at most once.
  std::optional<TableError> Options() {
    while (!Done() && IsOption(c.Peek())) {
      std::string_view w = c.Peek();
      if (w == "block_on_error") {
        if (t.log.block_on_error) return Err("'block_on_error' given twice" + c.At());
        t.log.block_on_error = true;
      } else {
        SyncMode mode = w == "sync" ? SyncMode::kSync : SyncMode::kNoSync;
        if (t.log.sync == mode) return Err(Quote(w) + " given twice" + c.At());
        if (t.log.sync != SyncMode::kDefault) {
          return Err("both 'sync' and 'nosync' given" + c.At());
        }
        t.log.sync = mode;
      }
      c.Next();
    }
    return std::nullopt;
  }

  bool Done() const { return c.Done(); }

  std::optional<TableError> LogArgs();
  std::optional<TableError> Legs();
  std::optional<TableError> Features();
  std::optional<TableError> Params();
};

std::optional<TableError> Parser::LogArgs() {
  LogSpec& log = t.log;
  const std::string what = std::string(LogKindName(log.kind)) + " log";
  switch (log.kind) {
    case LogKind::kCore:
      break;
    case LogKind::kDisk:
      if (auto e = Device(what, &log.device)) return e;
      break;
    case LogKind::kUserspace: {
      if (auto e = Uuid(what)) return e;
      if (c.Peek() == "integrated_flush") {
        log.integrated_flush = true;
        c.Next();
      }
      if (Done()) return Err(what + ": missing clustered-core or clustered-disk (end of line)");
      std::string_view type = c.Peek();
      if (type != "clustered-core" && type != "clustered-disk") {
        return Err(what + ": unknown log type " + Quote(type) + c.At() +
                   " (expected clustered-core or clustered-disk)");
      }
      c.Next();
      log.clustered_disk = type == "clustered-disk";
      if (log.clustered_disk) {
        if (auto e = Device(what, &log.device)) return e;
      }
      break;
    }
    case LogKind::kCluster: {
      if (Done()) return Err(what + ": missing disk or core (end of line)");
      std::string_view type = c.Peek();
      if (type != "disk" && type != "core") {
        return Err(what + ": type " + Quote(type) + c.At() + " is not disk or core");
      }
      c.Next();
      log.clustered_disk = type == "disk";
      if (auto e = Uuid(what)) return e;
      if (log.clustered_disk) {
        if (auto e = Device(what, &log.device)) return e;
      }
      break;
    }
  }
  if (auto e = RegionSize(what)) return e;
  return Options();
}

std::optional<TableError> Parser::Legs() {
  if (Done()) return Err("missing #legs (end of line)");
  std::string_view w = c.Peek();
  uint64_t n = 0;
  if (ParseUnsigned(w, std::numeric_limits<uint32_t>::max(), &n) != Num::kOk) {
    if (AllDigits(w)) return Err("#legs " + Quote(w) + " is out of range" + c.At());
    return Err("#legs " + Quote(w) + " is not a number" + c.At());
  }
  if (n < kMinLegs) {
    return Err("#legs is " + std::to_string(n) + c.At() + "; dm-raid1 needs at least " +
               std::to_string(kMinLegs) + " legs");
  }
  if (n > kMaxLegs) {
    return Err("#legs is " + std::to_string(n) + c.At() + "; dm-raid1 allows at most " +
               std::to_string(kMaxLegs) + " legs (MAX_NR_MIRRORS)");
  }
  c.Next();
  for (uint64_t i = 1; i <= n; ++i) {
    const std::string leg = "leg " + std::to_string(i);
    if (Done()) {
      return Err("#legs is " + std::to_string(n) + " but only " +
                 Plural(i - 1, "leg follows", "legs follow"));
    }
    std::string_view dev = c.Peek();
    std::string problem = DeviceProblem(dev);
    if (!problem.empty()) {
      return Err(leg + " device " + Quote(dev) + " " + problem + c.At() + "; #legs is " +
                 std::to_string(n));
    }
    for (std::size_t j = 0; j < t.legs.size(); ++j) {
      if (t.legs[j].device == dev) {
        return Err(leg + " device " + Quote(dev) + c.At() + " repeats leg " +
                   std::to_string(j + 1));
      }
    }
    if (t.log.device == dev) {
      return Err(leg + " device " + Quote(dev) + c.At() + " is also the log device");
    }
    c.Next();
    if (Done()) return Err(leg + " (" + Quote(dev) + ") has no offset (end of line)");
    std::string_view off = c.Peek();
    uint64_t offset = 0;
    switch (ParseUnsigned(off, std::numeric_limits<uint64_t>::max(), &offset)) {
      case Num::kNotNumber:
        return Err(leg + " offset " + Quote(off) + " is not a number" + c.At());
      case Num::kOutOfRange:
        return Err(leg + " offset " + Quote(off) + " is out of range" + c.At());
      case Num::kOk:
        break;
    }
    c.Next();
    t.legs.push_back(Leg{std::string(dev), offset});
  }
  return std::nullopt;
}

std::optional<TableError> Parser::Features() {
  if (Done()) return std::nullopt;
  std::string_view w = c.Peek();
  uint64_t n = 0;
  switch (ParseUnsigned(w, std::numeric_limits<uint32_t>::max(), &n)) {
    case Num::kNotNumber:
      if (DeviceProblem(w).empty()) {
        return Err("#legs is " + std::to_string(t.legs.size()) + " but device " + Quote(w) +
                   c.At() + " follows the last leg");
      }
      return Err("unexpected " + Quote(w) + " after the legs" + c.At() + "; expected #features");
    case Num::kOutOfRange:
      return Err("#features " + Quote(w) + " is out of range" + c.At());
    case Num::kOk:
      break;
  }
  c.Next();
  for (uint64_t i = 0; i < n; ++i) {
    if (Done()) {
      return Err("#features is " + std::to_string(n) + " but " +
                 Plural(i, "feature follows", "features follow"));
    }
    std::string_view f = c.Peek();
    bool* flag = f == "handle_errors" ? &t.handle_errors : f == "keep_log" ? &t.keep_log : nullptr;
    if (flag == nullptr) {
      return Err("unknown feature " + Quote(f) + c.At() + " (expected handle_errors or keep_log)");
    }
    if (*flag) return Err("feature " + Quote(f) + " given twice" + c.At());
    *flag = true;
    c.Next();
  }
  if (!Done()) {
    if (IsFeature(c.Peek())) {
      uint64_t more = 0;
      Cursor probe = c;
      while (!probe.Done() && IsFeature(probe.Peek())) {
        ++more;
        probe.Next();
      }
      if (probe.Done()) {
        return Err("#features is " + std::to_string(n) + " but " +
                   Plural(n + more, "feature follows", "features follow"));
      }
    }
    return Err("trailing argument " + Quote(c.Peek()) + c.At() + " after the features");
  }
  if (t.keep_log && !t.handle_errors) {
    return Err("feature keep_log requires the handle_errors feature");
  }
  return std::nullopt;
}

// <log type> <#log args> <log args...> <#legs> <dev> <offset>... [<#features> <feature>...]
std::optional<TableError> Parser::Params() {
  if (Done()) return Err("missing log type (end of line)");
  std::string_view type = c.Peek();
  if (type == "core") {
    t.log.kind = LogKind::kCore;
  } else if (type == "disk") {
    t.log.kind = LogKind::kDisk;
  } else if (type == "userspace") {
    t.log.kind = LogKind::kUserspace;
  } else if (type == "cluster") {
    t.log.kind = LogKind::kCluster;
  } else {
    return Err("unknown log type " + Quote(type) + c.At() +
               " (expected core, disk, userspace or cluster)");
  }
  c.Next();
  if (Done()) return Err("missing #log args (end of line)");
  std::string_view count_word = c.Peek();
  uint64_t declared = 0;
  switch (ParseUnsigned(count_word, std::numeric_limits<uint32_t>::max(), &declared)) {
    case Num::kNotNumber:
      return Err("#log args " + Quote(count_word) + " is not a number" + c.At());
    case Num::kOutOfRange:
      return Err("#log args " + Quote(count_word) + " is out of range" + c.At());
    case Num::kOk:
      break;
  }
  const std::size_t count_arg = c.Arg();
  c.Next();
  const std::size_t first = c.Index();
  if (auto e = LogArgs()) return e;
  const uint64_t found = c.Index() - first;
  if (declared != found) {
    // A word inside the declared range that is neither a number (the #legs) nor a known
    // log argument is the real problem; otherwise the count is wrong.
    if (declared > found && !Done() && !AllDigits(c.Peek())) {
      return Err("unknown log argument " + Quote(c.Peek()) + c.At() +
                 " (expected sync, nosync or block_on_error)");
    }
    return Err("#log args is " + std::to_string(declared) + " (argument " +
               std::to_string(count_arg) + ") but " +
               Plural(found, "log argument follows", "log arguments follow") + " (" +
               Quote(c.Since(first)) + ")");
  }
  if (auto e = Legs()) return e;
  return Features();
}

Expected<MirrorTable> ParseWords(std::vector<std::string_view> words, std::size_t base,
                                 uint64_t start, uint64_t length) {
  Parser p{Cursor(std::move(words), base), length, MirrorTable{}};
  p.t.start = start;
  p.t.length = length;
  if (auto e = p.Params()) return *e;
  return std::move(p.t);
}

}  // namespace

Expected<MirrorTable> Parse(std::string_view line) {
  std::vector<std::string_view> words = Split(line);
  if (words.empty()) return Err("empty line");
  uint64_t start = 0;
  uint64_t length = 0;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  switch (ParseUnsigned(words[0], max, &start)) {
    case Num::kNotNumber:
      return Err("start " + Quote(words[0]) + " is not a number (argument 1)");
    case Num::kOutOfRange:
      return Err("start " + Quote(words[0]) + " is out of range (argument 1)");
    case Num::kOk:
      break;
  }
  if (words.size() < 2) return Err("missing length (end of line)");
  switch (ParseUnsigned(words[1], max, &length)) {
    case Num::kNotNumber:
      return Err("length " + Quote(words[1]) + " is not a number (argument 2)");
    case Num::kOutOfRange:
      return Err("length " + Quote(words[1]) + " is out of range (argument 2)");
    case Num::kOk:
      break;
  }
  if (length == 0) return Err("length 0 (argument 2): a target needs at least one sector");
  if (start > max - length) {
    return Err("start " + std::to_string(start) + " + length " + std::to_string(length) +
               " overflows");
  }
  if (words.size() < 3) return Err("missing target type (end of line)");
  if (words[2] != "mirror") {
    return Err("target type is " + Quote(words[2]) + " (argument 3): not a mirror target");
  }
  words.erase(words.begin(), words.begin() + 3);
  return ParseWords(std::move(words), 4, start, length);
}

Expected<MirrorTable> ParseParams(std::string_view params) {
  std::vector<std::string_view> words = Split(params);
  if (words.empty()) return Err("empty parameters");
  return ParseWords(std::move(words), 1, 0, 0);
}

}  // namespace clogd::dmtable
