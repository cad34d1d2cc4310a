#include "sim/azure_trace.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace fluidfaas::sim {
namespace {

// A sample cut to minutes 480..482, as such samples often are.
constexpr const char* kSample =
    "HashOwner,HashApp,HashFunction,Trigger,480,481,482\n"
    "o1,a1,f1,http,10,0,5\n"
    "o1,a1,f2,timer,1,1,1\r\n"
    "o2,a2,f3,queue,0,20,0\n";

TraceOptions Options() {
  return TraceOptions{.mix = {{"resnet50", 1}, {"bert-base", 1}}, .seed = 4};
}

TEST(AzureTraceTest, ReadsMinuteColumnsByHeaderAndSpreadsCountsWithinTheMinute) {
  Result<Trace> t = ParseAzureTrace(kSample, "d01.csv", Options());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rows, 3u);
  ASSERT_EQ(t->functions.size(), 3u);  // each row is a function
  EXPECT_EQ(t->functions[0].id, "o1/a1/f1");
  EXPECT_EQ(t->functions[0].invocations, 15);
  EXPECT_EQ(t->functions[1].invocations, 3);
  EXPECT_EQ(t->functions[2].invocations, 20);
  EXPECT_EQ(t->first_minute, 480);
  EXPECT_EQ(t->last_minute, 482);
  EXPECT_EQ(t->duration, Seconds(180));
  ASSERT_EQ(t->arrivals.size(), 38u);
  size_t of_f3 = 0;
  for (const Arrival& a : t->arrivals) of_f3 += a.function == 2;
  EXPECT_EQ(of_f3, 20u);
  // Minute 481 holds f2's 1 and f3's 20 invocations: 21 arrivals in [60 s, 120 s).
  size_t in_481 = 0;
  for (const Arrival& a : t->arrivals) in_481 += a.at >= TimePoint{} + Seconds(60) && a.at < TimePoint{} + Seconds(120);
  EXPECT_EQ(in_481, 21u);
  for (size_t i = 1; i < t->arrivals.size(); ++i) ASSERT_LE(t->arrivals[i - 1].at, t->arrivals[i].at);
}

TEST(AzureTraceTest, AStreamOfTheCellsGivesTheSameArrivalsAMinuteAtATime) {
  // 40 rows over 30 minutes, some cells empty, with a fractional rate scale.
  std::string text = "HashOwner,HashApp,HashFunction,Trigger";
  for (int m = 1; m <= 30; ++m) text += "," + std::to_string(m);
  text += "\n";
  for (int i = 0; i < 40; ++i) {
    text += "o,a,f" + std::to_string(i) + ",http";
    for (int m = 1; m <= 30; ++m) text += "," + std::to_string((i * 7 + m * 3) % 5 == 0 ? 0 : (i + m) % 9);
    text += "\n";
  }
  TraceOptions o = Options();
  o.rate_scale = 1.7;
  const Trace whole = *ParseAzureTrace(text, "t", o);
  o.materialize = false;
  const Trace cells = *ParseAzureTrace(text, "t", o);
  EXPECT_TRUE(cells.arrivals.empty());
  EXPECT_EQ(cells.invocations, whole.invocations);
  ASSERT_EQ(static_cast<int64_t>(whole.arrivals.size()), whole.invocations);
  AzureArrivals stream(cells);
  std::vector<Arrival> streamed;
  while (std::optional<Arrival> a = stream.Next()) streamed.push_back(*a);
  EXPECT_FALSE(stream.Next().has_value());
  ASSERT_EQ(streamed.size(), whole.arrivals.size());
  // In time order over the whole trace (each minute sorted on its own), and the same arrivals.
  std::vector<Arrival> sorted = streamed;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Arrival& a, const Arrival& b) {
    return a.at != b.at ? a.at < b.at : a.function < b.function;
  });
  for (size_t i = 0; i < streamed.size(); ++i) {
    ASSERT_EQ(streamed[i].at, sorted[i].at) << i;
    ASSERT_EQ(streamed[i].function, sorted[i].function) << i;
    ASSERT_EQ(streamed[i].at, whole.arrivals[i].at) << i;
  }
}

