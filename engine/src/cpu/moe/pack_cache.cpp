#include "cpu/moe/pack_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "core/error.h"
#include "core/hash.h"
#include "core/mapped_file.h"

#if !defined(_WIN32)
#include <unistd.h>
#endif

// File layout (little-endian, every field a uint64 unless noted):
//   header: magic, version, key, file_size, header_size, n_banks,
//           per bank: n_experts, per expert: n_parts, per part: i0, i1, gate_up record,
//                     down record
//           matrix record: format, rows, cols, kp, blocks, group, gate_up, block_bytes,
//                          then (offset, count) for data bytes, scale, rowsum, gscale, gmin
//           payload_checksum, header_checksum (of every header word before it)
//   zero padding to header_size (a multiple of 64)
//   payload: the blobs, each at a 64-aligned offset and zero-padded to a multiple of 64, so that
//            packed data mapped in place keeps AlignedBytes' 64-byte alignment and padding.

namespace moe {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMagic = 0x31434b504d454f4dull;  // "MOEMPKC1"
// Bump when the file layout or anything pack_matrix writes changes meaning.
constexpr uint64_t kLayoutVersion = 2;              // 2: experts in NUMA parts
constexpr uint64_t kFullCheckLimit = 256ull << 20;  // payloads up to this are hashed whole
constexpr uint64_t kSampleStride = 1ull << 20;      // above: 64 KiB of every MiB
constexpr uint64_t kSampleBytes = 64ull << 10;
constexpr uint64_t kContentSample = 1ull << 20;  // weight-file bytes hashed at each end

std::mutex g_mutex;
std::string g_dir_override;
uint64_t g_min_bytes = 32ull << 20;
PackCacheStats g_stats;

void log_event(const std::string& line) {
    std::fprintf(stderr, "moestudio: expert pack cache: %s\n", line.c_str());
    std::lock_guard<std::mutex> lock(g_mutex);
    g_stats.last_event = line;
}

void count(int64_t PackCacheStats::*field) {
    std::lock_guard<std::mutex> lock(g_mutex);
    ++(g_stats.*field);
}

// A fast word-wise hash for payload bytes (four independent lanes so it runs at memory speed;
// FNV-1a's byte loop would make verifying a large cache cost more than reading it).
uint64_t fast_hash(const uint8_t* p, size_t n, uint64_t seed) {
    constexpr uint64_t kP1 = 0x9e3779b185ebca87ull, kP2 = 0xc2b2ae3d27d4eb4full;
    uint64_t lane[4] = {seed + kP1, seed + kP2, seed, seed - kP1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int l = 0; l < 4; ++l) {
            uint64_t w;
            std::memcpy(&w, p + i + 8 * l, 8);
            lane[l] += w * kP2;
            lane[l] = ((lane[l] << 31) | (lane[l] >> 33)) * kP1;
        }
    }
    uint64_t h = uint64_t(n) * kP1;
    for (uint64_t v : lane) h = (h ^ v) * kP2 + 0x165667b19e3779f9ull;
    return fnv1a(p + i, n - i, h);
}

uint64_t payload_checksum(const uint8_t* file, uint64_t header_size, uint64_t file_size) {
    const uint64_t n = file_size - header_size;
    const uint8_t* p = file + header_size;
    if (n <= kFullCheckLimit) return fast_hash(p, n, n);
    // Sampled: hashing every byte of a multi-GB cache would page the whole file in at load, which
    // is what the mapping avoids. Truncation is caught by the size check; the samples catch
    // gross corruption (e.g. a file overwritten or partly zeroed).
    uint64_t h = n;
    for (uint64_t off = 0; off < n; off += kSampleStride) {
        h = fast_hash(p + off, size_t(std::min(kSampleBytes, n - off)), h);
    }
    return fast_hash(p + n - kSampleBytes, kSampleBytes, h);
}

std::string hex16(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

uint64_t align64(uint64_t v) {
    return (v + 63) / 64 * 64;
}

std::string user_cache_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
        return (fs::path(x) / "moestudio").string();
    }
    if (const char* h = std::getenv("HOME"); h && *h) {
        return (fs::path(h) / ".cache" / "moestudio").string();
    }
    return {};
}

