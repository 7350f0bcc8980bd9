#include "formats/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace moe {

namespace {

constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
constexpr size_t kMaxTensorName = 64;       // GGML_MAX_NAME, terminator included
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT

// Per value type, indexed by GgufType: bytes of one scalar (strings and arrays: the minimum,
// their length fields), and its kind.
struct TypeTraits {
    uint8_t size;
    char kind;  // 'u' unsigned int, 'i' signed int, 'f' float, 'b' bool, 's' string, 'a' array
};
constexpr TypeTraits kTraits[13] = {{1, 'u'}, {1, 'i'}, {2, 'u'}, {2, 'i'}, {4, 'u'},
                                    {4, 'i'}, {4, 'f'}, {1, 'b'}, {8, 's'}, {12, 'a'},
                                    {8, 'u'}, {8, 'i'}, {8, 'f'}};
char kind(GgufType t) {
    return kTraits[uint32_t(t)].kind;
}
bool is_signed(GgufType t) {
    return kind(t) == 'i';
}
bool is_float(GgufType t) {
    return kind(t) == 'f';
}
bool is_unsigned_kind(GgufType t) {
    return kind(t) == 'u';
}
bool is_integer(GgufType t) {
    return is_signed(t) || is_unsigned_kind(t);
}
size_t scalar_size(GgufType t) {
    return kTraits[uint32_t(t)].size;
}
bool valid_type(uint32_t t) {
    return t <= uint32_t(GgufType::FLOAT64);
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

// A bounds-checked little-endian cursor over the mapped header. Every read names what it
// reads so a truncated file says where it ends.
class Cursor {
  public:
    Cursor(const std::string& path, const uint8_t* data, size_t size)
        : path_(path), data_(data), size_(size) {}
    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }

    void need(uint64_t n, const std::string& what) const {
        if (n > remaining())
            throw Error(path_ + ": truncated GGUF file: " + what + " needs " + std::to_string(n) +
                        " bytes at offset " + std::to_string(pos_) + " but the file has " +
                        std::to_string(size_) + " bytes");
    }
    template <typename T>
    T read(const std::string& what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string read_string(const std::string& what) {
        const uint64_t n = read<uint64_t>(what + " (string length)");
        need(n, what + " (string of " + std::to_string(n) + " bytes)");
        std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
        pos_ += size_t(n);
        return s;
    }

  private:
    const std::string& path_;
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

std::string key_what(const std::string& key) {
    return "value of key '" + key + "'";
}

void read_scalar(Cursor& c, GgufType t, GgufValue& v, const std::string& what,
                 const std::string& path) {
    switch (t) {
        case GgufType::UINT8:
            v.u = c.read<uint8_t>(what);
            break;
        case GgufType::INT8:
            v.i = c.read<int8_t>(what);
            break;
        case GgufType::UINT16:
            v.u = c.read<uint16_t>(what);
            break;
        case GgufType::INT16:
            v.i = c.read<int16_t>(what);
            break;
        case GgufType::UINT32:
            v.u = c.read<uint32_t>(what);
            break;
        case GgufType::INT32:
            v.i = c.read<int32_t>(what);
            break;
        case GgufType::UINT64:
            v.u = c.read<uint64_t>(what);
            break;
        case GgufType::INT64:
            v.i = c.read<int64_t>(what);
            break;
        case GgufType::FLOAT32:
            v.f = c.read<float>(what);
            break;
        case GgufType::FLOAT64:
            v.f = c.read<double>(what);
            break;
        case GgufType::BOOL: {
            const uint8_t b = c.read<uint8_t>(what);
            if (b > 1)
                throw Error(path + ": " + what + " is a bool stored as " + std::to_string(b) +
                            "; expected 0 or 1");
            v.u = b;
            break;
        }
        case GgufType::STRING:
            v.s = c.read_string(what);
            break;
        case GgufType::ARRAY:
            break;  // handled by the caller
    }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, const std::string& path) {
    GgufValue v;
    v.type = t;
    const std::string what = key_what(key);
    if (t != GgufType::ARRAY) {
        read_scalar(c, t, v, what, path);
        return v;
    }
    const uint32_t et = c.read<uint32_t>(what + " (array element type)");
    if (!valid_type(et) || GgufType(et) == GgufType::ARRAY)
        throw Error(path + ": key '" + key + "' is an array of type id " + std::to_string(et) +
                    "; expected an array of a scalar or string type (0..12, arrays of arrays "
                    "are not supported)");
    v.elem_type = GgufType(et);
    const uint64_t n = c.read<uint64_t>(what + " (array length)");
    // Every element takes at least scalar_size bytes: reject absurd counts before allocating.
    const size_t min_size = scalar_size(v.elem_type);
    if (n > c.remaining() / min_size)
        throw Error(path + ": truncated GGUF file: key '" + key + "' claims an array of " +
                    std::to_string(n) + " " + gguf_type_name(v.elem_type) + " elements but only " +
                    std::to_string(c.remaining()) + " bytes remain");
    GgufValue e;
    for (uint64_t k = 0; k < n; ++k) {
        read_scalar(c, v.elem_type, e, what, path);
        if (v.elem_type == GgufType::STRING)
            v.as.push_back(std::move(e.s));
        else if (is_float(v.elem_type))
            v.af.push_back(e.f);
        else if (is_signed(v.elem_type))
            v.ai.push_back(e.i);
        else
            v.au.push_back(e.u);
    }
    return v;
}

}  // namespace

// ---------------------------------------------------------------- values

std::string gguf_type_name(GgufType t) {
    static const char* const kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                         "int32",  "float32", "bool",   "string", "array",
                                         "uint64", "int64",   "float64"};
    return uint32_t(t) <= 12 ? kNames[uint32_t(t)] : "type " + std::to_string(uint32_t(t));
}

size_t GgufValue::array_size() const {
    if (type != GgufType::ARRAY) return 0;
    if (elem_type == GgufType::STRING) return as.size();
    if (is_float(elem_type)) return af.size();
    if (is_signed(elem_type)) return ai.size();
    return au.size();
}

std::string GgufValue::type_string() const {
    return type == GgufType::ARRAY ? "array[" + gguf_type_name(elem_type) + "]"
                                   : gguf_type_name(type);
}

namespace {
GgufValue make_unsigned(GgufType t, uint64_t v) {
    GgufValue r;
    r.type = t;
    r.u = v;
    return r;
}
GgufValue make_signed(GgufType t, int64_t v) {
    GgufValue r;
    r.type = t;
    r.i = v;
    return r;
}
GgufValue make_float(GgufType t, double v) {
    GgufValue r;
    r.type = t;
    r.f = v;
    return r;
}
GgufValue make_array(GgufType elem) {
    GgufValue r;
    r.type = GgufType::ARRAY;
    r.elem_type = elem;
    return r;
}
}  // namespace

GgufValue GgufValue::u8(uint8_t v) {
    return make_unsigned(GgufType::UINT8, v);
}
GgufValue GgufValue::u16(uint16_t v) {
    return make_unsigned(GgufType::UINT16, v);
}
GgufValue GgufValue::u32(uint32_t v) {
    return make_unsigned(GgufType::UINT32, v);
}
GgufValue GgufValue::u64(uint64_t v) {
    return make_unsigned(GgufType::UINT64, v);
}
GgufValue GgufValue::boolean(bool v) {
    return make_unsigned(GgufType::BOOL, v ? 1 : 0);
}
GgufValue GgufValue::i8(int8_t v) {
    return make_signed(GgufType::INT8, v);
}
GgufValue GgufValue::i16(int16_t v) {
    return make_signed(GgufType::INT16, v);
}
GgufValue GgufValue::i32(int32_t v) {
    return make_signed(GgufType::INT32, v);
}
GgufValue GgufValue::i64(int64_t v) {
    return make_signed(GgufType::INT64, v);
}
GgufValue GgufValue::f32(float v) {
    return make_float(GgufType::FLOAT32, v);
}
GgufValue GgufValue::f64(double v) {
    return make_float(GgufType::FLOAT64, v);
}
GgufValue GgufValue::str(std::string v) {
    GgufValue r;
    r.type = GgufType::STRING;
    r.s = std::move(v);
    return r;
}
GgufValue GgufValue::array(GgufType elem, std::vector<int64_t> v) {
    require(is_integer(elem),
            "GgufValue::array: integer values need an integer element type, not " +
                gguf_type_name(elem));
    GgufValue r = make_array(elem);
    if (is_signed(elem)) {
        r.ai = std::move(v);
    } else {
        for (int64_t x : v) {
            require(x >= 0, "GgufValue::array: negative value for an unsigned array");
            r.au.push_back(uint64_t(x));
        }
    }
    return r;
}
GgufValue GgufValue::array_unsigned(GgufType elem, std::vector<uint64_t> v) {
    require(is_unsigned_kind(elem), "GgufValue::array_unsigned: element type must be unsigned");
    GgufValue r = make_array(elem);
    r.au = std::move(v);
    return r;
}
GgufValue GgufValue::array(GgufType elem, std::vector<double> v) {
    require(is_float(elem), "GgufValue::array: float values need FLOAT32 or FLOAT64");
    GgufValue r = make_array(elem);
    r.af = std::move(v);
    return r;
}
GgufValue GgufValue::array_bool(std::vector<bool> v) {
    GgufValue r = make_array(GgufType::BOOL);
    for (bool b : v) r.au.push_back(b ? 1 : 0);
    return r;
}
GgufValue GgufValue::array(std::vector<std::string> v) {
    GgufValue r = make_array(GgufType::STRING);
    r.as = std::move(v);
    return r;
}

// ---------------------------------------------------------------- tensors

int64_t GgufTensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
}

