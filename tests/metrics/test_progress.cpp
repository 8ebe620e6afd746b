// io/metrics: the plain progress line, the bar with carriage returns and ETA, messages.
#include <gtest/gtest.h>

#include <sstream>

#include "core/error.hpp"
#include "io/metrics/progress.hpp"

namespace tessera {
namespace {

StepReport report_at(int64_t step) {
  return StepReport{.step = step,
                    .total_steps = 300,
                    .loss = 3.21043,
                    .lr = 2.9e-3,
                    .grad_norm = 0.8123,
                    .tokens_per_s = 10240,
                    .mfu = 0.1234,
                    .elapsed_s = 0.3 * static_cast<double>(step)};
}

TEST(Progress, PlainLineHasEveryField) {
  // 0.3 s per step, 260 steps left: 78 s.
  EXPECT_EQ(format_plain_line(report_at(40), 0),
            "step 40/300 | loss 3.2104 | lr 2.9e-03 | grad_norm 0.812 | 10.2k tok/s | "
            "MFU 12.3% | ETA 00:01:18");
}

TEST(Progress, EtaUsesStepsSinceTheResumePoint) {
  StepReport r = report_at(40);
  r.elapsed_s = 3.0;  // resumed at step 30: 10 steps in 3 s
  EXPECT_DOUBLE_EQ(eta_seconds(r, 30), 0.3 * 260);
  EXPECT_LT(eta_seconds(r, 40), 0);  // no step done yet: unknown
  EXPECT_EQ(format_duration(-1), "--:--:--");
  EXPECT_EQ(format_duration(3600 * 123 + 4 * 60 + 5), "123:04:05");
}

TEST(Progress, RatesAreShort) {
  EXPECT_EQ(format_rate(950), "950");
  EXPECT_EQ(format_rate(10240), "10.2k");
  EXPECT_EQ(format_rate(1.25e6), "1.25M");
}

TEST(Progress, PlainModePrintsOneLinePerUpdate) {
  std::ostringstream out;
  ProgressDisplay display(out, ProgressStyle::plain);
  display.update(report_at(10));
  display.message("eval step 10 | val_loss 3.3000");
  display.update(report_at(20));
  EXPECT_EQ(out.str(), format_plain_line(report_at(10), 0) + "\neval step 10 | val_loss 3.3000\n" +
                           format_plain_line(report_at(20), 0) + "\n");
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(Progress, BarRedrawsWithCarriageReturnAndShowsEta) {
  std::ostringstream out;
  {
    ProgressDisplay display(out, ProgressStyle::bar);
    display.update(report_at(150));
    EXPECT_EQ(out.str(),
              "\r[##########..........] 150/300 | loss 3.2104 | 10.2k tok/s | ETA 00:00:45");
    display.update(report_at(300));
    display.message("eval | val_loss 3.1");
  }
  std::string text = out.str();
  EXPECT_NE(text.find("\r[####################] 300/300"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA 00:00:00"), std::string::npos) << text;
  // The message goes above the bar, which is drawn again after it; the destructor ends the line.
  EXPECT_NE(text.find("\reval | val_loss 3.1\n\r[####"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(Progress, AutoPicksTheBarOnlyOnATerminal) {
  EXPECT_EQ(choose_progress_style("auto", true), ProgressStyle::bar);
  EXPECT_EQ(choose_progress_style("auto", false), ProgressStyle::plain);
  EXPECT_EQ(choose_progress_style("bar", false), ProgressStyle::bar);
  EXPECT_EQ(choose_progress_style("plain", true), ProgressStyle::plain);
  EXPECT_THROW(choose_progress_style("fancy", true), UsageError);
}

}  // namespace
}  // namespace tessera
