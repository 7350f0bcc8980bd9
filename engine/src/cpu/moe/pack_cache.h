#pragma once
// On-disk cache of repacked expert weights. Repacking a large model's experts (bf16 -> int4 with
// per-group scales) costs seconds to minutes; the packed bytes only depend on the weight files,
// the pack options and the packed layout, so they are written once next to the model and
// memory-mapped on later loads: the cached PackedMatrix data points straight into the mapping
// (no copy, pages come in on first use like the model's own weights).
//
// Location: MODEL/.moestudio-cache/experts-<key>.bin for a model folder (the .gguf file's folder
// for a GGUF model); when that folder cannot be written, $XDG_CACHE_HOME/moestudio/ or
// ~/.cache/moestudio/. set_pack_cache_dir() overrides both. MOE_PACK_CACHE=0 disables the cache.
//
// A cache file is never trusted blindly: magic, layout version, key, file size, a checksum of
// the header and a checksum of the payload (whole payload up to 256 MiB, sampled above) are
// checked; a file that fails is reported on stderr, ignored and rewritten.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu/moe/fused_moe.h"

namespace moe {

// Overrides the cache folder ("" restores the default: next to the model, then the user cache).
void set_pack_cache_dir(const std::string& dir);
// False when the environment sets MOE_PACK_CACHE=0 (read on every call).
bool pack_cache_enabled();
// Packed experts smaller than this (default 32 MiB) are not written: they repack in well under a
// second, and test fixtures loaded from the source tree would otherwise leave cache folders there.
void set_pack_cache_min_bytes(uint64_t bytes);

struct PackCacheStats {
    int64_t hits = 0;             // loads whose banks came from a cache file
    int64_t misses = 0;           // loads that found no usable cache file
    int64_t rejected = 0;         // cache files found but invalid (corrupt, truncated, stale)
    int64_t writes = 0;           // cache files written
    int64_t packed_matrices = 0;  // PackedMatrix objects built by repacking (note_packed_matrices)
    std::string last_event;       // the last line logged (for tests and diagnostics)
};
PackCacheStats pack_cache_stats();
void reset_pack_cache_stats();
// Called by whoever repacks experts, so that a cache hit can be told apart from a repack.
void note_packed_matrices(int64_t n);

// The files whose contents determine a model's experts: *.safetensors and config.json of a
// folder, or the .gguf file itself.
std::vector<std::string> model_weight_files(const std::string& model_path);

// 16 hex digits over the weight files' names, sizes, mtimes and first/last MiB of content, the
// pack options, the NUMA part count, the cache layout version, the packed-kernel ABI and the CPU
// kernel variant.
std::string pack_cache_key(const std::vector<std::string>& weight_files, const PackOptions& opt,
                           int parts = 1);

// Where the cache file for `key` is looked for, in order (the first is also where it is written,
// unless that folder is not writable).
std::vector<std::string> pack_cache_candidates(const std::string& model_path,
                                               const std::string& key);

// Writes the packed experts of `banks` (one per MoE layer, in layer order) to the cache file for
// `key`: to a temporary file first, then renamed, so readers never see a partial file. Returns
// the path written, or "" when the banks are below the size threshold or (after logging why) no
// folder could be written; never throws.
std::string write_pack_cache(const std::string& model_path, const std::string& key,
                             const std::vector<const ExpertBank*>& banks);

// Reads the cache file for `key`: one bank per MoE layer whose experts' packed data point into
// one shared read-only mapping (kept alive by the banks). Only the packed matrices are cached:
// hidden, inter, the activation and the biases are for the caller to fill in. Returns an empty
// vector when there is no valid file (a rejected file is logged and counted); never throws.
// Parts whose entry in `part_nodes` is a NUMA node (>= 0) are copied into that node's memory
// instead of being used in place.
std::vector<std::shared_ptr<ExpertBank>> read_pack_cache(const std::string& model_path,
                                                         const std::string& key,
                                                         const std::vector<int>& part_nodes = {});

}  // namespace moe
