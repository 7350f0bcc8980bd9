#!/usr/bin/env python3
"""Reference logits of hf-tiny fixtures with their PEFT LoRA adapter applied.

For every fixture folder under --fixtures whose lora/ adapter targets only modules (no
routed-expert target_parameters), loads the bf16 checkpoint in float32 with transformers, casts
the rotary inv_freq buffers through bf16 (the convention of the hf-tiny goldens, see
tests/data/README.md), applies the adapter with peft at scale 1 and writes
<out>/<fixture>.safetensors with `input_ids` (I32) and `logits` (F32 [n, vocab]) for the
fixture's golden input ids.

Run on a machine with torch, transformers and peft (the GPU machine; CPU is used):
    CUDA_VISIBLE_DEVICES= python3 tools/make_lora_goldens.py \\
        --fixtures tests/data/hf-tiny --out tests/data/lora-goldens
"""
import argparse
import json
import os

import torch
from safetensors.torch import load_file, save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    import peft
    import transformers

    os.makedirs(args.out, exist_ok=True)
    report = {"versions": f"transformers {transformers.__version__}, peft {peft.__version__}, "
                          f"torch {torch.__version__}"}
    for name in sorted(os.listdir(args.fixtures)):
        d = os.path.join(args.fixtures, name)
        cfg_path = os.path.join(d, "lora", "adapter_config.json")
        if not os.path.exists(cfg_path):
            continue
        with open(cfg_path) as f:
            cfg = json.load(f)
        if cfg.get("target_parameters"):
            report[name] = "skipped: routed-expert target_parameters"
            continue
        ids = load_file(os.path.join(d, "golden.safetensors"))["input_ids"].long()
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                     attn_implementation="eager")
        with torch.no_grad():
            for bname, buf in model.named_buffers():
                if bname.endswith("inv_freq"):
                    buf.copy_(buf.to(torch.bfloat16).to(buf.dtype))
        model = PeftModel.from_pretrained(model, os.path.join(d, "lora"))
        model.eval()
        with torch.no_grad():
            logits = model(ids[None]).logits[0].float().contiguous()
            base = model.get_base_model()
            with model.disable_adapter():
                plain = model(ids[None]).logits[0].float()
        save_file({"input_ids": ids.to(torch.int32), "logits": logits},
                  os.path.join(args.out, name + ".safetensors"), metadata={"format": "pt"})
        report[name] = {"adapter_effect_max_abs": (logits - plain).abs().max().item(),
                        "logit_absmax": logits.abs().max().item()}
        print(name, report[name], flush=True)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
