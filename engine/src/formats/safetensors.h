#pragma once
// Safetensors files (single or sharded via model.safetensors.index.json), memory-mapped.
// Tensors are views into the mapping: nothing is copied at load.
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "formats/ggml_types.h"

namespace moe {

struct TensorView {
    std::string name;
    DType dtype = DType::F32;
    // Set for tensors of GGUF files: the ggml storage type (then `dtype` is only meaningful
    // for the plain types F32/F16/BF16).
    std::optional<GgmlType> ggml;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;
    size_t nbytes = 0;
    std::shared_ptr<const MappedFile> file;  // keeps `data` alive

    int64_t numel() const;
    int64_t dim(int i) const { return shape.at(size_t(i)); }
    std::string describe() const;  // "name [a, b] BF16 in file.safetensors"
};

class SafetensorsFile {
  public:
    // Parses and validates the header (offsets inside the file, sizes matching shapes).
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);

    const std::map<std::string, TensorView>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::string& path() const { return file_->path(); }

  private:
    std::shared_ptr<const MappedFile> file_;
    std::map<std::string, TensorView> tensors_;
    std::map<std::string, std::string> metadata_;
};

// All weights of a model folder: model.safetensors, or the shards listed by
// model.safetensors.index.json, or every *.safetensors file in the folder.
class WeightStore {
  public:
    static WeightStore open_folder(const std::string& dir);
    // A store with no files yet (tensors come through add_view); `origin` names it in errors.
    static WeightStore empty(const std::string& origin);
    void add_file(const std::shared_ptr<SafetensorsFile>& file);
    // Adds a tensor held elsewhere (GGUF tensors under their Hugging Face names); the view's
    // `file` member must keep its data alive.
    void add_view(TensorView view);

    bool has(const std::string& name) const { return index_.count(name) != 0; }
    const TensorView* find(const std::string& name) const;
    // Throws moe::Error naming the tensor and the folder if absent.
    const TensorView& get(const std::string& name) const;
    // Like get(), and also checks the shape.
    const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) const;
    std::vector<std::string> names() const;
    uint64_t total_bytes() const;
    const std::string& origin() const { return origin_; }

  private:
    std::string origin_;
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::vector<std::unique_ptr<TensorView>> views_;
    std::map<std::string, const TensorView*> index_;
};

// Writes tensors to a safetensors file (used by `logits --out`, converters and tests).
struct TensorToWrite {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;  // numel * dtype_size bytes
};
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes a safetensors file one tensor at a time (the header first, from the tensors' names,
// types and shapes; their `data` is not read), so that a file larger than memory can be
// produced. Writes `path`.tmp and renames it over `path` in finish(); a writer destroyed
// before finish() removes the temporary file.
class SafetensorsStreamWriter {
  public:
    SafetensorsStreamWriter(std::string path, std::vector<TensorToWrite> tensors,
                            const std::map<std::string, std::string>& metadata = {});
    ~SafetensorsStreamWriter();
    SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
    SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;
    // The bytes of the next tensor (in the order given), numel * dtype_size of them.
    void write_next(const void* data);
    size_t written() const { return next_; }
    void finish();

  private:
    std::string path_;
    std::vector<TensorToWrite> tensors_;
    std::ofstream out_;
    size_t next_ = 0;
    bool finished_ = false;
};

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace moe
