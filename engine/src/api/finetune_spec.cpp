#include "api/finetune_spec.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace moe {

namespace {

// One table drives both forms (JSON keys = flag names), so they cannot drift apart.
enum class Kind { Flag, Str, List, Int, Uint, Real, Map };
struct Field {
    const char* name;
    Kind kind;
};
constexpr Field kFields[] = {
    {"model", Kind::Str},
    {"data", Kind::List},
    {"format", Kind::Str},
    {"eval-fraction", Kind::Real},
    {"cutoff", Kind::Int},
    {"packing", Kind::Flag},
    {"train-on-prompt", Kind::Flag},
    {"field-map", Kind::Map},
    {"targets", Kind::List},
    {"rank", Kind::Int},
    {"alpha", Kind::Real},
    {"dropout", Kind::Real},
    {"adapter", Kind::Str},
    {"lr", Kind::Real},
    {"schedule", Kind::Str},
    {"warmup", Kind::Int},
    {"epochs", Kind::Int},
    {"steps", Kind::Int},
    {"grad-accum", Kind::Int},
    {"max-grad-norm", Kind::Real},
    {"weight-decay", Kind::Real},
    {"seed", Kind::Uint},
    {"eval-every", Kind::Int},
    {"save-every", Kind::Int},
    {"gradient-checkpointing", Kind::Flag},
    {"rope-freq-bf16", Kind::Flag},
    {"out", Kind::Str},
    {"resume", Kind::Str},
    {"store", Kind::Str},
};

const Field* field(const std::string& name) {
    for (const Field& f : kFields)
        if (name == f.name) return &f;
    return nullptr;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
}

// Shortest text that reads back to the same double (2e-4 stays "0.0002", not 17 digits).
std::string number(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

// A flag's text value as the JSON its field holds.
nlohmann::json parse_value(const Field& f, const std::string& v) {
    const std::string where = std::string("--") + f.name + " " + v;
    try {
        size_t used = 0;
        switch (f.kind) {
            case Kind::Int: {
                const long long x = std::stoll(v, &used);
                if (used == v.size()) return x;
                break;
            }
            case Kind::Uint: {
                const unsigned long long x = std::stoull(v, &used);
                if (used == v.size() && v[0] != '-') return x;
                break;
            }
            case Kind::Real: {
                const double x = std::stod(v, &used);
                if (used == v.size()) return x;
                break;
            }
            case Kind::List:
                return split_list(v);
            default:
                return v;
        }
    } catch (const std::exception&) {
    }
    throw Error(where + ": not a valid " + (f.kind == Kind::Real ? "number" : "whole number"));
}

template <class T>
void read(const nlohmann::json& j, const char* key, T& out) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    try {
        out = it->get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error(std::string("fine-tune config: \"") + key + "\" has the wrong type");
    }
}

bool needs_quotes(const std::string& s) {
    if (s.empty()) return true;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) ||
              std::string_view("-_./,:=+@%").find(c) != std::string_view::npos))
            return true;
    return false;
}

}  // namespace

nlohmann::json FinetuneSpec::to_json() const {
    return nlohmann::json{{"model", model},
                          {"data", data},
                          {"format", format},
                          {"eval-fraction", eval_fraction},
                          {"cutoff", cutoff},
                          {"packing", packing},
                          {"train-on-prompt", train_on_prompt},
                          {"field-map", field_map.to_json()},
                          {"targets", targets},
                          {"rank", rank},
                          {"alpha", alpha},
                          {"dropout", dropout},
                          {"adapter", adapter},
                          {"lr", lr},
                          {"schedule", schedule},
                          {"warmup", warmup},
                          {"epochs", epochs},
                          {"steps", steps},
                          {"grad-accum", grad_accum},
                          {"max-grad-norm", max_grad_norm},
                          {"weight-decay", weight_decay},
                          {"seed", seed},
                          {"eval-every", eval_every},
                          {"save-every", save_every},
                          {"gradient-checkpointing", gradient_checkpointing},
                          {"rope-freq-bf16", rope_freq_bf16},
                          {"out", out},
                          {"resume", resume},
                          {"store", store}};
}

FinetuneSpec FinetuneSpec::from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw Error("fine-tune config: expected a JSON object");
    for (const auto& [key, value] : j.items())
        if (!field(key)) throw Error("fine-tune config: unknown key \"" + key + "\"");
    FinetuneSpec s;
    read(j, "model", s.model);
    // "data" and "targets" may also be one comma-separated string, as on the command line.
    for (auto [key, list] : {std::pair{"data", &s.data}, std::pair{"targets", &s.targets}}) {
        if (j.contains(key) && j[key].is_string())
            *list = split_list(j[key].get<std::string>());
        else
            read(j, key, *list);
    }
    read(j, "format", s.format);
    read(j, "eval-fraction", s.eval_fraction);
    read(j, "cutoff", s.cutoff);
    read(j, "packing", s.packing);
    read(j, "train-on-prompt", s.train_on_prompt);
    if (j.contains("field-map")) s.field_map = train::FieldMap::from_json(j["field-map"]);
    read(j, "rank", s.rank);
    read(j, "alpha", s.alpha);
    read(j, "dropout", s.dropout);
    read(j, "adapter", s.adapter);
    read(j, "lr", s.lr);
    read(j, "schedule", s.schedule);
    read(j, "warmup", s.warmup);
    read(j, "epochs", s.epochs);
    read(j, "steps", s.steps);
    read(j, "grad-accum", s.grad_accum);
    read(j, "max-grad-norm", s.max_grad_norm);
    read(j, "weight-decay", s.weight_decay);
    read(j, "seed", s.seed);
    read(j, "eval-every", s.eval_every);
    read(j, "save-every", s.save_every);
    read(j, "gradient-checkpointing", s.gradient_checkpointing);
    read(j, "rope-freq-bf16", s.rope_freq_bf16);
    read(j, "out", s.out);
    read(j, "resume", s.resume);
    read(j, "store", s.store);
    return s;
}

