#!/usr/bin/env python3
"""The layering of src/, enforced (issue 12 item 6; run by ctest as `unit.layering`).

Scans every C++ source and header under <root>/src and fails, listing file:line and the rule,
when
  * <mpi.h> or <nccl.h> is included outside src/dualrs/dist/            (rule mpi-nccl-outside-dist)
  * <hdf5.h>, <hdf5_hl.h> or any <H5*.h> is included outside src/dualrs/io/  (rule hdf5-outside-io)
  * <torch/torch.h> is included by a header                              (rule torch-in-header)
  * src/dualrs/core/ includes Torch (<torch/...>, <ATen/...>, <c10/...>), MPI, NCCL or HDF5
                                                                         (rule core-third-party)
  * a layer includes "dualrs/<other>/..." although LAYERS does not let it depend on <other>
                                                                         (rule layer-dependency)
  * a file lies in, or an include names, a layer that LAYERS does not know, or an include names
    a header directly in dualrs/ other than the generated dualrs/build_info.h (rule unknown-layer)
and it checks that LAYERS matches the dualrs_<layer> targets of src/CMakeLists.txt: a target's
direct dualrs_* links are allowed by LAYERS, and everything LAYERS allows is linked, directly
or transitively (rule cmake-mismatch). A layer without a CMake target yet (e.g. pipeline) is
skipped there.

  tests/unit/check_layering.py [--root DIR]   exit 0 when the tree is clean, 1 otherwise
  tests/unit/check_layering.py --self-test    runs the checker on synthetic trees (each rule
                                              must fire on its violation; a clean tree passes)
Python 3 standard library only.
"""

import argparse
import os
import re
import sys
import tempfile

# Who may depend on whom: THE table (docs/architecture.md §3 and §7; src/CMakeLists.txt links the same).
# A layer may always include its own headers. "apps" is src/apps (the executable).
LIBRARY_LAYERS = ("core", "rng", "data", "model", "smooth", "dist", "train", "io", "report",
                  "pipeline")
LAYERS = {
    "core": (),
    "rng": ("core",),
    "data": ("core",),
    "model": ("core",),
    "smooth": ("core", "rng", "model"),
    "dist": ("core",),
    "train": ("core", "rng", "model", "data", "dist"),
    "io": ("core",),
    "report": ("core", "io"),
    "pipeline": ("core", "rng", "data", "model", "smooth", "dist", "train", "io", "report"),
    "apps": LIBRARY_LAYERS,
}

SOURCE_SUFFIXES = (".h", ".hh", ".hpp", ".cpp", ".cc", ".cxx", ".cu", ".cuh")
HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".cuh")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
MPI_NCCL = {"mpi.h", "nccl.h"}
HDF5_RE = re.compile(r"^(hdf5\.h|hdf5_hl\.h|H5[^/]*\.h)$")
TORCH_PREFIXES = ("torch/", "ATen/", "c10/")
DUALRS_LAYER_RE = re.compile(r"^dualrs/([A-Za-z0-9_]+)/")
DUALRS_TOP_RE = re.compile(r"^dualrs/([^/]+)$")
# Headers directly in dualrs/ (no layer): the generated build info, which any layer may read.
TOP_LEVEL_HEADERS = {"build_info.h"}


def layer_of(rel):
    """The layer a path relative to src/ belongs to, or None when it lies in no layer folder."""
    parts = rel.split("/")
    if parts[0] == "apps":
        return "apps"
    if parts[0] == "dualrs" and len(parts) >= 3:
        return parts[1]
    return None


def strip_block_comments(text):
    """Blank out /* ... */ comments, keeping line breaks so line numbers stay right."""
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = strip_block_comments(f.read())
    for number, line in enumerate(text.splitlines(), start=1):
        m = INCLUDE_RE.match(line)
        if m:
            yield number, m.group(2).strip()


