// The fused MoE operator (fused_moe.h).
#include "cpu/moe/fused_moe.h"

#include <immintrin.h>
#include <algorithm>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/moe/gguf_gemm.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/quants.h"

namespace moe {

void GluActivation::apply(const float* gate, const float* up, float* h, int64_t n) const {
    if (kind == Kind::SiluGlu) {
        for (int64_t i = 0; i < n; ++i) h[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], limit);
        const float u = std::clamp(up[i], -limit, limit);
        h[i] = (u + 1.0f) * (g / (1.0f + std::exp(-alpha * g)));
    }
}

namespace {

// Phase timers (fused_moe_profile), on only when asked: two clock reads per phase.
std::atomic<bool> g_profile{false};
std::mutex g_profile_mutex;
FusedMoeProfile g_prof;

using Clock = std::chrono::steady_clock;

void add_time(double FusedMoeProfile::*field, Clock::time_point& t) {
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(g_profile_mutex);
    g_prof.*field += std::chrono::duration<double>(now - t).count();
    t = now;
}

size_t gguf_bytes(const GgufMatrix& m) {
    return m.data ? m.row_bytes * size_t(m.rows) : 0;
}

}  // namespace

size_t ExpertPart::bytes() const {
    return gate_up.bytes() + down.bytes() + gguf_bytes(gate) + gguf_bytes(up) +
           (gguf_down.data ? ggml_row_size(gguf_down.type, gguf_down.cols) * size_t(gguf_down.rows)
                           : 0);
}

size_t BankExpert::bytes() const {
    size_t n = 0;
    for (const ExpertPart& p : parts) n += p.bytes();
    return n;
}

