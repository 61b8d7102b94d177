#include "dualrs/data/imagenet_folder.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "dualrs/core/error.h"
#include "dualrs/data/jpeg.h"
#include "dualrs/data/transforms.h"

namespace dualrs::data {
namespace fs = std::filesystem;

namespace {

bool is_jpeg_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == "jpeg" || ext == "jpg";
}

std::string stem_of(const std::string& name) {
  const std::string base = fs::path(name).filename().string();
  return is_jpeg_name(base) ? base.substr(0, base.rfind('.')) : base;
}

// JPEG file names (not paths) in `dir`, sorted bytewise as Python's sorted() sorts them.
std::vector<std::string> list_jpegs(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (is_jpeg_name(name) && it->is_regular_file(type_ec)) names.push_back(name);
  }
  if (ec) DUALRS_THROW(DataError, "cannot list ", dir.string(), ": ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// Every example's file: folders, and file names packed into one buffer (1.3 M names).
struct FileIndex {
  std::vector<std::string> folders;
  std::vector<std::uint32_t> folder_of;
  std::string names;
  std::vector<std::size_t> name_end;
  std::vector<std::int64_t> labels;

  void add(std::uint32_t folder, const std::string& name, std::int64_t label) {
    folder_of.push_back(folder);
    names += name;
    name_end.push_back(names.size());
    labels.push_back(label);
  }
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  std::string path(std::int64_t i) const {
    const auto k = static_cast<std::size_t>(i);
    const std::size_t begin = k == 0 ? 0 : name_end[k - 1];
    return folders[folder_of[k]] + "/" + names.substr(begin, name_end[k] - begin);
  }
};

// `part`/<wnid>/*.JPEG for every synset, in synset order; every folder must be a synset and
// every synset must have a non-empty folder.
void add_class_folders(FileIndex& index, const fs::path& part, const std::vector<std::string>& synsets,
                       const std::string& synsets_path) {
  std::unordered_map<std::string, std::int64_t> class_of;
  for (std::size_t i = 0; i < synsets.size(); ++i) class_of.emplace(synsets[i], static_cast<std::int64_t>(i));
  std::error_code ec;
  for (fs::directory_iterator it(part, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    const std::string wnid = it->path().filename().string();
    if (class_of.count(wnid) == 0) {
      DUALRS_THROW(DataError, it->path().string(), ": folder of wnid '", wnid, "', which is not in the synset list ",
                   synsets_path);
    }
  }
  if (ec) DUALRS_THROW(DataError, "cannot list ", part.string(), ": ", ec.message());
  for (std::size_t c = 0; c < synsets.size(); ++c) {
    const fs::path dir = part / synsets[c];
    if (!fs::is_directory(dir)) {
      DUALRS_THROW(DataError, "missing class: no folder ", dir.string(), " for synset ", synsets[c], " (class ", c,
                   " of ", synsets_path, ")");
    }
    const auto names = list_jpegs(dir);
    if (names.empty()) DUALRS_THROW(DataError, "missing class: ", dir.string(), " holds no .JPEG files");
    index.folders.push_back(dir.string());
    for (const auto& name : names) index.add(static_cast<std::uint32_t>(index.folders.size() - 1), name, static_cast<std::int64_t>(c));
  }
}

// Reads "NAME WNID" or "NAME,WNID ..." lines (a Kaggle LOC_val_solution.csv header
// "ImageId,..." is skipped): file stem -> class index.
std::unordered_map<std::string, std::int64_t> read_val_labels(const std::string& path,
                                                              const std::vector<std::string>& synsets,
                                                              const std::string& synsets_path) {
  std::ifstream in(path);
  if (!in) DUALRS_THROW(DataError, "cannot open val labels file ", path);
  std::unordered_map<std::string, std::int64_t> class_of;
  for (std::size_t i = 0; i < synsets.size(); ++i) class_of.emplace(synsets[i], static_cast<std::int64_t>(i));
  std::unordered_map<std::string, std::int64_t> out;
  std::string line;
  for (std::int64_t line_no = 1; std::getline(in, line); ++line_no) {
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream tokens(line);
    std::string name, wnid;
    if (!(tokens >> name) || name[0] == '#') continue;
    if (out.empty() && name == "ImageId") continue;
    if (!(tokens >> wnid)) DUALRS_THROW(DataError, path, ":", line_no, ": expected 'FILE WNID', got '", line, "'");
    auto cls = class_of.find(wnid);
    if (cls == class_of.end()) {
      DUALRS_THROW(DataError, path, ":", line_no, ": wnid '", wnid, "' is not in the synset list ", synsets_path);
    }
    if (!out.emplace(stem_of(name), cls->second).second) {
      DUALRS_THROW(DataError, path, ":", line_no, ": file '", name, "' labelled twice");
    }
  }
  return out;
}

// Flat val/: every JPEG needs a label; ordered by (class, file name) as ImageFolder would.
void add_flat_val(FileIndex& index, const fs::path& part, const std::string& labels_path,
                  const std::vector<std::string>& synsets, const std::string& synsets_path) {
  const auto label_of = read_val_labels(labels_path, synsets, synsets_path);
  std::vector<std::pair<std::int64_t, std::string>> entries;
  for (const auto& name : list_jpegs(part)) {
    auto it = label_of.find(stem_of(name));
    if (it == label_of.end()) DUALRS_THROW(DataError, (part / name).string(), ": no label in ", labels_path);
    entries.emplace_back(it->second, name);
  }
  if (entries.empty()) DUALRS_THROW(DataError, part.string(), ": no .JPEG files");
  std::sort(entries.begin(), entries.end());
  index.folders.push_back(part.string());
  for (const auto& [label, name] : entries) index.add(static_cast<std::uint32_t>(index.folders.size() - 1), name, label);
}

// val first, then train.
FileIndex list_files(const DatasetConfig& config, std::int64_t& val_count) {
  const std::vector<std::string> synsets = read_synsets(config.synsets);
  FileIndex index;
  const fs::path root(config.root);
  for (const char* part : {"val", "train"}) {
    if (!fs::is_directory(root / part)) {
      DUALRS_THROW(DataError, "ImageNet folder ", config.root, " has no ", part, "/ folder");
    }
  }
  if (!config.val_labels.empty()) add_flat_val(index, root / "val", config.val_labels, synsets, config.synsets);
  else add_class_folders(index, root / "val", synsets, config.synsets);
  val_count = index.size();
  add_class_folders(index, root / "train", synsets, config.synsets);
  return index;
}

class JpegFolderSource final : public ImageSource {
 public:
  JpegFolderSource(FileIndex index, std::int64_t resize, std::int64_t crop)
      : index_(std::move(index)), resize_(resize), crop_(crop) {}
  std::vector<std::int64_t> image_shape() const override { return {3, crop_, crop_}; }
  at::Tensor images(const std::vector<std::int64_t>& indices) const override {
    const auto b = static_cast<std::int64_t>(indices.size());
    at::Tensor out = torch::empty({b, 3, crop_, crop_}, torch::kFloat32);
    // Each example is decoded independently, so the result does not depend on the threads.
    at::parallel_for(0, b, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const std::string path = index_.path(indices[static_cast<std::size_t>(i)]);
        at::Tensor decoded = read_jpeg_file(path);
        try {
          out[i].copy_(resize_and_center_crop(decoded, resize_, crop_));
        } catch (const DataError& e) {
          DUALRS_THROW(DataError, path, ": ", e.what());
        }
      }
    });
    return out;
  }

 private:
  FileIndex index_;
  std::int64_t resize_;
  std::int64_t crop_;
};

}  // namespace