def check_sources(src):
    """(file:line, rule, message) for every include that breaks a rule."""
    found = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            shown = "src/" + rel
            layer = layer_of(rel)
            if layer is None or layer not in LAYERS:
                found.append((shown, "unknown-layer",
                              "file lies in no layer of the table (add the layer to LAYERS in "
                              "tests/unit/check_layering.py, matching src/CMakeLists.txt)"))
                continue
            is_header = name.endswith(HEADER_SUFFIXES)
            for number, inc in includes(path):
                where = "%s:%d" % (shown, number)
                base = inc.rsplit("/", 1)[-1]
                if base in MPI_NCCL and not inc.startswith("dualrs/") and layer != "dist":
                    found.append((where, "mpi-nccl-outside-dist",
                                  "<%s> is included outside src/dualrs/dist/" % inc))
                if HDF5_RE.match(inc) and layer != "io":
                    found.append((where, "hdf5-outside-io",
                                  "<%s> is included outside src/dualrs/io/" % inc))
                if is_header and inc == "torch/torch.h":
                    found.append((where, "torch-in-header",
                                  "<torch/torch.h> is included by a header (include "
                                  "<ATen/core/Tensor.h> or the narrowest header instead)"))
                if layer == "core" and (inc.startswith(TORCH_PREFIXES) or base in MPI_NCCL
                                        or HDF5_RE.match(inc)):
                    found.append((where, "core-third-party",
                                  "src/dualrs/core/ includes <%s> (core uses no Torch, MPI, "
                                  "NCCL or HDF5)" % inc))
                m = DUALRS_TOP_RE.match(inc)
                if m and m.group(1) not in TOP_LEVEL_HEADERS:
                    found.append((where, "unknown-layer",
                                  "includes \"%s\": no such header outside the layers (only %s)"
                                  % (inc, ", ".join("dualrs/" + h for h in sorted(TOP_LEVEL_HEADERS)))))
                m = DUALRS_LAYER_RE.match(inc)
                if m:
                    target = m.group(1)
                    if target not in LIBRARY_LAYERS:
                        found.append((where, "unknown-layer",
                                      "includes \"%s\": dualrs/%s/ is no layer of the table"
                                      % (inc, target)))
                    elif target != layer and target not in LAYERS[layer]:
                        found.append((where, "layer-dependency",
                                      "layer %s includes \"%s\" but may depend only on: %s"
                                      % (layer, inc, ", ".join(LAYERS[layer]) or "(nothing)")))
    return found


