// `clogctl status --watch`: the rate follows the samples (regions/s over a window), the
// time left follows the rate, and the progress line fits its width in every state.
#include "logd/resync_progress.h"

#include <gtest/gtest.h>

namespace clogd::logd {
namespace {

TEST(ResyncRateTest, RegionsPerSecondOverTheWindow) {
  ResyncRate rate(3);
  EXPECT_FALSE(rate.rate()) << "one sample says nothing about a rate";
  rate.Add(0.0, 100);
  EXPECT_FALSE(rate.rate());
  rate.Add(2.0, 300);
  ASSERT_TRUE(rate.rate());
  EXPECT_DOUBLE_EQ(*rate.rate(), 100.0);
  rate.Add(4.0, 500);
  rate.Add(6.0, 1300);  // the window drops t=0: (1300-300)/(6-2)
  EXPECT_DOUBLE_EQ(*rate.rate(), 250.0);
  rate.Add(8.0, 1000);  // a failure made regions go out of sync
  EXPECT_LT(*rate.rate(), 300.0);
}

TEST(ResyncRateTest, SamplesAtTheSameTimeGiveNoRate) {
  ResyncRate rate;
  rate.Add(1.0, 5);
  rate.Add(1.0, 9);
  EXPECT_FALSE(rate.rate());
}

TEST(FormatDurationTest, Units) {
  EXPECT_EQ(FormatDuration(42), "42s");
  EXPECT_EQ(FormatDuration(187), "3m07s");
  EXPECT_EQ(FormatDuration(2 * 3600 + 5 * 60 + 10), "2h05m");
  EXPECT_EQ(FormatDuration(3 * 86400 + 4 * 3600), "3d04h");
  EXPECT_EQ(FormatDuration(-1), "?");
}

TEST(ProgressLineTest, ShowsPercentRateAndTimeLeft) {
  const std::string line = ProgressLine("LVM-mirror", 500, 1000, 50.0, 80);
  EXPECT_LE(line.size(), 80u) << line;
  EXPECT_NE(line.find(" 50.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("50/s"), std::string::npos) << line;
  EXPECT_NE(line.find("left 10s"), std::string::npos) << line;  // 500 regions at 50/s
  const size_t open = line.find('['), close = line.find(']');
  ASSERT_NE(open, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  const std::string bar = line.substr(open + 1, close - open - 1);
  const size_t filled = bar.find_first_not_of('#');
  EXPECT_EQ(filled, bar.size() / 2) << "half done, half the bar: " << bar;
}

TEST(ProgressLineTest, TheBarKeepsItsWidthAsTheNumbersChange) {
  // Redrawn in place every second: a bar that changed width with the tail would jump.
  auto bar_width = [](const std::string& line) { return line.find(']') - line.find('['); };
  const size_t w = bar_width(ProgressLine("LVM-a", 1, 1000, std::nullopt));
  EXPECT_EQ(bar_width(ProgressLine("LVM-a", 999, 1000, 1.0)), w);
  EXPECT_EQ(bar_width(ProgressLine("LVM-a", 500, 1000, 123456.0)), w);
  EXPECT_EQ(bar_width(ProgressLine("LVM-a", 1, 1000, -5.0)), w);
}

TEST(ProgressLineTest, EveryStateFitsTheWidth) {
  const std::string uuid = "LVM-" + std::string(124, 'a');
  for (size_t width : {80u, 71u, 60u, 40u}) {
    for (auto in_sync : {std::optional<uint64_t>{}, std::optional<uint64_t>{0},
                         std::optional<uint64_t>{16777215}, std::optional<uint64_t>{16777216}}) {
      for (auto rate : {std::optional<double>{}, std::optional<double>{0.0},
                        std::optional<double>{-12.0}, std::optional<double>{3.5e6}}) {
        const std::string line = ProgressLine(uuid, in_sync, 16777216, rate, width);
        EXPECT_LE(line.size(), width) << line;
      }
    }
  }
  EXPECT_NE(ProgressLine("x", 10, 10, 0.0).find("in sync"), std::string::npos);
  EXPECT_NE(ProgressLine("x", std::nullopt, 10, 0.0).find("not loaded"), std::string::npos);
  EXPECT_NE(ProgressLine("x", 16777215, 16777216, 1.0).find(" 99.9%"), std::string::npos)
      << "one region short is not 100%";
  EXPECT_NE(ProgressLine("x", 5, 10, 0.0).find("left ?"), std::string::npos) << "stalled";
}

}  // namespace
}  // namespace clogd::logd
