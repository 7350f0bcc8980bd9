#include "formats/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moe {

using nlohmann::json;
namespace fs = std::filesystem;

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

int64_t TensorView::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string TensorView::describe() const {
    const std::string type = ggml ? ggml_type_name(*ggml) : std::string(dtype_name(dtype));
    return "tensor '" + name + "' " + shape_string(shape) + " " + type +
           (file ? " in " + file->path() : std::string());
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    auto st = std::make_shared<SafetensorsFile>();
    st->file_ = MappedFile::open(path);
    const size_t size = st->file_->size();
    const uint8_t* base = st->file_->data();
    if (size < 8) throw Error(path + ": not a safetensors file (shorter than its 8-byte header)");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
    if (header_len > size - 8 || header_len > (uint64_t(100) << 20)) {
        throw Error(path + ": not a safetensors file (header length " + std::to_string(header_len) +
                    " exceeds the file size " + std::to_string(size) + ")");
    }
    json header;
    try {
        header = json::parse(base + 8, base + 8 + header_len);
    } catch (const json::exception& e) {
        throw Error(path + ": safetensors header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) throw Error(path + ": safetensors header is not a JSON object");
    const uint8_t* data_start = base + 8 + header_len;
    const uint64_t data_size = size - 8 - header_len;
    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (it->is_object()) {
                for (auto m = it->begin(); m != it->end(); ++m) {
                    if (m->is_string()) st->metadata_[m.key()] = m->get<std::string>();
                }
            }
            continue;
        }
        const json& e = *it;
        const std::string where = path + ": tensor '" + it.key() + "'";
        if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
            !e.contains("data_offsets")) {
            throw Error(where + ": header entry lacks dtype, shape or data_offsets");
        }
        TensorView t;
        t.name = it.key();
        t.file = st->file_;
        const std::string dt = e["dtype"].is_string() ? e["dtype"].get<std::string>() : "";
        if (!parse_safetensors_dtype(dt, t.dtype)) {
            throw Error(where + ": unsupported dtype '" + dt + "'");
        }
        uint64_t numel = 1;
        for (const auto& d : e["shape"]) {
            if (!d.is_number_integer() || d.get<int64_t>() < 0) {
                throw Error(where + ": shape has a non-integer or negative dimension");
            }
            const uint64_t v = d.get<uint64_t>();
            if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v) {
                throw Error(where + ": absurd shape (element count overflows)");
            }
            numel *= v;
            t.shape.push_back(int64_t(v));
        }
        const auto& off = e["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
            !off[1].is_number_unsigned()) {
            throw Error(where + ": data_offsets must be two non-negative integers");
        }
        const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        if (begin > end || end > data_size) {
            throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " +
                        std::to_string(end) + "] outside the data section of " +
                        std::to_string(data_size) + " bytes (truncated file?)");
        }
        if (numel > std::numeric_limits<uint64_t>::max() / 8 ||
            end - begin != numel * dtype_size(t.dtype)) {
            throw Error(where + ": holds " + std::to_string(end - begin) + " bytes but shape " +
                        shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) +
                        " needs " + std::to_string(numel * dtype_size(t.dtype)));
        }
        t.data = data_start + begin;
        t.nbytes = end - begin;
        st->tensors_.emplace(t.name, std::move(t));
    }
    return st;
}

WeightStore WeightStore::open_folder(const std::string& dir) {
    WeightStore ws;
    ws.origin_ = dir;
    const fs::path root(dir);
    const fs::path index = root / "model.safetensors.index.json";
    std::vector<std::string> shard_names;
    if (fs::exists(index)) {
        json j;
        try {
            std::ifstream in(index);
            j = json::parse(in);
        } catch (const json::exception& e) {
            throw Error(index.string() + ": not valid JSON: " + e.what());
        }
        if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
            throw Error(index.string() + ": lacks the 'weight_map' object");
        }
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            if (!it->is_string())
                throw Error(index.string() + ": weight_map values must be strings");
            const std::string shard = it->get<std::string>();
            if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) {
                shard_names.push_back(shard);
            }
        }
        for (const auto& shard : shard_names) {
            const fs::path p = root / shard;
            if (!fs::exists(p)) {
                throw Error(index.string() + ": lists shard '" + shard + "', which is missing");
            }
            ws.add_file(SafetensorsFile::open(p.string()));
        }
        // Every tensor the index promises must be in the shard it names.
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            if (!ws.has(it.key())) {
                throw Error(index.string() + ": tensor '" + it.key() + "' is not in shard '" +
                            it->get<std::string>() + "'");
            }
        }
    } else if (fs::exists(root / "model.safetensors")) {
        ws.add_file(SafetensorsFile::open((root / "model.safetensors").string()));
    } else {
        std::vector<fs::path> files;
        if (fs::is_directory(root)) {
            for (const auto& e : fs::directory_iterator(root)) {
                if (e.path().extension() == ".safetensors") files.push_back(e.path());
            }
        }
        std::sort(files.begin(), files.end());
        if (files.empty()) {
            throw Error(dir + ": no model.safetensors, model.safetensors.index.json or " +
                        "*.safetensors files found");
        }
        for (const auto& f : files) ws.add_file(SafetensorsFile::open(f.string()));
    }
    return ws;
}