TEST(AzureTraceTest, ModelsFollowTheMixAndNeverTheSeed) {
  // 2,000 rows, one invocation each: the rule hashes each row's ids onto the mix's weights.
  std::string text = "HashOwner,HashApp,HashFunction,Trigger,1\n";
  for (int i = 0; i < 2000; ++i) text += "o" + std::to_string(i % 7) + ",a,f" + std::to_string(i) + ",http,1\n";
  TraceOptions o{.mix = {{"llama2-13b", 3}, {"resnet50", 1}}, .max_functions = 5000, .seed = 1};
  const Trace a = *ParseAzureTrace(text, "t", o);
  ASSERT_EQ(a.functions.size(), 2000u);
  size_t llama = 0;
  for (const TraceFunction& f : a.functions) llama += f.model == "llama2-13b";
  EXPECT_NEAR(static_cast<double>(llama) / 2000, 0.75, 0.03);
  o.seed = 99;  // spreads arrivals differently, maps nothing differently
  const Trace b = *ParseAzureTrace(text, "t", o);
  bool moved = false;
  for (size_t i = 0; i < a.functions.size(); ++i) {
    ASSERT_EQ(a.functions[i].model, b.functions[i].model) << i;
    moved = moved || a.arrivals[i].at != b.arrivals[i].at;
  }
  EXPECT_TRUE(moved);
  // The same seed repeats itself exactly.
  const Trace c = *ParseAzureTrace(text, "t", o);
  for (size_t i = 0; i < b.arrivals.size(); ++i) {
    ASSERT_EQ(b.arrivals[i].at, c.arrivals[i].at);
    ASSERT_EQ(b.arrivals[i].function, c.arrivals[i].function);
  }
}

TEST(AzureTraceTest, TheBusiestRowsAreKeptAndTheRestCounted) {
  TraceOptions o = Options();
  o.max_functions = 2;
  Result<Trace> t = ParseAzureTrace(kSample, "t", o);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->functions.size(), 2u);
  EXPECT_EQ(t->functions[0].id, "o1/a1/f1");  // 15 invocations
  EXPECT_EQ(t->functions[1].id, "o2/a2/f3");  // 20
  EXPECT_EQ(t->dropped_rows, 1u);
  EXPECT_EQ(t->dropped_invocations, 3);
  EXPECT_EQ(t->arrivals.size(), 35u);
  o.max_functions = 0;
  EXPECT_FALSE(ParseAzureTrace(kSample, "t", o).ok());
  o.max_functions = 2;
  o.mix = {{"resnet50", 0}};
  EXPECT_FALSE(ParseAzureTrace(kSample, "t", o).ok());
}

TEST(AzureTraceTest, MinuteRangeAndRateScale) {
  TraceOptions o = Options();
  o.first_minute = 481;
  o.last_minute = 481;
  Result<Trace> t = ParseAzureTrace(kSample, "t", o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->arrivals.size(), 21u);
  EXPECT_LT(t->arrivals.back().at, TimePoint{} + Seconds(60));  // time 0 is the start of minute 481
  o.rate_scale = 2.0;
  EXPECT_EQ(ParseAzureTrace(kSample, "t", o)->arrivals.size(), 42u);
  o.rate_scale = 0.5;  // 21 x 0.5 = 10.5 per minute: 10 or 11 each time
  const size_t half = ParseAzureTrace(kSample, "t", o)->arrivals.size();
  EXPECT_TRUE(half == 10 || half == 11 || half == 12) << half;
  o.first_minute = 470;
  EXPECT_EQ(ParseAzureTrace(kSample, "t", o).status().message(),
            "t: minutes 470..481 are not within the file's 480..482");
}

// The arrivals as (time, function id) pairs, sorted.
std::vector<std::pair<Duration, std::string>> Keyed(const Trace& t) {
  std::vector<std::pair<Duration, std::string>> out;
  for (const Arrival& a : t.arrivals) out.emplace_back(a.at.time_since_epoch(), t.functions[a.function].id);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AzureTraceTest, TrimmingEmptyMinutesOrReorderingRowsChangesNoArrival) {
  // Minutes 1..6 with invocations only in 3..4; the same trace cut to 3..4, and with its rows reversed.
  const std::string padded =
      "HashOwner,HashApp,HashFunction,Trigger,1,2,3,4,5,6\n"
      "o1,a1,f1,http,0,0,7,3,0,0\n"
      "o2,a2,f2,http,0,0,0,9,0,0\n";
  const std::string trimmed =
      "HashOwner,HashApp,HashFunction,Trigger,3,4\n"
      "o1,a1,f1,http,7,3\n"
      "o2,a2,f2,http,0,9\n";
  const std::string reversed =
      "HashOwner,HashApp,HashFunction,Trigger,3,4\n"
      "o2,a2,f2,http,0,9\n"
      "o1,a1,f1,http,7,3\n";
  TraceOptions o = Options();
  o.rate_scale = 1.5;  // fractional counts draw from the stream too
  const Trace a = *ParseAzureTrace(padded, "a", o);
  const Trace b = *ParseAzureTrace(trimmed, "b", o);
  const Trace c = *ParseAzureTrace(reversed, "c", o);
  EXPECT_EQ(a.first_active_minute, 3);
  EXPECT_EQ(a.last_active_minute, 4);
  EXPECT_EQ(a.span(), Seconds(120));  // not the 360 s of columns
  EXPECT_EQ(a.duration, Seconds(360));
  ASSERT_FALSE(a.arrivals.empty());
  EXPECT_EQ(Keyed(a), Keyed(b));
  EXPECT_EQ(Keyed(a), Keyed(c));
  // A range selected around the busy minutes gives them too.
  o.first_minute = 2;
  o.last_minute = 5;
  EXPECT_EQ(Keyed(*ParseAzureTrace(padded, "a", o)), Keyed(a));
  // Another seed moves them.
  o.first_minute = o.last_minute = 0;
  o.seed = 5;
  EXPECT_NE(Keyed(*ParseAzureTrace(padded, "a", o)), Keyed(a));
}

