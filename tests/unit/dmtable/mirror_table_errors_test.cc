// Unit tests for dmtable/mirror_table: every malformed table line is refused with a message
// that names the problem, the bad value and (where there is one) its argument position.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dmtable/mirror_table.h"

namespace clogd::dmtable {
namespace {

struct BadCase {
  std::string name;
  std::string line;
  std::vector<std::string> expect;  // substrings of the message
};

void ExpectRefused(const Expected<MirrorTable>& r, const BadCase& c) {
  ASSERT_FALSE(r.ok()) << c.name << ": accepted " << c.line;
  const std::string& m = r.error().message;
  EXPECT_EQ(m.rfind("mirror table: ", 0), 0u) << m;
  for (const std::string& s : c.expect) {
    EXPECT_NE(m.find(s), std::string::npos) << c.name << ": '" << s << "' not in: " << m;
  }
}

const std::string kLegs = " 2 /dev/b 0 /dev/c 0";

TEST(MirrorTableErrorsTest, BadLinesNameTheProblem) {
  const std::vector<BadCase> cases = {
      // The target itself.
      {"empty", "   ", {"empty line"}},
      {"start", "x 100 mirror core 1 2" + kLegs, {"start 'x' is not a number (argument 1)"}},
      {"no length", "0", {"missing length"}},
      {"length", "0 -5 mirror core 1 2" + kLegs, {"length '-5' is not a number"}},
      {"zero length", "0 0 mirror core 1 2" + kLegs, {"length 0"}},
      {"overflow", "18446744073709551615 2 mirror core 1 2" + kLegs, {"overflows"}},
      {"no type", "0 100", {"missing target type"}},
      {"not mirror", "0 100 linear /dev/a 0", {"'linear'", "not a mirror target"}},
      {"raid not mirror",
       "0 100 raid raid1 3 0 region_size 1024 2 - /dev/a - /dev/b",
       {"not a mirror target"}},
      // Log type and count.
      {"no log type", "0 100 mirror", {"missing log type"}},
      {"unknown log type",
       "0 100 mirror foo 1 2" + kLegs,
       {"unknown log type 'foo' (argument 4) (expected core, disk, userspace or cluster)"}},
      {"no #log args", "0 100 mirror core", {"missing #log args"}},
      {"#log args nan", "0 100 mirror core x 2" + kLegs, {"#log args 'x' is not a number"}},
      {"#log args too big",
       "0 4724028 mirror cluster 5 disk u /dev/sda 1024" + kLegs,
       {"#log args is 5 (argument 5) but 4 log arguments follow ('disk u /dev/sda 1024')"}},
      {"#log args too small",
       "0 4724028 mirror cluster 4 disk u /dev/sda 1024 nosync" + kLegs,
       {"#log args is 4 (argument 5) but 5 log arguments follow"}},
      {"#log args one",
       "0 100 mirror core 2 64" + kLegs,
       {"#log args is 2 (argument 5) but 1 log argument follows"}},
      {"unknown log arg",
       "0 100 mirror core 2 64 bogus" + kLegs,
       {"unknown log argument 'bogus' (argument 7)"}},
      // Region size.
      {"missing region size",
       "0 100 mirror core 0" + kLegs.substr(2),
       {"missing region size (found '/dev/b', argument 6)"}},
      {"region size keyword",
       "0 100 mirror core 1 nosync" + kLegs,
       {"missing region size (found 'nosync'"}},
      {"region size end", "0 100 mirror core 1", {"missing region size (end of line)"}},
      {"region size nan",
       "0 100 mirror core 1 x" + kLegs,
       {"region size 'x' is not a number (argument 6)"}},
      {"region size negative",
       "0 100 mirror core 1 -8" + kLegs,
       {"region size '-8' is not a number"}},
      {"region size zero", "0 100 mirror core 1 0" + kLegs, {"region size 0 (argument 6)"}},
      {"region size one", "0 100 mirror core 1 1" + kLegs, {"region size 1", "at least 2 sectors"}},
      {"region size not pow2",
       "0 4096 mirror core 1 1000" + kLegs,
       {"region size 1000 (argument 6) is not a power of two"}},
      {"region size huge",
       "0 100 mirror core 1 4294967296" + kLegs,
       {"region size '4294967296' is out of range"}},
      {"region size > length",
       "0 100 mirror core 1 128" + kLegs,
       {"region size 128", "exceeds the target length 100"}},
      // Log devices.
      {"disk missing device",
       "0 100 mirror disk 1 64" + kLegs,
       {"disk log: missing log device (found '64', argument 6)"}},
      {"disk device end", "0 100 mirror disk 2", {"disk log: missing log device (end of line)"}},
      {"disk bad device",
       "0 100 mirror disk 2 sda 64" + kLegs,
       {"log device 'sda' is neither a device path nor major:minor (argument 6)"}},
      {"device minor range",
       "0 100 mirror disk 2 8:1048576 64" + kLegs,
       {"'8:1048576' is out of range for major:minor"}},
      {"userspace missing device",
       "0 100 mirror userspace 3 u clustered-disk 64" + kLegs,
       {"userspace log: missing log device (found '64'"}},
      {"cluster missing device",
       "0 100 mirror cluster 3 disk u 64" + kLegs,
       {"cluster log: missing log device (found '64'"}},
      // Options.
      {"sync and nosync",
       "0 100 mirror core 3 64 sync nosync" + kLegs,
       {"both 'sync' and 'nosync' given (argument 8)"}},
      {"nosync twice", "0 100 mirror core 3 64 nosync nosync" + kLegs, {"'nosync' given twice"}},
      {"block_on_error twice",
       "0 100 mirror core 3 64 block_on_error block_on_error" + kLegs,
       {"'block_on_error' given twice"}},
      // Userspace and cluster specifics.
      {"userspace no uuid",
       "0 100 mirror userspace 3 clustered-disk /dev/l 64" + kLegs,
       {"userspace log: missing uuid (found 'clustered-disk'"}},
      {"userspace bad type",
       "0 100 mirror userspace 3 u mirrored-disk 64" + kLegs,
       {"unknown log type 'mirrored-disk' (argument 7)", "clustered-core or clustered-disk"}},
      {"userspace uuid too long",
       "0 100 mirror userspace 3 " + std::string(129, 'u') + " clustered-core 64" + kLegs,
       {"129 characters long (at most 128)"}},
      {"cluster bad type",
       "0 100 mirror cluster 3 tape u 64" + kLegs,
       {"type 'tape' (argument 6) is not disk or core"}},
      {"cluster no uuid",
       "0 100 mirror cluster 2 core 64" + kLegs,
       {"#log args is 2 (argument 5) but 3 log arguments follow ('core 64 2')"}},
      // Legs.
      {"no legs", "0 100 mirror core 1 64", {"missing #legs"}},
      {"zero legs", "0 100 mirror core 1 64 0", {"#legs is 0 (argument 7)", "at least 2"}},
      {"one leg", "0 100 mirror core 1 64 1 /dev/a 0", {"#legs is 1", "at least 2"}},
      {"too many legs", "0 100 mirror core 1 64 10", {"#legs is 10", "at most 9"}},
      {"#legs nan",
       "0 100 mirror core 1 64 two /dev/a 0 /dev/b 0",
       {"#legs 'two' is not a number (argument 7)"}},
      {"fewer legs",
       "0 100 mirror core 1 64 3 /dev/a 0 /dev/b 0",
       {"#legs is 3 but only 2 legs follow"}},
      {"more legs",
       "0 100 mirror core 1 64 2 /dev/a 0 /dev/b 0 /dev/c 0",
       {"#legs is 2 but device '/dev/c' (argument 12) follows the last leg"}},
      {"leg missing offset",
       "0 100 mirror core 1 64 2 /dev/a 0 /dev/b",
       {"leg 2 ('/dev/b') has no offset"}},
      {"leg offset nan",
       "0 100 mirror core 1 64 2 /dev/a x /dev/b 0",
       {"leg 1 offset 'x' is not a number (argument 9)"}},
      {"leg offset range",
       "0 100 mirror core 1 64 2 /dev/a 18446744073709551616 /dev/b 0",
       {"leg 1 offset '18446744073709551616' is out of range"}},
      {"leg bad device",
       "0 100 mirror core 1 64 2 /dev/a 0 sdb 0",
       {"leg 2 device 'sdb' is neither a device path nor major:minor (argument 10)"}},
      {"leg duplicate",
       "0 100 mirror core 1 64 2 /dev/a 0 /dev/a 8",
       {"leg 2 device '/dev/a' (argument 10) repeats leg 1"}},
      {"leg is log device",
       "0 100 mirror disk 2 /dev/a 64 2 /dev/a 0 /dev/b 0",
       {"leg 1 device '/dev/a'", "is also the log device"}},
      // Features.
      {"unknown feature",
       "0 100 mirror core 1 64" + kLegs + " 1 bar",
       {"unknown feature 'bar' (argument 13)"}},
      {"#features too big",
       "0 100 mirror core 1 64" + kLegs + " 2 handle_errors",
       {"#features is 2 but 1 feature follows"}},
      {"#features too small",
       "0 100 mirror core 1 64" + kLegs + " 1 handle_errors keep_log",
       {"#features is 1 but 2 features follow"}},
      {"#features nan",
       "0 100 mirror core 1 64" + kLegs + " handle_errors",
       {"unexpected 'handle_errors' after the legs (argument 12); expected #features"}},
      {"feature twice",
       "0 100 mirror core 1 64" + kLegs + " 2 handle_errors handle_errors",
       {"feature 'handle_errors' given twice"}},
      {"keep_log alone",
       "0 100 mirror core 1 64" + kLegs + " 1 keep_log",
       {"keep_log requires the handle_errors feature"}},
      {"trailing garbage",
       "0 100 mirror core 1 64" + kLegs + " 1 handle_errors junk",
       {"trailing argument 'junk' (argument 14) after the features"}},
      {"trailing after zero features",
       "0 100 mirror core 1 64" + kLegs + " 0 x",
       {"trailing argument 'x'"}},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    ExpectRefused(Parse(c.line), c);
  }
}

TEST(MirrorTableErrorsTest, ParamsPositionsCountFromTheLogType) {
  Expected<MirrorTable> r = ParseParams("core 1 x 2 /dev/a 0 /dev/b 0");
  ExpectRefused(r, {"params", "", {"region size 'x' is not a number (argument 3)"}});
  ExpectRefused(ParseParams(""), {"empty params", "", {"empty parameters"}});
  ExpectRefused(ParseParams("foo 1 64 2 /dev/a 0 /dev/b 0"),
                {"params type", "", {"unknown log type 'foo' (argument 1)"}});
  // With the length unknown, a large region size is fine.
  EXPECT_TRUE(ParseParams("core 1 1048576 2 /dev/a 0 /dev/b 0").ok());
}

TEST(MirrorTableErrorsTest, MajorMinorLimits) {
  EXPECT_TRUE(Parse("0 100 mirror core 1 64 2 4095:1048575 0 0:0 0").ok());
  ExpectRefused(Parse("0 100 mirror core 1 64 2 4096:0 0 8:0 0"),
                {"major", "", {"'4096:0' is out of range for major:minor"}});
  ExpectRefused(Parse("0 100 mirror core 1 64 2 8: 0 8:0 0"),
                {"minor empty", "", {"'8:' is neither"}});
}

}  // namespace
}  // namespace clogd::dmtable
