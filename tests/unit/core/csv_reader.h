#pragma once
// Minimal reader for the reference CSV tables in tests/data (header + numeric rows).

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dualrs::testing {

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  std::size_t col(const std::string& name) const {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (columns[i] == name) return i;
    }
    throw std::runtime_error("no column " + name);
  }
};

inline CsvTable read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  CsvTable table;
  std::string line;
  std::getline(in, line);
  std::stringstream header(line);
  for (std::string c; std::getline(header, c, ',');) table.columns.push_back(c);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) row.push_back(std::stod(c));
    table.rows.push_back(row);
  }
  return table;
}

inline std::string data_path(const std::string& name) { return std::string(DUALRS_TEST_DATA_DIR) + "/" + name; }

}  // namespace dualrs::testing
