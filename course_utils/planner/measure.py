"""Medir e conferir o planejador: memória do processo, os pesos do modelo de referência em cada formato e um 7B
montado só da configuração (pesos aleatórios) numa GPU, termo a termo contra o plano.

- `memory_report`: RAM do processo e, com GPU, o que o PyTorch alocou e reservou e o que o driver tem livre;
- `verify_weight_predictions` / `weight_check_table`: carrega um modelo em cada formato e compara os bytes medidos
  com `weight_bytes` (footprint e tudo o que fica guardado);
- `measure_from_config`: grava um checkpoint aleatório em shards (fp16), carrega-o em cada formato pelo mesmo
  `from_pretrained` de um checkpoint do Hub, gera com um prompt fixo e devolve, por formato, o que a GPU mediu
  (footprint, tudo o que o modelo guarda, pico alocado na carga e na geração, tokens/s) ao lado do que o planejador
  previu (pesos, cache KV, ativações, reserva); `compare_with_plan` e `peak_table` põem o pico medido ao lado de
  pesos + cache KV + ativações do plano. A memória dos formatos de 16 bits e do NF4 não depende dos valores dos
  pesos; a do INT8 e a velocidade dele dependem de quantas colunas da ativação passam do limiar de 6 do LLM.int8
  (o plano conta o pior caso, todas: `int8_linear_peak_bytes`).
"""

import gc
import shutil
import tempfile
import time
from pathlib import Path

from .hardware import GIB
from .loading import bnb_quantization_config, write_random_checkpoint
from .weights import FORMAT_LABELS, measured_weight_bytes, weight_bytes

MIB = 2**20


# ---------------------------------------------------------------- memória do processo e da GPU, agora

def memory_report(label: str, gpu: bool = False, progress=print) -> dict:
    """RAM do processo agora e, com `gpu=True`, memória alocada/reservada pelo PyTorch e livre no driver, em MiB.

    Imprime uma linha com `label` e devolve {"rss_mb", e com GPU "gpu_alloc_mb", "gpu_reserved_mb", "gpu_free_mb"}.
    """
    from ..measure import current_rss_mb

    report = {"rss_mb": current_rss_mb()}
    line = f"[{label}] RAM do processo {report['rss_mb']:.0f} MiB"
    if gpu:
        import torch

        free, total = torch.cuda.mem_get_info()
        report.update(gpu_alloc_mb=torch.cuda.memory_allocated() / MIB, gpu_reserved_mb=torch.cuda.memory_reserved() / MIB,
                      gpu_free_mb=free / MIB)
        line += (f" | GPU: alocado {report['gpu_alloc_mb']:.0f} MiB, reservado {report['gpu_reserved_mb']:.0f} MiB, "
                 f"livre {free / MIB:.0f} de {total / MIB:.0f} MiB")
    progress(line)
    return report


# ---------------------------------------------------------------- os pesos previstos contra os carregados

def verify_weight_predictions(model_id, formats, device: str, compute: str, measured: dict | None = None) -> dict:
    """Para cada formato: carrega `model_id` nele (em `device`), mede os pesos e compara com `weight_bytes`.

    compute: "fp16" ou "fp32", o dtype de computação (o do que não é quantizado e o `bnb_4bit_compute_dtype`).
    measured: {formato: measured_weight_bytes(...)} já medidos (não são carregados de novo).
    Devolve {formato: {"predicted", "measured", "footprint_error_pct", "stored_error_pct"}}, com o erro
    100·|medido/previsto − 1| no footprint (o `get_memory_footprint()`) e no que fica guardado (com as escalas).
    """
    import torch

    from ..models import load_model

    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    measured = dict(measured or {})
    checks = {}
    for fmt in formats:
        if fmt not in measured:
            quantization = bnb_quantization_config(fmt, dtypes[compute])
            if quantization is not None:
                model = load_model(model_id, device=device, quantization_config=quantization)
            else:
                model = load_model(model_id, device=device, dtype=dtypes[fmt])
            measured[fmt] = measured_weight_bytes(model)
            del model
            gc.collect()
        predicted, got = weight_bytes(model_id, fmt, compute), measured[fmt]
        checks[fmt] = {"predicted": predicted, "measured": got,
                       "footprint_error_pct": 100 * abs(got["footprint"] / predicted["footprint"] - 1),
                       "stored_error_pct": 100 * abs(got["stored"] / predicted["stored"] - 1)}
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return checks