TEST(AzureTraceTest, BadRowsAreErrorsWithTheLineOrSkippedWhenLenient) {
  const std::string bad = std::string(kSample) + "o3,a3,f4,http,1,x,1\no4,a4,f5,http,1\n";
  Result<Trace> strict = ParseAzureTrace(bad, "d02.csv", Options());
  EXPECT_EQ(strict.status().message(), "d02.csv:5: minute 481: 'x' is not a non-negative count");
  TraceOptions o = Options();
  o.lenient = true;
  Result<Trace> lenient = ParseAzureTrace(bad, "d02.csv", o);
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(lenient->skipped_rows, 2u);
  EXPECT_EQ(lenient->first_skip, "d02.csv:5: minute 481: 'x' is not a non-negative count");
  EXPECT_EQ(lenient->rows, 3u);
  EXPECT_EQ(ParseAzureTrace("HashOwner,HashApp,Trigger,1\n", "t", Options()).status().message(),
            "t:1: no column named 'HashFunction'");
  EXPECT_EQ(ReadAzureTrace("/nonexistent.csv", Options()).status().code(), StatusCode::kNotFound);
}

// Regressions from the hardening issue: each header or size problem is an error naming it, found before any
// arrival is generated; a byte-order mark and CRLF are accepted.
TEST(AzureTraceTest, HeadersAndSizesAreCheckedBeforeAnythingIsGenerated) {
  const std::string head = "HashOwner,HashApp,HashFunction,Trigger,";
  const auto err = [](const std::string& text) {
    Result<Trace> t = ParseAzureTrace(text, "t.csv", Options());
    return t.ok() ? std::string() : t.status().message();
  };
  EXPECT_NE(err(head + "1,1\no,a,f,http,1,2\n").find("minute 1 appears twice"), std::string::npos);
  EXPECT_NE(err(head + "0,1\no,a,f,http,1,2\n").find("is not in 1..20160"), std::string::npos);
  EXPECT_NE(err(head + "-5\no,a,f,http,1\n").find("is not in 1..20160"), std::string::npos);
  EXPECT_NE(err(head + "1,1000000\no,a,f,http,1,2\n").find("'1000000' is not in"), std::string::npos);
  EXPECT_NE(err("HashOwner,HashOwner,HashApp,HashFunction,Trigger,1\no,o,a,f,http,1\n").find("appears twice"),
            std::string::npos);
  EXPECT_NE(err(head + "1\no,a,f,http,1000000000000\n").find("limit of one run"), std::string::npos);
  EXPECT_NE(err(head + "1,2\no,a,f,http,0,0\n").find("no invocations in minutes 1..2"), std::string::npos);
  EXPECT_NE(err(head + "1\n").find("no function rows"), std::string::npos);
  TraceOptions huge = Options();
  huge.rate_scale = 1e300;
  EXPECT_FALSE(ParseAzureTrace(kSample, "t.csv", huge).ok());
  huge.rate_scale = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(ParseAzureTrace(kSample, "t.csv", huge).ok());
  TraceOptions capped = Options();
  capped.max_invocations = 37;  // the sample holds 38
  EXPECT_NE(ParseAzureTrace(kSample, "t.csv", capped).status().message().find("more than 37 invocations"),
            std::string::npos);
  capped.max_invocations = 38;
  EXPECT_TRUE(ParseAzureTrace(kSample, "t.csv", capped).ok());
  capped.max_invocations = 0;
  EXPECT_FALSE(ParseAzureTrace(kSample, "t.csv", capped).ok());
  Result<Trace> bom = ParseAzureTrace(std::string("\xEF\xBB\xBF") + kSample, "t.csv", Options());
  ASSERT_TRUE(bom.ok()) << bom.status().message();
  EXPECT_EQ(bom->arrivals.size(), 38u);
}

}  // namespace
}  // namespace fluidfaas::sim
