#!/usr/bin/env python3
"""Generate tiny random MoE checkpoints + golden outputs with Hugging Face transformers.

Each fixture folder gets the same layout as tests/data/hf-tiny/*:
  config.json, generation_config.json, model.safetensors (bf16, hub tensor names;
  or *.safetensors shards + model.safetensors.index.json; or F8_E4M3 + *_scale_inv),
  golden.safetensors (input_ids I32 [n], logits F32 [n, vocab], greedy_ids I32 [20]),
  golden.json.

Weights: 2-D+ tensors ~ N(0, 0.08), 1-D tensors (norms, biases, sinks) ~ U(0.8, 1.2),
all rounded to bf16. Router correction biases (e_score_correction_bias) ~ U(-0.1, 0.3),
rounded to bf16. Golden logits/greedy ids come from the float32 model on CPU with
attn_implementation="eager" (greedy: generate(do_sample=False) with KV cache).

Usage (needs torch, transformers>=5, safetensors; runs on CPU only):
  CUDA_VISIBLE_DEVICES= python3 tools/make_hf_fixtures.py --out tests/data/hf-extra
  python3 tools/make_hf_fixtures.py --out /tmp/x --only llama-s2 gpt_oss-s2
"""
import argparse
import copy
import inspect
import json
import math
import os
import shutil
import sys
import tempfile

import torch

NEW_TOKENS = 20

# ---------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------

