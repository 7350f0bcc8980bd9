// moestudio-cli: the headless face of MoE Studio (used by users, scripts and tests).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "core/error.h"

namespace {

constexpr const char* kUsage = R"(moestudio-cli — run Mixture-of-Experts LLMs on CPU (+GPU)

usage: moestudio-cli COMMAND [ARGS]

commands:
  info MODEL                         model summary as JSON
  devices                            the CPU (cores, NUMA, expert kernels) and GPUs as JSON
  generate MODEL (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N]
           [--greedy | --temperature T --top-p P --top-k K --min-p M --seed S]
           [--repetition-penalty R] [--ids | --raw] [--threads N] [--trace FILE.json]
                                     generate text (or, with --ids, token ids); --trace writes
                                     the generation's timeline as Chrome trace JSON (Perfetto)
  logits MODEL --prompt-ids 1,2,3 --out FILE.safetensors [--threads N]
                                     write F32 logits [n_prompt, vocab]
  --lora ADAPTER [--lora-scale S] (generate, logits): apply a LoRA adapter (PEFT folder or
                                     llama.cpp GGUF adapter)
  --expert-format F (generate, logits, info): auto | reference | gguf | q4k | bf16-exact |
                                     bf16 | int8 | int4[-g64|-g128]: how routed experts run on
                                     the CPU (see README)
  --gpu-budget GiB --cpu-experts all|none|auto | --placement FILE.json (generate): where the
                                     weights live (this build: CPU only)
  --llamacpp-attention (generate, logits): F16 KV cache and llama.cpp's flash-attention
                                     arithmetic, to reproduce llama.cpp's CPU output exactly
  --rope-freq-bf16 (generate, logits): round rotary frequencies to bf16 as transformers
                                     does after model.to(bfloat16), to reproduce such references
  tokenize TOKENIZER --text TEXT [--add-special]
                                     token ids, comma-separated
  detokenize TOKENIZER --ids 1,2,3 [--skip-special]
                                     the text of token ids
  template TOKENIZER --messages FILE.json [--add-generation-prompt] [--no-thinking | --thinking]
           [--bos TEXT --eos TEXT] [--template FILE.jinja] [--tools FILE.json] [--kwargs JSON]
                                     the rendered chat prompt, byte for byte
  convert HF_DIR --out FILE.gguf [--type bf16|f16|f32|q8_0|q4_0|q4_k|q5_k|q6_k|iq4_nl|mxfp4|...]
                                     write a GGUF that MoE Studio and llama.cpp load
  placement plan MODEL [--gpu-budget GiB] [--cpu-experts all|none|auto] [--context N]
           [--usage USAGE.json] [--strategy uniform|frequency|front|back|balanced]
           [--out FILE.json] [--json]    plan where each layer's weights and experts live
  placement show FILE.json [--model MODEL]
                                     summarize a saved placement (and check it fits MODEL)
  placement record MODEL --prompts FILE --out TRACE.jsonl [--max-new-tokens N]
                                     record a workload's routing decisions
  placement replay TRACE.jsonl [--placement FILE.json] [--slots N --policy lru|lfu]
                                     GPU hit rates of a placement or an expert cache on it
  placement export FILE.json --format llama.cpp|sglang-kt [--frequency] [--out FILE]
                                     the placement as llama.cpp -ot overrides (whole expert
                                     tensors: approximated per layer) or sglang-kt options
  bench moe --shape qwen3-30b-a3b|deepseek-v3|mixtral-8x7b
           --format bf16|bf16-exact|int8|int4|q4k|q4_k|q8_0
           --tokens N [--threads N] [--json] [--memory-gib G] [--layers L] [--iterations I]
                                     one MoE layer through the CPU expert kernels vs DRAM bandwidth
  bench e2e MODEL [--prompt-tokens N] [--gen-tokens N] [--repetitions R] [--threads N] [--json]
                                     whole-model pp/tg tok/s with llama-bench's semantics
  train MODEL --data FILE --out DIR [--format auto|text|alpaca|messages|sharegpt]
           [--targets q_proj,k_proj,v_proj,o_proj,...,experts] [--rank R] [--alpha A]
           [--adapter PEFT_DIR] [--resume CHECKPOINT] [--lr LR] [--schedule cosine|linear|constant]
           [--warmup N] [--epochs N] [--steps N] [--grad-accum N] [--max-grad-norm G]
           [--cutoff N] [--packing] [--train-on-prompt] [--eval-fraction F] [--eval-every N]
           [--save-every N] [--seed S] [--store DB]
                                     LoRA fine-tuning; writes DIR/adapter (PEFT) and metrics
  export-adapter MODEL --adapter PEFT_DIR|ADAPTER.gguf --format merged|peft|gguf --out PATH
           [--scale S]               the adapter merged into MODEL's weights (a new Hugging
                                     Face folder), or as a PEFT folder / llama.cpp LoRA GGUF
  serve [MODEL] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--max-batch N] [--max-queue N]
           [--max-body-kib N] [--max-tokens N] [--timeout S] [--threads N] [--name NAME]
           [--placement FILE.json | --gpu-budget GiB]
                                     an OpenAI-compatible HTTP server (/v1/chat/completions,
                                     /v1/completions, /v1/models, /health, /metrics); a host
                                     other than loopback needs --api-key; no MODEL: the demo
  remote models URL | remote chat URL --model NAME --prompt TEXT [--system TEXT] [--max-tokens N]
           [--temperature T] [--stop TEXT] [--api-key KEY]
                                     chat with a remote OpenAI-compatible server (SGLang with
                                     KTransformers, vLLM, llama-server, another moestudio-cli
                                     serve), streamed, with its token counts
  make-demo --out DIR                write the built-in demo model (random weights)

MODEL is a Hugging Face folder (config.json + *.safetensors) or a .gguf file;
TOKENIZER is a folder with tokenizer.json or a model (folder or .gguf).
  --version, --help
)";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
        !std::strcmp(argv[1], "help")) {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    if (cmd == "--version") {
        std::printf("moestudio-cli %s\n", MOE_VERSION);
        return 0;
    }
    const std::vector<std::string> rest(argv + 2, argv + argc);
    try {
        if (cmd == "info") return moecli::cmd_info(rest);
        if (cmd == "generate") return moecli::cmd_generate(rest);
        if (cmd == "train") return moecli::cmd_train(rest);
        if (cmd == "export-adapter") return moecli::cmd_export_adapter(rest);
        if (cmd == "logits") return moecli::cmd_logits(rest);
        if (cmd == "make-demo") return moecli::cmd_make_demo(rest);
        if (cmd == "tokenize") return moecli::cmd_tokenize(rest);
        if (cmd == "detokenize") return moecli::cmd_detokenize(rest);
        if (cmd == "template") return moecli::cmd_template(rest);
        if (cmd == "convert") return moecli::cmd_convert(rest);
        if (cmd == "bench") return moecli::cmd_bench(rest);
        if (cmd == "placement") return moecli::cmd_placement(rest);
        if (cmd == "devices") return moecli::cmd_devices(rest);
        if (cmd == "serve") return moecli::cmd_serve(rest);
        if (cmd == "remote") return moecli::cmd_remote(rest);
        std::fprintf(stderr, "moestudio-cli: unknown command '%s' (try --help)\n", cmd.c_str());
        return 2;
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "moestudio-cli %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moestudio-cli %s: internal error: %s\n", cmd.c_str(), e.what());
        return 3;
    }
}