namespace {

GgufMatrix gguf_matrix(const WeightMatrix& w) {
    return {w.ggml_type, w.data, w.rows, w.cols, w.row_bytes()};
}

bool gguf_usable(const WeightMatrix& w) {
    return w.ggml && has_quant_kernels(w.ggml_type) &&
           w.cols % ggml_block_size(vec_dot_type(w.ggml_type)) == 0;
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// ------------------------------------------------------------------------------ execution

// Runs a phase on the bank's parts: on the process-wide pool for one part, else every part on
// its node's pool, all nodes at once.
class Exec {
  public:
    Exec(int parts, NumaPools* pools) : parts_(parts), pools_(pools) {
        if (parts_ > 1) {
            if (!pools_) pools_ = &numa_pools();
            require(pools_->node_count() == parts_,
                    "fused_moe: the expert bank has " + std::to_string(parts_) +
                        " NUMA parts but the pools have " + std::to_string(pools_->node_count()) +
                        " nodes");
        }
    }
    int parts() const { return parts_; }
    int threads(int part) const {
        return parts_ == 1 ? parallel_threads() : pools_->pool(part).size();
    }
    // fn(part, begin, end) over [0, counts[part]) for every part.
    void run(const std::vector<int64_t>& counts,
             const std::function<void(int, int64_t, int64_t)>& fn) const {
        if (parts_ == 1) {
            parallel_for(counts[0], 1, [&](int64_t b, int64_t e) { fn(0, b, e); });
            return;
        }
        const int64_t n = *std::max_element(counts.begin(), counts.end());
        pools_->parallel_for(
            n,
            [&](int node, int64_t b, int64_t e, int) {
                e = std::min(e, counts[size_t(node)]);
                if (b < e) fn(node, b, e);
            },
            1);
    }
    // fn(begin, end) over [0, n), spread over all parts' cores.
    void spread(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const {
        if (parts_ == 1) {
            parallel_for(n, 1, fn);
            return;
        }
        const auto ranges = split_range(n, parts_, 1);
        std::vector<int64_t> counts;
        for (const auto& [b, e] : ranges) counts.push_back(e - b);
        run(counts, [&](int p, int64_t b, int64_t e) {
            fn(ranges[size_t(p)].first + b, ranges[size_t(p)].first + e);
        });
    }

  private:
    int parts_;
    NumaPools* pools_;
};

// ------------------------------------------------------------------------------ working set

// An expert's tokens' activations prepared for its gate/up kernels (every part shares them:
// their K is the hidden size).
struct PreparedX {
    PackedActs packed;       // packed experts
    std::vector<uint8_t> q;  // GGUF experts: rows quantized to vec_dot_type
    size_t qrow = 0;
};

// Runs a function once among the threads that call it (the others wait until it is done).
// Unlike std::once_flag it can be reset, so that the objects holding it are reused from call to
// call. Waiters spin: what runs inside is short (preparing one expert's activations).
class Once {
  public:
    template <class F>
    void call(F&& f) {
        int expected = 0;
        if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
            try {
                f();
            } catch (...) {
                state_.store(3, std::memory_order_release);
                throw;
            }
            state_.store(2, std::memory_order_release);
            return;
        }
        for (int v; (v = state_.load(std::memory_order_acquire)) != 2;) {
            if (v == 3) throw Error("fused_moe: preparing an expert's activations failed");
            _mm_pause();
        }
    }
    void reset() { state_.store(0, std::memory_order_relaxed); }

  private:
    std::atomic<int> state_{0};  // 0 not run, 1 running, 2 done, 3 failed
};

// One expert's state on one part.
struct PartWork {
    std::vector<float> gu;    // packed: gate/up in block order [n, 2 * pairs * 16]
    std::vector<float> h;     // [n, pairs * 16] (padding columns unused)
    std::vector<float> y;     // down output [n, hidden rounded up to 16] (partial sum for P > 1)
    PackedActs ah;            // h prepared for down (packed)
    std::vector<uint8_t> qh;  // h quantized for down (GGUF)
    size_t qh_row = 0;
    std::atomic<int64_t> pending{0};  // phase A items left; the one that finishes prepares h
    Once h_ready;
};

struct Work {
    int64_t e = 0, n = 0;
    std::vector<int64_t> tokens;  // per row: token index (a token routed twice has two rows)
    std::vector<float> wts;       // per row: routing weight
    PreparedX own;
    const PreparedX* x = nullptr;  // own, or the call's shared preparation (T = 1)
    Once ready;                    // x prepared and the part buffers sized
    std::unique_ptr<PartWork[]> parts;
    int n_parts = 0;
};

// The Work objects of earlier calls on this thread, reused so that their buffers keep their
// capacity: fresh multi-megabyte buffers on every prefill call cost page faults and zeroing.
Work& reuse_work(std::vector<std::unique_ptr<Work>>& pool, size_t i, int P) {
    if (i >= pool.size()) pool.push_back(std::make_unique<Work>());
    Work& w = *pool[i];
    if (w.n_parts != P) {
        w.parts.reset(new PartWork[size_t(P)]);
        w.n_parts = P;
    }
    w.e = w.n = 0;
    w.tokens.clear();
    w.wts.clear();
    w.x = nullptr;
    w.ready.reset();
    for (int p = 0; p < P; ++p) {
        w.parts[size_t(p)].pending = 0;
        w.parts[size_t(p)].h_ready.reset();
    }
    return w;
}

struct Item {
    int64_t w, b0, b1;  // Work index (phase A) and block range
};

void quantize_rows(const GgufMatrix& m, const float* x, int64_t n, int64_t ldx,
                   std::vector<uint8_t>& q, size_t& row) {
    const GgmlType at = vec_dot_type(m.type);
    row = ggml_row_size(at, m.cols);
    q.resize(row * size_t(n));
    for (int64_t i = 0; i < n; ++i)
        quantize_activation(at, x + i * ldx, q.data() + i * row, m.cols);
}

void gguf_rows(const GgufMatrix& m, int64_t r0, int64_t r1, const std::vector<uint8_t>& q,
               size_t qrow, int64_t n, float* y, int64_t ldy) {
    if (r0 >= r1) return;
    const auto* base = static_cast<const uint8_t*>(m.data) + size_t(r0) * m.row_bytes;
    if (n >= kGgufGemmMinTokens) {
        // Several tokens: the tiled GEMM unpacks each weight block once per tile of tokens.
        const GgufGemm gemm = gguf_gemm(m.type);
        if (gemm.gemm) {
            gemm.gemm(base, m.row_bytes, r1 - r0, q.data(), qrow, n, m.cols, y, ldy);
            return;
        }
    }
    const GgufRowDot& dot = gguf_row_dot(m.type);
    for (int64_t i = 0; i < n; ++i)
        dot.dot_rows(base, m.row_bytes, r1 - r0, q.data() + size_t(i) * qrow, m.cols, y + i * ldy);
}

// The first part with rows (its gate/up define how x is prepared).
const ExpertPart& lead_part(const BankExpert& ex) {
    for (const ExpertPart& p : ex.parts)
        if (p.i1 > p.i0) return p;
    return ex.parts.front();
}

void prepare_x(const BankExpert& ex, const float* x, int64_t H, const std::vector<int64_t>& tokens,
               PreparedX& px) {
    const int64_t n = int64_t(tokens.size());
    std::vector<float> gathered;
    const float* xs = x + tokens[0] * H;
    if (n > 1) {
        gathered.resize(size_t(n * H));
        for (int64_t i = 0; i < n; ++i)
            std::memcpy(gathered.data() + i * H, x + tokens[size_t(i)] * H, size_t(H) * 4);
        xs = gathered.data();
    }
    const ExpertPart& p = lead_part(ex);
    if (ex.gguf_in)
        quantize_rows(p.gate, xs, n, H, px.q, px.qrow);
    else
        prepare_acts(p.gate_up, xs, n, H, px.packed);
}

// Whether experts a and b take identically prepared activations.
bool same_x_kind(const BankExpert& a, const BankExpert& b) {
    if (a.gguf_in != b.gguf_in) return false;
    const ExpertPart &pa = lead_part(a), &pb = lead_part(b);
    if (a.gguf_in) return vec_dot_type(pa.gate.type) == vec_dot_type(pb.gate.type);
    const PackedMatrix &ma = pa.gate_up, &mb = pb.gate_up;
    return ma.format == mb.format && ma.kp == mb.kp && ma.group == mb.group &&
           ma.f32_acts == mb.f32_acts;
}

// Splits every work's `units(w)` blocks into items, fine enough for all `threads` to get
// several items even when only one or two experts are active.
template <typename Units>
std::vector<Item> make_items(size_t works, int threads, Units units) {
    int64_t total = 0;
    for (size_t i = 0; i < works; ++i) total += units(i);
    const int64_t target = int64_t(threads) * 8;
    const int64_t per = std::clamp<int64_t>(total / std::max<int64_t>(target, 1), 1, 16);
    std::vector<Item> items;
    for (size_t i = 0; i < works; ++i) {
        const int64_t u = units(i);
        for (int64_t b = 0; b < u; b += per) items.push_back({int64_t(i), b, std::min(u, b + per)});
    }
    return items;
}

// ------------------------------------------------------------------------------ phases

// Phase A item: gate/up blocks [b0, b1) (pairs of 16 rows) of one expert part, GLU applied.
void gate_up_item(const ExpertBank& bank, const BankExpert& ex, int p, Work& w, int64_t b0,
                  int64_t b1, KernelVariant v, std::vector<float>& gtmp, std::vector<float>& utmp) {
    const ExpertPart& part = ex.parts[size_t(p)];
    PartWork& pw = w.parts[size_t(p)];
    const int64_t I = part.i1 - part.i0, pairs = ceil_div(I, kRowBlock);
    const int64_t ldgu = 2 * pairs * kRowBlock, ldh = pairs * kRowBlock;
    const int64_t R0 = b0 * kRowBlock, R1 = std::min(I, b1 * kRowBlock), nr = R1 - R0;
    // gate values at gtmp[i * nr + r - R0], up at utmp[...] (GGUF) or in the block layout (packed)
    const float* gsrc;
    const float* usrc;
    int64_t ld, goff;
    if (ex.gguf_in) {
        // One row-dot call over the item's whole row range (the SIMD kernels prepare the
        // activation once per call).
        gtmp.resize(size_t(w.n * nr));
        utmp.resize(size_t(w.n * nr));
        gguf_rows(part.gate, R0, R1, w.x->q, w.x->qrow, w.n, gtmp.data(), nr);
        gguf_rows(part.up, R0, R1, w.x->q, w.x->qrow, w.n, utmp.data(), nr);
        gsrc = gtmp.data();
        usrc = utmp.data();
        ld = nr;
        goff = -R0;
    } else {
        packed_matmul(v, part.gate_up, w.x->packed, 2 * b0, 2 * b1, pw.gu.data(), ldgu);
        gsrc = usrc = nullptr;
        ld = ldgu;
        goff = 0;
    }
    float g[kRowBlock], u[kRowBlock];
    for (int64_t i = 0; i < w.n; ++i) {
        for (int64_t r0 = R0; r0 < R1; r0 += kRowBlock) {
            const int64_t m = std::min(R1 - r0, kRowBlock);
            for (int64_t j = 0; j < m; ++j) {
                const int64_t r = r0 + j, gi = part.i0 + r;  // gi: row of the whole expert
                float gv, uv;
                if (ex.gguf_in) {
                    gv = gsrc[i * ld + r + goff];
                    uv = usrc[i * ld + r + goff];
                } else {
                    const float* blk = pw.gu.data() + i * ld + 2 * (r0 / kRowBlock) * kRowBlock;
                    gv = blk[j];
                    uv = blk[kRowBlock + j];
                }
                g[j] = gv + (ex.gate_bias.empty() ? 0.0f : ex.gate_bias[size_t(gi)]);
                u[j] = uv + (ex.up_bias.empty() ? 0.0f : ex.up_bias[size_t(gi)]);
            }
            bank.act.apply(g, u, pw.h.data() + i * ldh + r0, m);
        }
    }
}

// Prepares part p's h for down (once; by the phase A item that finished the part, or phase B).
void prepare_h(const BankExpert& ex, int p, Work& w) {
    const ExpertPart& part = ex.parts[size_t(p)];
    PartWork& pw = w.parts[size_t(p)];
    if (part.i1 <= part.i0) return;
    pw.h_ready.call([&] {
        const int64_t ldh = ceil_div(part.i1 - part.i0, kRowBlock) * kRowBlock;
        if (ex.gguf_out)
            quantize_rows(part.gguf_down, pw.h.data(), w.n, ldh, pw.qh, pw.qh_row);
        else
            prepare_acts(part.down, pw.h.data(), w.n, ldh, pw.ah);
    });
}

// Phase B item: down blocks [b0, b1) of one expert part -> pw.y (block b at column b * 16).
void down_item(const BankExpert& ex, int p, Work& w, int64_t b0, int64_t b1, int64_t H,
               KernelVariant v) {
    const ExpertPart& part = ex.parts[size_t(p)];
    PartWork& pw = w.parts[size_t(p)];
    prepare_h(ex, p, w);
    const int64_t ldy = ceil_div(H, kRowBlock) * kRowBlock;
    if (ex.gguf_out) {
        const int64_t r0 = b0 * kRowBlock, r1 = std::min(H, b1 * kRowBlock);
        gguf_rows(part.gguf_down, r0, r1, pw.qh, pw.qh_row, w.n, pw.y.data() + r0, ldy);
    } else {
        packed_matmul(v, part.down, pw.ah, b0, b1, pw.y.data(), ldy);
    }
}

void run_chunk(const ExpertBank& bank, const float* x, int64_t T, const int32_t* ids,
               const float* weights, int64_t k, const uint8_t* skip, float* out, KernelVariant v,
               const Exec& exec) {
    const int64_t H = bank.hidden, E = int64_t(bank.experts.size());
    const int P = exec.parts();
    // Group the routing slots per expert, in order of first appearance.
    std::vector<int64_t> where(size_t(E), -1);
    // Slot (t, j) -> (work index, row within the work), work -1 when the expert is skipped.
    std::vector<int64_t> slot_work(size_t(T * k), -1), slot_row(size_t(T * k), 0);
    thread_local std::vector<std::unique_ptr<Work>> pool;
    std::vector<Work*> work;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < k; ++j) {
            const int64_t e = ids[t * k + j];
            require(e >= 0 && e < E, "fused_moe: expert id " + std::to_string(e) + " out of range");
            if (skip && skip[e]) continue;
            if (where[size_t(e)] < 0) {
                where[size_t(e)] = int64_t(work.size());
                work.push_back(&reuse_work(pool, work.size(), P));
                work.back()->e = e;
            }
            Work& w = *work[size_t(where[size_t(e)])];
            slot_work[size_t(t * k + j)] = where[size_t(e)];
            slot_row[size_t(t * k + j)] = int64_t(w.tokens.size());
            w.tokens.push_back(t);
            w.wts.push_back(weights[t * k + j]);
        }
    }
    for (auto& w : work) w->n = int64_t(w->tokens.size());
    const bool profile = g_profile.load(std::memory_order_relaxed);
    Clock::time_point tp = profile ? Clock::now() : Clock::time_point{};
    // Decode: every expert sees the same token, so its activations are prepared once for all.
    thread_local PreparedX shared;
    if (T == 1 && !work.empty()) {
        const BankExpert& first = bank.experts[size_t(work[0]->e)];
        prepare_x(first, x, H, work[0]->tokens, shared);
        for (auto& w : work) {
            if (w->n == 1 && same_x_kind(first, bank.experts[size_t(w->e)])) w->x = &shared;
        }
    }
    auto ready = [&](Work& w) {
        w.ready.call([&] {
            const BankExpert& ex = bank.experts[size_t(w.e)];
            if (!w.x) {
                prepare_x(ex, x, H, w.tokens, w.own);
                w.x = &w.own;
            }
            for (int p = 0; p < P; ++p) {
                const ExpertPart& part = ex.parts[size_t(p)];
                const int64_t pairs = ceil_div(part.i1 - part.i0, kRowBlock);
                PartWork& pw = w.parts[size_t(p)];
                // Sized, not cleared: every element read later is written first (h's padding
                // columns are never read: the down kernels take the part's own width).
                if (!ex.gguf_in) pw.gu.resize(size_t(w.n * 2 * pairs * kRowBlock));
                pw.h.resize(size_t(w.n * pairs * kRowBlock));
                if (part.i1 > part.i0)
                    pw.y.resize(size_t(w.n * ceil_div(H, kRowBlock) * kRowBlock));
            }
        });
    };

