#include "dualrs/pipeline/dataset_index.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"
#include "dualrs/pipeline/stage_context.h"

namespace dualrs::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kMagic = "# dualrs dataset index 1";

json identity(const DatasetConfig& config) {
  return {{"format", "imagenet_folder"}, {"root", config.root}, {"synsets", config.synsets}, {"val_labels", config.val_labels}};
}

// Parses "FOLDER\tLABEL\tNAME" body lines after the "folder\tPATH" lines.
bool parse_body(const std::string& body, std::int64_t folders, std::int64_t files, data::ImagenetFileList& list,
                std::string& problem) {
  std::size_t pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= body.size()) return false;
    const std::size_t end = body.find('\n', pos);
    if (end == std::string::npos) return false;
    line = std::string_view(body).substr(pos, end - pos);
    pos = end + 1;
    return true;
  };
  std::string_view line;
  for (std::int64_t f = 0; f < folders; ++f) {
    if (!next_line(line) || line.substr(0, 7) != "folder\t") {
      problem = "corrupt: folder line " + std::to_string(f + 1) + " is missing or malformed";
      return false;
    }
    list.folders.emplace_back(line.substr(7));
  }
  list.labels.reserve(static_cast<std::size_t>(files));
  list.folder_of.reserve(static_cast<std::size_t>(files));
  list.name_end.reserve(static_cast<std::size_t>(files));
  for (std::int64_t i = 0; i < files; ++i) {
    const std::size_t t1 = next_line(line) ? line.find('\t') : std::string_view::npos;
    const std::size_t t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string_view::npos) {
      problem = "corrupt: file line " + std::to_string(i + 1) + " is missing or malformed";
      return false;
    }
    char* end = nullptr;
    const std::string folder_text(line.substr(0, t1));
    const std::string label_text(line.substr(t1 + 1, t2 - t1 - 1));
    const long long folder = std::strtoll(folder_text.c_str(), &end, 10);
    const bool folder_ok = *end == '\0' && folder >= 0 && folder < folders;
    const long long label = std::strtoll(label_text.c_str(), &end, 10);
    if (!folder_ok || *end != '\0' || label < 0) {
      problem = "corrupt: file line " + std::to_string(i + 1) + " has a bad folder or label";
      return false;
    }
    list.add(static_cast<std::uint32_t>(folder), std::string(line.substr(t2 + 1)), label);
  }
  if (pos != body.size()) {
    problem = "corrupt: text after the last file line";
    return false;
  }
  return true;
}

}  // namespace

std::string dataset_index_path(const DatasetConfig& config, const std::string& dir) {
  const std::string key = io::sha256_hex(identity(config).dump()).substr(0, 12);
  return (fs::path(dir) / "dataset_index" / ("imagenet-" + key + ".tsv")).string();
}

void write_dataset_index(const std::string& path, const DatasetConfig& config, const data::ImagenetFileList& list,
                         const std::string& stamp) {
  std::string body;
  body.reserve(list.names.size() + static_cast<std::size_t>(list.size()) * 12);
  for (const auto& folder : list.folders) body += "folder\t" + folder + '\n';
  for (std::int64_t i = 0; i < list.size(); ++i) {
    body += std::to_string(list.folder_of[static_cast<std::size_t>(i)]);
    body += '\t';
    body += std::to_string(list.labels[static_cast<std::size_t>(i)]);
    body += '\t';
    body += list.name(i);
    body += '\n';
  }
  json header = identity(config);
  header["tree_stamp_sha256"] = io::sha256_hex(stamp);
  header["content_sha256"] = io::sha256_hex(body);
  header["folders"] = list.folders.size();
  header["files"] = list.size();
  header["val_count"] = list.val_count;
  header["created_utc"] = io::utc_now();
  io::ensure_directory(fs::path(path).parent_path().string());
  io::write_file_atomic(path, std::string(kMagic) + '\n' + header.dump() + '\n' + body);
}

