#pragma once
// Training data for LoRA fine-tuning: plain text (.txt, or JSONL {"text": ...}), Alpaca
// ({"instruction", "input", "output"[, "system"]}), OpenAI messages ({"messages": [{"role",
// "content"}]}) and ShareGPT ({"conversations": [{"from", "value"}]}), as JSONL or a JSON array.
// Conversations are rendered with the model's chat template; the loss covers the assistant's
// tokens only unless `train_on_prompt`. Sequences are cut at `cutoff` tokens, optionally packed
// into sequences of `cutoff` tokens, and split into train and eval parts with a seed. A bad
// record is an error naming the file and line (or record), never silently dropped. Fields named
// otherwise are read through a FieldMap (field_map.h).
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/field_map.h"

namespace moe::train {

struct Example {
    std::vector<int32_t> ids;
    std::vector<int32_t> labels;  // ids where the loss counts, -100 elsewhere
    std::string origin;           // "file:line" of the record (packed: of its first record)
};

enum class DataFormat { Auto, Text, Alpaca, Messages, ShareGPT };
DataFormat parse_data_format(const std::string& s);  // auto, text, alpaca, messages, sharegpt
const char* data_format_name(DataFormat f);

struct DatasetOptions {
    DataFormat format = DataFormat::Auto;
    int64_t cutoff = 1024;         // tokens per sequence at most
    bool train_on_prompt = false;  // loss on every token, not only the assistant's
    bool packing = false;          // concatenate records into sequences of `cutoff` tokens
    double eval_fraction = 0.0;    // share of records held out for evaluation
    uint64_t seed = 0;             // the split's shuffle
    FieldMap fields;               // the dataset's names for the fields (none: the usual ones)
};

struct Dataset {
    DataFormat format = DataFormat::Auto;  // as detected
    std::vector<Example> train, eval;
    int64_t records = 0, truncated = 0;  // records read; those cut at `cutoff`
    std::vector<int64_t> record_tokens;  // each record's tokens before any cut, in file order
};

// `chat_template` renders conversations (null: conversational formats are refused with a
// message saying the model has no chat template). Throws moe::Error naming the file and line.
Dataset load_dataset(const std::string& path, const Tokenizer& tokenizer,
                     const ChatTemplate* chat_template, const DatasetOptions& options);

// The keys a dataset's first record has, for mapping them by hand: its own keys, and those of
// the objects in its first list of objects (a conversation's turns). Throws moe::Error when the
// file cannot be read or holds no records.
struct DatasetKeys {
    std::vector<std::string> record, turn;
};
DatasetKeys dataset_keys(const std::string& path);

}  // namespace moe::train