int64_t GgufTensorInfo::rows() const {
    const int64_t n0 = row_length();
    return n0 == 0 ? 0 : numel() / n0;
}

std::vector<int64_t> GgufTensorInfo::shape() const {
    return {ne.rbegin(), ne.rend()};
}

std::string GgufTensorInfo::describe() const {
    std::string s = name + " ne=[";
    for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "] " + ggml_type_name(type);
}

// ---------------------------------------------------------------- reader

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
    auto g = std::shared_ptr<GgufFile>(new GgufFile());
    g->file_ = MappedFile::open(path);
    const std::string& p = g->file_->path();
    Cursor c(p, g->file_->data(), g->file_->size());

    c.need(4, "the magic");
    if (std::memcmp(g->file_->data(), "GGUF", 4) != 0) {
        std::string got(reinterpret_cast<const char*>(g->file_->data()), 4);
        for (char& ch : got)
            if (ch < 32 || ch > 126) ch = '?';
        throw Error(p + ": not a GGUF file: magic is '" + got + "', expected 'GGUF'");
    }
    c.read<uint32_t>("the magic");
    g->version_ = c.read<uint32_t>("the version");
    if (g->version_ == 1)
        throw Error(p +
                    ": GGUF version 1 is not supported (expected version 2 or 3); "
                    "re-convert the model with a current llama.cpp");
    if ((g->version_ & 0x0000ffffu) == 0 && g->version_ != 0)
        throw Error(p + ": GGUF version " + std::to_string(g->version_) +
                    " looks byte-swapped: big-endian GGUF files are not supported");
    if (g->version_ != 2 && g->version_ != 3)
        throw Error(p + ": unsupported GGUF version " + std::to_string(g->version_) +
                    "; expected 2 or 3");
    const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
    const uint64_t n_kv = c.read<uint64_t>("the metadata count");
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info at
    // least 8 + 4 + 4 + 8 bytes: counts beyond that cannot fit in the file.
    if (n_kv > c.remaining() / 13 || n_tensors > c.remaining() / 24)
        throw Error(p + ": truncated or corrupt GGUF header: it claims " +
                    std::to_string(n_tensors) + " tensors and " + std::to_string(n_kv) +
                    " metadata entries, more than the " + std::to_string(c.remaining()) +
                    " remaining bytes can hold");

    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key = c.read_string("metadata key #" + std::to_string(k));
        if (key.empty())
            throw Error(p + ": metadata key #" + std::to_string(k) + " is empty; expected a name");
        const uint32_t t = c.read<uint32_t>("the type of key '" + key + "'");
        if (!valid_type(t))
            throw Error(p + ": key '" + key + "' has value type id " + std::to_string(t) +
                        "; expected 0..12");
        GgufValue v = read_value(c, GgufType(t), key, p);
        if (!g->kv_index_.emplace(key, g->kv_.size()).second)
            throw Error(p + ": duplicate metadata key '" + key + "'");
        g->kv_.emplace_back(std::move(key), std::move(v));
    }

    if (const GgufValue* a = g->find("general.alignment")) {
        if (a->type != GgufType::UINT32)
            throw Error(p + ": key 'general.alignment' is " + a->type_string() +
                        "; expected uint32");
        if (a->u == 0 || (a->u & (a->u - 1)) != 0)
            throw Error(p + ": key 'general.alignment' is " + std::to_string(a->u) +
                        "; expected a power of two");
        g->alignment_ = a->u;
    } else {
        g->alignment_ = kDefaultAlignment;
    }

    g->tensors_.reserve(size_t(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
        GgufTensorInfo ti;
        ti.name = c.read_string("the name of tensor #" + std::to_string(k));
        const std::string tw = p + ": tensor '" + ti.name + "'";
        if (ti.name.empty())
            throw Error(p + ": tensor #" + std::to_string(k) + " has an empty name");
        if (ti.name.size() >= kMaxTensorName)
            throw Error(tw + ": name is " + std::to_string(ti.name.size()) +
                        " bytes; expected fewer than " + std::to_string(kMaxTensorName));
        if (!g->tensor_index_.emplace(ti.name, g->tensors_.size()).second)
            throw Error(p + ": duplicate tensor name '" + ti.name + "'");
        const uint32_t n_dims = c.read<uint32_t>("the dimension count of tensor '" + ti.name + "'");
        if (n_dims == 0 || n_dims > kMaxDims)
            throw Error(tw + " has " + std::to_string(n_dims) + " dimensions; expected 1.." +
                        std::to_string(kMaxDims));
        int64_t numel = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t n = c.read<uint64_t>("the shape of tensor '" + ti.name + "'");
            if (n > uint64_t(std::numeric_limits<int64_t>::max()) ||
                (n > 0 && numel > std::numeric_limits<int64_t>::max() / int64_t(n)))
                throw Error(tw + ": dimension " + std::to_string(d) + " is " + std::to_string(n) +
                            ", the element count overflows int64");
            ti.ne.push_back(int64_t(n));
            numel *= int64_t(n);
        }
        const uint32_t type = c.read<uint32_t>("the type of tensor '" + ti.name + "'");
        const GgmlTypeInfo& info = require_ggml_type(type, tw);
        ti.type = info.type;
        if (ti.ne[0] % info.block_size != 0)
            throw Error(tw + " is " + std::string(info.name) + " with rows of " +
                        std::to_string(ti.ne[0]) +
                        " elements; expected a multiple of the block size " +
                        std::to_string(info.block_size));
        ti.offset = c.read<uint64_t>("the data offset of tensor '" + ti.name + "'");
        if (ti.offset % g->alignment_ != 0)
            throw Error(tw + ": data offset " + std::to_string(ti.offset) +
                        " is not aligned; expected a multiple of " + std::to_string(g->alignment_));
        const uint64_t blocks = uint64_t(numel / info.block_size);
        if (blocks > std::numeric_limits<uint64_t>::max() / info.type_size)
            throw Error(tw + ": size in bytes overflows");
        ti.nbytes = size_t(blocks * info.type_size);
        g->tensors_.push_back(std::move(ti));
    }

    g->data_offset_ = align_up(c.pos(), g->alignment_);
    const uint64_t file_size = g->file_->size();
    for (GgufTensorInfo& ti : g->tensors_) {
        const uint64_t avail = file_size > g->data_offset_ ? file_size - g->data_offset_ : 0;
        if (ti.offset > avail || ti.nbytes > avail - ti.offset)
            throw Error(p + ": tensor '" + ti.name + "' (" + std::to_string(ti.nbytes) +
                        " bytes at data offset " + std::to_string(ti.offset) +
                        ") lies outside the file: expected it within the " + std::to_string(avail) +
                        " bytes of the data section (file truncated?)");
        ti.data = g->file_->data() + g->data_offset_ + ti.offset;
    }
    // Tensors must not share bytes (llama.cpp requires them back to back; we only need them
    // disjoint).
    std::vector<const GgufTensorInfo*> by_offset;
    for (const auto& ti : g->tensors_) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(),
              [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
        const GgufTensorInfo& a = *by_offset[k - 1];
        const GgufTensorInfo& b = *by_offset[k];
        if (a.offset + a.nbytes > b.offset)
            throw Error(p + ": tensor '" + b.name + "' at data offset " + std::to_string(b.offset) +
                        " overlaps tensor '" + a.name + "' (" + std::to_string(a.nbytes) +
                        " bytes at " + std::to_string(a.offset) + "); expected disjoint data");
    }
    return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
    const GgufTensorInfo* t = find_tensor(name);
    if (!t) throw Error(path() + ": tensor '" + name + "' not found");
    return *t;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& v,
                             const std::string& expected) {
    throw Error(path + ": key '" + key + "' is " + v.type_string() + "; expected " + expected);
}

