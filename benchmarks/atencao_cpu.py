"""Eager x SDPA na CPU: prefill (sequência inteira) e decode (um token por vez, com cache KV).

    .venv/bin/python benchmarks/atencao_cpu.py [--prefill 1024] [--new-tokens 64]

Mede no modelo de referência e grava build/benchmarks/atencao_cpu.json. É a medida por trás
de o `load_model` deixar o padrão do transformers (SDPA) também na CPU.
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from course_utils.data import text_token_ids  # noqa: E402
from course_utils.environment import environment_info, quiet_libraries  # noqa: E402
from course_utils.measure import measure_latency  # noqa: E402
from course_utils.models import load_model, load_tokenizer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefill", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_libraries()
    tok = load_tokenizer()
    ids = text_token_ids(tok, "en", args.prefill)
    result = {"environment": environment_info(), "prefill_tokens": args.prefill, "new_tokens": args.new_tokens}
    for attn in ("eager", "sdpa"):
        model = load_model(device="cpu", attn_implementation=attn)
        result[attn] = {"prefill_ms": measure_latency(lambda m=model: m(ids), warmup=1,
                                                      repeats=args.repeats)["median_ms"]}
        for prompt_len in (32, 512):
            prompt = ids[:, :prompt_len]
            prefill = measure_latency(lambda m=model, p=prompt: m(p), warmup=1, repeats=args.repeats)["median_ms"]

            def gen(m=model, p=prompt):
                return m.generate(p, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                  do_sample=False, pad_token_id=tok.eos_token_id)

            total = measure_latency(gen, warmup=1, repeats=args.repeats)["median_ms"]
            # o primeiro token novo sai do prefill; os outros new_tokens - 1 são decode
            result[attn][f"decode_ms_per_token_prompt{prompt_len}"] = (total - prefill) / (args.new_tokens - 1)
        r = result[attn]
        print(f"{attn:>6}: prefill de {args.prefill} tokens {r['prefill_ms']:8.1f} ms | decode "
              f"{r['decode_ms_per_token_prompt32']:6.1f} ms/token (prompt 32), "
              f"{r['decode_ms_per_token_prompt512']:6.1f} ms/token (prompt 512)")
    for key in ("prefill_ms", "decode_ms_per_token_prompt32", "decode_ms_per_token_prompt512"):
        result[f"eager_over_sdpa_{key}"] = result["eager"][key] / result["sdpa"][key]
        print(f"{key}: eager/sdpa = {result[f'eager_over_sdpa_{key}']:.2f} (>1: sdpa mais rápida)")
    out = Path(__file__).resolve().parent.parent / "build" / "benchmarks" / "atencao_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("gravado em", out)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