VARIANTS = {
    "qwen3_moe-s2": dict(
        model_type="qwen3_moe", seed=2101, prompt_len=23,
        desc="qwen3_moe: hidden 128, 8 heads / 4 kv heads, head_dim 16 (q_proj 128x128), "
             "2 layers both sparse (mlp_only_layers [], decoder_sparse_step 1), 16 experts top-4, "
             "moe_intermediate 32, norm_topk_prob false (softmax over all experts, top-4 weights NOT renormalised), "
             "qk-norm, rope_theta 1e6, vocab 640",
        cfg=dict(vocab_size=640, hidden_size=128, intermediate_size=192, moe_intermediate_size=32,
                 num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4, head_dim=16,
                 num_experts=16, num_experts_per_tok=4, norm_topk_prob=False, decoder_sparse_step=1,
                 mlp_only_layers=[], max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                 tie_word_embeddings=False)),
    "qwen2_moe-s2": dict(
        model_type="qwen2_moe", seed=2102, prompt_len=31,
        desc="qwen2_moe: hidden 112, 4 heads / 2 kv heads (head_dim 28), qkv bias, 3 layers with "
             "mlp_only_layers [1] (layer 1 is a dense MLP of intermediate 144), 12 experts top-3, "
             "moe_intermediate 32, shared expert intermediate 80 with sigmoid shared_expert_gate, "
             "norm_topk_prob true, vocab 700",
        cfg=dict(vocab_size=700, hidden_size=112, intermediate_size=144, moe_intermediate_size=32,
                 shared_expert_intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
                 num_key_value_heads=2, num_experts=12, num_experts_per_tok=3, norm_topk_prob=True,
                 decoder_sparse_step=1, mlp_only_layers=[1], max_position_embeddings=512,
                 rms_norm_eps=1e-6, qkv_bias=True, use_sliding_window=False,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                 tie_word_embeddings=False)),
    "mixtral-s2": dict(
        model_type="mixtral", seed=2103, prompt_len=19,
        desc="mixtral: hidden 128, 4 heads / 2 kv heads with explicit head_dim 24 (q_proj 96x128, "
             "o_proj 128x96; default would be 32), 3 layers, 4 experts top-2, expert intermediate 80, "
             "rope_theta 1e6, vocab 600",
        cfg=dict(vocab_size=600, hidden_size=128, intermediate_size=80, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=24, num_local_experts=4,
                 num_experts_per_tok=2, max_position_embeddings=512, rms_norm_eps=1e-5,
                 sliding_window=None,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                 tie_word_embeddings=False)),
    "olmoe-s2": dict(
        model_type="olmoe", seed=2104, prompt_len=27,
        desc="olmoe: hidden 128, 8 heads / 4 kv heads (GQA; q_norm over 128, k_norm over 64 = full "
             "projection width), 2 layers, 16 experts top-4, expert intermediate 32, "
             "norm_topk_prob true, rms_norm_eps 1e-5, vocab 600",
        cfg=dict(vocab_size=600, hidden_size=128, intermediate_size=32, num_hidden_layers=2,
                 num_attention_heads=8, num_key_value_heads=4, num_experts=16, num_experts_per_tok=4,
                 norm_topk_prob=True, max_position_embeddings=512, rms_norm_eps=1e-5,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                 tie_word_embeddings=False)),
    "llama-s2": dict(
        model_type="llama", seed=2105, prompt_len=37,
        desc="llama (dense): hidden 128, 4 heads / 1 kv head (MQA), head_dim 32, 4 layers, "
             "intermediate 176, tie_word_embeddings true (no lm_head.weight in the file), "
             "rope llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, "
             "original_max_position_embeddings 64, theta 10000), vocab 900",
        cfg=dict(vocab_size=900, hidden_size=128, intermediate_size=176, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=1, head_dim=32,
                 max_position_embeddings=512, rms_norm_eps=1e-5,
                 rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 64},
                 tie_word_embeddings=True)),
    "deepseek_v2-s2": dict(
        model_type="deepseek_v2", seed=2106, prompt_len=21,
        desc="deepseek_v2: hidden 80, 4 heads, MLA with q_lora_rank 32, kv_lora_rank 24, "
             "qk_nope 16, qk_rope 8, v_head_dim 24; 3 layers, first_k_dense_replace 1 (dense "
             "intermediate 128), 16 routed experts top-4 with topk_method group_limited_greedy "
             "(n_group 4, topk_group 2), softmax scores, norm_topk_prob false, routed_scaling_factor 1.7, "
             "1 shared expert (moe_intermediate 24), vocab 720",
        cfg=dict(vocab_size=720, hidden_size=80, intermediate_size=128, moe_intermediate_size=24,
                 num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                 q_lora_rank=32, kv_lora_rank=24, qk_nope_head_dim=16, qk_rope_head_dim=8,
                 v_head_dim=24, n_routed_experts=16, num_experts_per_tok=4, n_shared_experts=1,
                 n_group=4, topk_group=2, topk_method="group_limited_greedy", norm_topk_prob=False,
                 routed_scaling_factor=1.7, first_k_dense_replace=1, max_position_embeddings=512,
                 rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                 tie_word_embeddings=False)),
    "deepseek_v3-s2": dict(
        model_type="deepseek_v3", seed=2107, prompt_len=33, hub_rope=True, ecb=True,
        desc="deepseek_v3: hidden 64, 4 heads, MLA with q_lora_rank 40, kv_lora_rank 24, qk_nope 24, "
             "qk_rope 8, v_head_dim 20; 3 layers, first_k_dense_replace 1 (dense intermediate 112); "
             "32 routed experts top-6, sigmoid scores + random non-zero e_score_correction_bias "
             "(U(-0.1,0.3), used for selection only), n_group 8 / topk_group 3 (group score = sum of "
             "top-2 biased scores), norm_topk_prob true, routed_scaling_factor 2.0, 1 shared expert, "
             "moe_intermediate 16; YaRN rope (factor 4, original_max_position_embeddings 128, beta_fast 32, "
             "beta_slow 1, mscale 1, mscale_all_dim 1, max_position_embeddings 512, theta 10000); "
             "config.json written hub-style (rope_theta + rope_scaling with \"type\": \"yarn\"), "
             "verified to reload identically; vocab 960",
        cfg=dict(vocab_size=960, hidden_size=64, intermediate_size=112, moe_intermediate_size=16,
                 num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                 q_lora_rank=40, kv_lora_rank=24, qk_nope_head_dim=24, qk_rope_head_dim=8,
                 v_head_dim=20, n_routed_experts=32, num_experts_per_tok=6, n_shared_experts=1,
                 n_group=8, topk_group=3, norm_topk_prob=True, routed_scaling_factor=2.0,
                 first_k_dense_replace=1, max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_theta=10000.0,
                 rope_scaling={"type": "yarn", "rope_type": "yarn", "factor": 4.0,
                               "original_max_position_embeddings": 128, "beta_fast": 32.0,
                               "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0},
                 tie_word_embeddings=False)),
    "glm4_moe-s2": dict(
        model_type="glm4_moe", seed=2108, prompt_len=25, ecb=True,
        desc="glm4_moe: hidden 80, 4 heads / 2 kv heads, head_dim 32, partial_rotary_factor 0.75 "
             "(rotary dim 24), qk-norm (use_qk_norm true), attention bias; 3 layers, first_k_dense_replace 1 "
             "(dense intermediate 144); 16 routed experts top-3, sigmoid + non-zero e_score_correction_bias, "
             "n_group 2 / topk_group 1, norm_topk_prob true, routed_scaling_factor 1.8, 1 shared expert, "
             "moe_intermediate 24, vocab 800",
        cfg=dict(vocab_size=800, hidden_size=80, intermediate_size=144, moe_intermediate_size=24,
                 num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                 partial_rotary_factor=0.75, use_qk_norm=True, attention_bias=True,
                 n_routed_experts=16, num_experts_per_tok=3, n_shared_experts=1, n_group=2,
                 topk_group=1, norm_topk_prob=True, routed_scaling_factor=1.8,
                 first_k_dense_replace=1, max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                  "partial_rotary_factor": 0.75},
                 tie_word_embeddings=False)),
    "gpt_oss-s2": dict(
        model_type="gpt_oss", seed=2109, prompt_len=29,
        desc="gpt_oss: hidden 64, 8 heads / 2 kv heads, head_dim 16, attention bias + sinks; 4 layers "
             "alternating sliding_attention / full_attention with sliding_window 5 (prompt 29 > window); "
             "8 experts top-4, intermediate 40 (fused gate_up_proj [E, H, 2I] with gate/up interleaved "
             "on the last axis, biases); YaRN rope (factor 8, original_max_position_embeddings 64, "
             "beta_fast 32, beta_slow 1, truncate false, theta 150000) with max_position_embeddings 1024 "
             "(deliberately != factor * original), vocab 1000",
        cfg=dict(vocab_size=1000, hidden_size=64, intermediate_size=40, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=2, head_dim=16, num_local_experts=8,
                 num_experts_per_tok=4, sliding_window=5,
                 layer_types=["sliding_attention", "full_attention", "sliding_attention",
                              "full_attention"],
                 max_position_embeddings=1024, rms_norm_eps=1e-5, attention_bias=True,
                 rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 8.0,
                                  "original_max_position_embeddings": 64, "beta_fast": 32.0,
                                  "beta_slow": 1.0, "truncate": False},
                 tie_word_embeddings=False)),
    "deepseek_v3-fp8": dict(
        model_type="deepseek_v3", seed=2110, prompt_len=24, hub_rope=True, ecb=True, fp8=True,
        desc="deepseek_v3 with DeepSeek-V3-style block FP8 weights: hidden 256, 4 heads, q_lora_rank 160, "
             "kv_lora_rank 96, qk_nope 32, qk_rope 16, v_head_dim 32; 2 layers (layer 0 dense, "
             "intermediate 192; layer 1 MoE: 32 experts top-6, n_group 8 / topk_group 3, moe_intermediate 24, "
             "1 shared expert, sigmoid + non-zero e_score_correction_bias, routed_scaling_factor 2.0); "
             "YaRN as deepseek_v3-s2 (hub-style rope_scaling). Every 2-D linear weight of attention / "
             "dense MLP / experts / shared experts is F8_E4M3 with <name>_scale_inv F32 "
             "[ceil(out/128), ceil(in/128)] (dequantised = fp8 * scale_inv per 128x128 block, "
             "scale = block amax / 448); embeddings, lm_head, norms, router gate and its bias stay BF16. "
             "Goldens from the dequantised weights in float32 (no activation quantisation). vocab 512",
        cfg=dict(vocab_size=512, hidden_size=256, intermediate_size=192, moe_intermediate_size=24,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                 q_lora_rank=160, kv_lora_rank=96, qk_nope_head_dim=32, qk_rope_head_dim=16,
                 v_head_dim=32, n_routed_experts=32, num_experts_per_tok=6, n_shared_experts=1,
                 n_group=8, topk_group=3, norm_topk_prob=True, routed_scaling_factor=2.0,
                 first_k_dense_replace=1, max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_theta=10000.0,
                 rope_scaling={"type": "yarn", "rope_type": "yarn", "factor": 4.0,
                               "original_max_position_embeddings": 128, "beta_fast": 32.0,
                               "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0},
                 tie_word_embeddings=False)),
    "qwen3_moe-sharded": dict(
        model_type="qwen3_moe", seed=2111, prompt_len=17, shard="120KB",
        desc="qwen3_moe saved in several shards (model-0000N-of-0000M.safetensors + "
             "model.safetensors.index.json, save_pretrained(max_shard_size='120KB')): hidden 64, "
             "4 heads / 2 kv heads, head_dim 16, 2 layers with mlp_only_layers [0] (dense "
             "intermediate 96), 8 experts top-2, moe_intermediate 32, norm_topk_prob true, vocab 512",
        cfg=dict(vocab_size=512, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                 num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
                 mlp_only_layers=[0], max_position_embeddings=512, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                 tie_word_embeddings=False)),
}