std::vector<std::string> FinetuneSpec::to_args() const {
    const nlohmann::json mine = to_json(), defaults = FinetuneSpec{}.to_json();
    std::vector<std::string> args = {model};
    for (const Field& f : kFields) {
        const nlohmann::json& v = mine[f.name];
        if (f.kind == Kind::Str && f.name == std::string("model")) continue;
        if (v == defaults[f.name]) continue;
        const std::string flag = std::string("--") + f.name;
        switch (f.kind) {
            case Kind::Flag:
                args.push_back(flag);
                break;
            case Kind::List:
                args.insert(args.end(), {flag, join(v.get<std::vector<std::string>>())});
                break;
            case Kind::Real:
                args.insert(args.end(), {flag, number(v.get<double>())});
                break;
            case Kind::Map:
                args.insert(args.end(), {flag, train::FieldMap::from_json(v).to_string()});
                break;
            case Kind::Str:
                args.insert(args.end(), {flag, v.get<std::string>()});
                break;
            default:
                args.insert(args.end(), {flag, v.dump()});
        }
    }
    return args;
}

std::string FinetuneSpec::command_line() const {
    std::string line = "moestudio-cli train";
    for (const std::string& a : to_args()) {
        std::string q = a;
        if (needs_quotes(a)) {
            q = "'";
            for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
            q += "'";
        }
        line += " " + q;
    }
    return line;
}

FinetuneSpec FinetuneSpec::from_args(const std::vector<std::string>& argv) {
    nlohmann::json j = nlohmann::json::object(), flags = nlohmann::json::object();
    std::vector<std::string> positional;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (!a.starts_with("--")) {
            positional.push_back(a);
            continue;
        }
        const std::string name = a.substr(2);
        const bool last = i + 1 >= argv.size();
        if (name == "config") {
            if (last) throw Error("--config needs a value");
            std::ifstream in(argv[++i]);
            if (!in) throw Error(argv[i] + ": cannot open the config file");
            try {
                j = nlohmann::json::parse(in);
            } catch (const nlohmann::json::exception& e) {
                throw Error(argv[i] + ": not valid JSON: " + e.what());
            }
            if (!j.is_object()) throw Error(argv[i] + ": expected a JSON object");
            continue;
        }
        const Field* f = field(name);
        if (!f || name == "model") throw Error("unknown option " + a);
        if (f->kind == Kind::Flag) {
            flags[name] = true;
            continue;
        }
        if (last) throw Error(a + " needs a value");
        flags[name] = parse_value(*f, argv[++i]);
    }
    if (positional.size() > 1) throw Error("train takes one model, got " + positional[1]);
    if (!positional.empty()) flags["model"] = positional[0];
    j.update(flags);  // flags override the config file
    return from_json(j);
}

void FinetuneSpec::check() const {
    if (model.empty()) throw Error("fine-tune: no model");
    if (data.empty()) throw Error("fine-tune: no dataset (--data)");
    if (out.empty()) throw Error("fine-tune: no output folder (--out)");
    require(eval_fraction >= 0 && eval_fraction < 1, "--eval-fraction must be in [0, 1)");
    require(cutoff >= 2, "--cutoff must be at least 2 tokens");
    require(rank >= 1, "--rank must be at least 1");
    require(alpha > 0, "--alpha must be positive");
    if (dropout != 0)
        throw Error("--dropout: LoRA dropout is not implemented by the trainer yet; use 0");
    require(lr > 0, "--lr must be positive");
    require(warmup >= 0 && epochs >= 1 && steps >= 0 && grad_accum >= 1,
            "--warmup, --steps must be >= 0 and --epochs, --grad-accum >= 1");
    require(eval_every >= 0 && save_every >= 0, "--eval-every and --save-every must be >= 0");
    if (adapter.empty() && targets.empty()) throw Error("fine-tune: no LoRA targets");
    field_map.check();
}

const char* finetune_usage() {
    return "usage: moestudio-cli train MODEL --data FILE[,FILE...] --out DIR [--config FILE.json]\n"
           "       [--format auto|text|alpaca|messages|sharegpt] [--eval-fraction 0] "
           "[--cutoff 1024] [--packing] [--train-on-prompt]\n"
           "       [--field-map EXPECTED=KEY,... (the dataset's names, e.g. "
           "instruction=question,output=answer,from=role,value=content,assistant_tag=bot)]\n"
           "       [--targets q_proj,k_proj,v_proj,o_proj[,gate_proj,up_proj,down_proj,experts]] "
           "[--rank 8] [--alpha 16]\n"
           "       [--adapter PEFT_DIR (continue training an adapter)] [--resume CHECKPOINT_DIR]\n"
           "       [--lr 2e-4] [--schedule cosine|linear|constant] [--warmup 0] [--epochs 1] "
           "[--steps N] [--grad-accum 1]\n"
           "       [--max-grad-norm 1] [--weight-decay 0] [--eval-every 0] [--save-every 0] "
           "[--seed 0] [--quiet] [--threads N]\n"
           "       [--store DB (the run and its metrics in MoE Studio's database)] "
           "[--gradient-checkpointing]\n"
           "  --config: a JSON object whose keys are these flags' names (flags override it)";
}

}  // namespace moe