    // A. gate + up + activation, per part
    std::vector<std::vector<Item>> a_items(static_cast<size_t>(P));
    std::vector<int64_t> a_counts(static_cast<size_t>(P));
    for (int p = 0; p < P; ++p) {
        a_items[size_t(p)] = make_items(work.size(), exec.threads(p), [&](size_t i) {
            const ExpertPart& part = bank.experts[size_t(work[i]->e)].parts[size_t(p)];
            return ceil_div(part.i1 - part.i0, kRowBlock);
        });
        a_counts[size_t(p)] = int64_t(a_items[size_t(p)].size());
        for (const Item& item : a_items[size_t(p)])
            ++work[size_t(item.w)]->parts[size_t(p)].pending;
    }
    exec.run(a_counts, [&](int p, int64_t i0, int64_t i1) {
        std::vector<float> gtmp, utmp;
        for (int64_t it = i0; it < i1; ++it) {
            const Item& item = a_items[size_t(p)][size_t(it)];
            Work& w = *work[size_t(item.w)];
            ready(w);
            const BankExpert& ex = bank.experts[size_t(w.e)];
            gate_up_item(bank, ex, p, w, item.b0, item.b1, v, gtmp, utmp);
            if (w.parts[size_t(p)].pending.fetch_sub(1, std::memory_order_acq_rel) == 1)
                prepare_h(ex, p, w);
        }
    });
    // Experts none of whose parts had rows still need their buffers for phase B.
    for (auto& w : work) ready(*w);
    if (profile) add_time(&FusedMoeProfile::gate_up, tp);