# Modules whose 2-D ".weight" is stored as FP8 in the fp8 variant (DeepSeek-V3 convention).
FP8_SUFFIXES = ("q_a_proj.weight", "q_b_proj.weight", "q_proj.weight", "kv_a_proj_with_mqa.weight",
                "kv_b_proj.weight", "o_proj.weight", "gate_proj.weight", "up_proj.weight",
                "down_proj.weight")

ROPE_KEYS = ("rope_parameters", "rope_scaling", "rope_theta")


NOTES = """## transformers 5 semantics worth knowing (read from the installed 5.17 sources)

- YaRN (`modeling_rope_utils._compute_yarn_parameters`): the explicit `factor` is used; `max_position_embeddings /
  original_max_position_embeddings` is only a fallback when `factor` is missing (transformers just warns when they
  disagree; `gpt_oss-s2` deliberately has factor 8 with 1024/64 = 16: factor 8 is what counts).
  `original_max_position_embeddings` enters only the correction range:
  `low/high = dim*ln(orig/(beta*2*pi)) / (2*ln(theta))` for beta_fast (low) and beta_slow (high), floored/ceiled
  unless `truncate` is false (default true; gpt_oss uses false), clamped to [0, dim-1];
  `inv_freq = inv_interp*(1-e) + inv_extrap*e` with `e = 1 - clamp((i-low)/(high-low), 0, 1)`, i = 0..dim/2-1,
  `inv_interp = inv_extrap / factor`. `dim = head_dim * partial_rotary_factor` (for DeepSeek `head_dim` is
  `qk_rope_head_dim`). cos and sin are multiplied by `attention_factor`: explicit value, else
  `mscale(factor, mscale)/mscale(factor, mscale_all_dim)` when both mscale and mscale_all_dim are set
  (= 1 for deepseek_v3-s2/-fp8), else `0.1*ln(factor)+1` (gpt_oss-s2: 1.2079).
- DeepSeek V2/V3 additionally scale the attention softmax: `scaling = qk_head_dim**-0.5 * m*m`,
  `m = 0.1*mscale_all_dim*ln(factor)+1`, whenever rope_type != default and mscale_all_dim is non-zero.
- DeepSeek rope is interleaved: V3 with `rope_interleave: true` rotates pairs (x0,x1),(x2,x3)... of the rope part
  (it de-interleaves then applies rotate_half, which is equivalent); V2 uses view_as_complex on consecutive pairs.
  The rope part is the LAST `qk_rope_head_dim` channels of each query head and of `kv_a_proj_with_mqa`'s output
  (after the `kv_lora_rank` latent); the key rope part is shared by all heads.
- DeepSeek-V2 routing: softmax; `group_limited_greedy` group score = max score in the group, keep `topk_group`
  groups (others set to 0), top-k, weights * routed_scaling_factor. `norm_topk_prob` is ignored by V2's router.
- DeepSeek-V3 / GLM4-MoE routing: sigmoid scores; choice uses scores + e_score_correction_bias; group score = sum of
  the top-2 biased scores in the group; keep `topk_group` groups (others -inf); top-k on biased scores; weights are
  the UNbiased sigmoid scores of the chosen experts, divided by (sum + 1e-20) if norm_topk_prob, then
  * routed_scaling_factor. Shared experts are added unweighted.
- GLM4-MoE partial rotary: rope on the first `int(head_dim*partial_rotary_factor)` channels of each head with
  rotate_half (non-interleaved halves), remaining channels pass through; q/k RMSNorm per head before rope.
- gpt_oss: `gate_up_proj` is [E, H, 2I] applied as `x @ W` (no transpose), gate = even columns `[..., ::2]`,
  up = odd columns `[..., 1::2]` (interleaved, not halves), + `gate_up_proj_bias`; gate clamped to max 7, up to
  [-7, 7]; out = (up + 1) * gate * sigmoid(1.702 * gate); `down_proj` is [E, I, H], + `down_proj_bias`.
  Router: logits = x W^T + b, top-k over logits, softmax over the k chosen logits. Sinks: one logit per head is
  appended to every (masked) score row before the softmax and dropped afterwards. Sliding layers see the last
  `sliding_window` positions including the current one.
- qwen3_moe: transformers 5 writes `num_local_experts` (hub checkpoints write `num_experts`); read both.
- Config form: transformers 5 accepts legacy `rope_theta` + `rope_scaling` kwargs and would save them as
  `rope_parameters` (rope_theta inside, the legacy `type` key kept); deepseek_v3-s2 and deepseek_v3-fp8 have
  their config.json rewritten hub-style (`rope_theta` + `rope_scaling` with `"type": "yarn"`) and the -s2 folder
  was reloaded from that form with identical logits. All other folders use `rope_parameters`.
- FP8: transformers 5.17's own dequantiser (`Fp8Dequantize._dequantize_one`, used by
  `FineGrainedFP8Config(dequantize=True)`, e.g. on CPU) derives the block size as rows // scale_rows and
  cols // scale_cols instead of 128, so matrices with a partial 128-block are dequantised wrongly (e.g. [160, 256]
  with a 2x2 grid gets 80-row blocks) or rejected when not divisible. deepseek_v3-fp8's goldens follow the
  DeepSeek convention (block (i//128, j//128)); loading it through that transformers path does NOT reproduce them
  (see `hf_fp8_dequant_maxdiff` / `hf_dequant_differs` in generation-report.json).
"""


