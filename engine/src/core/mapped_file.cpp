#include "core/mapped_file.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace moe {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
#if defined(_WIN32)
    HANDLE file = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL, nullptr);
    if (file == INVALID_HANDLE_VALUE) throw Error(path + ": cannot open file");
    LARGE_INTEGER size;
    GetFileSizeEx(file, &size);
    f->size_ = size_t(size.QuadPart);
    if (f->size_ > 0) {
        HANDLE mapping = CreateFileMappingA(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
        if (!mapping) {
            CloseHandle(file);
            throw Error(path + ": cannot map file");
        }
        f->data_ = static_cast<const uint8_t*>(MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0));
        CloseHandle(mapping);
    }
    CloseHandle(file);
    if (f->size_ > 0 && !f->data_) throw Error(path + ": cannot map file");
#else
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open file: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(path + ": not a regular file");
    }
    f->size_ = size_t(st.st_size);
    if (f->size_ > 0) {
        void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw Error(path + ": cannot map file: " + std::strerror(err));
        }
        f->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
#endif
    return f;
}

void release_pages(const void* p, size_t bytes) {
#if defined(__linux__)
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21  // Linux 5.4+
#endif
    const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (uintptr_t(p) + page - 1) & ~(page - 1);
    const uintptr_t end = (uintptr_t(p) + bytes) & ~(page - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT);
#else
    (void)p;
    (void)bytes;
#endif
}

MappedFile::~MappedFile() {
    if (!data_) return;
#if defined(_WIN32)
    UnmapViewOfFile(data_);
#else
    munmap(const_cast<uint8_t*>(data_), size_);
#endif
}

}  // namespace moe