    // B. down, per part: items of (expert part, range of 16-row blocks), long enough row runs
    // for the prefetchers to stream each expert's rows. The ranges are one grid for all experts
    // and parts, and the item that completes a range (the last of its experts and parts) adds
    // that range's rows up into out, so no separate pass is needed.
    const int64_t dblocks = ceil_div(H, kRowBlock), ldy = dblocks * kRowBlock;
    int64_t units = 0, threads = 0;
    for (int p = 0; p < P; ++p) {
        threads += exec.threads(p);
        for (const auto& w : work) {
            const ExpertPart& part = bank.experts[size_t(w->e)].parts[size_t(p)];
            if (part.i1 > part.i0) units += dblocks;
        }
    }
    if (units == 0) {  // every routed expert runs elsewhere
        std::fill(out, out + T * H, 0.0f);
        return;
    }
    const int64_t per = std::clamp<int64_t>(units / std::max<int64_t>(threads * 8, 1), 1, 16);
    const int64_t ranges = ceil_div(dblocks, per);
    std::vector<std::vector<Item>> b_items(static_cast<size_t>(P));
    std::vector<int64_t> b_counts(static_cast<size_t>(P));
    std::unique_ptr<std::atomic<int64_t>[]> left(new std::atomic<int64_t>[size_t(ranges)]);
    for (int64_t r = 0; r < ranges; ++r) left[size_t(r)] = 0;
    for (int p = 0; p < P; ++p) {
        for (int64_t r = 0; r < ranges; ++r) {  // range-major: early ranges complete early
            for (size_t i = 0; i < work.size(); ++i) {
                const ExpertPart& part = bank.experts[size_t(work[i]->e)].parts[size_t(p)];
                if (part.i1 <= part.i0) continue;
                b_items[size_t(p)].push_back(
                    {int64_t(i), r * per, std::min(dblocks, (r + 1) * per)});
                ++left[size_t(r)];
            }
        }
        b_counts[size_t(p)] = int64_t(b_items[size_t(p)].size());
    }
    // out[t, rows of range r] = sum over j in routing order of w[t,j] * (sum of parts' y + bias)
    auto sum_range = [&](int64_t r) {
        const int64_t c0 = r * per * kRowBlock, c1 = std::min(H, (r + 1) * per * kRowBlock);
        for (int64_t t = 0; t < T; ++t) {
            float* o = out + t * H;
            std::fill(o + c0, o + c1, 0.0f);
            for (int64_t j = 0; j < k; ++j) {
                const int64_t wi = slot_work[size_t(t * k + j)];
                if (wi < 0) continue;
                const Work& w = *work[size_t(wi)];
                const BankExpert& ex = bank.experts[size_t(w.e)];
                const int64_t row = slot_row[size_t(t * k + j)];
                const float wt = weights[t * k + j];
                for (int p = 0; p < P; ++p) {
                    if (ex.parts[size_t(p)].i1 <= ex.parts[size_t(p)].i0) continue;
                    const float* yr = w.parts[size_t(p)].y.data() + row * ldy;
                    for (int64_t d = c0; d < c1; ++d) o[d] += wt * yr[d];
                }
                if (!ex.down_bias.empty())
                    for (int64_t d = c0; d < c1; ++d) o[d] += wt * ex.down_bias[size_t(d)];
            }
        }
    };
    exec.run(b_counts, [&](int p, int64_t i0, int64_t i1) {
        for (int64_t it = i0; it < i1; ++it) {
            const Item& item = b_items[size_t(p)][size_t(it)];
            Work& w = *work[size_t(item.w)];
            down_item(bank.experts[size_t(w.e)], p, w, item.b0, item.b1, H, v);
            const int64_t r = item.b0 / per;
            if (left[size_t(r)].fetch_sub(1, std::memory_order_acq_rel) == 1) sum_range(r);
        }
    });
    if (profile) add_time(&FusedMoeProfile::down, tp);
}