def log(*a):
    print(*a, flush=True)


def bf16_round(t):
    return t.to(torch.bfloat16).to(t.dtype)


def make_config(model_type, kw):
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    cls = CONFIG_MAPPING[model_type]
    sig = inspect.signature(cls.__init__).parameters
    amap = getattr(cls, "attribute_map", {}) or {}
    kw = copy.deepcopy(kw)  # transformers standardises rope dicts in place
    final = {}
    for k, v in kw.items():
        if k not in sig and k in amap and amap[k] in sig:
            log(f"  [config] {k} -> {amap[k]} (attribute_map)")
            final[amap[k]] = v
        else:
            if k not in sig:
                log(f"  [config] note: {k} not in {cls.__name__}.__init__ signature; passing as kwarg")
            final[k] = v
    # never stop generation early, no special tokens
    final.update(bos_token_id=None, eos_token_id=None, pad_token_id=None)
    cfg = AutoConfig.for_model(model_type, **final)
    for k, v in kw.items():
        if k in ROPE_KEYS:
            continue
        got = getattr(cfg, k, "<missing>")
        if got != v:
            log(f"  [config] WARNING {k}: wanted {v!r}, config has {got!r}")
    log("  [config] rope_parameters =", getattr(cfg, "rope_parameters", None))
    return cfg