def cmake_calls(text, command):
    """The argument lists (token lists) of every `command(...)` call in a CMake file."""
    text = re.sub(r"#[^\n]*", "", text)
    calls = []
    for m in re.finditer(r"\b%s\s*\(" % re.escape(command), text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        calls.append(text[m.end():i - 1].split())
    return calls


def cmake_layer_links(cmake_file):
    """{layer: set of layers it links directly} for the dualrs_<layer> targets in the file."""
    with open(cmake_file, encoding="utf-8") as f:
        text = f.read()
    link_re = re.compile(r"^dualrs(?:_|::)([A-Za-z0-9_]+)$")
    links = {}

    def deps(tokens):
        return {m.group(1) for m in map(link_re.match, tokens) if m} & set(LIBRARY_LAYERS)

    for args in cmake_calls(text, "dualrs_layer"):
        m = args and re.match(r"^dualrs_([A-Za-z0-9_]+)$", args[0])
        if m:
            links.setdefault(m.group(1), set()).update(deps(args[1:]))
    for args in cmake_calls(text, "add_library"):
        m = args and re.match(r"^dualrs_([A-Za-z0-9_]+)$", args[0])
        if m and m.group(1) in LIBRARY_LAYERS and "ALIAS" not in args and "INTERFACE" not in args:
            links.setdefault(m.group(1), set())
    for args in cmake_calls(text, "target_link_libraries"):
        m = args and re.match(r"^dualrs_([A-Za-z0-9_]+)$", args[0])
        if m and m.group(1) in links:
            links[m.group(1)].update(deps(args[1:]))
    for layer in links:
        links[layer].discard(layer)
    return links


def check_cmake(cmake_file, shown):
    found = []
    if not os.path.isfile(cmake_file):
        return found
    links = cmake_layer_links(cmake_file)
    for layer in sorted(links):
        if layer not in LAYERS:
            found.append((shown, "cmake-mismatch",
                          "target dualrs_%s is a layer LAYERS does not list" % layer))
            continue
        allowed = set(LAYERS[layer])
        extra = links[layer] - allowed
        if extra:
            found.append((shown, "cmake-mismatch",
                          "dualrs_%s links %s, which LAYERS does not let it depend on"
                          % (layer, ", ".join("dualrs_" + x for x in sorted(extra)))))
        reach, todo = set(), list(links[layer])
        while todo:
            dep = todo.pop()
            if dep not in reach:
                reach.add(dep)
                todo.extend(links.get(dep, ()))
        missing = allowed - reach
        if missing:
            found.append((shown, "cmake-mismatch",
                          "LAYERS lets %s depend on %s, but dualrs_%s does not link it "
                          "(directly or transitively)" % (layer, ", ".join(sorted(missing)), layer)))
    return found


def check_tree(root):
    src = os.path.join(root, "src")
    return check_sources(src) + check_cmake(os.path.join(src, "CMakeLists.txt"),
                                            "src/CMakeLists.txt")


def report(found, out):
    for where, rule, message in found:
        print("%s: [%s] %s" % (where, rule, message), file=out)


# ---- self-test: every rule fires on a synthetic violation, a clean tree passes ----

CLEAN_CMAKE = """
dualrs_layer(dualrs_core SOURCES dualrs/core/a.cpp PUBLIC nlohmann_json::nlohmann_json)
dualrs_layer(dualrs_rng SOURCES x.cpp PUBLIC dualrs_core PRIVATE Random123::Random123)
dualrs_layer(dualrs_data SOURCES x.cpp PUBLIC dualrs_core torch)
dualrs_layer(dualrs_model SOURCES x.cpp PUBLIC dualrs_core torch)
dualrs_layer(dualrs_smooth SOURCES x.cpp PUBLIC dualrs_core dualrs_rng dualrs_model)
dualrs_layer(dualrs_dist SOURCES x.cpp PUBLIC dualrs_core PRIVATE MPI::MPI_CXX)
dualrs_layer(dualrs_train SOURCES x.cpp
  PUBLIC dualrs_core dualrs_rng dualrs_model dualrs_data dualrs_dist)
dualrs_layer(dualrs_io SOURCES x.cpp PUBLIC dualrs_core PRIVATE hdf5::hdf5)
dualrs_layer(dualrs_report SOURCES x.cpp PUBLIC dualrs_core dualrs_io)
add_library(dualrs::core ALIAS dualrs_core)
add_executable(dualrs apps/main.cpp)
target_link_libraries(dualrs PRIVATE dualrs_smooth dualrs_train dualrs_io dualrs_report)
"""

# path relative to src/ -> contents; every rule's allowed cases appear here.
CLEAN_TREE = {
    "CMakeLists.txt": CLEAN_CMAKE,
    "dualrs/core/error.h": "#pragma once\n#include <stdexcept>\n#include <string>\n",
    "dualrs/core/stats.cpp": ('#include "dualrs/core/error.h"\n#include "dualrs/build_info.h"\n'
                              "// #include <mpi.h>  (a comment, not an include)\n"
                              "/* #include <torch/torch.h>\n   #include <hdf5.h> */\n"),
    "dualrs/rng/noise.cpp": '#include "dualrs/rng/noise.h"\n#include "dualrs/core/error.h"\n',
    "dualrs/rng/noise.h": "#pragma once\n#include <cstdint>\n",
    "dualrs/model/base_model.h": "#pragma once\n#include <ATen/core/Tensor.h>\n#include <c10/core/Device.h>\n",
    "dualrs/model/base_model.cpp": '#include <torch/torch.h>\n#include "dualrs/core/error.h"\n',
    "dualrs/data/dataset.cpp": '#include <torch/torch.h>\n#include "dualrs/core/config.h"\n',
    "dualrs/smooth/certify.cpp": ('#include "dualrs/rng/noise.h"\n#include "dualrs/model/base_model.h"\n'
                                  '#include "dualrs/core/stats.h"\n'),
    "dualrs/dist/mpi_communicator.cpp": "#include <mpi.h>\n#include <nccl.h>\n",
    "dualrs/train/data_parallel.cpp": ('#include "dualrs/dist/world.h"\n#include "dualrs/data/dataset.h"\n'
                                       '#include <ATen/cuda/CUDAContext.h>\n'),
    "dualrs/io/hdf5_file.cpp": "#include <hdf5.h>\n#include <H5Ppublic.h>\n",
    "dualrs/report/table.cpp": '#include "dualrs/io/result_files.h"\n#include "dualrs/core/records.h"\n',
    "dualrs/pipeline/run.cpp": "".join('#include "dualrs/%s/x.h"\n' % layer
                                       for layer in LIBRARY_LAYERS if layer != "pipeline"),
    "apps/main.cpp": ("".join('#include "dualrs/%s/x.h"\n' % layer for layer in LIBRARY_LAYERS)
                      + '#include "common.h"\n#include <torch/torch.h>\n'),
    "apps/common.h": "#pragma once\n#include <ATen/core/Tensor.h>\n",
}

# name -> (files added to / replacing the clean tree, rule expected, text expected in the report)
VIOLATIONS = {
    "core includes <torch/torch.h>": (
        {"dualrs/core/bad.cpp": "#include <torch/torch.h>\n"}, "core-third-party", "src/dualrs/core/bad.cpp:1"),
    "core header includes <torch/torch.h>": (
        {"dualrs/core/bad.h": "#pragma once\n\n#include <torch/torch.h>\n"}, "torch-in-header",
        "src/dualrs/core/bad.h:3"),
    "core includes <ATen/core/Tensor.h>": (
        {"dualrs/core/bad.h": "#pragma once\n#include <ATen/core/Tensor.h>\n"}, "core-third-party", "bad.h:2"),
    "core includes <c10/util/Exception.h>": (
        {"dualrs/core/bad.cpp": "#include <c10/util/Exception.h>\n"}, "core-third-party", "bad.cpp:1"),
    "core includes <hdf5.h>": (
        {"dualrs/core/bad.cpp": "#include <hdf5.h>\n"}, "core-third-party", "bad.cpp:1"),
    "io includes dualrs/smooth/x.h": (
        {"dualrs/io/bad.cpp": '#include "dualrs/io/hdf5_file.h"\n#include "dualrs/smooth/x.h"\n'},
        "layer-dependency", "src/dualrs/io/bad.cpp:2"),
    "io includes <dualrs/smooth/x.h> (angle brackets)": (
        {"dualrs/io/bad.cpp": "#include <dualrs/smooth/x.h>\n"}, "layer-dependency", "bad.cpp:1"),
    "core includes dualrs/rng/noise.h": (
        {"dualrs/core/bad.cpp": '#include "dualrs/rng/noise.h"\n'}, "layer-dependency", "bad.cpp:1"),
    "rng includes dualrs/model/x.h": (
        {"dualrs/rng/bad.cpp": '#include "dualrs/model/x.h"\n'}, "layer-dependency", "bad.cpp:1"),
    "report includes dualrs/pipeline/x.h": (
        {"dualrs/report/bad.h": '#pragma once\n#include "dualrs/pipeline/x.h"\n'}, "layer-dependency", "bad.h:2"),
    "pipeline includes src/apps' headers via dualrs/apps/": (
        {"dualrs/pipeline/bad.cpp": '#include "dualrs/apps/common.h"\n'}, "unknown-layer", "bad.cpp:1"),
    "model header includes <torch/torch.h>": (
        {"dualrs/model/bad.h": "#pragma once\n#include <torch/torch.h>\n"}, "torch-in-header", "bad.h:2"),
    "apps header includes <torch/torch.h>": (
        {"apps/bad.h": "#pragma once\n#  include <torch/torch.h>\n"}, "torch-in-header", "src/apps/bad.h:2"),
    "model includes <mpi.h>": (
        {"dualrs/model/bad.cpp": "#include <mpi.h>\n"}, "mpi-nccl-outside-dist", "src/dualrs/model/bad.cpp:1"),
    "train includes <nccl.h>": (
        {"dualrs/train/bad.cpp": '#include "nccl.h"\n'}, "mpi-nccl-outside-dist", "bad.cpp:1"),
    "apps includes <mpi.h>": (
        {"apps/bad.cpp": "#include <mpi.h>\n"}, "mpi-nccl-outside-dist", "src/apps/bad.cpp:1"),
    "smooth includes <hdf5.h>": (
        {"dualrs/smooth/bad.cpp": "#include <hdf5.h>\n"}, "hdf5-outside-io", "bad.cpp:1"),
    "report includes <H5Fpublic.h>": (
        {"dualrs/report/bad.cpp": "#include <H5Fpublic.h>\n"}, "hdf5-outside-io", "bad.cpp:1"),
    "an include of the old dualrs/config.h": (
        {"dualrs/io/bad.cpp": '#include "dualrs/config.h"\n'}, "unknown-layer", "src/dualrs/io/bad.cpp:1"),
    "a file in a folder no layer owns": (
        {"dualrs/extra/bad.cpp": "#include <string>\n"}, "unknown-layer", "src/dualrs/extra/bad.cpp"),
    "CMake links a dependency the table forbids": (
        {"CMakeLists.txt": CLEAN_CMAKE.replace(
            "dualrs_layer(dualrs_io SOURCES x.cpp PUBLIC dualrs_core",
            "dualrs_layer(dualrs_io SOURCES x.cpp PUBLIC dualrs_core dualrs_smooth")},
        "cmake-mismatch", "dualrs_io links dualrs_smooth"),
    "CMake misses a dependency the table allows": (
        {"CMakeLists.txt": CLEAN_CMAKE.replace(
            "dualrs_layer(dualrs_report SOURCES x.cpp PUBLIC dualrs_core dualrs_io)",
            "dualrs_layer(dualrs_report SOURCES x.cpp PUBLIC dualrs_core)")},
        "cmake-mismatch", "LAYERS lets report depend on io"),
    "CMake pipeline target links something apps-only": (
        {"CMakeLists.txt": CLEAN_CMAKE + "add_library(dualrs_pipeline STATIC p.cpp)\n"
         "target_link_libraries(dualrs_pipeline PUBLIC dualrs_smooth dualrs_train dualrs_io)\n"},
        "cmake-mismatch", "LAYERS lets pipeline depend on report"),
    "CMake layer target the table does not know": (
        {"CMakeLists.txt": CLEAN_CMAKE + "dualrs_layer(dualrs_extra SOURCES e.cpp PUBLIC dualrs_core)\n"},
        "cmake-mismatch", "dualrs_extra"),
}


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, "src", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def self_test():
    failures = []
    with tempfile.TemporaryDirectory(prefix="dualrs_layering_") as tmp:
        clean = os.path.join(tmp, "clean")
        write_tree(clean, CLEAN_TREE)
        found = check_tree(clean)
        if found:
            failures.append("the clean tree was reported:")
            failures.extend("    %s: [%s] %s" % f for f in found)
        else:
            print("ok: the clean synthetic tree passes")
        pipeline_cmake = CLEAN_CMAKE + ("add_library(dualrs_pipeline STATIC p.cpp)\n"
                                        "target_link_libraries(dualrs_pipeline PUBLIC dualrs_smooth "
                                        "dualrs_train dualrs_io dualrs_report)\n"
                                        "add_library(dualrs::pipeline ALIAS dualrs_pipeline)\n")
        with_pipeline = os.path.join(tmp, "clean_pipeline")
        write_tree(with_pipeline, dict(CLEAN_TREE, **{"CMakeLists.txt": pipeline_cmake}))
        found = check_tree(with_pipeline)
        if found:
            failures.append("the clean tree with a dualrs_pipeline target was reported:")
            failures.extend("    %s: [%s] %s" % f for f in found)
        else:
            print("ok: the clean synthetic tree with a dualrs_pipeline target passes")
        for index, (name, (files, rule, text)) in enumerate(sorted(VIOLATIONS.items())):
            root = os.path.join(tmp, "case%02d" % index)
            write_tree(root, dict(CLEAN_TREE, **files))
            found = check_tree(root)
            hits = [f for f in found if f[1] == rule and (text in f[0] or text in f[2])]
            if hits:
                print("ok: %s -> %s: [%s] %s" % ((name,) + hits[0]))
            else:
                failures.append("%s: expected [%s] mentioning %r, got %r" % (name, rule, text, found))
            # Must also be caught as a failing run of main(), not just listed.
            if main(["--root", root], quiet=True) != 1:
                failures.append("%s: the checker did not exit 1" % name)
        if main(["--root", clean], quiet=True) != 0:
            failures.append("the clean tree: the checker did not exit 0")
    if failures:
        print("check_layering self-test FAILED:", file=sys.stderr)
        for line in failures:
            print("  " + line, file=sys.stderr)
        return 1
    print("check_layering self-test: %d violations caught, clean trees pass" % len(VIOLATIONS))
    return 0


def main(argv=None, quiet=False):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "..", ".."),
                        help="repository root (default: two folders above this script)")
    parser.add_argument("--self-test", action="store_true",
                        help="check the checker on synthetic trees")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    root = os.path.abspath(args.root)
    if not os.path.isdir(os.path.join(root, "src")):
        print("check_layering: %s has no src/ folder" % root, file=sys.stderr)
        return 2
    found = check_tree(root)
    if found:
        if not quiet:
            print("check_layering: %d layering violation(s) in %s:" % (len(found), root),
                  file=sys.stderr)
            report(found, sys.stderr)
        return 1
    if not quiet:
        print("check_layering: %s/src keeps the layering (%d layers)" % (root, len(LAYERS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
