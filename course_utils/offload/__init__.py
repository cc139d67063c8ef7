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

from pathlib import Path

import torch

from .isolated import measure_isolated, peak_rss_since_reset_mb, reset_peak_rss
from .seed import SeedCPUOffloadModule, SeedDiskOffloadModule, seed_apply_cpu_offloading

__all__ = ["SeedCPUOffloadModule", "SeedDiskOffloadModule", "measure_isolated", "peak_rss_since_reset_mb",
           "reset_peak_rss", "seed_apply_cpu_offloading"]

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
    """{dispositivo: "nomes compactos"}.

    Ex.: {"cpu": "model.embed_tokens, model.layers.0-1", "disk": "model.layers.2-29"}.
    """
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


# ---------------------------------------------------------------- mapas do accelerate para um orçamento

def device_map_for_budget(meta_model, cpu_budget_bytes: int, gpu_budget_bytes: int | None = None) -> dict:
    """O mapa do `infer_auto_device_map` (accelerate) para um orçamento, com os blocos que não se partem do modelo.

    `meta_model` pode estar no dispositivo meta (nenhum peso lido). Devolve {módulo: 0, "cpu" ou "disk"}.
    """
    from accelerate import infer_auto_device_map

    if not cpu_budget_bytes >= 0:
        raise ValueError("O orçamento da CPU deve ser um número de bytes >= 0.")
    max_memory = {"cpu": int(cpu_budget_bytes)}
    if gpu_budget_bytes is not None:
        max_memory = {0: int(gpu_budget_bytes), **max_memory}
    return dict(infer_auto_device_map(meta_model, max_memory=max_memory,
                                      no_split_module_classes=list(meta_model._no_split_modules or [])))


def last_blocks_on_cpu_map(model, cpu_layers: int, gpu=0) -> dict:
    """Um device_map à mão: os últimos `cpu_layers` blocos do transformer na CPU, todo o resto na GPU `gpu`.

    Os blocos são os filhos da ModuleList cujos elementos são de uma classe de `_no_split_modules` (em modelos tipo
    Llama, `model.layers`); o que não é bloco (embeddings, norma final, RoPE, lm_head) fica inteiro na GPU. O número
    de blocos na CPU é exatamente `cpu_layers`, sem depender da reserva do `infer_auto_device_map`.
    """
    no_split = set(getattr(model, "_no_split_modules", None) or [])
    blocks_name = next((name for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m)
                        and type(m[0]).__name__ in no_split), None)
    if blocks_name is None:
        raise ValueError("Não achei a lista de blocos do modelo (uma ModuleList de uma classe de _no_split_modules).")
    blocks = model.get_submodule(blocks_name)
    if not 0 <= cpu_layers <= len(blocks):
        raise ValueError(f"cpu_layers deve ficar entre 0 e {len(blocks)}; veio {cpu_layers}.")
    prefix = blocks_name.rpartition(".")[0]          # "model" em model.layers
    owner = model.get_submodule(prefix) if prefix else model
    device_map = {}
    for name, _ in model.named_children():
        if prefix and name == prefix.split(".")[0]:   # o dono dos blocos: cada irmão deles, inteiro, na GPU
            device_map.update({f"{prefix}.{c}": gpu for c, _ in owner.named_children() if f"{prefix}.{c}" != blocks_name})
        elif name != blocks_name:
            device_map[name] = gpu
    for i in range(len(blocks)):
        device_map[f"{blocks_name}.{i}"] = "cpu" if i >= len(blocks) - cpu_layers else gpu
    return device_map


def bytes_by_device(meta_model, device_map: dict) -> dict:
    """{dispositivo: bytes de parâmetros} para um mapa (pesos amarrados contados uma vez, no primeiro módulo)."""
    out, seen = {}, set()
    for name, p in meta_model.named_parameters(remove_duplicate=False):
        key = id(p)
        if key in seen:
            continue
        seen.add(key)
        owner = max((m for m in device_map if m == "" or name == m or name.startswith(m + ".")), key=len, default=None)
        dev = str(device_map[owner]) if owner is not None else "?"
        out[dev] = out.get(dev, 0) + p.numel() * p.element_size()
    return out


