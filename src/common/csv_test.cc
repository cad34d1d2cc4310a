#include "common/csv.h"

#include <gtest/gtest.h>

namespace fluidfaas {
namespace {

TEST(CsvTest, ParsesHeaderRowsAndQuotes) {
  Result<CsvTable> t = CsvTable::Parse("a,b,c\r\n1,\"x,y\",3\n\n4,\"say \"\"hi\"\"\",6\n", "t.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->header(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t->rows(), 2u);
  EXPECT_EQ(t->row(0)[1], "x,y");
  EXPECT_EQ(t->row(1)[1], "say \"hi\"");
  EXPECT_EQ(t->line(1), 4u);
  EXPECT_EQ(*t->Column("c"), 2u);
  EXPECT_FALSE(t->Column("d").has_value());
  EXPECT_DOUBLE_EQ(*t->Number(1, 2), 6.0);
}

TEST(CsvTest, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(CsvTable::Parse("a,b\n1\n", "t.csv").status().message(), "t.csv:2: 1 fields, the header has 2");
  EXPECT_EQ(CsvTable::Parse("a,b\n1,\"x\n", "t.csv").status().message(), "t.csv:2: unterminated quoted field");
  EXPECT_EQ(CsvTable::Parse("", "t.csv").status().message(), "t.csv: empty file (no header)");
  Result<CsvTable> t = CsvTable::Parse("a,b\n1,zz\n", "t.csv");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Number(0, 1).status().message(), "t.csv:2: column 'b': 'zz' is not a number");
  EXPECT_EQ(t->RequireColumn("q").status().message(), "t.csv: no column named 'q'");
  EXPECT_EQ(CsvTable::ReadFile("/nonexistent.csv").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fluidfaas
