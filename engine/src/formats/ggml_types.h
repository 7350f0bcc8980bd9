#pragma once
// ggml's tensor element types as GGUF files store them: the numeric ids are ggml's `ggml_type`
// values (they are written into files, so they must never be renumbered), with the block size
// (elements per block) and the bytes per block that define a row's size in the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace moe {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ4_NL = 20,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
    MXFP4 = 39,
};

struct GgmlTypeInfo {
    GgmlType type;
    std::string_view name;  // ggml's spelling in upper case: "Q4_K", "F32", "BF16"
    int64_t block_size;     // elements per block (1 for plain types)
    size_t type_size;       // bytes per block
    bool quantized;         // block-quantized (dequantize/quantize kernels in cpu/quants.h)
};

// The entry for `id`, or nullptr if this build does not know the type (ids of ggml types we do
// not support, such as the IQ2/IQ3/IQ1 grids or TQ*, and ids no ggml release ever used).
const GgmlTypeInfo* find_ggml_type(uint32_t id);
// The entry for a known type.
const GgmlTypeInfo& ggml_type_info(GgmlType t);
// Like find_ggml_type, but throws moe::Error naming `what` (file and tensor) and the type:
// "model.gguf: tensor 'blk.0.attn_q.weight' has ggml type 16 (IQ2_XXS), which is not supported".
const GgmlTypeInfo& require_ggml_type(uint32_t id, const std::string& what);

// ggml's name for any type id ("IQ2_XXS" for 16 even though unsupported), or "type <id>".
std::string ggml_type_name(uint32_t id);
inline std::string ggml_type_name(GgmlType t) {
    return ggml_type_name(uint32_t(t));
}
// Parses a name (case-insensitive: "q4_k", "Q4_K") of a supported type. False if unknown.
bool parse_ggml_type(std::string_view name, GgmlType& out);

// Bytes of a row of `n` elements. Throws moe::Error naming the type if `n` is not a multiple
// of the block size.
size_t ggml_row_size(GgmlType t, int64_t n);
int64_t ggml_block_size(GgmlType t);
size_t ggml_type_size(GgmlType t);

// The engine DType of a plain (not block-quantized) float type: F32, F16, BF16, F64 and the
// integer types. False for quantized types.
bool ggml_type_to_dtype(GgmlType t, DType& out);

}  // namespace moe