std::vector<std::string> cache_dirs(const std::string& model_path) {
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (!g_dir_override.empty()) return {g_dir_override};
    }
    std::error_code ec;
    const fs::path model(model_path);
    const fs::path base = fs::is_directory(model, ec) ? model : model.parent_path();
    std::vector<std::string> dirs{(base / ".moestudio-cache").string()};
    if (const std::string u = user_cache_dir(); !u.empty()) dirs.push_back(u);
    return dirs;
}

// ---- writing ---------------------------------------------------------------------------------

// One blob of the payload: `bytes` bytes from `src`.
struct Blob {
    const void* src = nullptr;
    uint64_t bytes = 0;
};

struct HeaderBuilder {
    std::vector<uint64_t> words;
    std::vector<Blob> blobs;
    uint64_t payload = 0;  // bytes of payload laid out so far (relative to the payload start)

    // Records (offset relative to the payload, count) and queues the blob.
    void blob(const void* src, uint64_t count, uint64_t elem) {
        words.push_back(payload);
        words.push_back(count);
        blobs.push_back({src, count * elem});
        payload += align64(count * elem);
    }
    void matrix(const PackedMatrix& m) {
        words.insert(words.end(), {uint64_t(m.format), uint64_t(m.rows), uint64_t(m.cols),
                                   uint64_t(m.kp), uint64_t(m.blocks), uint64_t(m.group),
                                   uint64_t(m.gate_up), uint64_t(m.block_bytes)});
        blob(m.data.data(), m.data.size, 1);
        blob(m.scale.data(), m.scale.size(), 4);
        blob(m.rowsum.data(), m.rowsum.size(), 4);
        blob(m.gscale.data(), m.gscale.size(), 4);
        blob(m.gmin.data(), m.gmin.size(), 4);
    }
};
constexpr size_t kMatrixWords = 8 + 5 * 2;

bool write_file(const std::string& dir, const std::string& key,
                const std::vector<const ExpertBank*>& banks, std::string& path, std::string& why) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        why = dir + ": cannot create folder: " + ec.message();
        return false;
    }
    HeaderBuilder hb;
    hb.words = {kMagic, kLayoutVersion, std::stoull(key, nullptr, 16), 0, 0, banks.size()};
    for (const ExpertBank* b : banks) {
        hb.words.push_back(b->experts.size());
        for (const BankExpert& e : b->experts) {
            hb.words.push_back(e.parts.size());
            for (const ExpertPart& part : e.parts) {
                hb.words.push_back(uint64_t(part.i0));
                hb.words.push_back(uint64_t(part.i1));
                hb.matrix(part.gate_up);
                hb.matrix(part.down);
            }
        }
    }
    hb.words.push_back(0);  // payload checksum
    hb.words.push_back(0);  // header checksum
    const uint64_t header_size = align64(hb.words.size() * 8);
    const uint64_t file_size = header_size + hb.payload;
    hb.words[3] = file_size;
    hb.words[4] = header_size;
    // Blob offsets were recorded relative to the payload; make them absolute (the (offset,
    // count) pairs follow each matrix record's 8 fixed words).
    {
        size_t w = 6;
        for (const ExpertBank* b : banks) {
            ++w;  // n_experts
            for (const BankExpert& e : b->experts) {
                ++w;  // n_parts
                for (size_t part = 0; part < e.parts.size(); ++part) {
                    w += 2;  // i0, i1
                    for (int m = 0; m < 2; ++m) {
                        for (int k = 0; k < 5; ++k) hb.words[w + 8 + size_t(2 * k)] += header_size;
                        w += kMatrixWords;
                    }
                }
            }
        }
    }

    path = (fs::path(dir) / ("experts-" + key + ".bin")).string();
    std::string tmp = path + ".tmp";
#if !defined(_WIN32)
    tmp += "." + std::to_string(::getpid());
