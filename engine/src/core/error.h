#pragma once
// Errors are values a user can act on: every engine failure is a moe::Error whose message
// says which file, which tensor and what was expected.
#include <stdexcept>
#include <string>

namespace moe {

class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Throws moe::Error with `message` when `condition` is false.
inline void require(bool condition, const std::string& message) {
    if (!condition) throw Error(message);
}

}  // namespace moe
