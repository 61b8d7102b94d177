// The machine-readable layouts in data_schemas/ must list exactly what the writer produces:
// every root attribute with its type, every dataset with its dtype and shape.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/io/hdf5_file.h"
#include "dualrs/io/result_files.h"
#include "io_test_util.h"

namespace dualrs::io {
namespace {

using testing::TempDir;

nlohmann::json load_layout(const std::string& file) {
  const std::string path = std::string(DUALRS_SOURCE_DIR) + "/data_schemas/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

Provenance some_provenance(const std::string& schema) {
  Provenance p = make_provenance(schema, "test", {{"k", 1}}, 5, 1);
  return p;
}

/// Writes a file with `n` records through the sink and checks it against `layout`.
void check_layout(const nlohmann::json& layout, const std::string& kind, std::size_t n) {
  SCOPED_TRACE(kind + " with " + std::to_string(n) + " records");
  TempDir dir;
  const std::string path = dir.file(kind + ".h5");
  ResultInfo info;
  info.kind = kind;
  info.method = "m";
  info.num_classes = 4;
  {
    Hdf5ResultSink sink(path, info, some_provenance(layout.at("schema").get<std::string>()));
    for (std::size_t i = 0; i < n; ++i) {
      if (kind == "certify") {
        CertifyRecord r;
        r.idx = static_cast<std::int64_t>(i);
        r.counts = r.counts_selection = {1, 2, 3, 4};
        sink.write(r);
      } else {
        PredictRecord r;
        r.idx = static_cast<std::int64_t>(i);
        r.counts = {1, 2, 3, 4};
        sink.write(r);
      }
    }
    sink.finish();
  }
  Hdf5File f(path, FileMode::kReadOnly);
  EXPECT_EQ(f.attr_string("/", "schema"), layout.at("schema").get<std::string>());
  EXPECT_EQ(f.attr_int64("/", "schema_version"), layout.at("version").get<std::int64_t>());

  std::map<std::string, std::string> want_attrs;
  for (const auto& [name, type] : layout.at("attributes").items()) want_attrs[name] = type.get<std::string>();
  std::map<std::string, std::string> got_attrs;
  for (const std::string& name : f.attr_names("/")) got_attrs[name] = f.attr_dtype("/", name);
  EXPECT_EQ(got_attrs, want_attrs);

  std::set<std::string> want_datasets;
  for (const auto& [name, spec] : layout.at("datasets").items()) {
    want_datasets.insert(name);
    if (!f.exists(name)) continue;  // reported by the set comparison below
    EXPECT_EQ(f.dtype(name), spec.at("dtype").get<std::string>()) << name;
    std::vector<std::uint64_t> want_dims;
    for (const auto& axis : spec.at("shape")) {
      const std::string a = axis.get<std::string>();
      ASSERT_TRUE(a == "N" || a == "K") << name << ": unknown axis " << a;
      want_dims.push_back(a == "N" ? n : 4);
    }
    EXPECT_EQ(f.dims(name), want_dims) << name;
  }
  const std::vector<std::string> listed = f.list("/");
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), want_datasets);
}

TEST(ResultLayoutTest, CertifyFileMatchesDataSchemasJson) {
  const nlohmann::json layout = load_layout("certify_results.h5.json");
  EXPECT_EQ(layout.at("schema"), "dualrs.certify");
  check_layout(layout, "certify", 3);
  check_layout(layout, "certify", 0);
}

TEST(ResultLayoutTest, PredictFileMatchesDataSchemasJson) {
  const nlohmann::json layout = load_layout("predict_results.h5.json");
  EXPECT_EQ(layout.at("schema"), "dualrs.predict");
  check_layout(layout, "predict", 2);
  check_layout(layout, "predict", 0);
}

}  // namespace
}  // namespace dualrs::io
