#pragma once
// Small file helpers every store of user data shares.
#include <string>

namespace moe {

// Writes `content` to PATH.tmp, then renames it over `path`: a crash or a full disk never
// leaves half a file where a complete one was. Throws moe::Error naming the file.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace moe