std::vector<std::string> read_synsets(const std::string& path) {
  std::ifstream in(path);
  if (!in) DUALRS_THROW(DataError, "cannot open synset list ", path);
  std::vector<std::string> out;
  std::unordered_map<std::string, std::int64_t> seen;
  std::string line;
  for (std::int64_t line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream tokens(line);
    std::string wnid;
    if (!(tokens >> wnid) || wnid[0] == '#') continue;
    if (!seen.emplace(wnid, line_no).second) {
      DUALRS_THROW(DataError, path, ":", line_no, ": wnid '", wnid, "' listed twice (first on line ", seen[wnid], ")");
    }
    out.push_back(wnid);
  }
  if (out.empty()) DUALRS_THROW(DataError, path, ": no synsets listed");
  return out;
}

SplitRanges imagenet_split_ranges(const DatasetConfig& config) {
  std::int64_t val_count = 0;
  const FileIndex index = list_files(config, val_count);
  return {{"val", {0, val_count}}, {"train", {val_count, index.size()}}};
}

ImageDataset load_imagenet_folder(const DatasetConfig& config, std::string name) {
  std::int64_t val_count = 0;
  FileIndex index = list_files(config, val_count);
  std::vector<std::int64_t> labels = index.labels;
  const auto num_classes = static_cast<std::int64_t>(read_synsets(config.synsets).size());
  const SplitRanges splits{{"val", {0, val_count}}, {"train", {val_count, index.size()}}};
  auto source = std::make_shared<JpegFolderSource>(std::move(index), config.resize, config.crop);
  return ImageDataset(std::move(name), std::move(source), std::move(labels), num_classes, splits);
}

}  // namespace dualrs::data