int64_t to_int(const std::string& path, const std::string& key, const GgufValue& v) {
    if (!is_integer(v.type)) wrong_type(path, key, v, "an integer");
    if (is_signed(v.type)) return v.i;
    if (v.u > uint64_t(std::numeric_limits<int64_t>::max()))
        throw Error(path + ": key '" + key + "' is " + std::to_string(v.u) +
                    ", too large; expected a value that fits int64");
    return int64_t(v.u);
}

}  // namespace

std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::STRING) wrong_type(path(), key, *v, "string");
    return v->s;
}

int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
    const GgufValue* v = find(key);
    return v ? to_int(path(), key, *v) : fallback;
}

double GgufFile::get_float(const std::string& key, double fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!is_float(v->type)) wrong_type(path(), key, *v, "float32 or float64");
    return v->f;
}

bool GgufFile::get_bool(const std::string& key, bool fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::BOOL) wrong_type(path(), key, *v, "bool");
    return v->u != 0;
}

namespace {
const GgufValue& required(const GgufFile& g, const std::string& key) {
    const GgufValue* v = g.find(key);
    if (!v) throw Error(g.path() + ": required metadata key '" + key + "' is missing");
    return *v;
}
}  // namespace

std::string GgufFile::require_string(const std::string& key) const {
    required(*this, key);
    return get_string(key, {});
}
int64_t GgufFile::require_int(const std::string& key) const {
    return to_int(path(), key, required(*this, key));
}
double GgufFile::require_float(const std::string& key) const {
    required(*this, key);
    return get_float(key, 0);
}
bool GgufFile::require_bool(const std::string& key) const {
    required(*this, key);
    return get_bool(key, false);
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
        wrong_type(path(), key, *v, "array[string]");
    return v->as;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || !is_integer(v->elem_type))
        wrong_type(path(), key, *v, "an array of integers");
    if (is_signed(v->elem_type)) return v->ai;
    std::vector<int64_t> out;
    out.reserve(v->au.size());
    for (uint64_t x : v->au) {
        if (x > uint64_t(std::numeric_limits<int64_t>::max()))
            throw Error(path() + ": key '" + key + "' holds " + std::to_string(x) +
                        ", too large; expected values that fit int64");
        out.push_back(int64_t(x));
    }
    return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return {};
    if (v->type != GgufType::ARRAY || !is_float(v->elem_type))
        wrong_type(path(), key, *v, "an array of float32 or float64");
    return v->af;
}

