"""Offloading escrito à mão (ganchos de forward) e medidas de memória em processos novos (notebook 03).

Offload "just in time": os pesos de cada bloco moram num lugar barato (RAM da CPU ou um arquivo no disco) e
só vão para o dispositivo de computação durante o forward daquele bloco:

    pre-hook  (antes do forward):  pesos  armazenamento -> dispositivo;  entradas -> dispositivo
    post-hook (depois do forward): pesos  voltam a apontar para o armazenamento (nada é copiado de volta:
                                   na inferência os pesos não mudam); a SAÍDA fica no dispositivo,
                                   porque é lá que o próximo bloco vai rodar.

    python -m course_utils.offload measure --model DIR --mode disk --budget-mb 100 --new-tokens 8

roda uma geração num processo novo e imprime uma linha JSON com o pico de RSS (VmHWM) e os segundos por token:
o pico de memória de um processo só sobe, então cada configuração precisa do seu próprio processo.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


# ---------------------------------------------------------------- offload à mão, com ganchos

def to_device(obj, device):
    """Move tensores (também dentro de tuplas, listas e dicts) para `device`; o resto passa intacto."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, tuple):
        return tuple(to_device(x, device) for x in obj)
    if isinstance(obj, list):
        return [to_device(x, device) for x in obj]
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def jit_offload(modules, compute_device, storage="cpu", empty_cache_each_call: bool = False):
    """Offload just-in-time de cada módulo de `modules` (ex.: os blocos do transformer) com ganchos de forward.

    storage="cpu": uma cópia dos pesos fica na RAM (memória "pinned" se o destino for CUDA, para a cópia
    assíncrona via DMA); storage=<pasta>: cada módulo vira um .safetensors na pasta e a RAM é liberada;
    o pre-hook lê o arquivo a cada chamada.
    empty_cache_each_call=True reproduz o erro do material antigo (torch.cuda.empty_cache() a cada chamada),
    só para medir quanto ele custa.
    Devolve remove(device): tira os ganchos e deixa os pesos residentes em `device` (padrão: compute_device).
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    compute_device = torch.device(compute_device)
    pin = compute_device.type == "cuda"
    folder = None if storage == "cpu" else Path(storage)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    handles, states = [], []
    for i, module in enumerate(modules):
        # (submódulo dono, nome local, nome completo) de cada parâmetro do bloco
        slots = [(module.get_submodule(n.rpartition(".")[0]), n.rpartition(".")[2], n)
                 for n, _ in module.named_parameters(recurse=True)]
        tensors = {n: p.detach() for n, p in module.named_parameters(recurse=True)}
        if folder is None:
            stored = {n: (t.to("cpu").pin_memory() if pin else t.to("cpu")) for n, t in tensors.items()}
            source = None
        else:
            source = folder / f"bloco_{i:03d}.safetensors"
            save_file({n: t.to("cpu").contiguous() for n, t in tensors.items()}, str(source))
            stored = {n: torch.empty(0, dtype=t.dtype) for n, t in tensors.items()}  # marcador: libera a RAM
        _put(slots, stored)

        def pre_hook(mod, args, kwargs, slots=slots, stored=stored, source=source):
            if source is None:
                _put(slots, {n: t.to(compute_device, non_blocking=True) for n, t in stored.items()})
            else:
                with safe_open(str(source), framework="pt", device="cpu") as f:
                    _put(slots, {n: f.get_tensor(n).to(compute_device, non_blocking=True) for n in stored})
            return to_device(args, compute_device), to_device(kwargs, compute_device)

        def post_hook(mod, args, kwargs, output, slots=slots, stored=stored):
            _put(slots, stored)             # só troca as referências: a cópia no dispositivo é liberada
            if empty_cache_each_call and compute_device.type == "cuda":
                torch.cuda.empty_cache()    # o erro antigo: força cudaFree/cudaMalloc e sincroniza a cada bloco
            return output                   # a saída continua no dispositivo de computação

        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
        states.append((slots, stored, source))

    def remove(device=compute_device):
        for h in handles:
            h.remove()
        for slots, stored, source in states:
            if source is None:
                _put(slots, {n: t.to(device) for n, t in stored.items()})
            else:
                with safe_open(str(source), framework="pt", device="cpu") as f:
                    _put(slots, {n: f.get_tensor(n).to(device) for n in stored})

    return remove


def _put(slots, values):
    """Aponta cada parâmetro do bloco para o tensor em `values` (troca o Parameter, como o accelerate faz:
    `param.data = ...` não aceita mudar para outro tipo de dispositivo, como o meta)."""
    for owner, leaf, name in slots:
        owner._parameters[leaf] = torch.nn.Parameter(values[name], requires_grad=False)


def resident_bytes(model, device=None) -> int:
    """Bytes de parâmetros e buffers materializados agora (fora do dispositivo meta), pesos amarrados uma vez.

    device ("cpu", "cuda"...): conta só o que está nesse tipo de dispositivo.
    """
    dev_type = None if device is None else torch.device(device).type
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.device.type == "meta" or t.numel() == 0 or (dev_type is not None and t.device.type != dev_type):
            continue
        key = (t.device.type, t.data_ptr())
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def summarize_device_map(device_map: dict) -> dict:
    """{dispositivo: "nomes compactos"}, ex. {"cpu": "model.embed_tokens, model.layers.0-1", "disk": "model.layers.2-29"}."""
    import re

    groups = {}
    for name, dev in device_map.items():
        groups.setdefault(str(dev), []).append(name)
    out = {}
    for dev, names in groups.items():
        parts, run = [], None
        for name in names:
            m = re.fullmatch(r"(.*\.)(\d+)", name)
            if m and run and run[0] == m.group(1) and int(m.group(2)) == run[2] + 1:
                run[2] = int(m.group(2))
                continue
            if run:
                parts.append(f"{run[0]}{run[1]}" + (f"-{run[2]}" if run[2] != run[1] else ""))
                run = None
            if m:
                run = [m.group(1), int(m.group(2)), int(m.group(2))]
            else:
                parts.append(name)
        if run:
            parts.append(f"{run[0]}{run[1]}" + (f"-{run[2]}" if run[2] != run[1] else ""))
        out[dev] = ", ".join(parts)
    return out


def count_layers_on(device_map: dict, device, n_layers: int) -> int:
    """Quantos blocos do transformer o device_map põe em `device` ("model.layers" inteiro ou "" contam todos)."""
    import re

    count = 0
    for name, dev in device_map.items():
        if str(dev) != str(device):
            continue
        if re.search(r"layers\.\d+$", name):
            count += 1
        elif name in ("", "model") or name.endswith("layers"):
            count += n_layers
    return min(count, n_layers)


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


def _worker(args) -> dict:
    """Carrega o modelo (na RAM ou com offload para o disco), gera e mede. Roda no processo filho."""
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    baseline = _status_mb("VmRSS")
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
    ids = torch.tensor([[int(x) for x in args.prompt_ids.split(",")]])
    gen = dict(do_sample=False, attention_mask=torch.ones_like(ids), pad_token_id=args.pad_id)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, **gen)  # aquecimento
        start = time.perf_counter()
        out = model.generate(ids, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, **gen)
        elapsed = time.perf_counter() - start
    return {"mode": args.mode, "rss_baseline_mb": baseline, "rss_after_load_mb": after_load,
            "rss_peak_mb": _status_mb("VmHWM"), "seconds_per_token": elapsed / args.new_tokens,
            "new_tokens": args.new_tokens, "load_seconds": load_seconds, "device_map": device_map,
            "offloaded_bytes": offloaded, "output_ids": out[0, ids.shape[1]:].tolist(), "threads": args.threads}


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
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
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


if __name__ == "__main__":
    main()
