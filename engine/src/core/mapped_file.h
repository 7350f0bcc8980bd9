#pragma once
// A read-only memory mapping of a whole file. Model weights are used straight from the mapping
// so that loading a model copies nothing; the OS pages weights in on first use.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moe {

class MappedFile {
  public:
    // Maps `path` read-only. Throws moe::Error naming the file if it cannot be opened or mapped.
    static std::shared_ptr<const MappedFile> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

  private:
    MappedFile() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// Hands the pages lying wholly inside [p, p + bytes) back to the OS (MADV_PAGEOUT): used after
// weights were repacked into another layout, so the source's pages stop counting as resident.
// Non-destructive: the memory stays valid and a later read pages the data back in (from the
// file for a mapping). Best effort; does nothing where the OS has no such advice.
void release_pages(const void* p, size_t bytes);

}  // namespace moe