std::vector<std::string> GgufFile::require_string_array(const std::string& key) const {
    required(*this, key);
    return get_string_array(key);
}
std::vector<int64_t> GgufFile::require_int_array(const std::string& key) const {
    required(*this, key);
    return get_int_array(key);
}
std::vector<double> GgufFile::require_float_array(const std::string& key) const {
    required(*this, key);
    return get_float_array(key);
}

// ---------------------------------------------------------------- writer

void GgufWriter::set_alignment(uint32_t alignment) {
    require(alignment != 0 && (alignment & (alignment - 1)) == 0,
            "GgufWriter: alignment " + std::to_string(alignment) + " is not a power of two");
    alignment_ = alignment;
}

void GgufWriter::add(const std::string& key, GgufValue value) {
    require(!key.empty(), "GgufWriter: empty metadata key");
    for (const auto& kv : kv_)
        require(kv.first != key, "GgufWriter: duplicate metadata key '" + key + "'");
    if (key == "general.alignment") {
        require(value.type == GgufType::UINT32,
                "GgufWriter: 'general.alignment' must be uint32, not " + value.type_string());
        set_alignment(uint32_t(value.u));
    }
    kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                            const void* data, size_t nbytes) {
    const std::string tw = "GgufWriter: tensor '" + name + "'";
    require(!name.empty() && name.size() < kMaxTensorName,
            tw + ": name must have 1.." + std::to_string(kMaxTensorName - 1) + " bytes");
    require(!ne.empty() && ne.size() <= kMaxDims, tw + ": expected 1..4 dimensions");
    for (const auto& t : tensors_) require(t.name != name, tw + " added twice");
    int64_t rows = 1;
    for (size_t d = 1; d < ne.size(); ++d) {
        require(ne[d] >= 0, tw + ": negative dimension");
        rows *= ne[d];
    }
    require(ne[0] >= 0, tw + ": negative dimension");
    const size_t expected = ggml_row_size(type, ne[0]) * size_t(rows);
    require(nbytes == expected, tw + ": " + std::to_string(nbytes) + " bytes of data; expected " +
                                    std::to_string(expected) + " for " + ggml_type_name(type));
    require(data != nullptr || nbytes == 0, tw + ": no data");
    tensors_.push_back({name, type, std::move(ne), data, nbytes, nullptr});
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                            std::vector<uint8_t> bytes) {
    auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    add_tensor(name, type, std::move(ne), owned->data(), owned->size());
    tensors_.back().owned = std::move(owned);
}

