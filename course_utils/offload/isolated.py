"""Medir RAM e velocidade de geração num processo novo (o pico de RSS de um processo só sobe).

    python -m course_utils.offload measure --model DIR --mode disk --budget-mb 100 --new-tokens 8
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

# ---------------------------------------------------------------- medir num processo novo

def reset_peak_rss() -> bool:
    """Zera o pico de RSS (VmHWM) deste processo (Linux >= 4.0: escreve 5 em /proc/self/clear_refs).

    Leia o novo pico com `peak_rss_since_reset_mb()` (o `measure.peak_rss_mb()` também olha o `ru_maxrss` do
    getrusage, que não zera). Devolve False onde não dá (outro sistema, sem permissão): aí meça num processo novo.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_mb() -> float:
    """VmHWM em MiB: o pico de memória residente desde o início do processo ou desde `reset_peak_rss()`."""
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _warm_up_libraries(model_dir) -> None:
    """Importa tudo o que a medida usa e roda um `generate` num modelo minúsculo da mesma arquitetura.

    Assim as bibliotecas (e as páginas de código que uma geração toca) já estão residentes antes da linha de
    base: o que o pico ganha depois dela é o modelo (pesos, ativações, cache), não o torch ou o transformers.
    Se a configuração não aceitar ser encolhida, fica só a importação.
    """
    import accelerate  # noqa: F401  (ganchos do offload para o disco)
    import safetensors.torch  # noqa: F401
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    small = {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
             "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 128}
    for key, value in small.items():
        if hasattr(config, key):
            setattr(config, key, value)
    try:
        tiny = AutoModelForCausalLM.from_config(config).eval()
        ids = torch.tensor([[1, 2, 3]])
        with torch.inference_mode():
            tiny.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, do_sample=False, pad_token_id=0)
        del tiny
    except Exception:  # noqa: BLE001  (arquitetura que não encolhe assim: a linha de base fica só com as importações)
        pass
    import gc

    gc.collect()


def _worker(args) -> dict:
    """Carrega o modelo (na RAM ou com offload para o disco), gera e mede. Roda no processo filho.

    rss_baseline_mb: VmRSS depois de importar as bibliotecas e aquecê-las (`_warm_up_libraries`);
    rss_peak_mb - rss_baseline_mb é a parte do pico que cabe ao modelo.
    """
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    imports_only = _status_mb("VmRSS")
    _warm_up_libraries(args.model)
    baseline = _status_mb("VmRSS")
    reset_peak_rss()   # o pico passa a contar daqui (onde não dá, VmHWM inclui o aquecimento, que é bem menor)
    start = time.perf_counter()
    kwargs = {"dtype": torch.float32}
    if args.mode == "disk":
        kwargs.update(device_map="auto", max_memory={"cpu": int(args.budget_mb * 2**20)},
                      offload_folder=args.offload_folder)
    model = AutoModelForCausalLM.from_pretrained(args.model, **kwargs).eval()
    load_seconds = time.perf_counter() - start
    after_load = _status_mb("VmRSS")
    device_map = dict(getattr(model, "hf_device_map", None) or {"": "cpu"})
    offloaded = sum(p.numel() * p.element_size() for p in model.parameters() if p.device.type == "meta")
    resident = sum(p.numel() * p.element_size() for p in model.parameters() if p.device.type != "meta")
    ids = torch.tensor([[int(x) for x in args.prompt_ids.split(",")]])
    gen = dict(do_sample=False, attention_mask=torch.ones_like(ids), pad_token_id=args.pad_id)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, **gen)  # aquecimento
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, **gen)
        elapsed = time.perf_counter() - start
    return {"mode": args.mode, "rss_imports_mb": imports_only, "rss_baseline_mb": baseline,
            "rss_after_load_mb": after_load, "rss_peak_mb": _status_mb("VmHWM"),
            "seconds_per_token": elapsed / args.new_tokens, "new_tokens": args.new_tokens,
            "load_seconds": load_seconds, "device_map": device_map, "offloaded_bytes": offloaded,
            "resident_param_bytes": resident, "output_ids": out[0, ids.shape[1]:].tolist(), "threads": args.threads}


def measure_isolated(model_dir, mode: str, prompt_ids, pad_id: int, new_tokens: int = 8, budget_mb: float = 0.0,
                     offload_folder=None, threads: int = 1, timeout: float = 600) -> dict:
    """Roda `_worker` num processo Python novo (sem GPU visível) e devolve o JSON que ele imprimiu.

    mode="memory": from_pretrained normal, tudo na RAM; mode="disk": device_map="auto" com
    max_memory={"cpu": budget_mb} e offload_folder: o que não cabe no orçamento fica no disco.
    """
    if mode not in ("memory", "disk"):
        raise ValueError(f"mode deve ser 'memory' ou 'disk', não {mode!r}.")
    if mode == "disk" and not budget_mb > 0:
        raise ValueError("Com mode='disk', passe budget_mb > 0 (o orçamento de RAM em MiB).")
    cmd = [sys.executable, "-m", "course_utils.offload", "measure", "--model", str(model_dir), "--mode", mode,
           "--budget-mb", str(budget_mb), "--new-tokens", str(new_tokens), "--threads", str(threads),
           "--prompt-ids", ",".join(str(int(i)) for i in prompt_ids), "--pad-id", str(int(pad_id))]
    if offload_folder is not None:
        cmd += ["--offload-folder", str(offload_folder)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TRANSFORMERS_VERBOSITY": "error"}
    root = str(Path(__file__).resolve().parents[2])  # a raiz do repositório (onde está course_utils/)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"O processo de medida ({mode}) falhou (código {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Mede RAM e velocidade de geração num processo novo.")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--model", required=True)
    m.add_argument("--mode", choices=["memory", "disk"], required=True)
    m.add_argument("--budget-mb", type=float, default=0.0)
    m.add_argument("--offload-folder", default=None)
    m.add_argument("--new-tokens", type=int, default=8)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--prompt-ids", required=True)
    m.add_argument("--pad-id", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(_worker(args)))
