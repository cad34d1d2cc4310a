// CsvTable: a small reader for the comma-separated files FluidFaaS consumes (calibration data, traces).
//
// Handles a header row, plain and double-quoted fields, and CRLF line ends; columns are looked up by header
// name. Errors name the file and line. Not a general CSV library: no multi-line quoted fields.
//
// Thread safety: a plain value.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fluidfaas {

class CsvTable {
 public:
  // Parses `text`; `source` names it in errors.
  static Result<CsvTable> Parse(std::string_view text, std::string source);
  static Result<CsvTable> ReadFile(const std::string& path);

  const std::vector<std::string>& header() const { return header_; }
  size_t rows() const { return rows_.size(); }
  const std::vector<std::string>& row(size_t i) const { return rows_[i]; }
  // The 1-based line number of row i in the source.
  size_t line(size_t i) const { return lines_[i]; }

  // Index of the column named `name`, or nullopt.
  std::optional<size_t> Column(std::string_view name) const;
  // InvalidArgument naming the file when the column is missing.
  Result<size_t> RequireColumn(std::string_view name) const;

  // The cell as a number; InvalidArgument naming file, line and column when it is not one.
  Result<double> Number(size_t row, size_t column) const;

 private:
  std::string source_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> lines_;
};

}  // namespace fluidfaas