namespace {

class Out {
  public:
    explicit Out(std::ofstream& f) : f_(f) {}
    void bytes(const void* p, size_t n) {
        f_.write(static_cast<const char*>(p), std::streamsize(n));
        pos_ += n;
    }
    template <typename T>
    void put(T v) {
        bytes(&v, sizeof(T));
    }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        bytes(s.data(), s.size());
    }
    void pad(uint64_t alignment) {
        static const char zeros[256] = {};
        uint64_t n = align_up(pos_, alignment) - pos_;
        while (n > 0) {
            const size_t k = size_t(std::min<uint64_t>(n, sizeof(zeros)));
            bytes(zeros, k);
            n -= k;
        }
    }
    uint64_t pos() const { return pos_; }

  private:
    std::ofstream& f_;
    uint64_t pos_ = 0;
};

template <typename T>
T checked(const std::string& key, int64_t v) {
    require(
        v >= int64_t(std::numeric_limits<T>::min()) && v <= int64_t(std::numeric_limits<T>::max()),
        "GgufWriter: key '" + key + "': " + std::to_string(v) + " does not fit its type");
    return T(v);
}
template <typename T>
T checked_u(const std::string& key, uint64_t v) {
    require(v <= uint64_t(std::numeric_limits<T>::max()),
            "GgufWriter: key '" + key + "': " + std::to_string(v) + " does not fit its type");
    return T(v);
}