#endif
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) {
            why = tmp + ": cannot create file";
            return false;
        }
        std::vector<char> zeros(header_size, 0);
        out.write(zeros.data(), std::streamsize(header_size));
        for (const Blob& b : hb.blobs) {
            if (b.bytes) out.write(static_cast<const char*>(b.src), std::streamsize(b.bytes));
            const uint64_t pad = align64(b.bytes) - b.bytes;
            if (pad) out.write(zeros.data(), std::streamsize(pad));
        }
        out.flush();
        if (!out) {
            out.close();
            fs::remove(tmp, ec);
            why = tmp + ": write failed (disk full?)";
            return false;
        }
    }
    try {
        auto mapped = MappedFile::open(tmp);
        hb.words[hb.words.size() - 2] = payload_checksum(mapped->data(), header_size, file_size);
    } catch (const Error& e) {
        fs::remove(tmp, ec);
        why = e.what();
        return false;
    }
    hb.words.back() = fnv1a(hb.words.data(), (hb.words.size() - 1) * 8);
    {
        std::fstream out(tmp, std::ios::binary | std::ios::in | std::ios::out);
        out.write(reinterpret_cast<const char*>(hb.words.data()),
                  std::streamsize(hb.words.size() * 8));
        out.flush();
        if (!out) {
            out.close();
            fs::remove(tmp, ec);
            why = tmp + ": cannot write header";
            return false;
        }
    }
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        why = path + ": cannot rename into place: " + ec.message();
        return false;
    }
    return true;
}

// ---- reading ---------------------------------------------------------------------------------

// The mapping outlives every bank built from it: each bank is owned through an aliasing
// shared_ptr to this holder.
struct CachedBank {
    std::shared_ptr<const MappedFile> mapping;
    ExpertBank bank;
};

struct Reader {
    const MappedFile& file;
    const uint64_t* words;
    size_t n_words;  // header words before the two checksums
    size_t pos = 5;  // n_banks

    uint64_t next() {
        if (pos >= n_words) throw Error(file.path() + ": header ends early");
        return words[pos++];
    }
    // Returns the blob's bytes after checking they lie inside the payload.
    const uint8_t* blob(uint64_t elem, uint64_t expected, uint64_t& count, uint64_t header_size) {
        const uint64_t off = next();
        count = next();
        if (off % 64 || off < header_size || count > file.size() / elem ||
            off + count * elem > file.size() || (expected != ~0ull && count != expected)) {
            throw Error(file.path() + ": blob out of range or of unexpected size");
        }
        return file.data() + off;
    }
    template <class T>
    void vec(std::vector<T>& v, uint64_t expected, uint64_t header_size) {
        uint64_t n = 0;
        const uint8_t* p = blob(sizeof(T), expected, n, header_size);
        v.resize(n);
        if (n) std::memcpy(v.data(), p, n * sizeof(T));
    }
    PackedMatrix matrix(uint64_t header_size, int os_node) {
        PackedMatrix m;
        const uint64_t fmt = next();
        if (fmt > uint64_t(PackedFormat::INT4)) throw Error(file.path() + ": bad matrix format");
        m.format = PackedFormat(fmt);
        m.rows = int64_t(next());
        m.cols = int64_t(next());
        m.kp = int64_t(next());
        m.blocks = int64_t(next());
        m.group = int64_t(next());
        m.gate_up = next() != 0;
        m.block_bytes = size_t(next());
        uint64_t n = 0;
        const uint8_t* d = blob(1, uint64_t(m.blocks) * m.block_bytes, n, header_size);
        if (reinterpret_cast<uintptr_t>(d) % 64 == 0 && os_node < 0) {
            // Zero copy: the data is used in place; the no-op deleter leaves it to the mapping.
            m.data.p = decltype(m.data.p)(const_cast<uint8_t*>(d), [](uint8_t*) {});
            m.data.size = size_t(n);
        } else {
            // Misaligned, or a NUMA part that belongs in its node's memory: copied.
            m.data.allocate(size_t(n), os_node);
            std::memcpy(m.data.data(), d, size_t(n));
        }
        // The header checksum already vouches for these sizes; the range checks in blob() keep a
        // header that passes it by accident from reading outside the file.
        vec(m.scale, ~0ull, header_size);
        vec(m.rowsum, ~0ull, header_size);
        vec(m.gscale, ~0ull, header_size);
        vec(m.gmin, ~0ull, header_size);
        return m;
    }
};