def weight_check_table(checks: dict) -> str:
    """A tabela de `verify_weight_predictions`: previsto, medido e erro, no footprint e no guardado (MiB)."""
    lines = [f"{'formato':<20}{'previsto':>10}{'medido':>10}{'erro':>8}  |{'guardado':>10}{'medido':>10}{'erro':>8}   (MiB)"]
    for fmt, c in checks.items():
        pred, meas = c["predicted"], c["measured"]
        lines.append(f"{FORMAT_LABELS[fmt]:<20}{pred['footprint'] / MIB:>10.2f}{meas['footprint'] / MIB:>10.2f}"
                     f"{c['footprint_error_pct']:>7.2f}%  |{pred['stored'] / MIB:>10.2f}{meas['stored'] / MIB:>10.2f}"
                     f"{c['stored_error_pct']:>7.2f}%")
    return "\n".join(lines)


# ---------------------------------------------------------------- um 7B de pesos aleatórios, na GPU

def compare_with_plan(results: dict, long_plan=None) -> dict:
    """Põe ao lado de cada pico medido o que o plano prevê para ele: pesos + cache KV + ativações, sem a reserva
    (o contexto CUDA fica fora do alocador do PyTorch, que `max_memory_allocated` mede).

    results: {formato: dict de `measure_from_config`}; long_plan: o plano do prefill longo (`plan_memory` com o
    contexto longo), ou None. Acrescenta a cada formato "planned_peak_gib" e "peak_error_pct" (100·(plano/medido − 1):
    positivo = o plano sobra) e, com `long_plan`, "planned_long_peak_gib" e "long_peak_error_pct" (None se o prefill
    longo não foi medido). Devolve `results`.
    """
    for fmt, r in results.items():
        r["planned_peak_gib"] = r["planner_weights_gib"] + r["planner_kv_gib"] + r["planner_act_gib"]
        r["peak_error_pct"] = 100 * (r["planned_peak_gib"] / r["peak_allocated_gib"] - 1)
        long_peak = r.get("long_peak_allocated_gib")
        if long_plan is not None:
            p = long_plan[fmt]
            r["planned_long_peak_gib"] = (p.weights_bytes + p.kv_bytes + p.activation_bytes) / GIB
        planned_long = r.get("planned_long_peak_gib")
        r["long_peak_error_pct"] = 100 * (planned_long / long_peak - 1) if long_peak and planned_long else None
    return results


def peak_table(results: dict, long_prompt_tokens: int | None = None) -> str:
    """A tabela da seção 6 do notebook 08: footprint, pico medido contra o plano, tokens/s e o prefill longo."""
    lines = [f"{'formato':<20}{'footprint':>10}{'plano':>7} |{'pico':>6}{'pesos+KV+ativ.':>16}{'erro':>7} | tokens/s"]
    for fmt, r in results.items():
        line = (f"{FORMAT_LABELS[fmt]:<20}{r['footprint_gib']:>9.2f}G{r['planner_footprint_gib']:>6.2f}G |"
                f"{r['peak_allocated_gib']:>5.2f}G{r['planned_peak_gib']:>15.2f}G{r['peak_error_pct']:>+6.1f}% | "
                f"{r['tokens_per_s']:.1f}")
        if long_prompt_tokens:
            long_peak = r.get("long_peak_allocated_gib")
            if long_peak:
                line += (f" | prompt de {long_prompt_tokens}: pico {long_peak:.2f}G, plano "
                         f"{r['planned_long_peak_gib']:.2f}G ({r['long_peak_error_pct']:+.1f}%)")
            else:
                line += f" | prompt de {long_prompt_tokens}: não cabe nesta GPU pelo plano"
        lines.append(line)
    return "\n".join(lines)