WeightStore WeightStore::empty(const std::string& origin) {
    WeightStore ws;
    ws.origin_ = origin;
    return ws;
}

void WeightStore::add_file(const std::shared_ptr<SafetensorsFile>& file) {
    files_.push_back(file);
    for (const auto& [name, view] : file->tensors()) {
        if (index_.count(name)) {
            throw Error(file->path() + ": tensor '" + name + "' is also in " +
                        index_[name]->file->path());
        }
        index_[name] = &view;
    }
}

void WeightStore::add_view(TensorView view) {
    if (index_.count(view.name))
        throw Error(origin_ + ": tensor '" + view.name + "' appears twice");
    views_.push_back(std::make_unique<TensorView>(std::move(view)));
    index_[views_.back()->name] = views_.back().get();
}

const TensorView* WeightStore::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : it->second;
}

const TensorView& WeightStore::get(const std::string& name) const {
    if (const TensorView* t = find(name)) return *t;
    throw Error(origin_ + ": missing tensor '" + name + "'");
}

const TensorView& WeightStore::get(const std::string& name,
                                   const std::vector<int64_t>& shape) const {
    const TensorView& t = get(name);
    if (t.shape != shape) {
        throw Error(origin_ + ": " + t.describe() + " has the wrong shape; expected " +
                    shape_string(shape));
    }
    return t;
}

std::vector<std::string> WeightStore::names() const {
    std::vector<std::string> out;
    out.reserve(index_.size());
    for (const auto& kv : index_) out.push_back(kv.first);
    return out;
}

uint64_t WeightStore::total_bytes() const {
    uint64_t n = 0;
    for (const auto& kv : index_) n += kv.second->nbytes;
    return n;
}

namespace {

uint64_t tensor_bytes(const TensorToWrite& t) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    return uint64_t(numel) * dtype_size(t.dtype);
}

}  // namespace

SafetensorsStreamWriter::SafetensorsStreamWriter(std::string path,
                                                 std::vector<TensorToWrite> tensors,
                                                 const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), tensors_(std::move(tensors)) {
    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        const uint64_t bytes = tensor_bytes(t);
        header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string h = header.dump();
    while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // keep the data 8-byte aligned
    out_.open(path_ + ".tmp", std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(path_ + ": cannot write file");
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
    out_.write(reinterpret_cast<const char*>(len), 8);
    out_.write(h.data(), std::streamsize(h.size()));
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() {
    if (finished_) return;
    out_.close();
    std::error_code ec;
    fs::remove(path_ + ".tmp", ec);
}

void SafetensorsStreamWriter::write_next(const void* data) {
    require(next_ < tensors_.size(), path_ + ": more tensors written than declared");
    out_.write(static_cast<const char*>(data), std::streamsize(tensor_bytes(tensors_[next_])));
    if (!out_) throw Error(path_ + ": write failed (disk full?)");
    ++next_;
}

void SafetensorsStreamWriter::finish() {
    require(next_ == tensors_.size(), path_ + ": " + std::to_string(tensors_.size() - next_) +
                                          " declared tensors were not written");
    out_.close();
    if (!out_) throw Error(path_ + ": write failed (disk full?)");
    fs::rename(path_ + ".tmp", path_);  // never leave a half-written file under the real name
    finished_ = true;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    SafetensorsStreamWriter w(path, tensors, metadata);
    for (const auto& t : tensors) w.write_next(t.data);
    w.finish();
}

}  // namespace moe
