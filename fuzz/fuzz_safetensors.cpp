// safetensors header (formats/safetensors.h): JSON header, dtypes, shapes, offsets.
#include "formats/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path =
        moefuzz::write_file("model.safetensors", {reinterpret_cast<const char*>(data), size});
    moefuzz::expect_only_moe_errors("safetensors", [&] {
        const auto f = moe::SafetensorsFile::open(path);
        volatile uint8_t sink = 0;
        for (const auto& [name, t] : f->tensors()) {
            if (t.nbytes) sink ^= t.data[0] ^ t.data[t.nbytes - 1];
        }
    });
    return 0;
}
