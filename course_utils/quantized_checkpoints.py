"""Salvar e recarregar um modelo quantizado (`save_pretrained` / `from_pretrained`) e medir os arquivos em disco.

O notebook 01 usa isto para mostrar que um modelo quantizado se salva como qualquer outro: o checkpoint guarda os
inteiros e as escalas (não os pesos em fp32), e recarregá-lo dá o mesmo modelo. Aqui fica a parte que não ensina
nada (pasta temporária, tamanhos, comparação das saídas).
"""

import atexit
import contextlib
import os
import shutil
import tempfile
import warnings

import torch


def dir_size_mb(path) -> float:
    """MiB de todos os arquivos dentro de `path` (o tamanho do checkpoint em disco)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total / 2**20


def checkpoint_files(path) -> dict:
    """{arquivo: MiB} de uma pasta de checkpoint, do maior para o menor."""
    sizes = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            sizes[os.path.relpath(full, path)] = os.path.getsize(full) / 2**20
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


@contextlib.contextmanager
def temporary_checkpoint_dir(prefix: str = "curso_checkpoint_"):
    """Uma pasta temporária para checkpoints, apagada na saída do `with` (mesmo se algo falhar)."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


_SESSION_ROOT = []


def checkpoint_dir(name: str) -> str:
    """Uma pasta nova `name` para um checkpoint, dentro de uma pasta temporária apagada quando o Python termina.

    Para notebooks, em que a pasta precisa durar várias células (um `with` não atravessa células).
    """
    if not _SESSION_ROOT:
        root = tempfile.mkdtemp(prefix="curso_checkpoints_")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _SESSION_ROOT.append(root)
    path = os.path.join(_SESSION_ROOT[0], name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def saved_size_mb(model, path) -> float:
    """`model.save_pretrained(path)` e o tamanho da pasta em MiB."""
    model.save_pretrained(path)
    return dir_size_mb(path)


def bnb_repacked_for_cpu(model) -> bool:
    """True se algum peso de 4 bits do bitsandbytes já foi reempacotado para o kernel de CPU.

    No bitsandbytes 0.50, o primeiro forward na CPU (com AVX512-BF16) troca o layout dos pesos de 4 bits por um
    próprio do kernel de CPU (`quant_state.packing_format_for_cpu`); ao salvar, a biblioteca desfaz a troca com o que
    a própria docstring chama de inversão "best-effort".
    """
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            return True
    return False


@torch.inference_mode()
def logits_of(model, input_ids) -> torch.Tensor:
    """Logits de um forward, em fp32 na CPU (para comparar modelos em dispositivos ou dtypes diferentes)."""
    device = next(model.parameters()).device
    return model(input_ids.to(device)).logits.float().cpu()


def relative_logit_difference(reference: torch.Tensor, other: torch.Tensor) -> float:
    """max|a - b| / max|a|: 0 quando os dois modelos dão exatamente as mesmas saídas."""
    return ((reference - other).abs().max() / reference.abs().max().clamp(min=1e-12)).item()


def reload_checkpoint(path, device: str = "cpu", dtype=None):
    """`from_pretrained` de uma pasta local, no dispositivo `device`; a configuração de quantização vem do checkpoint."""
    from transformers import AutoModelForCausalLM

    kwargs = {"device_map": {"": 0 if device.startswith("cuda") else "cpu"}}
    if dtype is not None:
        kwargs["dtype"] = dtype
    return AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()


def save_and_reload(model, input_ids, path, dtype=None) -> dict:
    """Salva `model` em `path` (`save_pretrained`), recarrega e compara os logits dos dois num forward de `input_ids`.

    Os logits de referência saem do modelo como ele estava antes de salvar. Num modelo de 4 bits ainda não usado na
    CPU, um forward antes de salvar reempacotaria os pesos (veja `bnb_repacked_for_cpu`); como salvar não muda um
    modelo nesse estado, a referência vem logo depois de salvar. Num modelo já reempacotado, vem antes, porque salvar
    desfaz o reempacotamento (e a comparação mostra se desfez certo). `dtype` do recarregado: o do modelo, se None.

    Devolve {"disk_mb", "files", "relative_logit_diff", "reloaded_class", "repacked_before_save", "error"}; se salvar
    ou recarregar falhar, "error" traz o tipo e a primeira linha da mensagem e os outros campos ficam None.
    """
    repacked = bnb_repacked_for_cpu(model)
    result = {"disk_mb": None, "files": None, "relative_logit_diff": None, "reloaded_class": None,
              "repacked_before_save": repacked, "error": None}
    device = str(next(model.parameters()).device)
    reference = logits_of(model, input_ids) if repacked else None
    try:
        with warnings.catch_warnings():  # o torchao avisa que usa TypedStorage ao salvar: conhecido e inofensivo
            warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
            model.save_pretrained(path)
        result["disk_mb"], result["files"] = dir_size_mb(path), checkpoint_files(path)
        reloaded = reload_checkpoint(path, device, dtype or model.dtype)
    except Exception as exc:  # noqa: BLE001 - a lição mostra o erro em vez de parar
        lines = str(exc).strip().splitlines()
        result["error"] = f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"
        return result
    if reference is None:
        reference = logits_of(model, input_ids)
    result["relative_logit_diff"] = relative_logit_difference(reference, logits_of(reloaded, input_ids))
    first_linear = next((m for name, m in reloaded.named_modules() if "layers.0.mlp" in name and hasattr(m, "weight")),
                        None)
    if first_linear is not None:
        result["reloaded_class"] = f"{type(first_linear).__name__} ({type(first_linear.weight).__name__})"
    del reloaded
    return result
