"""Onde estamos rodando: Colab ou não, Hub acessível ou não, CPU ou GPU."""

import logging
import os
import platform
import socket
import warnings
from functools import lru_cache


@lru_cache(maxsize=1)
def hub_available(timeout: float = 2.0) -> bool:
    """O Hugging Face Hub responde? Respeita HF_HUB_OFFLINE=1 sem tentar a rede."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def pick_device(device: str = "auto") -> str:
    """Traduz o parâmetro DEVICE dos notebooks: "auto" usa a GPU se houver."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"DEVICE={device!r}, mas não há GPU CUDA visível. No Colab, escolha "
            "Ambiente de execução > Alterar o tipo de ambiente > GPU T4; fora dele, use DEVICE='cpu'."
        )
    return device


def environment_info() -> dict:
    """Versões e hardware, para o resumo `build/resultados.json`."""
    import torch
    import transformers

    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda:{torch.cuda.get_device_name(0)}"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "cpu_count": os.cpu_count(),
    }


def quiet_libraries() -> None:
    """Silencia avisos repetitivos que não ensinam nada (um por chamada de forward)."""
    warnings.filterwarnings("ignore", message=r".*MatMul8bitLt: inputs will be cast.*")
    warnings.filterwarnings("ignore", message=r".*inputs will be cast from torch.float32.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    # torch.utils._pytree: "<enum 'KernelPreference'> is an Enum subclass..." ao importar o torchao;
    # transformers.distributed.tensor_parallel: "The following layers were not sharded" sem paralelismo de tensor
    # torch.onnx._internal.exporter._registration: "torchvision is not installed. Skipping torchvision::..."
    # bitsandbytes 0.50: "MatMul8bitLt: inputs will be cast..." e o aviso do kernel de 4 bits da CPU vêm pelo logging
    for name in ("bitsandbytes", "torchao", "torch._dynamo", "transformers.modeling_utils", "torch.utils._pytree",
                 "transformers.distributed.tensor_parallel", "torch.onnx._internal.exporter._registration"):
        logging.getLogger(name).setLevel(logging.ERROR)