// Copies `rows` rows of `row_bytes` bytes (source stride `stride`) into node memory.
std::shared_ptr<void> copy_to_node(const uint8_t* src, int64_t rows, size_t row_bytes,
                                   size_t stride, int os_node) {
    auto buf = std::make_shared<NumaBuffer>(std::max<size_t>(1, row_bytes * size_t(rows)), os_node);
    auto* dst = buf->as<uint8_t>();
    parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            std::memcpy(dst + size_t(r) * row_bytes, src + size_t(r) * stride, row_bytes);
    });
    return buf;
}

}  // namespace

std::vector<int> bank_part_nodes() {
    const NumaTopology& topo = numa_topology();
    std::vector<int> nodes;
    for (const NumaNode& n : topo.nodes())
        nodes.push_back(topo.node_count() > 1 && !topo.is_virtual() ? n.os_node : -1);
    return nodes;
}

BankExpert make_bank_expert(const ExpertSource& src, const PackOptions& opt, bool keep_gguf,
                            const std::vector<int>& part_nodes) {
    require(src.gate.rows == src.up.rows && src.gate.cols == src.up.cols &&
                src.down.rows == src.gate.cols && src.down.cols == src.gate.rows,
            "make_bank_expert: gate/up [inter, hidden] and down [hidden, inter] shapes differ");
    const std::vector<int> nodes = part_nodes.empty() ? std::vector<int>{-1} : part_nodes;
    BankExpert ex;
    ex.gate_bias = src.gate_bias;
    ex.up_bias = src.up_bias;
    ex.down_bias = src.down_bias;
    // Which side runs GGUF rows in place and which is packed (see PackedFormat::Q4K: Q4_K
    // matrices are repacked, other GGUF types of the same expert stay in place).
    auto is_q4k = [](const WeightMatrix& w) { return w.ggml && w.ggml_type == GgmlType::Q4_K; };
    if (opt.format == PackedFormat::Q4K) {
        ex.gguf_in = !(is_q4k(src.gate) && is_q4k(src.up));
        ex.gguf_out = !is_q4k(src.down);
        require((!ex.gguf_in || (gguf_usable(src.gate) && gguf_usable(src.up))) &&
                    (!ex.gguf_out || gguf_usable(src.down)),
                "make_bank_expert: expert format q4k needs GGUF experts with CPU kernels");
    } else {
        ex.gguf_in = ex.gguf_out =
            keep_gguf && gguf_usable(src.gate) && gguf_usable(src.up) && gguf_usable(src.down);
    }
    const int64_t I = src.gate.rows;
    int64_t align = kRowBlock;
    if (ex.gguf_out) {
        // Down's columns are cut at whole weight blocks and whole activation blocks.
        align = std::lcm(align, ggml_block_size(src.down.ggml_type));
        align = std::lcm(align, ggml_block_size(vec_dot_type(src.down.ggml_type)));
    } else if (opt.format == PackedFormat::Q4K) {
        align = std::lcm(align, int64_t(256));  // packed Q4_K columns: whole super-blocks
    }
    const auto ranges = split_range(I, int(nodes.size()), align);
    ex.parts.resize(nodes.size());
    // A real NUMA node gets the part's GGUF bytes copied into its memory.
    struct Copies {
        std::shared_ptr<void> gate, up, down;
    };
    for (size_t p = 0; p < nodes.size(); ++p) {
        ExpertPart& part = ex.parts[p];
        part.i0 = ranges[p].first;
        part.i1 = ranges[p].second;
        const int64_t n = part.i1 - part.i0;
        if (n == 0) continue;
        const int node = nodes[p];
        auto c = std::make_shared<Copies>();
        if (!ex.gguf_in) {
            part.gate_up = pack_gate_up(src.gate.row_slice(part.i0, n),
                                        src.up.row_slice(part.i0, n), opt, node);
        } else {
            part.gate = gguf_matrix(src.gate.row_slice(part.i0, n));
            part.up = gguf_matrix(src.up.row_slice(part.i0, n));
            if (node >= 0) {
                const auto* g = static_cast<const uint8_t*>(part.gate.data);
                const auto* u = static_cast<const uint8_t*>(part.up.data);
                c->gate = copy_to_node(g, n, part.gate.row_bytes, part.gate.row_bytes, node);
                c->up = copy_to_node(u, n, part.up.row_bytes, part.up.row_bytes, node);
                part.gate.data = static_cast<NumaBuffer*>(c->gate.get())->data();
                part.up.data = static_cast<NumaBuffer*>(c->up.get())->data();
            }
        }
        if (!ex.gguf_out) {
            part.down = pack_matrix(src.down, opt, part.i0, part.i1, node);
        } else {
            const GgmlType dt = src.down.ggml_type;
            const size_t col_off = ggml_row_size(dt, part.i0), col_bytes = ggml_row_size(dt, n);
            part.gguf_down = {dt, static_cast<const uint8_t*>(src.down.data) + col_off,
                              src.down.rows, n, src.down.row_bytes()};
            if (node >= 0) {
                const auto* d = static_cast<const uint8_t*>(part.gguf_down.data);
                c->down = copy_to_node(d, src.down.rows, col_bytes, part.gguf_down.row_bytes, node);
                part.gguf_down.data = static_cast<NumaBuffer*>(c->down.get())->data();
                part.gguf_down.row_bytes = col_bytes;
            }
        }
        if (c->gate || c->down) part.storage = c;
    }
    return ex;
}

