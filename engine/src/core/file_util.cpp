#include "core/file_util.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.h"

namespace moe {

void write_file_atomically(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
        if (!out) throw Error(tmp + ": cannot create file");
        out << content;
        out.flush();
        if (!out) throw Error(tmp + ": write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw Error(path + ": cannot replace file: " + ec.message());
    }
}

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot open the " + what);
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(path + ": the " + what + " is not valid JSON: " + e.what());
    }
}

}  // namespace moe
