// ImageNet-style class folders -> the corpus format; see import_image_folder.h.
#include "data/import_image_folder.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace cw::data {
namespace fs = std::filesystem;

namespace {

// torchvision.datasets.folder.IMG_EXTENSIONS.
bool image_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> exts = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp",
                                             ".pgm", ".tif",  ".tiff", ".webp"};
  return exts.count(e) > 0;
}

std::vector<std::string> class_folders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_directory()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every file under a class folder (ImageFolder walks nested folders, following links), sorted.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), dir).generic_string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  CW_CHECK(in.good(), ValueError, "import imagenet: cannot read ", file.string());
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    if (!trim(line).empty()) lines.push_back(trim(line));
  return lines;
}

// "<folder> <name>" lines -> folder -> name. `first_only`: LOC's lists of synonyms keep the first.
std::map<std::string, std::string> mapping_of(const std::vector<std::string>& lines, bool first_only) {
  std::map<std::string, std::string> m;
  for (const std::string& l : lines) {
    const size_t sp = l.find_first_of(" \t");
    if (sp == std::string::npos) continue;
    std::string name = trim(l.substr(sp + 1));
    if (first_only) name = trim(name.substr(0, name.find(',')));
    m[l.substr(0, sp)] = name;
  }
  return m;
}

// Class names and where they came from.
std::pair<std::vector<std::string>, std::string> class_names(const std::vector<std::string>& folders,
                                                             const fs::path& root,
                                                             const fs::path& classes_file) {
  std::vector<std::string> names;
  if (!classes_file.empty()) {
    const std::vector<std::string> lines = lines_of(classes_file);
    const std::map<std::string, std::string> m = mapping_of(lines, false);
    const bool keyed =
        std::all_of(folders.begin(), folders.end(), [&](const std::string& f) { return m.count(f) > 0; });
    if (keyed) {
      for (const std::string& f : folders) names.push_back(m.at(f));
    } else {
      CW_CHECK(
          lines.size() == folders.size(), ValueError, "import imagenet: ", classes_file.string(), " has ",
          lines.size(), " lines but ", root.string(), " has ", folders.size(),
          " class folders (give one name per folder in sorted order, or '<folder> <name>' lines naming every "
          "folder)");
      names = lines;
    }
    return {names, classes_file.filename().string()};
  }
  fs::path dir = root;
  for (int up = 0; up < 4; ++up, dir = dir.parent_path()) {
    const fs::path loc = dir / "LOC_synset_mapping.txt";
    std::error_code ec;
    if (!fs::is_regular_file(loc, ec)) continue;
    const std::map<std::string, std::string> m = mapping_of(lines_of(loc), true);
    for (const std::string& f : folders) {
      const auto it = m.find(f);
      CW_CHECK(it != m.end() && !it->second.empty(), ValueError, "import imagenet: class folder '", f,
               "' is not in ", loc.string());
      names.push_back(it->second);
    }
    return {names, "LOC_synset_mapping.txt"};
  }
  for (std::string f : folders) {
    std::replace(f.begin(), f.end(), '_', ' ');
    names.push_back(f);
  }
  return {names, "folder names"};
}

}  // namespace

ImageImportSummary import_image_folder(const fs::path& root, const fs::path& out,
                                       const ImageFolderImportOptions& o) {
  CW_CHECK(fs::is_directory(root), ValueError, "import imagenet: --root ", root.string(), " is not a folder");
  // (split, folder) pairs: train/ + val/ when present, else the root's own class folders.
  std::vector<std::pair<std::string, fs::path>> sources;
  for (const auto& [split, sub] : {std::pair<std::string, std::string>{"train", "train"}, {"test", "val"}}) {
    std::error_code ec;
    if (fs::is_directory(root / sub, ec) && !class_folders(root / sub).empty())
      sources.emplace_back(split, root / sub);
  }
  const std::string layout = sources.empty() ? "class folders" : "train/ and val/ class folders";
  if (sources.empty()) sources.emplace_back("test", root);
  const std::vector<std::string> folders = class_folders(sources.front().second);
  CW_CHECK(!folders.empty(), ValueError, "import imagenet: ", sources.front().second.string(),
           " has no class folders (expected <root>/<class>/<image> or <root>/train|val/<class>/<image>)");
  std::map<std::string, int64_t> label_of;
  for (const std::string& f : folders) label_of.emplace(f, static_cast<int64_t>(label_of.size()));
  auto [names, names_from] = class_names(folders, root, o.classes_file);
  for (size_t c = 0; c < names.size(); ++c) {  // a name is a caption and a prompt word: no tabs, UTF-8
    std::string why;
    names[c] = clean_caption(names[c], &why);
    CW_CHECK(!names[c].empty(), ValueError, "import imagenet: class folder '", folders[c], "': ", why,
             " as its name (from ", names_from, ")");
  }

  ImageImportSummary pre;
  std::map<std::string, std::vector<std::string>> by_name;
  for (size_t c = 0; c < names.size(); ++c) by_name[names[c]].push_back(folders[c]);
  for (const auto& [name, fs_] : by_name)
    if (fs_.size() > 1) {
      std::string list;
      for (const std::string& f : fs_) list += (list.empty() ? "" : ", ") + f;
      pre.notes.push_back("class name '" + name + "' is shared by " + list +
                          ": zero-shot prompts cannot tell them apart (give --classes with distinct names)");
    }

  std::map<std::string, std::vector<ImageChunkPlan>> splits;
  for (const auto& [split, dir] : sources) {
    for (const std::string& folder : class_folders(dir)) {
      const auto it = label_of.find(folder);
      CW_CHECK(it != label_of.end(), ValueError, "import imagenet: class folder ", (dir / folder).string(),
               " is not a class of ", sources.front().second.string());
      const int64_t label = it->second;
      const std::string caption = names[static_cast<size_t>(label)];
      const fs::path class_dir = dir / folder;
      std::vector<std::string> files = files_under(class_dir);
      std::string stamps = folder + "|" + std::to_string(label) + "|" + caption;
      for (const std::string& f : files) {
        stamps += '\n';
        stamps += import_file_stamp(class_dir / f);
      }
      char name[32];
      std::snprintf(name, sizeof name, "c%06lld", static_cast<long long>(label));
      splits[split].push_back(
          {name, hex_digest(stamps), [class_dir, folder, files = std::move(files), label, caption, &o] {
             ImageImportChunk chunk;
             for (const std::string& f : files) {
               const std::string id = folder + "/" + f;
               if (!image_extension(f)) {
                 chunk.drop("not an image file name (ImageFolder's extensions)", id);
               } else if (id.find_first_of("\t\r\n") != std::string::npos) {
                 chunk.drop("tab or newline in the file name", id);
               } else {
                 std::ifstream in(class_dir / f, std::ios::binary);
                 std::ostringstream bytes;
                 bytes << in.rdbuf();
                 if (!in.good() && !in.eof())
                   chunk.drop("unreadable file", id);
                 else
                   chunk.add_jpeg(bytes.str(), {id, label, caption}, id, o);
               }
             }
             return chunk;
           }});
    }
  }
  ImageImportCorpus corpus;
  corpus.name = o.name;
  corpus.classes = names;
  corpus.prompt_templates = clip_imagenet_templates();
  corpus.horizontal_flip = true;
  corpus.source = {{"importer", "imagenet"}, {"layout", layout}, {"class_names", names_from}};
  return run_image_import(out, "imagenet", corpus, splits, o, std::move(pre));
}

}  // namespace cw::data
