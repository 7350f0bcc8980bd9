#include "formats/ggml_types.h"

#include <array>
#include <cctype>

#include "core/error.h"

namespace moe {

namespace {

constexpr int64_t kQK_K = 256;  // super-block of the K-quants and IQ4_XS

// Sizes follow ggml-common.h's block structs (fp16 scales are 2 bytes, Q8_K's scale is f32).
constexpr std::array<GgmlTypeInfo, 23> kTypes{{
    {GgmlType::F32, "F32", 1, 4, false},
    {GgmlType::F16, "F16", 1, 2, false},
    {GgmlType::Q4_0, "Q4_0", 32, 2 + 16, true},
    {GgmlType::Q4_1, "Q4_1", 32, 2 + 2 + 16, true},
    {GgmlType::Q5_0, "Q5_0", 32, 2 + 4 + 16, true},
    {GgmlType::Q5_1, "Q5_1", 32, 2 + 2 + 4 + 16, true},
    {GgmlType::Q8_0, "Q8_0", 32, 2 + 32, true},
    {GgmlType::Q8_1, "Q8_1", 32, 2 + 2 + 32, true},
    {GgmlType::Q2_K, "Q2_K", kQK_K, kQK_K / 16 + kQK_K / 4 + 2 + 2, true},
    {GgmlType::Q3_K, "Q3_K", kQK_K, kQK_K / 8 + kQK_K / 4 + 12 + 2, true},
    {GgmlType::Q4_K, "Q4_K", kQK_K, 2 + 2 + 12 + kQK_K / 2, true},
    {GgmlType::Q5_K, "Q5_K", kQK_K, 2 + 2 + 12 + kQK_K / 8 + kQK_K / 2, true},
    {GgmlType::Q6_K, "Q6_K", kQK_K, kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2, true},
    {GgmlType::Q8_K, "Q8_K", kQK_K, 4 + kQK_K + kQK_K / 16 * 2, true},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 2 + 16, true},
    {GgmlType::IQ4_XS, "IQ4_XS", kQK_K, 2 + 2 + kQK_K / 64 + kQK_K / 2, true},
    {GgmlType::I8, "I8", 1, 1, false},
    {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},
    {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},
    {GgmlType::BF16, "BF16", 1, 2, false},
    {GgmlType::MXFP4, "MXFP4", 32, 1 + 16, true},
}};

// Names of every ggml type id, so that an unsupported type is reported by name.
constexpr std::array<std::string_view, 43> kAllNames{
    "F32",   "F16",        "Q4_0",       "Q4_1",       "Q4_2",     "Q4_3",     "Q5_0",
    "Q5_1",  "Q8_0",       "Q8_1",       "Q2_K",       "Q3_K",     "Q4_K",     "Q5_K",
    "Q6_K",  "Q8_K",       "IQ2_XXS",    "IQ2_XS",     "IQ3_XXS",  "IQ1_S",    "IQ4_NL",
    "IQ3_S", "IQ2_S",      "IQ4_XS",     "I8",         "I16",      "I32",      "I64",
    "F64",   "IQ1_M",      "BF16",       "Q4_0_4_4",   "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
    "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",    "NVFP4",    "Q1_0",
    "Q2_0",
};

}  // namespace

const GgmlTypeInfo* find_ggml_type(uint32_t id) {
    for (const auto& t : kTypes)
        if (uint32_t(t.type) == id) return &t;
    return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType t) {
    const GgmlTypeInfo* info = find_ggml_type(uint32_t(t));
    if (!info) throw Error("ggml type " + std::to_string(uint32_t(t)) + " is not supported");
    return *info;
}

const GgmlTypeInfo& require_ggml_type(uint32_t id, const std::string& what) {
    const GgmlTypeInfo* info = find_ggml_type(id);
    if (!info) {
        const bool known = id < kAllNames.size();
        throw Error(what + " has ggml type " + std::to_string(id) +
                    (known ? " (" + std::string(kAllNames[id]) + "), which is not supported"
                           : ", which is not a known ggml type") +
                    "; supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, "
                    "IQ4_NL, IQ4_XS, MXFP4 and the integer types");
    }
    return *info;
}

std::string ggml_type_name(uint32_t id) {
    if (id < kAllNames.size()) return std::string(kAllNames[id]);
    return "type " + std::to_string(id);
}

bool parse_ggml_type(std::string_view name, GgmlType& out) {
    for (const auto& t : kTypes) {
        if (t.name.size() != name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < name.size() && same; ++i)
            same = std::toupper(static_cast<unsigned char>(name[i])) == t.name[i];
        if (same) {
            out = t.type;
            return true;
        }
    }
    return false;
}

size_t ggml_row_size(GgmlType t, int64_t n) {
    const GgmlTypeInfo& info = ggml_type_info(t);
    require(n >= 0 && n % info.block_size == 0,
            "a row of " + std::to_string(n) + " elements cannot be stored as " +
                std::string(info.name) + ": expected a multiple of its block size " +
                std::to_string(info.block_size));
    return size_t(n / info.block_size) * info.type_size;
}

int64_t ggml_block_size(GgmlType t) {
    return ggml_type_info(t).block_size;
}
size_t ggml_type_size(GgmlType t) {
    return ggml_type_info(t).type_size;
}

bool ggml_type_to_dtype(GgmlType t, DType& out) {
    switch (t) {
        case GgmlType::F32:
            out = DType::F32;
            return true;
        case GgmlType::F16:
            out = DType::F16;
            return true;
        case GgmlType::BF16:
            out = DType::BF16;
            return true;
        case GgmlType::F64:
            out = DType::F64;
            return true;
        case GgmlType::I8:
            out = DType::I8;
            return true;
        case GgmlType::I16:
            out = DType::I16;
            return true;
        case GgmlType::I32:
            out = DType::I32;
            return true;
        case GgmlType::I64:
            out = DType::I64;
            return true;
        default:
            return false;
    }
}

}  // namespace moe