void write_scalar(Out& o, GgufType t, const std::string& key, uint64_t u, int64_t i, double f,
                  const std::string* s) {
    switch (t) {
        case GgufType::UINT8:
            o.put(checked_u<uint8_t>(key, u));
            break;
        case GgufType::UINT16:
            o.put(checked_u<uint16_t>(key, u));
            break;
        case GgufType::UINT32:
            o.put(checked_u<uint32_t>(key, u));
            break;
        case GgufType::UINT64:
            o.put<uint64_t>(u);
            break;
        case GgufType::BOOL:
            o.put<uint8_t>(u ? 1 : 0);
            break;
        case GgufType::INT8:
            o.put(checked<int8_t>(key, i));
            break;
        case GgufType::INT16:
            o.put(checked<int16_t>(key, i));
            break;
        case GgufType::INT32:
            o.put(checked<int32_t>(key, i));
            break;
        case GgufType::INT64:
            o.put<int64_t>(i);
            break;
        case GgufType::FLOAT32:
            o.put<float>(float(f));
            break;
        case GgufType::FLOAT64:
            o.put<double>(f);
            break;
        case GgufType::STRING:
            o.str(*s);
            break;
        case GgufType::ARRAY:
            throw Error("GgufWriter: key '" + key + "': nested arrays");
    }
}

