#pragma once
// A fine-tune's dataset as the trainer will see it (issue 10): every file checked before any
// run starts (bytes that are not UTF-8, broken JSON, missing fields, empty files: an error
// naming the file and line), the files loaded as one dataset, and a preview of records with
// the tokens the loss covers marked, for the wizard.
#include <memory>
#include <string>
#include <vector>

#include "api/finetune_spec.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"

namespace moe {

// The model's tokenizer and chat template (null for base models without one: plain text only).
struct FinetuneText {
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<ChatTemplate> chat_template;
};
FinetuneText load_finetune_text(const std::string& model_path);

// Throws moe::Error "FILE:LINE: not valid UTF-8 (...)" at the first malformed byte sequence.
// The JSON parser would also refuse such bytes, but plain-text files are not parsed, and a
// located message is clearer than the parser's byte offset.
void check_utf8_file(const std::string& path);

// spec.data loaded with spec's options as one dataset (each file's records split by the same
// eval fraction). Throws moe::Error naming the file and line of the first bad record.
train::Dataset load_finetune_data(const FinetuneSpec& spec, const FinetuneText& text);

// A piece of a previewed sequence: the text of consecutive tokens, trained (labels) or not.
struct PreviewSpan {
    std::string text;
    bool trained = false;
};
struct PreviewRecord {
    std::string origin;  // "file:line"
    std::vector<PreviewSpan> spans;
    int64_t tokens = 0;
};
struct DatasetReport {
    std::string format;  // as detected (or chosen)
    int64_t records = 0, truncated = 0, train_sequences = 0, eval_sequences = 0;
    int64_t train_tokens = 0;
    std::vector<int64_t> record_tokens;  // each record's length before the cut (histogram)
    std::vector<PreviewRecord> preview;
};

// Loads spec.model's tokenizer and template and spec.data; the first `preview` training
// sequences rendered with trained tokens marked. Throws moe::Error (file and line) when a
// file is bad.
DatasetReport inspect_finetune_data(const FinetuneSpec& spec, int preview = 3);
PreviewRecord preview_example(const train::Example& e, const Tokenizer& tokenizer);

}  // namespace moe
