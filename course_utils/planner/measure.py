"""Medir um 7B montado só da configuração (pesos aleatórios) numa GPU, e comparar cada termo com o planejador.

`measure_from_config` grava um checkpoint aleatório em shards (fp16), carrega-o em cada formato pelo mesmo
`from_pretrained` de um checkpoint do Hub, gera com um prompt fixo e devolve, por formato, o que a GPU mediu
(footprint, tudo o que o modelo guarda, pico alocado na carga e na geração, tokens/s) ao lado do que o
planejador previu (pesos, cache KV, ativações, reserva). A memória não depende dos valores dos pesos; a
velocidade do INT8 depende (a decomposição do LLM.int8 depende de quantas ativações passam do limiar).
"""

import gc
import shutil
import tempfile
import time
from pathlib import Path

from .hardware import GIB
from .loading import write_random_checkpoint
from .weights import measured_weight_bytes


def _quantization_config(fmt):
    import torch
    from transformers import BitsAndBytesConfig

    if fmt == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if fmt in ("nf4", "nf4-dq"):
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=fmt == "nf4-dq", bnb_4bit_compute_dtype=torch.float16)
    return None


def measure_from_config(config, plan, formats, prompt_tokens: int = 128, new_tokens: int = 32, seed: int = 0,
                        scratch_dir=None, progress=print, long_prompt_tokens: int | None = None,
                        long_formats=None) -> dict:
    """Para cada formato de `formats` que o `plan` diz caber na GPU: carrega, gera e mede. Precisa de CUDA.

    Devolve {formato: dict}, com GiB medidos (footprint_gib, stored_gib, peak_allocated_gib, load_peak_allocated_gib),
    tokens_per_s, load_seconds e os termos do plano (planner_weights_gib, planner_kv_gib, planner_act_gib,
    planner_reserve_gib, planner_total_gib) e planner_error_pct (pior erro nos pesos, footprint e guardado).
    long_prompt_tokens: mede também o pico de um prefill longo (+1 token gerado), long_peak_allocated_gib: é onde
    o cache KV e as ativações do plano pesam de verdade; só nos formatos de `long_formats` (None = todos).
    """
    import torch
    from transformers import AutoModelForCausalLM

    if not torch.cuda.is_available():
        raise RuntimeError("measure_from_config precisa de uma GPU CUDA.")
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
            if _quantization_config(fmt) is not None:
                kwargs["quantization_config"] = _quantization_config(fmt)
            start = time.perf_counter()
            model = AutoModelForCausalLM.from_pretrained(ckpt, **kwargs).eval()
            load_s = time.perf_counter() - start
            load_peak = torch.cuda.max_memory_allocated() / GIB
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
            }
            del model
            gc.collect()
            torch.cuda.empty_cache()
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    return results
