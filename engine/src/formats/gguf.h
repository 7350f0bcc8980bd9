#pragma once
// GGUF files (llama.cpp's model format, versions 2 and 3): a memory-mapped reader that
// validates the header and hands out zero-copy tensor views, typed metadata accessors, and a
// writer (for the HF -> GGUF converter and LoRA export) whose files llama.cpp loads.
//
// Shapes are kept in ggml order: ne[0] is the innermost (contiguous) dimension, so a weight
// matrix [rows, cols] in PyTorch terms has ne = {cols, rows}. shape() gives the reversed,
// row-major view that the safetensors side uses.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/mapped_file.h"
#include "formats/ggml_types.h"

namespace moe {

// Value type ids as stored in the file (gguf.h's gguf_type).
enum class GgufType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};
std::string gguf_type_name(GgufType t);  // "uint32", "array[string]" is built by GgufValue

// One metadata value. Scalars live in the field of their kind (unsigned ints and bool in `u`,
// signed ints in `i`, floats in `f`, strings in `s`); arrays keep their element type and fill
// the vector of that kind. Arrays of arrays are not used by llama.cpp and are rejected.
struct GgufValue {
    GgufType type = GgufType::UINT8;
    GgufType elem_type = GgufType::UINT8;  // arrays only
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<uint64_t> au;  // arrays of unsigned ints / bools
    std::vector<int64_t> ai;   // arrays of signed ints
    std::vector<double> af;    // arrays of floats
    std::vector<std::string> as;

    size_t array_size() const;
    std::string type_string() const;  // "uint32", "array[string]"

    static GgufValue u8(uint8_t v);
    static GgufValue i8(int8_t v);
    static GgufValue u16(uint16_t v);
    static GgufValue i16(int16_t v);
    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue u64(uint64_t v);
    static GgufValue i64(int64_t v);
    static GgufValue f32(float v);
    static GgufValue f64(double v);
    static GgufValue boolean(bool v);
    static GgufValue str(std::string v);
    // Arrays; `elem` must be an integer type for the integer overloads, FLOAT32/FLOAT64 for
    // the float one (values are range-checked when written).
    static GgufValue array(GgufType elem, std::vector<int64_t> v);
    static GgufValue array_unsigned(GgufType elem, std::vector<uint64_t> v);
    static GgufValue array(GgufType elem, std::vector<double> v);
    static GgufValue array_bool(std::vector<bool> v);
    static GgufValue array(std::vector<std::string> v);
};

struct GgufTensorInfo {
    std::string name;
    GgmlType type = GgmlType::F32;
    std::vector<int64_t> ne;        // ggml order, 1..4 dims
    uint64_t offset = 0;            // from the start of the data section
    const uint8_t* data = nullptr;  // into the mapping (valid while the GgufFile lives)
    size_t nbytes = 0;

    int64_t numel() const;
    int64_t row_length() const { return ne.empty() ? 1 : ne[0]; }
    int64_t rows() const;  // numel / ne[0]
    size_t row_bytes() const { return ggml_row_size(type, row_length()); }
    const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes(); }
    std::vector<int64_t> shape() const;  // row-major: reversed ne
    std::string describe() const;        // "name ne=[64, 512] Q4_K"
};

class GgufFile {
  public:
    // Maps and validates `path`; throws moe::Error naming the file, the key or tensor, and
    // what was expected, for anything malformed or truncated.
    static std::shared_ptr<GgufFile> open(const std::string& path);

    const std::string& path() const { return file_->path(); }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    const std::shared_ptr<const MappedFile>& mapping() const { return file_; }

    // Metadata in file order.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    bool has(const std::string& key) const { return find(key) != nullptr; }
    const GgufValue* find(const std::string& key) const;
    // Typed access. The get_* forms return `fallback` when the key is absent; all forms
    // throw moe::Error naming the file and key when the key holds another type.
    // Integers accept any integer type (range-checked into int64); floats accept float32/64.
    std::string get_string(const std::string& key, const std::string& fallback) const;
    int64_t get_int(const std::string& key, int64_t fallback) const;
    double get_float(const std::string& key, double fallback) const;
    bool get_bool(const std::string& key, bool fallback) const;
    // The require_* forms also throw when the key is absent.
    std::string require_string(const std::string& key) const;
    int64_t require_int(const std::string& key) const;
    double require_float(const std::string& key) const;
    bool require_bool(const std::string& key) const;
    std::vector<std::string> require_string_array(const std::string& key) const;
    std::vector<int64_t> require_int_array(const std::string& key) const;
    std::vector<double> require_float_array(const std::string& key) const;
    // Absent key -> empty vector.
    std::vector<std::string> get_string_array(const std::string& key) const;
    std::vector<int64_t> get_int_array(const std::string& key) const;
    std::vector<double> get_float_array(const std::string& key) const;

    // Tensors in file order.
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(const std::string& name) const;
    // Throws moe::Error naming the tensor and the file if absent.
    const GgufTensorInfo& tensor(const std::string& name) const;

  private:
    std::shared_ptr<const MappedFile> file_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::map<std::string, size_t> kv_index_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t> tensor_index_;
};

// Builds a GGUF (version 3) file: metadata in insertion order, then tensor infos, then the
// tensor data, each tensor padded to the alignment (32 unless set_alignment, which also
// records general.alignment). write() writes `path`.tmp and renames it over `path`, so a
// failed write never leaves a half file under the final name.
class GgufWriter {
  public:
    void set_alignment(uint32_t alignment);  // power of two
    // Throws moe::Error on a duplicate key.
    void add(const std::string& key, GgufValue value);
    void add_string(const std::string& key, std::string v) {
        add(key, GgufValue::str(std::move(v)));
    }
    void add_u32(const std::string& key, uint32_t v) { add(key, GgufValue::u32(v)); }
    void add_i32(const std::string& key, int32_t v) { add(key, GgufValue::i32(v)); }
    void add_u64(const std::string& key, uint64_t v) { add(key, GgufValue::u64(v)); }
    void add_f32(const std::string& key, float v) { add(key, GgufValue::f32(v)); }
    void add_bool(const std::string& key, bool v) { add(key, GgufValue::boolean(v)); }

    // Adds a tensor of ggml shape `ne` (ne[0] innermost). `data` must hold exactly
    // ggml_row_size(type, ne[0]) * (rows) bytes and stay valid until write() returns (the
    // converter streams multi-gigabyte tensors straight from their mappings).
    void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                    const void* data, size_t nbytes);
    // The same, with the writer owning the bytes.
    void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                    std::vector<uint8_t> bytes);

    void write(const std::string& path) const;

  private:
    struct Pending {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        const void* data;
        size_t nbytes;
        std::shared_ptr<std::vector<uint8_t>> owned;
    };
    uint32_t alignment_ = 32;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<Pending> tensors_;
};

}  // namespace moe