std::vector<std::shared_ptr<ExpertBank>> parse(const std::shared_ptr<const MappedFile>& file,
                                               uint64_t key, const std::vector<int>& part_nodes) {
    const MappedFile& f = *file;
    const std::string& p = f.path();
    if (f.size() < 64 || reinterpret_cast<uintptr_t>(f.data()) % 8) {
        throw Error(p + ": too small to be a cache file");
    }
    const auto* w = reinterpret_cast<const uint64_t*>(f.data());
    if (w[0] != kMagic) throw Error(p + ": not an expert pack cache (bad magic)");
    if (w[1] != kLayoutVersion) {
        throw Error(p + ": layout version " + std::to_string(w[1]) + ", expected " +
                    std::to_string(kLayoutVersion));
    }
    if (w[2] != key) throw Error(p + ": key " + hex16(w[2]) + " does not match " + hex16(key));
    if (w[3] != f.size()) {
        throw Error(p + ": " + std::to_string(f.size()) + " bytes, header says " +
                    std::to_string(w[3]) + " (truncated?)");
    }
    const uint64_t header_size = w[4];
    if (header_size % 64 || header_size < 64 || header_size > f.size()) {
        throw Error(p + ": bad header size");
    }
    // Where the checksums sit is only known after walking the records: walk (bounded by
    // header_size), then verify before anything is handed out.
    Reader r{f, w, size_t(header_size / 8) - 2};
    const uint64_t n_banks = r.next();
    if (n_banks > 1u << 20) throw Error(p + ": implausible bank count");
    std::vector<std::shared_ptr<ExpertBank>> banks;
    for (uint64_t b = 0; b < n_banks; ++b) {
        const uint64_t n_experts = r.next();
        if (n_experts > 1u << 20) throw Error(p + ": implausible expert count");
        auto holder = std::make_shared<CachedBank>();
        holder->mapping = file;
        holder->bank.experts.resize(size_t(n_experts));
        for (BankExpert& e : holder->bank.experts) {
            const uint64_t n_parts = r.next();
            if (n_parts < 1 || n_parts > 1024) throw Error(p + ": implausible part count");
            e.parts.resize(size_t(n_parts));
            for (size_t q = 0; q < e.parts.size(); ++q) {
                ExpertPart& part = e.parts[q];
                part.i0 = int64_t(r.next());
                part.i1 = int64_t(r.next());
                const int node = q < part_nodes.size() ? part_nodes[q] : -1;
                part.gate_up = r.matrix(header_size, node);
                part.down = r.matrix(header_size, node);
            }
        }
        banks.push_back(std::shared_ptr<ExpertBank>(holder, &holder->bank));
    }
    const size_t ck = r.pos;  // payload checksum word; the header checksum follows
    if ((ck + 2) * 8 > header_size) throw Error(p + ": header ends early");
    if (w[ck + 1] != fnv1a(w, (ck + 1) * 8)) throw Error(p + ": header checksum mismatch");
    if (w[ck] != payload_checksum(f.data(), header_size, f.size())) {
        throw Error(p + ": payload checksum mismatch (corrupt file)");
    }
    return banks;
}

}  // namespace

void set_pack_cache_min_bytes(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_min_bytes = bytes;
}

void set_pack_cache_dir(const std::string& dir) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_dir_override = dir;
}

bool pack_cache_enabled() {
    const char* v = std::getenv("MOE_PACK_CACHE");
    return !(v && std::string(v) == "0");
}

PackCacheStats pack_cache_stats() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_stats;
}

void reset_pack_cache_stats() {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_stats = {};
}

void note_packed_matrices(int64_t n) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_stats.packed_matrices += n;
}

