#pragma once
// One function per moestudio-cli subcommand; each returns the process exit status.
#include <string>
#include <vector>

namespace moecli {

int cmd_info(const std::vector<std::string>& argv);
int cmd_generate(const std::vector<std::string>& argv);
int cmd_logits(const std::vector<std::string>& argv);
int cmd_make_demo(const std::vector<std::string>& argv);
int cmd_tokenize(const std::vector<std::string>& argv);
int cmd_detokenize(const std::vector<std::string>& argv);
int cmd_template(const std::vector<std::string>& argv);
int cmd_convert(const std::vector<std::string>& argv);
int cmd_bench(const std::vector<std::string>& argv);
int bench_e2e(const std::vector<std::string>& argv);  // bench e2e (cmd_bench_e2e.cpp)
int cmd_devices(const std::vector<std::string>& argv);
int cmd_placement(const std::vector<std::string>& argv);
int placement_calibrate(const std::vector<std::string>& argv);  // cmd_placement_cost.cpp
int cmd_train(const std::vector<std::string>& argv);
int cmd_export_adapter(const std::vector<std::string>& argv);
int cmd_serve(const std::vector<std::string>& argv);
int cmd_remote(const std::vector<std::string>& argv);

}  // namespace moecli