void write_value(Out& o, const std::string& key, const GgufValue& v) {
    o.put<uint32_t>(uint32_t(v.type));
    if (v.type != GgufType::ARRAY) {
        write_scalar(o, v.type, key, v.u, v.i, v.f, &v.s);
        return;
    }
    o.put<uint32_t>(uint32_t(v.elem_type));
    o.put<uint64_t>(v.array_size());
    const GgufType et = v.elem_type;
    if (et == GgufType::STRING) {
        for (const auto& s : v.as) o.str(s);
    } else if (is_float(et)) {
        for (double f : v.af) write_scalar(o, et, key, 0, 0, f, nullptr);
    } else if (is_signed(et)) {
        for (int64_t i : v.ai) write_scalar(o, et, key, 0, i, 0, nullptr);
    } else {
        for (uint64_t u : v.au) write_scalar(o, et, key, u, 0, 0, nullptr);
    }
}

}  // namespace

void GgufWriter::write(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    try {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw Error(path + ": cannot create " + tmp + " for writing");
        Out o(f);
        const bool add_alignment_key = alignment_ != kDefaultAlignment &&
                                       std::none_of(kv_.begin(), kv_.end(), [](const auto& kv) {
                                           return kv.first == "general.alignment";
                                       });
        o.bytes("GGUF", 4);
        o.put<uint32_t>(3);
        o.put<uint64_t>(tensors_.size());
        o.put<uint64_t>(kv_.size() + (add_alignment_key ? 1 : 0));
        for (const auto& [key, value] : kv_) {
            o.str(key);
            write_value(o, key, value);
        }
        if (add_alignment_key) {
            o.str("general.alignment");
            write_value(o, "general.alignment", GgufValue::u32(alignment_));
        }
        // Tensors back to back in insertion order, each padded to the alignment: the layout
        // llama.cpp's loader insists on.
        uint64_t offset = 0;
        for (const auto& t : tensors_) {
            o.str(t.name);
            o.put<uint32_t>(uint32_t(t.ne.size()));
            for (int64_t d : t.ne) o.put<uint64_t>(uint64_t(d));
            o.put<uint32_t>(uint32_t(t.type));
            o.put<uint64_t>(offset);
            offset = align_up(offset + t.nbytes, alignment_);
        }
        o.pad(alignment_);
        for (const auto& t : tensors_) {
            o.bytes(t.data, t.nbytes);
            o.pad(alignment_);
        }
        f.flush();
        if (!f) throw Error(path + ": writing " + tmp + " failed (disk full?)");
        f.close();
        std::filesystem::rename(tmp, path);
    } catch (const std::filesystem::filesystem_error& e) {
        std::remove(tmp.c_str());
        throw Error(path + ": cannot move " + tmp + " into place: " + e.what());
    } catch (...) {
        std::remove(tmp.c_str());
        throw;
    }
}

}  // namespace moe
