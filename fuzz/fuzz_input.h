#pragma once
// Shared by the fuzz targets: most parsers read files (they map them), so each input is written
// to a file in a per-process folder first; and the one rule every target checks — a malformed
// input is a moe::Error (a message naming the file and what is wrong), never a crash, a
// sanitizer report or another exception.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/error.h"

namespace moefuzz {

inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        auto d =
            std::filesystem::temp_directory_path() / ("moe-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
    const auto path = scratch_dir() / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), std::streamsize(bytes.size()));
    return path.string();
}

// Runs fn; a moe::Error is the expected answer to bad input, anything else is a finding.
template <class F>
void expect_only_moe_errors(const char* target, F&& fn) {
    try {
        fn();
    } catch (const moe::Error&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: an exception other than moe::Error escaped: %s\n", target,
                     e.what());
        std::abort();
    }
}

// Splits an input in two at the first occurrence of `separator` (the second part empty when
// there is none): targets that read two files take both from one input.
inline std::pair<std::string_view, std::string_view> split(std::string_view in,
                                                           std::string_view separator) {
    const size_t at = in.find(separator);
    if (at == std::string_view::npos) return {in, {}};
    return {in.substr(0, at), in.substr(at + separator.size())};
}

}  // namespace moefuzz
