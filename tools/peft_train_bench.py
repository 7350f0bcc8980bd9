#!/usr/bin/env python3
"""LoRA training throughput of transformers + peft with the routed experts offloaded to the
CPU (accelerate's device_map with a GPU memory cap), the peer of `moestudio-cli train` in
issue 7's benchmark. Runs on the GPU machine (torch, transformers, peft, accelerate there).

  python3 tools/peft_train_bench.py --model HF_DIR --data TEXT_FILE --steps 6 --seq-len 256 \
      --targets q_proj,o_proj --out RESULT.json

Prints and writes {"tokens_per_s": ..., "step_seconds": [...], ...}; the first step is a
warm-up and is left out of the mean.
"""
import argparse
import json
import time

import torch
from peft import LoraConfig, get_peft_model
from accelerate import init_empty_weights
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=int, default=16)
    ap.add_argument("--targets", default="q_proj,o_proj")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(a.model)
    # The routed experts on the CPU, everything else on the GPU (the split of `moestudio-cli
    # train`): accelerate keeps the modules mapped to "cpu" in RAM and moves their weights to
    # the GPU when they run (its CPU offload). A memory cap alone is not enough: a small model
    # fits the GPU whole and nothing would be offloaded.
    config = AutoConfig.from_pretrained(a.model)
    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config)
    device_map = {}
    for name, _ in list(empty.named_parameters()) + list(empty.named_buffers()):
        module = name.rsplit(".", 1)[0]
        if ".mlp.experts." in name:  # per-expert modules, or one module of 3-D tensors
            module = name.split(".mlp.experts.")[0] + ".mlp.experts"
            device_map[module] = "cpu"
        else:
            device_map[module] = 0
    model = AutoModelForCausalLM.from_pretrained(
        a.model, torch_dtype=torch.bfloat16, device_map=device_map)
    cfg = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0,
                     target_modules=a.targets.split(","), task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr)
    text = open(a.data, encoding="utf-8").read()
    ids = tok(text, return_tensors="pt").input_ids[0]
    need = a.seq_len * a.steps
    while ids.numel() < need:
        ids = torch.cat([ids, ids])
    first = next(model.parameters()).device
    times, losses = [], []
    for s in range(a.steps):
        batch = ids[s * a.seq_len:(s + 1) * a.seq_len].unsqueeze(0).to(first)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=batch, labels=batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(float(out.loss))
        print(f"step {s + 1}: loss {losses[-1]:.4f} {times[-1]:.2f} s", flush=True)
    timed = times[1:] if len(times) > 1 else times
    result = {
        "tokens_per_s": a.seq_len / (sum(timed) / len(timed)),
        "step_seconds": times,
        "losses": losses,
        "seq_len": a.seq_len,
        "targets": a.targets,
        "offloaded_modules": sum(1 for d in device_map.values() if d == "cpu"),
        "devices": sorted({str(p.device) for p in model.parameters()}),
    }
    print(json.dumps(result))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