def fp32_checkpoint(model, source_dir, target_dir) -> Path:
    """Uma pasta com o modelo num único `model.safetensors` em fp32 (o que a medida e o offload para o disco leem).

    Se `source_dir` já é isso (a cópia offline do curso), devolve ela; senão salva `model` (fp32) em `target_dir`.
    """
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    if (source_dir / "model.safetensors").exists() and model.config.dtype == torch.float32:
        return source_dir
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("fp32_checkpoint precisa do modelo carregado em fp32 (dtype=torch.float32).")
    model.save_pretrained(target_dir)
    if not (target_dir / "model.safetensors").exists():
        raise RuntimeError(f"O modelo foi salvo em vários arquivos em {target_dir}; o notebook espera um só.")
    return target_dir


def checkpoint_offload_index(safetensors_file, device_map: dict) -> dict:
    """O `offload_index` do accelerate que aponta os módulos do disco para os tensores do próprio checkpoint.

    {nome do tensor: {"safetensors_file": arquivo, "weight_name": nome}} para cada tensor de um módulo que o mapa
    põe em "disk": o `dispatch_model` lê dali em vez de regravar os pesos numa pasta (um `.dat` por tensor).
    """
    from safetensors import safe_open

    disk = [name for name, dev in device_map.items() if dev == "disk"]
    with safe_open(str(safetensors_file), framework="pt") as f:
        keys = list(f.keys())
    return {k: {"safetensors_file": str(safetensors_file), "weight_name": k} for k in keys
            if any(n == "" or k == n or k.startswith(n + ".") for n in disk)}


def accelerate_hook_empties_cache(set_tensor=None, pre_forward=None) -> dict:
    """O `accelerate` instalado chama `torch.cuda.empty_cache()` a cada tensor que um gancho traz para a GPU?

    Lê o código da versão instalada: o padrão do argumento `clear_cache` de `set_module_tensor_to_device` (None se
    a versão não tem esse argumento) e se `AlignDevicesHook.pre_forward` fica com esse padrão (não escreve
    `clear_cache` na chamada). Devolve {"default": padrão de clear_cache, "hook_uses_default": bool,
    "empties_cache": os dois juntos, ou seja, o gancho esvazia o cache}. `set_tensor` e `pre_forward` trocam as
    funções lidas (para os testes).
    """
    import inspect

    if set_tensor is None or pre_forward is None:
        from accelerate.hooks import AlignDevicesHook
        from accelerate.utils import set_module_tensor_to_device

        set_tensor = set_tensor or set_module_tensor_to_device
        pre_forward = pre_forward or AlignDevicesHook.pre_forward
    param = inspect.signature(set_tensor).parameters.get("clear_cache")
    default = None if param is None or param.default is inspect.Parameter.empty else param.default
    hook_uses_default = "clear_cache" not in inspect.getsource(pre_forward)
    return {"default": default, "hook_uses_default": hook_uses_default,
            "empties_cache": bool(default) and hook_uses_default}


def host_to_device_gbps(nbytes: int, device="cuda", repeats: int = 5) -> dict:
    """GB/s (10⁹ bytes por segundo) de uma cópia RAM -> `device` de `nbytes`: da RAM comum e da memória pinned.

    Mediana de `repeats` cópias cronometradas com eventos CUDA (depois de uma de aquecimento).
    """
    if not torch.cuda.is_available():
        raise RuntimeError("host_to_device_gbps mede a cópia para a GPU: esta máquina não tem GPU.")
    out = {}
    for kind in ("pageable", "pinned"):
        host = torch.empty(int(nbytes), dtype=torch.uint8)
        host = host.pin_memory() if kind == "pinned" else host
        host.to(device)
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            host.to(device, non_blocking=kind == "pinned")
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        out[kind] = nbytes / sorted(times)[len(times) // 2] / 1e9
    return out
