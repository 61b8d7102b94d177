#include "dualrs/data/imagenet_folder.h"

#include <torch/torch.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "dualrs/core/error.h"
#include "dualrs/data/jpeg.h"
#include "dualrs/data/parallel.h"
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

std::atomic<std::int64_t> g_listings{0};

// Counts (and with DUALRS_TRACE_LISTINGS=1 prints) one directory listing of the dataset tree.
void note_listing(const fs::path& dir) {
  g_listings.fetch_add(1, std::memory_order_relaxed);
  static const bool trace = [] {
    const char* v = std::getenv("DUALRS_TRACE_LISTINGS");
    return v != nullptr && std::string(v) == "1";
  }();
  if (trace) std::fprintf(stderr, "dualrs[pid %ld]: listing %s\n", static_cast<long>(::getpid()), dir.string().c_str());
}

// JPEG file names (not paths) in `dir`, sorted bytewise as Python's sorted() sorts them.
std::vector<std::string> list_jpegs(const fs::path& dir) {
  note_listing(dir);
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

// `part`/<wnid>/*.JPEG for every synset, in synset order; every folder must be a synset and
// every synset must have a non-empty folder.
void add_class_folders(ImagenetFileList& index, const fs::path& part, const std::vector<std::string>& synsets,
                       const std::string& synsets_path) {
  std::unordered_map<std::string, std::int64_t> class_of;
  for (std::size_t i = 0; i < synsets.size(); ++i) class_of.emplace(synsets[i], static_cast<std::int64_t>(i));
  note_listing(part);
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
void add_flat_val(ImagenetFileList& index, const fs::path& part, const std::string& labels_path,
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

// The file list registered for this process (use_imagenet_file_list), if any.
std::mutex g_registry_mutex;
std::map<std::string, std::shared_ptr<const ImagenetFileList>>& registry() {
  static std::map<std::string, std::shared_ptr<const ImagenetFileList>> lists;
  return lists;
}
std::string registry_key(const DatasetConfig& config) {
  return config.root + '\n' + config.synsets + '\n' + config.val_labels;
}
std::shared_ptr<const ImagenetFileList> registered(const DatasetConfig& config) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  auto it = registry().find(registry_key(config));
  return it == registry().end() ? nullptr : it->second;
}

// val first, then train.
ImagenetFileList list_files(const DatasetConfig& config, std::int64_t& val_count) {
  if (auto list = registered(config)) {
    val_count = list->val_count;
    return *list;
  }
  const std::vector<std::string> synsets = read_synsets(config.synsets);
  ImagenetFileList index;
  const fs::path root(config.root);
  for (const char* part : {"val", "train"}) {
    if (!fs::is_directory(root / part)) {
      DUALRS_THROW(DataError, "ImageNet folder ", config.root, " has no ", part, "/ folder");
    }
  }
  if (!config.val_labels.empty()) add_flat_val(index, root / "val", config.val_labels, synsets, config.synsets);
  else add_class_folders(index, root / "val", synsets, config.synsets);
  val_count = index.size();
  index.val_count = val_count;
  add_class_folders(index, root / "train", synsets, config.synsets);
  return index;
}

// One folder's stamp: path, inode, modification time in ns (a listing-free change detector).
void stamp_folder(std::string& out, const fs::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    out += dir.string() + "\tmissing\n";
    return;
  }
  out += dir.string() + '\t' + std::to_string(static_cast<unsigned long long>(st.st_ino)) + '\t' +
         std::to_string(static_cast<long long>(st.st_mtim.tv_sec)) + '.' +
         std::to_string(static_cast<long long>(st.st_mtim.tv_nsec)) + '\n';
}

std::string file_bytes(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) DUALRS_THROW(DataError, "cannot open ", what, " ", path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

class JpegFolderSource final : public ImageSource {
 public:
  JpegFolderSource(ImagenetFileList index, std::int64_t resize, std::int64_t crop)
      : index_(std::move(index)), resize_(resize), crop_(crop) {}
  std::vector<std::int64_t> image_shape() const override { return {3, crop_, crop_}; }
  at::Tensor images(const std::vector<std::int64_t>& indices) const override {
    const auto b = static_cast<std::int64_t>(indices.size());
    at::Tensor out = torch::empty({b, 3, crop_, crop_}, torch::kFloat32);
    // Each example is decoded independently, so the result does not depend on the threads.
    parallel_ranges(0, b, 1, [&](std::int64_t begin, std::int64_t end) {
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
  ImagenetFileList index_;
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

ImagenetFileList scan_imagenet_folder(const DatasetConfig& config) {
  std::int64_t val_count = 0;
  return list_files(config, val_count);
}

std::string imagenet_tree_stamp(const DatasetConfig& config) {
  const std::vector<std::string> synsets = read_synsets(config.synsets);
  std::string out = "root\t" + config.root + "\nsynsets\n" + file_bytes(config.synsets, "synset list") + "\n";
  if (!config.val_labels.empty()) out += "val_labels\n" + file_bytes(config.val_labels, "val labels file") + "\n";
  const fs::path root(config.root);
  stamp_folder(out, root / "val");
  if (config.val_labels.empty()) {
    for (const auto& wnid : synsets) stamp_folder(out, root / "val" / wnid);
  }
  stamp_folder(out, root / "train");
  for (const auto& wnid : synsets) stamp_folder(out, root / "train" / wnid);
  return out;
}

void use_imagenet_file_list(const DatasetConfig& config, std::shared_ptr<const ImagenetFileList> list) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  if (list) registry()[registry_key(config)] = std::move(list);
  else registry().erase(registry_key(config));
}

std::int64_t imagenet_folder_listings() { return g_listings.load(std::memory_order_relaxed); }

SplitRanges imagenet_split_ranges(const DatasetConfig& config) {
  // The counts of a registered list, without copying its 1.33 M names (every plan asks).
  if (auto list = registered(config)) return {{"val", {0, list->val_count}}, {"train", {list->val_count, list->size()}}};
  std::int64_t val_count = 0;
  const ImagenetFileList index = list_files(config, val_count);
  return {{"val", {0, val_count}}, {"train", {val_count, index.size()}}};
}

ImageDataset load_imagenet_folder(const DatasetConfig& config, std::string name) {
  std::int64_t val_count = 0;
  ImagenetFileList index = list_files(config, val_count);
  std::vector<std::int64_t> labels = index.labels;
  const auto num_classes = static_cast<std::int64_t>(read_synsets(config.synsets).size());
  const SplitRanges splits{{"val", {0, val_count}}, {"train", {val_count, index.size()}}};
  auto source = std::make_shared<JpegFolderSource>(std::move(index), config.resize, config.crop);
  return ImageDataset(std::move(name), std::move(source), std::move(labels), num_classes, splits);
}

}  // namespace dualrs::data
