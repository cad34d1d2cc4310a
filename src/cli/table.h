// Table: plain-text tables for the CLI's human-readable output (columns padded to their widest cell).
//
// Thread safety: a plain value.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace fluidfaas::cli {

class Table {
 public:
  // A header starting with '>' is right-aligned (numbers); the '>' is not printed.
  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<std::string> cells);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// `v` with `digits` digits after the point ("12.35").
std::string Fixed(double v, int digits);

}  // namespace fluidfaas::cli
