// moestudio-cli devices [--bandwidth]: what this machine offers the engine (api/hardware_report.h)
// as JSON, so that scripts (and users picking a --gpu-budget) need not guess.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "api/hardware_report.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"

namespace moecli {

int cmd_devices(const std::vector<std::string>& argv) {
    const Args args(argv, {"bandwidth"}, {});
    if (!args.positional().empty()) throw moe::Error("usage: moestudio-cli devices [--bandwidth]");
    std::printf("%s\n", moe::hardware_report(args.flag("bandwidth")).dump(2).c_str());
    return 0;
}

}  // namespace moecli