std::vector<std::string> model_weight_files(const std::string& model_path) {
    std::error_code ec;
    if (!fs::is_directory(model_path, ec)) return {model_path};
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(model_path, ec)) {
        const fs::path& p = entry.path();
        if (entry.is_regular_file(ec) &&
            (p.extension() == ".safetensors" || p.filename() == "config.json")) {
            files.push_back(p.string());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string pack_cache_key(const std::vector<std::string>& weight_files, const PackOptions& opt,
                           int parts) {
    // Everything that changes the packed bytes or how they are read. The packed layout is the
    // same for every vector ISA (moe_kernels.h), but the variant is keyed anyway so that a
    // variant-specific pack path added later cannot silently reuse bytes it did not write.
    std::string text =
        "layout=" + std::to_string(kLayoutVersion) + ";rowblock=" + std::to_string(kRowBlock) +
        ";format=" + packed_format_name(opt.format) + ";group=" + std::to_string(opt.group) +
        ";int4_min=" + std::to_string(int(opt.int4_min)) +
        ";fp16_scales=" + std::to_string(int(opt.fp16_scales)) +
        ";f32_acts=" + std::to_string(int(opt.f32_acts)) + ";parts=" + std::to_string(parts) +
        ";variant=" + kernel_variant_name(default_kernel_variant()) +
        ";ptr=" + std::to_string(sizeof(void*));
    uint64_t h = fnv1a(text.data(), text.size());
    // Files: name, size, mtime and the first/last MiB of content, not a full hash: weight files
    // are many GB and hashing them would cost more than the repack the cache saves. Size + mtime
    // catch ordinary rewrites; the content sample catches copies that preserve neither.
    std::vector<uint8_t> buf;
    for (const std::string& path : weight_files) {
        std::error_code ec;
        const std::string name = fs::path(path).filename().string();
        const uint64_t size = fs::file_size(path, ec);
        const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
        h = fnv1a(name.data(), name.size(), h);
        h = fnv1a(&size, sizeof size, h);
        const int64_t mt = int64_t(mtime);
        h = fnv1a(&mt, sizeof mt, h);
        std::ifstream in(path, std::ios::binary);
        const uint64_t head = std::min(size, kContentSample);
        buf.resize(size_t(head));
        in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(head));
        h = fast_hash(buf.data(), size_t(in.gcount()), h);
        if (size > head) {
            const uint64_t tail = std::min(size - head, kContentSample);
            in.clear();
            in.seekg(std::streamoff(size - tail));
            buf.resize(size_t(tail));
            in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(tail));
            h = fast_hash(buf.data(), size_t(in.gcount()), h);
        }
    }
    return hex16(h);
}

std::vector<std::string> pack_cache_candidates(const std::string& model_path,
                                               const std::string& key) {
    std::vector<std::string> out;
    for (const std::string& d : cache_dirs(model_path)) {
        out.push_back((fs::path(d) / ("experts-" + key + ".bin")).string());
    }
    return out;
}

std::string write_pack_cache(const std::string& model_path, const std::string& key,
                             const std::vector<const ExpertBank*>& banks) {
    uint64_t total = 0;
    for (const ExpertBank* b : banks) {
        for (const BankExpert& e : b->experts) total += e.bytes();
    }
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        if (total < g_min_bytes) return {};
    }
    std::string reasons;
    for (const std::string& dir : cache_dirs(model_path)) {
        std::string path, why;
        const auto t0 = std::chrono::steady_clock::now();
        if (write_file(dir, key, banks, path, why)) {
            count(&PackCacheStats::writes);
            const double s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            char line[64];
            std::snprintf(line, sizeof line, " (%.2f s)", s);
            log_event("wrote " + path + line);
            return path;
        }
        reasons += (reasons.empty() ? "" : "; ") + why;
    }
    log_event("not written: " + reasons);
    return {};
}

std::vector<std::shared_ptr<ExpertBank>> read_pack_cache(const std::string& model_path,
                                                         const std::string& key,
                                                         const std::vector<int>& part_nodes) {
    uint64_t k = 0;
    try {
        k = std::stoull(key, nullptr, 16);
    } catch (const std::exception&) {
        return {};
    }
    for (const std::string& path : pack_cache_candidates(model_path, key)) {
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) continue;
        try {
            auto banks = parse(MappedFile::open(path), k, part_nodes);
            count(&PackCacheStats::hits);
            log_event("using " + path);
            return banks;
        } catch (const std::exception& e) {
            count(&PackCacheStats::rejected);
            log_event(std::string("ignoring invalid cache file, experts will be repacked: ") +
                      e.what());
        }
    }
    count(&PackCacheStats::misses);
    return {};
}

}  // namespace moe
