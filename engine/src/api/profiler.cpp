#include "api/profiler.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace moe::profiler {

void save_chrome_trace(const Capture& c, const std::string& path) {
    std::ofstream out(path, std::ios::binary);
    if (!out) throw Error(path + ": cannot open for writing");
    out << trace::to_chrome_json(c) << "\n";
    out.close();
    if (!out) throw Error(path + ": cannot write");
}

Capture load_chrome_trace(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return trace::from_chrome_json(text.str());
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
}

}  // namespace moe::profiler