def init_weights(model, seed, ecb):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda x: x[0]):
            if p.ndim == 1:
                p.uniform_(0.8, 1.2, generator=g)
            else:
                p.normal_(0.0, 0.08, generator=g)
            p.copy_(bf16_round(p))
        n_ecb = 0
        for mname, m in sorted(model.named_modules(), key=lambda x: x[0]):
            t = getattr(m, "e_score_correction_bias", None)
            if isinstance(t, torch.Tensor):
                v = torch.empty(t.shape, dtype=torch.float32).uniform_(-0.1, 0.3, generator=g)
                t.copy_(bf16_round(v).to(t.dtype))
                n_ecb += 1
        if ecb:
            assert n_ecb > 0, "expected e_score_correction_bias tensors"
        log(f"  [init] e_score_correction_bias set in {n_ecb} modules")


@torch.no_grad()
def goldens(model, input_ids):
    # Emulate the path of the shared hf-tiny goldens (a bf16 model cast to float32): the cast
    # rounds the rotary `inv_freq` buffers to bf16. Only those buffers are rounded here, so
    # that weights that are not bf16-exact (dequantised FP8) stay as they are.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("inv_freq"):
                buf.copy_(buf.to(torch.bfloat16).to(buf.dtype))
    model.eval()
    ids = torch.tensor([input_ids], dtype=torch.long)
    logits = model(ids).logits[0].float().clone()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, use_cache=True,
                         eos_token_id=None, pad_token_id=None)
    greedy = out[0, len(input_ids):].tolist()
    assert len(greedy) == NEW_TOKENS, greedy
    # cross-check greedy against a cache-less forward over prompt+generated
    full = torch.tensor([input_ids + greedy[:-1]], dtype=torch.long)
    fl = model(full, use_cache=False).logits[0]
    am = fl[len(input_ids) - 1:].argmax(-1).tolist()
    mism = [i for i in range(NEW_TOKENS) if am[i] != greedy[i]]
    log(f"  [golden] greedy={greedy}")
    log(f"  [golden] no-cache argmax mismatches at {mism}" if mism else
        "  [golden] greedy matches no-cache argmax at every step")
    return logits, greedy, mism


def reload_logits(path, input_ids):
    from transformers import AutoModelForCausalLM
    m, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                                   output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    if bad:
        log("  [reload] loading info:", {k: list(v)[:8] for k, v in bad.items()})
    m.eval()
    with torch.no_grad():
        return m(torch.tensor([input_ids], dtype=torch.long)).logits[0].float(), m


def st_keys(path):
    from safetensors import safe_open
    out = {}
    with safe_open(path, "pt") as f:
        for k in f.keys():
            sl = f.get_slice(k)
            out[k] = (sl.get_dtype(), list(sl.get_shape()))
    return out


