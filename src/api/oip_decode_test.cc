#include "api/oip_decode.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/half.h"

namespace fluidfaas::api {
namespace {

using nlohmann::json;

std::string Body(const json& data, const std::vector<int64_t>& shape = {1, 4}) {
  return json{{"id", "r1"},
              {"parameters", {{"timeout_ms", 250}, {"extra", {1, 2, 3}}}},
              {"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", shape}, {"data", data}}}},
              {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}}
      .dump();
}

TEST(OipDecodeTest, ReadsTheFieldsItUsesAndSkipsTheRest) {
  auto d = DecodeInferJson(Body({1, 2, 3, 4}), DecodeLimits{});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "r1");
  EXPECT_EQ(d->timeout_ms, 250);
  EXPECT_TRUE(d->binary_output);
  ASSERT_EQ(d->inputs.size(), 1u);
  EXPECT_EQ(d->inputs[0].name, "input");
  EXPECT_EQ(d->inputs[0].shape, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(d->inputs[0].data, (std::vector<double>{1, 2, 3, 4}));
}

TEST(OipDecodeTest, NestedDataIsFlattenedRowMajor) {
  auto d = DecodeInferJson(Body({{{1, 2}, {3, 4}}}, {1, 2, 2}), DecodeLimits{});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->inputs[0].data, (std::vector<double>{1, 2, 3, 4}));
  auto bytes = TensorBytes(d->inputs[0], "FP32", {1, 2, 2}, "");
  ASSERT_TRUE(bytes.ok());
  float third = 0;
  std::memcpy(&third, bytes->data() + 8, 4);
  EXPECT_EQ(third, 3.0f);
}

TEST(OipDecodeTest, StopsAtTheFirstValuePastTheFunctionsSize) {
  // A huge array costs the function's sample size, not a tree of every value.
  std::string big = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[";
  for (int i = 0; i < 100000; ++i) big += "1.5,";
  big += "1]}]}";
  DecodeLimits limits;
  limits.max_elements = 4;
  auto d = DecodeInferJson(big, limits);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("more than 4 values"), std::string::npos) << d.status().message();
}

TEST(OipDecodeTest, RefusesDeepNestingManyUnusedValuesAndMalformedJson) {
  DecodeLimits limits;
  std::string deep = "{\"parameters\":{\"x\":" + std::string(100, '[') + std::string(100, ']') + "},\"inputs\":[]}";
  auto d = DecodeInferJson(deep, limits);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("deeper"), std::string::npos);
  limits.max_other_values = 10;
  d = DecodeInferJson(json{{"junk", std::vector<int>(50, 1)}, {"inputs", json::array()}}.dump(), limits);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("does not use"), std::string::npos);
  d = DecodeInferJson("{\"inputs\": [", DecodeLimits{});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not valid JSON"), std::string::npos);
  EXPECT_FALSE(DecodeInferJson("[]", DecodeLimits{}).ok());
  EXPECT_FALSE(DecodeInferJson("{}", DecodeLimits{}).ok());  // no inputs
  EXPECT_FALSE(DecodeInferJson(Body({1, "two", 3, 4}), DecodeLimits{}).ok());
}

TEST(OipDecodeTest, TensorBytesChecksDatatypeShapeCountAndFiniteness) {
  auto d = DecodeInferJson(Body({1, 2, 3, 4}), DecodeLimits{});
  ASSERT_TRUE(d.ok());
  const DecodedInput& in = d->inputs[0];
  EXPECT_FALSE(TensorBytes(in, "FP16", {1, 4}, "").ok());  // the function takes FP16, the input says FP32
  EXPECT_FALSE(TensorBytes(in, "FP32", {1, 5}, "").ok());
  EXPECT_FALSE(TensorBytes(in, "FP32", {1, 4}, "tail").ok());  // binary bytes nobody asked for
  DecodedInput huge = in;
  huge.data[2] = 1e39;  // not a finite float
  EXPECT_FALSE(TensorBytes(huge, "FP32", {1, 4}, "").ok());
  DecodedInput half = in;
  half.datatype = "FP16";
  half.data = {1.0 + 1.0 / 2048, 0.5, -2, 65504};
  auto bytes = TensorBytes(half, "FP16", {1, 4}, "");
  ASSERT_TRUE(bytes.ok());
  uint16_t h = 0;
  std::memcpy(&h, bytes->data(), 2);
  EXPECT_EQ(h, 0x3c00);  // a tie rounds to even
}

TEST(OipDecodeTest, ShapesAndSizesMustBeIntegersAndNegativeSizesAreRefused) {
  auto huge = DecodeInferJson(
      R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,18446744073709551615,-3],"data":[]}]})",
      DecodeLimits{});
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  EXPECT_EQ(huge->inputs[0].shape, (std::vector<int64_t>{1, INT64_MAX, -3}));
  EXPECT_FALSE(DecodeInferJson(R"({"inputs":[{"name":"i","shape":[1.5]}]})", DecodeLimits{}).ok());
  EXPECT_FALSE(
      DecodeInferJson(R"({"inputs":[{"name":"i","parameters":{"binary_data_size":-4}}]})", DecodeLimits{}).ok());
  EXPECT_FALSE(
      DecodeInferJson(R"({"inputs":[{"name":"i","parameters":{"binary_data_size":4.0}}]})", DecodeLimits{}).ok());
}

TEST(OipDecodeTest, BinaryInputsMustMatchTheirDeclaredSize) {
  json body = {
      {"inputs",
       {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 2}}, {"parameters", {{"binary_data_size", 8}}}}}}};
  auto d = DecodeInferJson(body.dump(), DecodeLimits{});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const float values[2] = {1.5f, -2.0f};
  const std::string_view raw(reinterpret_cast<const char*>(values), 8);
  auto bytes = TensorBytes(d->inputs[0], "FP32", {1, 2}, raw);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size(), 8u);
  EXPECT_FALSE(TensorBytes(d->inputs[0], "FP32", {1, 2}, raw.substr(0, 4)).ok());
  const float nan[2] = {1.0f, std::nanf("")};
  EXPECT_FALSE(TensorBytes(d->inputs[0], "FP32", {1, 2}, std::string_view(reinterpret_cast<const char*>(nan), 8)).ok());
}

}  // namespace
}  // namespace fluidfaas::api