DatasetIndexFile read_dataset_index(const std::string& path, const DatasetConfig& config) {
  DatasetIndexFile out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.problem = "missing";
    return out;
  }
  std::string magic, header_text;
  if (!std::getline(in, magic) || magic != kMagic || !std::getline(in, header_text)) {
    out.problem = "not a dualrs dataset index (first line is not '" + std::string(kMagic) + "')";
    return out;
  }
  json header;
  try {
    header = json::parse(header_text);
    const json want = identity(config);
    for (const auto& [key, value] : want.items()) {
      if (header.at(key) != value) {
        out.problem = "of another dataset (" + key + " " + header.at(key).dump() + ", this config has " + value.dump() + ")";
        return out;
      }
    }
    out.stamp_sha256 = header.at("tree_stamp_sha256").get<std::string>();
    out.created_utc = header.value("created_utc", "");
  } catch (const json::exception& e) {
    out.problem = std::string("corrupt header: ") + e.what();
    return out;
  }
  std::ostringstream rest;
  rest << in.rdbuf();
  const std::string body = rest.str();
  if (io::sha256_hex(body) != header.value("content_sha256", "")) {
    out.problem = "corrupt: its body does not match the digest in its header (truncated or edited)";
    return out;
  }
  auto list = std::make_shared<data::ImagenetFileList>();
  try {
    if (!parse_body(body, header.at("folders").get<std::int64_t>(), header.at("files").get<std::int64_t>(), *list,
                    out.problem)) {
      return out;
    }
    list->val_count = header.at("val_count").get<std::int64_t>();
  } catch (const json::exception& e) {
    out.problem = std::string("corrupt header: ") + e.what();
    return out;
  }
  if (list->val_count < 0 || list->val_count > list->size()) {
    out.problem = "corrupt: val_count " + std::to_string(list->val_count) + " outside the " + std::to_string(list->size()) +
                  " files";
    return out;
  }
  out.list = std::move(list);
  return out;
}

DatasetIndexOutcome refresh_dataset_index(const DatasetConfig& config, const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  DatasetIndexOutcome out;
  const std::string stamp = data::imagenet_tree_stamp(config);
  DatasetIndexFile file = read_dataset_index(path, config);
  if (file.list && file.stamp_sha256 == io::sha256_hex(stamp)) {
    out.list = std::move(file.list);
    out.action = "fresh";
  } else {
    out.action = file.problem == "missing" ? "built" : "rebuilt";
    out.reason = file.list ? "stale: the tree changed since the index was made (" + file.created_utc + ")" : file.problem;
    data::use_imagenet_file_list(config, nullptr);  // scan the tree itself, not a list registered earlier
    auto list = std::make_shared<data::ImagenetFileList>(data::scan_imagenet_folder(config));
    write_dataset_index(path, config, *list, stamp);
    out.list = std::move(list);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

void prepare_dataset_index(StageContext& ctx, const ExperimentConfig& config, const std::string& dir) {
  if (dir.empty() || !config.has("dataset")) return;
  DatasetConfig dataset;
  ctx.agreed([&] { dataset = config.dataset(); });
  if (dataset.format != DatasetFormat::kImagenetFolder) return;
  const std::string path = dataset_index_path(dataset, dir);
  std::shared_ptr<const data::ImagenetFileList> list;
  ctx.on_root([&] {
    DatasetIndexOutcome outcome = refresh_dataset_index(dataset, path);
    if (outcome.action == "rebuilt") {
      warn(ctx, "dataset index %s was not used (%s); rebuilt it", path.c_str(), outcome.reason.c_str());
    }
    say(ctx, "dataset index %s: %s, %lld files in %zu folders (%.1f s)", path.c_str(), outcome.action.c_str(),
        static_cast<long long>(outcome.list->size()), outcome.list->folders.size(), outcome.seconds);
    list = std::move(outcome.list);
  });
  ctx.agreed([&] {
    if (!ctx.is_root()) {
      DatasetIndexFile file = read_dataset_index(path, dataset);
      if (!file.list) DUALRS_THROW(DataError, "dataset index ", path, " that rank 0 wrote: ", file.problem);
      list = std::move(file.list);
    }
    data::use_imagenet_file_list(dataset, list);
  });
}

}  // namespace dualrs::pipeline
