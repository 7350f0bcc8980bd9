#include "api/finetune_data.h"

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "model/model_tokenizer.h"

namespace moe {

FinetuneText load_finetune_text(const std::string& model_path) {
    FinetuneText t;
    t.tokenizer = load_model_tokenizer(model_path);
    try {
        t.chat_template = std::make_unique<ChatTemplate>(load_model_chat_template(model_path));
    } catch (const Error&) {
        // Base models: plain text only (load_dataset says so for chat records).
    }
    return t;
}

void check_utf8_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the dataset");
    const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int64_t line = 1;
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n') ++line;
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n != 0 && i + n <= s.size() && !(c == 0xC0 || c == 0xC1 || c > 0xF4);
        for (size_t k = 1; ok && k < n; ++k)
            ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (!ok) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02X", c);
            throw Error(path + ":" + std::to_string(line) + ": not valid UTF-8 (byte " + hex +
                        "); save the file as UTF-8");
        }
        i += n;
    }
}

train::Dataset load_finetune_data(const FinetuneSpec& spec, const FinetuneText& text) {
    if (spec.data.empty()) throw Error("fine-tune: no dataset files");
    train::DatasetOptions o;
    o.format = train::parse_data_format(spec.format);
    o.cutoff = spec.cutoff;
    o.packing = spec.packing;
    o.train_on_prompt = spec.train_on_prompt;
    o.eval_fraction = spec.eval_fraction;
    o.seed = spec.seed;
    o.fields = spec.field_map;
    train::Dataset all;
    for (const std::string& path : spec.data) {
        check_utf8_file(path);
        train::Dataset d = train::load_dataset(path, *text.tokenizer, text.chat_template.get(), o);
        // Formats may differ between files; the first one names the whole.
        if (all.records == 0) all.format = d.format;
        all.records += d.records;
        all.truncated += d.truncated;
        all.record_tokens.insert(all.record_tokens.end(), d.record_tokens.begin(),
                                 d.record_tokens.end());
        std::move(d.train.begin(), d.train.end(), std::back_inserter(all.train));
        std::move(d.eval.begin(), d.eval.end(), std::back_inserter(all.eval));
    }
    return all;
}

PreviewRecord preview_example(const train::Example& e, const Tokenizer& tokenizer) {
    PreviewRecord r;
    r.origin = e.origin;
    r.tokens = int64_t(e.ids.size());
    size_t i = 0;
    while (i < e.ids.size()) {
        const bool trained = e.labels[i] != -100;
        std::vector<int32_t> run;
        while (i < e.ids.size() && (e.labels[i] != -100) == trained) run.push_back(e.ids[i++]);
        r.spans.push_back({tokenizer.decode(run), trained});
    }
    return r;
}

DatasetReport inspect_finetune_data(const FinetuneSpec& spec, int preview) {
    const FinetuneText text = load_finetune_text(spec.model);
    const train::Dataset d = load_finetune_data(spec, text);
    DatasetReport r;
    r.format = train::data_format_name(d.format);
    r.records = d.records;
    r.truncated = d.truncated;
    r.record_tokens = d.record_tokens;
    r.train_sequences = int64_t(d.train.size());
    r.eval_sequences = int64_t(d.eval.size());
    for (const train::Example& e : d.train) r.train_tokens += int64_t(e.ids.size());
    for (int i = 0; i < preview && i < int(d.train.size()); ++i)
        r.preview.push_back(preview_example(d.train[size_t(i)], *text.tokenizer));
    return r;
}

}  // namespace moe
