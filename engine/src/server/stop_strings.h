#pragma once
// Stop strings (OpenAI's `stop`): generation ends where the text first contains one of them,
// and the returned text ends just before it. Text is streamed, so the matcher holds back any
// tail that could still become a stop string once more text arrives; nothing of a stop string
// is ever sent to the client.
#include <string>
#include <vector>

namespace moe::server {

class StopStringMatcher {
  public:
    // Empty strings are ignored (they would match at once).
    explicit StopStringMatcher(std::vector<std::string> stops = {});

    // Adds decoded text; returns the text that is now certain to be part of the answer. After
    // a stop string completes, stopped() is true and later pushes return "".
    std::string push(const std::string& piece);
    // At the end of generation: the held-back tail (it never became a stop string).
    std::string flush();
    bool stopped() const { return stopped_; }

  private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

}  // namespace moe::server
