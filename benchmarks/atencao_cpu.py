"""Eager x SDPA na CPU: prefill (sequência inteira) e decode (um token por vez, com cache KV).

    .venv/bin/python benchmarks/atencao_cpu.py [--prefill 1024] [--new-tokens 64]

Mede no modelo de referência e grava build/benchmarks/atencao_cpu.json. É a medida por trás
do padrão `attn_implementation="eager"` do `load_model` na CPU.
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
    prompt = ids[:, :32]
    result = {"environment": environment_info(), "prefill_tokens": args.prefill, "new_tokens": args.new_tokens}
    for attn in ("eager", "sdpa"):
        model = load_model(device="cpu", attn_implementation=attn)
        prefill = measure_latency(lambda: model(ids), warmup=1, repeats=args.repeats)["median_ms"]
        gen = lambda: model.generate(prompt, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                     do_sample=False, pad_token_id=tok.eos_token_id)
        decode = measure_latency(gen, warmup=1, repeats=args.repeats)["median_ms"] / args.new_tokens
        result[attn] = {"prefill_ms": prefill, "decode_ms_per_token": decode}
        print(f"{attn:>6}: prefill de {args.prefill} tokens {prefill:8.1f} ms | decode {decode:6.1f} ms/token")
    result["decode_speedup_eager_vs_sdpa"] = result["sdpa"]["decode_ms_per_token"] / result["eager"]["decode_ms_per_token"]
    result["prefill_speedup_sdpa_vs_eager"] = result["eager"]["prefill_ms"] / result["sdpa"]["prefill_ms"]
    print(f"decode: eager {result['decode_speedup_eager_vs_sdpa']:.2f}x mais rápido que sdpa | "
          f"prefill: sdpa {result['prefill_speedup_sdpa_vs_eager']:.2f}x mais rápido que eager")
    out = Path(__file__).resolve().parent.parent / "build" / "benchmarks" / "atencao_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("gravado em", out)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
