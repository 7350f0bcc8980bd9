#!/usr/bin/env python3
"""References for LoRA training (issue 7), made with torch + transformers + peft.

1. AdamW goldens: for each hf-tiny fixture named, loads the bf16 checkpoint in float32 (rotary
   inv_freq cast through bf16, the hf-tiny convention, see tests/data/README.md), applies its
   lora/ adapter as trainable, and takes two torch.optim.AdamW steps (lr 1e-2, betas 0.9/0.999,
   eps 1e-8, weight decay 0.1) on the loss of lora_golden.safetensors' labels. Writes
   <out>/<fixture>.safetensors: `loss0`, `loss1` (the loss before each step) and every trainable
   tensor after the second step under PEFT's names.
2. Export check: for every folder <check>/<fixture>/ written by the engine (adapter/ and
   engine_logits.safetensors with `input_ids` and `logits`; bench/lora_check.cpp), loads the
   exported adapter with PeftModel.from_pretrained and prints the relative error of peft's
   logits against the engine's (max |diff| / max |engine|); exit status 1 above 2e-3.

Run where torch, transformers and peft are installed (the GPU machine; the CPU is used):
    CUDA_VISIBLE_DEVICES= python3 tools/make_train_goldens.py --fixtures tests/data/hf-tiny \\
        --out tests/data/train-goldens qwen3_moe-s1 llama-s1 deepseek_v3-s1 [--check DIR]
"""
import argparse
import os
import sys

import torch
from safetensors.torch import load_file, save_file


def load_base(d):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                 attn_implementation="eager")
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("inv_freq"):
                buf.copy_(buf.to(torch.bfloat16).to(buf.dtype))
    return model


def adamw_golden(d, out_path):
    from peft import PeftModel
    ids = load_file(os.path.join(d, "golden.safetensors"))["input_ids"].long()[None]
    labels = load_file(os.path.join(d, "lora_golden.safetensors"))["labels"].long()[None]
    model = PeftModel.from_pretrained(load_base(d), os.path.join(d, "lora"), is_trainable=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        losses.append(loss.detach().float().reshape(1))
        loss.backward()
        opt.step()
    tensors = {n: p.detach().float().contiguous() for n, p in model.named_parameters()
               if p.requires_grad}
    tensors["loss0"], tensors["loss1"] = losses
    save_file(tensors, out_path)
    print(f"{out_path}: losses {losses[0].item():.6f} {losses[1].item():.6f}, "
          f"{len(tensors) - 2} tensors")


def check_export(d, folder):
    from peft import PeftModel
    ref = load_file(os.path.join(folder, "engine_logits.safetensors"))
    model = PeftModel.from_pretrained(load_base(d), os.path.join(folder, "adapter"))
    model.eval()
    with torch.no_grad():
        logits = model(ref["input_ids"].long()[None]).logits[0].float()
        plain = None
        with model.disable_adapter():
            plain = model(ref["input_ids"].long()[None]).logits[0].float()
    scale = ref["logits"].abs().max().item()
    err = (logits - ref["logits"]).abs().max().item() / scale
    base_err = (plain - ref["logits"]).abs().max().item() / scale
    print(f"{folder}: peft vs engine logits, relative error {err:.2e} "
          f"(the base model without the adapter: {base_err:.2e})")
    return err <= 2e-3 and base_err > 1e-2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", default="")
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    import peft
    import transformers
    print(f"transformers {transformers.__version__}, peft {peft.__version__}, "
          f"torch {torch.__version__}")
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    for name in args.names:
        adamw_golden(os.path.join(args.fixtures, name),
                     os.path.join(args.out, name + ".safetensors"))
    ok = True
    if args.check:
        for name in sorted(os.listdir(args.check)):
            ok &= check_export(os.path.join(args.fixtures, name), os.path.join(args.check, name))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
