#!/usr/bin/env python3
"""Cross-check of `moestudio-cli convert` and the GGUF path against llama.cpp.

For every fixture folder given (tests/data/hf-tiny/*, tests/data/hf-extra/*), copies it to a
work folder with a byte-level tokenizer (256 byte tokens, the rest of the vocabulary as plain
added tokens "<tN>") so that llama.cpp can run it, converts it with moestudio-cli to each GGUF
type, and compares the greedy continuation of a prompt: llama.cpp's `llama-simple` (greedy) text against MoE Studio's `generate --greedy --llamacpp-attention`.

    tools/llamacpp_check.py --cli build/app/cli/moestudio-cli \\
        --llama-bin /path/to/llama.cpp/build/bin --work /tmp/llamacpp-check \\
        --types f32,bf16,q8_0,q4_0 tests/data/hf-tiny/*-s1 tests/data/hf-extra/*-s2

llama.cpp is built separately (never part of this project); see docs/benchmarks.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys


def byte_level_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def add_tokenizer(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)
    with open(os.path.join(dst, "config.json")) as f:
        cfg = json.load(f)
    vocab_size = cfg["vocab_size"]
    chars = byte_level_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    added = [{"id": i, "content": f"<t{i}>", "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": False} for i in range(256, vocab_size - 1)]
    # The last id is the end-of-sequence token, so that llama.cpp uses no default of its own.
    added.append({"id": vocab_size - 1, "content": "<|eos|>", "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": False, "special": True})
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    with open(os.path.join(dst, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "eos_token": "<|eos|>", "bos_token": "<|eos|>",
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f)


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, env=env)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--types", default="f32,bf16,q8_0")
    ap.add_argument("--prompt", default="Hello world")
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("fixtures", nargs="+")
    a = ap.parse_args()
    env = dict(os.environ, LD_LIBRARY_PATH=a.llama_bin)
    ok = bad = 0
    for fx in a.fixtures:
        name = os.path.basename(fx.rstrip("/"))
        d = os.path.join(a.work, name)
        add_tokenizer(fx, d)
        for t in a.types.split(","):
            g = os.path.join(a.work, f"{name}-{t}.gguf")
            rc, _, err = run([a.cli, "convert", d, "--out", g, "--type", t, "--quiet"])
            if rc:
                print(f"{name:22} {t:5} convert failed: {err.strip()}")
                bad += 1
                continue
            # llama-simple: greedy sampling, prints the prompt and each new token's bytes.
            rc, out, err = run([os.path.join(a.llama_bin, "llama-simple"), "-m", g, "-n", str(a.tokens),
                                a.prompt], env=env)
            theirs = out if rc == 0 else None
            rc2, ours, err2 = run([a.cli, "generate", g, "--prompt", a.prompt, "--max-new-tokens", str(a.tokens),
                                   "--greedy", "--llamacpp-attention", "--raw"])
            if theirs is None:
                print(f"{name:22} {t:5} llama.cpp failed: {err.strip().splitlines()[-1] if err.strip() else rc}")
                bad += 1
                continue
            if rc2:
                print(f"{name:22} {t:5} moestudio failed: {err2.strip()}")
                bad += 1
                continue
            theirs = theirs.rstrip(b"\n")
            mine = (a.prompt.encode() + ours).rstrip(b"\n")
            same = theirs == mine
            ok += same
            bad += not same
            print(f"{name:22} {t:5} {'SAME' if same else 'DIFFERENT'}")
            if not same:
                print("   llama.cpp:", repr(theirs[:160]))
                print("   moestudio:", repr(mine[:160]))
    print(f"{ok} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
