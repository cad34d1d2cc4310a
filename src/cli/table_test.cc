#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace fluidfaas::cli {
namespace {

TEST(TableTest, PadsColumnsAndRightAlignsNumbers) {
  Table t({"name", ">count"});
  t.AddRow({"a", "7"});
  t.AddRow({"longer", "1234"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "name    count\n"
            "a           7\n"
            "longer   1234\n");
}

TEST(TableTest, MissingCellsAreBlank) {
  Table t({"a", "b"});
  t.AddRow({"x"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(), "a  b\nx\n");
}

}  // namespace
}  // namespace fluidfaas::cli