def to_hub_rope(cfg_path, rope_theta, rope_scaling):
    with open(cfg_path) as f:
        c = json.load(f)
    saved_form = {k: c[k] for k in ROPE_KEYS if k in c}
    c.pop("rope_parameters", None)
    c["rope_theta"] = rope_theta
    c["rope_scaling"] = {k: v for k, v in rope_scaling.items() if k != "rope_type"}
    with open(cfg_path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    return saved_form


def quantize_fp8_blocks(w, block=128):
    """w: float32 [out, in]. Returns (fp8 tensor, scale_inv f32 [ceil(out/128), ceil(in/128)], dequant f32)."""
    out_f, in_f = w.shape
    nb_o, nb_i = math.ceil(out_f / block), math.ceil(in_f / block)
    q = torch.empty(out_f, in_f, dtype=torch.float8_e4m3fn)
    s = torch.empty(nb_o, nb_i, dtype=torch.float32)
    deq = torch.empty(out_f, in_f, dtype=torch.float32)
    for bo in range(nb_o):
        for bi in range(nb_i):
            blk = w[bo * block:(bo + 1) * block, bi * block:(bi + 1) * block].float()
            amax = blk.abs().max().item()
            scale = torch.tensor(max(amax, 1e-12) / 448.0, dtype=torch.float32)
            qb = (blk / scale).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
            q[bo * block:(bo + 1) * block, bi * block:(bi + 1) * block] = qb
            s[bo, bi] = scale
            deq[bo * block:(bo + 1) * block, bi * block:(bi + 1) * block] = qb.float() * scale
    return q, s, deq


def build(name, spec, out_root, report):
    from transformers import AutoModelForCausalLM
    from safetensors.torch import save_file, load_file
    log(f"=== {name} ({spec['model_type']})")
    rec = {"model_type": spec["model_type"], "seed": spec["seed"], "desc": spec["desc"]}
    torch.manual_seed(spec["seed"])
    cfg = make_config(spec["model_type"], spec["cfg"])
    rec["rope_parameters_in_memory"] = getattr(cfg, "rope_parameters", None)
    if "rope_scaling" in spec["cfg"]:
        rp = getattr(cfg, "rope_parameters", None) or {}
        assert rp.get("rope_type") == "yarn" and float(rp.get("factor")) == 4.0, \
            f"legacy rope_scaling not converted: {rp}"
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    init_weights(model, spec["seed"], spec.get("ecb", False))
    model.eval()
    vocab = cfg.vocab_size
    g = torch.Generator().manual_seed(spec["seed"] + 7)
    input_ids = torch.randint(0, vocab, (spec["prompt_len"],), generator=g).tolist()

    d = os.path.join(out_root, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    tmp = tempfile.mkdtemp(prefix="hfx_")

    save_model = copy.deepcopy(model).to(torch.bfloat16)
    if spec.get("fp8"):
        bf_dir = os.path.join(tmp, "bf16")
        save_model.save_pretrained(bf_dir)
        sd = load_file(os.path.join(bf_dir, "model.safetensors"))
        q_sd, deq_sd, nq = {}, {}, 0
        blocks = {}
        for k, t in sd.items():
            is_router = ".mlp.gate." in k
            if t.ndim == 2 and k.endswith(FP8_SUFFIXES) and not is_router:
                q, s, deq = quantize_fp8_blocks(t.float())
                q_sd[k] = q
                q_sd[k + "_scale_inv"] = s
                deq_sd[k] = deq
                nq += 1
                blocks[k] = [list(t.shape), list(s.shape)]
            else:
                q_sd[k] = t
                deq_sd[k] = t.float()
        log(f"  [fp8] quantised {nq} tensors")
        rec["fp8_tensors"] = nq
        shapes = {}
        for k, (shp, grid) in blocks.items():
            shapes.setdefault(f"{shp[0]}x{shp[1]} -> scale_inv {grid[0]}x{grid[1]}", k)
        rec["fp8_shapes"] = shapes
        # transformers' own dequantiser (used by FineGrainedFP8Config(dequantize=True)), tensor by tensor
        hf_same, hf_diff = [], {}
        try:
            from transformers.integrations.finegrained_fp8 import Fp8Dequantize
            for k in blocks:
                try:
                    hf = Fp8Dequantize._dequantize_one(None, q_sd[k], q_sd[k + "_scale_inv"],
                                                       output_dtype=torch.float32)
                    if torch.equal(hf, deq_sd[k]):
                        hf_same.append(k)
                    else:
                        hf_diff[k] = f"max|diff| {(hf - deq_sd[k]).abs().max().item():.3g}"
                except Exception as e:  # noqa
                    hf_diff[k] = f"{type(e).__name__}: {str(e)[:120]}"
        except Exception as e:  # noqa
            hf_diff["_import"] = repr(e)[:200]
        rec["hf_dequant_same_tensors"] = len(hf_same)
        rec["hf_dequant_differs"] = {k: v for k, v in hf_diff.items()
                                     if not any(f".experts.{i}." in k for i in range(1, 64))}
        log(f"  [fp8] transformers' Fp8Dequantize agrees on {len(hf_same)} tensors, differs on "
            f"{len(hf_diff)}: {list(rec['hf_dequant_differs'].items())[:6]}")
        save_file(q_sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        for fn in ("config.json", "generation_config.json"):
            shutil.copy(os.path.join(bf_dir, fn), os.path.join(d, fn))
        # reference model: dequantised f32 weights, no quantization_config
        deq_dir = os.path.join(tmp, "deq")
        os.makedirs(deq_dir)
        save_file(deq_sd, os.path.join(deq_dir, "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(os.path.join(bf_dir, "config.json"), os.path.join(deq_dir, "config.json"))
        if spec.get("hub_rope"):
            to_hub_rope(os.path.join(deq_dir, "config.json"), spec["cfg"]["rope_theta"],
                        spec["cfg"]["rope_scaling"])
        _, model = reload_logits(deq_dir, input_ids)
        # sanity: dequantised weights must differ from bf16 ones (quantisation actually applied)
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        c["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                    "weight_block_size": [128, 128]}
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
            f.write("\n")
    else:
        if spec.get("shard"):
            save_model.save_pretrained(d, max_shard_size=spec["shard"])
        else:
            save_model.save_pretrained(d)
    del save_model

    with open(os.path.join(d, "config.json")) as f:
        saved_cfg = json.load(f)
    rec["saved_rope_form"] = {k: saved_cfg[k] for k in ROPE_KEYS if k in saved_cfg}
    if spec.get("hub_rope"):
        rec["saved_rope_form_by_transformers"] = to_hub_rope(
            os.path.join(d, "config.json"), spec["cfg"]["rope_theta"], spec["cfg"]["rope_scaling"])
        with open(os.path.join(d, "config.json")) as f:
            saved_cfg = json.load(f)
        rec["saved_rope_form"] = {k: saved_cfg[k] for k in ROPE_KEYS if k in saved_cfg}
    log("  [save] rope form in config.json:", rec["saved_rope_form"])

    logits, greedy, mism = goldens(model, input_ids)
    rec["greedy_nocache_mismatch"] = mism
    save_file({"input_ids": torch.tensor(input_ids, dtype=torch.int32),
               "logits": logits.contiguous(),
               "greedy_ids": torch.tensor(greedy, dtype=torch.int32)},
              os.path.join(d, "golden.safetensors"), metadata={"format": "pt"})
    gj = {"arch": spec["model_type"], "model_type": spec["model_type"], "variant": name,
          "prompt_len": len(input_ids), "new_tokens": NEW_TOKENS, "input_ids": input_ids,
          "greedy_ids": greedy,
          "dtype_of_reference": ("float32 from dequantised fp8 weights" if spec.get("fp8")
                                 else "float32 from bf16 weights"),
          "seed": spec["seed"], "description": spec["desc"]}
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(gj, f, indent=1)

    # verify the written folder
    files = sorted(os.listdir(d))
    rec["files"] = files
    keys = {}
    for fn in files:
        if fn.endswith(".safetensors") and fn != "golden.safetensors":
            keys.update(st_keys(os.path.join(d, fn)))
    rec["n_keys"] = len(keys)
    rec["sample_keys"] = {k: v for k, v in sorted(keys.items())
                          if not any(f".experts.{i}" in k for i in range(1, 64))
                          and (".layers.0." in k or ".layers.1." in k or "layers" not in k)}
    rec["bytes"] = sum(os.path.getsize(os.path.join(d, fn)) for fn in files)
    log(f"  [save] files={files} bytes={rec['bytes']} keys={len(keys)}")
    if spec.get("fp8"):
        # transformers' own loader, dequantising on CPU, as an independent check (best effort)
        try:
            from transformers import AutoModelForCausalLM, FineGrainedFP8Config
            m2 = AutoModelForCausalLM.from_pretrained(
                d, dtype=torch.float32, attn_implementation="eager",
                quantization_config=FineGrainedFP8Config(dequantize=True))
            with torch.no_grad():
                l2 = m2(torch.tensor([input_ids])).logits[0].float()
            rec["hf_fp8_dequant_maxdiff"] = (l2 - logits).abs().max().item()
        except Exception as e:  # noqa
            rec["hf_fp8_dequant_maxdiff"] = f"not run: {type(e).__name__}: {str(e)[:300]}"
        log("  [verify] transformers FP8 loader (dequantize=True):", rec["hf_fp8_dequant_maxdiff"])
    else:
        l2, _ = reload_logits(d, input_ids)
        rec["reload_maxdiff"] = (l2 - logits).abs().max().item()
        log(f"  [verify] reload max|diff| = {rec['reload_maxdiff']:.3g}")
    rec["logit_absmax"] = logits.abs().max().item()
    rec["prompt_len"] = len(input_ids)
    shutil.rmtree(tmp, ignore_errors=True)
    report[name] = rec


def write_readme(out_root, report, versions, argv):
    lines = ["# hf-extra: more random tiny checkpoints with Hugging Face goldens", "",
             "Generated by `tools/make_hf_fixtures.py` (command: `CUDA_VISIBLE_DEVICES= python3 "
             "tools/make_hf_fixtures.py --out tests/data/hf-extra`; `--only NAME...` regenerates some).",
             f"Versions: {versions}. All math on CPU in float32.", "",
             "Same layout as `tests/data/hf-tiny/*` (without LoRA files): `config.json`, "
             "`generation_config.json`, `model.safetensors` (bf16, hub tensor names), `golden.safetensors` "
             "(`input_ids` I32 [n], `logits` F32 [n, vocab] for every prompt position, `greedy_ids` I32 [20] "
             "from `generate(do_sample=False, min_new_tokens=20)` with KV cache), `golden.json` (ids + "
             "`description`). bos/eos/pad are null, so generation never stops early.", "",
             "Weights: N(0, 0.08) for every tensor of 2+ dims; U(0.8, 1.2) for every 1-D tensor (norm "
             "weights, attention/router biases, gpt_oss sinks); `e_score_correction_bias` U(-0.1, 0.3) "
             "(set after init, non-zero, mixed sign); everything rounded to bf16 before computing goldens. "
             "Goldens: float32, `attn_implementation=\"eager\"`. Each folder was reloaded with "
             "`from_pretrained` and reproduced its golden logits exactly (max |diff| in `generation-report.json`); deepseek_v3-fp8 was instead computed from a float32 copy of its dequantised weights reloaded with `from_pretrained` (transformers cannot load block-FP8 with partial blocks correctly on CPU, see the notes below).", ""]
    lines.append("## Variants\n")
    for name, spec in VARIANTS.items():
        r = report.get(name, {})
        lines.append(f"- `{name}` (seed {spec['seed']}, prompt {spec['prompt_len']}): {spec['desc']}.")
        if r:
            lines.append(f"  - config.json rope form: `{json.dumps(r.get('saved_rope_form'))}`; "
                         f"files: {', '.join(r.get('files', []))}; {r.get('bytes')} bytes.")
    lines.append("")
    lines.append(NOTES)
    with open(os.path.join(out_root, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def dump_sources(dst):
    import transformers
    os.makedirs(dst, exist_ok=True)
    base = os.path.dirname(transformers.__file__)
    rels = ["modeling_rope_utils.py", "conversion_mapping.py", "core_model_loading.py",
            "integrations/finegrained_fp8.py", "quantizers/quantizer_finegrained_fp8.py",
            "utils/quantization_config.py", "configuration_utils.py", "masking_utils.py"]
    for a in ["qwen3_moe", "qwen2_moe", "mixtral", "olmoe", "llama", "deepseek_v2", "deepseek_v3",
              "glm4_moe", "gpt_oss"]:
        rels += [f"models/{a}/modeling_{a}.py", f"models/{a}/configuration_{a}.py"]
    for r in rels:
        p = os.path.join(base, r)
        if os.path.exists(p):
            shutil.copy(p, os.path.join(dst, r.replace("/", "__")))
        else:
            log("[dump] missing", r)


def probe_inv_freq_dtype(path):
    """Reports the rotary inv_freq dtype after from_pretrained(dtype=bfloat16)."""
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    for name, buf in m.named_buffers():
        if name.endswith("inv_freq"):
            log(f"  [probe] from_pretrained(dtype=bf16): {name} dtype={buf.dtype}")
            return str(buf.dtype)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (e.g. tests/data/hf-extra)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"subset of: {', '.join(VARIANTS)}")
    ap.add_argument("--dump-src", metavar="DIR", help="also copy the relevant transformers sources to DIR")
    ap.add_argument("--keep-going", action="store_true", help="continue after a failing variant")
    args = ap.parse_args()

    import transformers
    import safetensors
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    versions = (f"transformers {transformers.__version__}, torch {torch.__version__}, "
                f"safetensors {safetensors.__version__}")
    log(versions)
    if args.dump_src:
        dump_sources(args.dump_src)
    names = args.only or list(VARIANTS)
    for n in names:
        if n not in VARIANTS:
            sys.exit(f"unknown variant {n}; known: {', '.join(VARIANTS)}")
    os.makedirs(args.out, exist_ok=True)
    rep_path = os.path.join(args.out, "generation-report.json")
    report = {}
    if os.path.exists(rep_path):
        with open(rep_path) as f:
            report = json.load(f)
    failed = []
    for n in names:
        try:
            build(n, VARIANTS[n], args.out, report)
        except Exception:
            import traceback
            traceback.print_exc()
            failed.append(n)
            if not args.keep_going:
                break
    report["_versions"] = versions
    first = os.path.join(args.out, names[0])
    if os.path.isdir(first):
        report["_inv_freq_dtype_after_bf16_from_pretrained"] = probe_inv_freq_dtype(first)
    with open(rep_path, "w") as f:
        json.dump(report, f, indent=1, default=str)
    write_readme(args.out, report, versions, sys.argv)
    if failed:
        log("FAILED:", failed)
        sys.exit(1)
    log("all done")


if __name__ == "__main__":
    main()