void fused_moe(const ExpertBank& bank, const float* x, int64_t T, const int32_t* ids,
               const float* weights, int64_t k, const uint8_t* skip, float* out,
               KernelVariant variant, NumaPools* pools) {
    require_kernel_variant(variant);
    require(bank.hidden > 0 && bank.inter > 0, "fused_moe: empty expert bank");
    for (const BankExpert& e : bank.experts) {
        require(int(e.parts.size()) == bank.parts(),
                "fused_moe: the bank's experts have different part counts");
    }
    const Exec exec(bank.parts(), pools);
    const bool profile = g_profile.load(std::memory_order_relaxed);
    const auto t_call = profile ? Clock::now() : Clock::time_point{};
    // Bound the per-call working set (gate/up/h and per-part down outputs per routed slot) by
    // running long prefills in token chunks; 2^25 floats = 128 MiB.
    const int64_t per_token = k * (bank.parts() * bank.hidden + 3 * bank.inter);
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 25) / per_token);
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t n = std::min(chunk, T - t0);
        run_chunk(bank, x + t0 * bank.hidden, n, ids + t0 * k, weights + t0 * k, k, skip,
                  out + t0 * bank.hidden, variant, exec);
    }
    if (profile) {
        const double total = std::chrono::duration<double>(Clock::now() - t_call).count();
        std::lock_guard<std::mutex> lock(g_profile_mutex);
        g_prof.total += total;
        ++g_prof.calls;
    }
}

void set_fused_moe_profiling(bool on) {
    g_profile = on;
}

FusedMoeProfile fused_moe_profile() {
    std::lock_guard<std::mutex> lock(g_profile_mutex);
    return g_prof;
}

void reset_fused_moe_profile() {
    std::lock_guard<std::mutex> lock(g_profile_mutex);
    g_prof = {};
}

}  // namespace moe
