// GGUF reader (formats/gguf.h): header, metadata of every type, tensor infos and offsets.
#include "formats/gguf.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path =
        moefuzz::write_file("model.gguf", {reinterpret_cast<const char*>(data), size});
    moefuzz::expect_only_moe_errors("gguf", [&] {
        const auto f = moe::GgufFile::open(path);
        // Every typed accessor on every key: each must answer or throw moe::Error.
        for (const auto& kv : f->metadata()) {
            const std::string& key = kv.first;  // (a structured binding cannot be captured)
            moefuzz::expect_only_moe_errors("gguf", [&] { (void)f->get_string(key, ""); });
            moefuzz::expect_only_moe_errors("gguf", [&] { (void)f->get_int(key, 0); });
            moefuzz::expect_only_moe_errors("gguf", [&] { (void)f->get_float(key, 0); });
            moefuzz::expect_only_moe_errors("gguf", [&] { (void)f->get_string_array(key); });
            moefuzz::expect_only_moe_errors("gguf", [&] { (void)f->get_int_array(key); });
            moefuzz::expect_only_moe_errors("gguf", [&] { (void)f->get_float_array(key); });
        }
        // The tensors' bytes lie inside the mapping: touch the first and last of each.
        volatile uint8_t sink = 0;
        for (const auto& t : f->tensors()) {
            if (t.nbytes) sink ^= t.data[0] ^ t.data[t.nbytes - 1];
        }
    });
    return 0;
}
