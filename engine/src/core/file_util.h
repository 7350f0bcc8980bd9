#pragma once
// Small file helpers every store of user data shares.
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace moe {

// Writes `content` to PATH.tmp, then renames it over `path`: a crash or a full disk never
// leaves half a file where a complete one was. Throws moe::Error naming the file.
void write_file_atomically(const std::string& path, const std::string& content);

// The JSON document in `path`; throws moe::Error naming the file and `what` it should be
// ("placement file") when it cannot be opened or is not JSON.
nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace moe