def measure_from_config(config, plan, formats, prompt_tokens: int = 128, new_tokens: int = 32, seed: int = 0,
                        scratch_dir=None, progress=print, long_prompt_tokens: int | None = None,
                        long_plan=None) -> dict:
    """Para cada formato de `formats` que o `plan` diz caber na GPU: carrega, gera e mede. Precisa de CUDA.

    Devolve {formato: dict}, com GiB medidos (footprint_gib, stored_gib, peak_allocated_gib, load_peak_allocated_gib),
    tokens_per_s, load_seconds e os termos do plano (planner_weights_gib, planner_kv_gib, planner_act_gib,
    planner_reserve_gib, planner_total_gib) e planner_error_pct (pior erro nos pesos, footprint e guardado, contra os
    tensores do modelo carregado), allocated_weights_gib (o que o alocador do PyTorch ganhou com a carga, uma medida
    independente da contagem de tensores) e weights_vs_allocated_pct (100·(pesos do plano/alocado − 1)), mais o
    que `compare_with_plan` acrescenta. long_prompt_tokens: mede também o pico de um prefill longo (+1 token gerado),
    long_peak_allocated_gib: é onde o cache KV e as ativações do plano pesam de verdade; só nos formatos que
    `long_plan` (o plano com esse contexto; None = todos os formatos, sem comparação) diz caber na GPU.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if not torch.cuda.is_available():
        raise RuntimeError("measure_from_config precisa de uma GPU CUDA.")
    long_formats = None if long_plan is None else [f for f in formats if long_plan[f].verdict == "gpu"]
    ckpt = Path(tempfile.mkdtemp(prefix="llama2_7b_aleatorio_", dir=scratch_dir))
    results = {}
    try:
        start = time.perf_counter()
        write_random_checkpoint(config, ckpt, "fp16", max_shard_gib=2.0, seed=seed, device="cuda")
        shards = sorted(ckpt.glob("*.safetensors"))
        progress(f"checkpoint aleatório: {sum(s.stat().st_size for s in shards) / GIB:.2f} GiB em {len(shards)} shards "
                 f"({time.perf_counter() - start:.0f} s)")
        prompt = torch.randint(3, config.vocab_size, (1, prompt_tokens), generator=torch.Generator().manual_seed(seed))
        for fmt in formats:
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            kwargs = {"dtype": torch.float16, "device_map": {"": 0}}
            quantization = bnb_quantization_config(fmt, torch.float16)
            if quantization is not None:
                kwargs["quantization_config"] = quantization
            before = torch.cuda.memory_allocated()
            start = time.perf_counter()
            model = AutoModelForCausalLM.from_pretrained(ckpt, **kwargs).eval()
            load_s = time.perf_counter() - start
            load_peak = torch.cuda.max_memory_allocated() / GIB
            allocated = (torch.cuda.memory_allocated() - before) / GIB   # o que ficou na GPU: os pesos, pelo alocador
            meas = measured_weight_bytes(model)
            ids = prompt.to(model.device)
            gen = {"attention_mask": torch.ones_like(ids), "do_sample": False, "pad_token_id": 0}
            with torch.inference_mode():
                model.generate(ids, max_new_tokens=2, min_new_tokens=2, **gen)   # aquecimento
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **gen)
                torch.cuda.synchronize()
            gen_s = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated() / GIB
            long_peak = None
            if long_prompt_tokens and (long_formats is None or fmt in long_formats):
                long_ids = torch.randint(3, config.vocab_size, (1, long_prompt_tokens),
                                         generator=torch.Generator().manual_seed(seed + 1)).to(model.device)
                torch.cuda.reset_peak_memory_stats()
                with torch.inference_mode():
                    model.generate(long_ids, max_new_tokens=1, min_new_tokens=1, **{**gen, "attention_mask":
                                                                                    torch.ones_like(long_ids)})
                long_peak = torch.cuda.max_memory_allocated() / GIB
            p = plan[fmt]
            results[fmt] = {
                "footprint_gib": meas["footprint"] / GIB, "stored_gib": meas["stored"] / GIB,
                "peak_allocated_gib": peak, "load_peak_allocated_gib": load_peak, "long_peak_allocated_gib": long_peak,
                "tokens_per_s": new_tokens / gen_s, "load_seconds": load_s,
                "planner_weights_gib": p.weights_bytes / GIB, "planner_footprint_gib": p.footprint_bytes / GIB,
                "planner_kv_gib": p.kv_bytes / GIB, "planner_act_gib": p.activation_bytes / GIB,
                "planner_reserve_gib": p.reserved_bytes / GIB, "planner_total_gib": p.total_bytes / GIB,
                "planner_error_pct": max(100 * abs(meas["footprint"] / p.footprint_bytes - 1),
                                         100 * abs(meas["stored"] / p.weights_bytes - 1)),
                "allocated_weights_gib": allocated,
                "weights_vs_allocated_pct": 100 * (p.weights_bytes / GIB / allocated - 1) if allocated > 0 else None,
            }
            del model
            gc.collect()
            torch.cuda.empty_cache()
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    return compare_with_plan(results, long_plan)
