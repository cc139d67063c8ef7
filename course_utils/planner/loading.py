"""Do plano ao carregamento: argumentos do `from_pretrained` e um checkpoint aleatório, para medir sem baixar."""

from .hardware import GIB
from .memory_plan import MemoryPlan
from .weights import QUANTIZED, dtype_name, load_config, meta_model

# ---------------------------------------------------------------- da escolha ao from_pretrained

def from_pretrained_kwargs(plan: MemoryPlan, fmt: str | None = None, offload_folder: str | None = None) -> dict:
    """Argumentos para `AutoModelForCausalLM.from_pretrained` que realizam o plano (formato escolhido por padrão).

    dtype de carga, BitsAndBytesConfig (NF4 com ou sem dupla quantização, ou LLM.int8), device_map="auto" e
    max_memory com a memória útil do plano; com offload, llm_int8_enable_fp32_cpu_offload e offload_folder.
    """
    import torch

    fmt = fmt or plan.choice
    if fmt is None:
        raise ValueError("O plano não tem escolha (nada roda neste hardware): passe fmt= explicitamente.")
    if fmt not in plan.formats:
        raise ValueError(f"O plano não avaliou o formato {fmt!r}; avaliou: {', '.join(plan.formats)}.")
    fp = plan.formats[fmt]
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    compute = dtypes[fmt] if fmt in dtypes else dtypes[plan.compute_dtype]
    kwargs = {"dtype": compute, "device_map": "auto"}
    hw = plan.hardware
    max_memory = {}
    if hw.has_gpu:
        max_memory[0] = int((hw.gpu_gib * (1 - plan.margin) - hw.gpu_reserved_gib) * GIB - fp.kv_bytes - fp.activation_bytes)
    if hw.cpu_gib is not None:
        max_memory["cpu"] = int((hw.cpu_gib * (1 - plan.margin) - hw.cpu_reserved_gib) * GIB)
    if max_memory:
        kwargs["max_memory"] = {k: max(v, 0) for k, v in max_memory.items()}
    offload = fp.verdict in ("cpu_offload", "disk_offload")
    if fp.verdict == "disk_offload":
        kwargs["offload_folder"] = offload_folder or "offload"
    if fmt in QUANTIZED:
        kwargs["quantization_config"] = bnb_quantization_config(fmt, compute, cpu_offload=offload)
    return kwargs


def bnb_quantization_config(fmt: str, compute_dtype, cpu_offload: bool = False):
    """O `BitsAndBytesConfig` de um formato quantizado ("int8", "nf4" ou "nf4-dq"); None para fp32/fp16/bf16.

    compute_dtype: o `bnb_4bit_compute_dtype` do NF4 (um torch.dtype). cpu_offload: deixa as camadas que vão para a
    CPU ou o disco sem quantizar (`llm_int8_enable_fp32_cpu_offload`).
    """
    if fmt not in QUANTIZED:
        return None
    from transformers import BitsAndBytesConfig

    if fmt == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_enable_fp32_cpu_offload=cpu_offload)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype,
                              bnb_4bit_use_double_quant=(fmt == "nf4-dq"), llm_int8_enable_fp32_cpu_offload=cpu_offload)


# ---------------------------------------------------------------- um checkpoint aleatório, para medir sem baixar

def write_random_checkpoint(config_or_model_id, folder, dtype="fp16", max_shard_gib: float = 2.0, seed: int = 0,
                            device=None, std: float = 0.02):
    """Grava um checkpoint safetensors em shards com pesos aleatórios, sem montar o modelo inteiro na memória.

    Pesos ~ N(0, std) (normas = 1, vieses = 0), gerados tensor a tensor (em `device`, ex. "cuda", se dado: mais
    rápido) e gravados em shards de até `max_shard_gib` com o índice `model.safetensors.index.json` e o
    `config.json`, como um checkpoint do Hub: `from_pretrained(folder, quantization_config=...)` carrega, quantiza
    e mede exatamente como faria com os pesos de verdade. O pico de RAM é um shard.
    """
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    config = load_config(config_or_model_id)
    name = dtype_name(dtype)
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
    model = meta_model(config, name)
    persistent = set(model.state_dict())
    tensors = [(n, p) for n, p in model.named_parameters()] + \
              [(n, b) for n, b in model.named_buffers() if n in persistent]
    limit = max_shard_gib * GIB
    shards, current, size = [], [], 0
    for n, t in tensors:
        nbytes = t.numel() * torch_dtype.itemsize
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = [], 0
        current.append((n, t))
        size += nbytes
    if current:
        shards.append(current)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen_device = torch.device(device or "cpu")
    gen = torch.Generator(device=gen_device).manual_seed(seed)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = (f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1 else "model.safetensors")
        out = {}
        for n, t in shard:
            if t.dim() == 1 and "norm" in n:
                value = torch.ones(t.shape, dtype=torch_dtype)
            elif t.dim() == 1:
                value = torch.zeros(t.shape, dtype=torch_dtype)
            else:
                value = (torch.randn(t.shape, generator=gen, device=gen_device) * std).to(torch_dtype).cpu()
            out[n] = value.contiguous()
            weight_map[n] = fname
            total += value.numel() * value.element_size()
        save_file(out, str(folder / fname), metadata={"format": "pt"})
        del out
    if len(shards) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config.save_pretrained(folder)
    return folder


def load_for_chat(source, model_id: str, **from_pretrained_kwargs):
    """`AutoModelForCausalLM.from_pretrained(source, ...)`, com as falhas de acesso ditas em português.

    Sem login num modelo restrito, sem aceite da licença, sem rede no meio do download ou sem espaço em disco, o
    transformers levanta erros de tipos variados (OSError, erros HTTP do huggingface_hub, ...): aqui eles viram um
    `ModelNotAvailableError` que diz o que fazer. Outros erros (um bug, falta de memória) passam como vieram.
    """
    from transformers import AutoModelForCausalLM

    from ..models import ModelNotAvailableError

    try:
        return AutoModelForCausalLM.from_pretrained(source, **from_pretrained_kwargs).eval()
    except OSError as exc:   # os erros de acesso do huggingface_hub (GatedRepoError, HTTP, rede) são OSError
        text = str(exc)
        if "gated" in text.lower() or "401" in text or "403" in text or "access" in text.lower():
            why = ("o modelo é restrito: aceite a licença na página dele no Hub, com a mesma conta, e faça login "
                   "(`from huggingface_hub import login; login()`, ou o segredo HF_TOKEN no Colab)")
        elif "No space left" in text:
            why = "o disco encheu durante o download: libere espaço ou use um formato/modelo menor"
        else:
            why = ("o download ou a leitura dos pesos falhou (rede instável, Hub fora do ar ou arquivos "
                   "incompletos no cache): rode a célula de novo; sem Hub, o notebook usa o modelo de referência")
        raise ModelNotAvailableError(f"Não consegui carregar os pesos de {model_id!r}: {why}. (Erro original: "
                                     f"{type(exc).__name__}: {text[:200]})") from None
