"""Bytes dos pesos, contados tensor a tensor como as bibliotecas guardam (modelo montado no dispositivo meta).

Os formatos com nome (fp32/fp16/bf16, int8 do LLM.int8, nf4 e nf4-dq do bitsandbytes) e um número de bits por
peso para as lineares quantizadas (GPTQ/AWQ: `quantization.bits_per_weight(4, 64, 16, 4)`); também a leitura da
configuração (`load_config`) e a medida de um modelo carregado, para conferir a conta.
"""

import math

from .hardware import GIB

# ---------------------------------------------------------------- formatos

FORMATS = ("fp32", "fp16", "bf16", "int8", "nf4", "nf4-dq")
FORMAT_LABELS = {
    "fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "INT8 (LLM.int8)", "nf4": "NF4",
    "nf4-dq": "NF4 + dupla quant.",
}
QUANTIZED = ("int8", "nf4", "nf4-dq")
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
NF4_BLOCK = 64          # pesos por bloco (um absmax cada), padrão do bitsandbytes na CPU e na CUDA
DQ_BLOCK = 256          # absmax por bloco no segundo nível da dupla quantização


REQUIRED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")

# ---------------------------------------------------------------- configuração

def load_config(config_or_model_id):
    """PretrainedConfig a partir de um config, de um dict (config.json) ou de um ID do Hub / diretório local."""
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config_or_model_id, PretrainedConfig):
        config = config_or_model_id
    elif isinstance(config_or_model_id, dict):
        d = dict(config_or_model_id)
        _check_fields(d, "o dict de configuração")
        model_type = d.pop("model_type", "llama")
        try:
            config = AutoConfig.for_model(model_type, **d)
        except ValueError as exc:
            raise ValueError(f"model_type {model_type!r} desconhecido para o transformers: {exc}") from exc
    elif isinstance(config_or_model_id, str):
        from ..models import ModelNotAvailableError, resolve_model

        source = resolve_model(config_or_model_id)  # sem Hub e sem cópia offline: erro em português
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"Não consegui ler a configuração de {config_or_model_id!r}: {exc}. Confira o ID; se o modelo for "
                "restrito (ex.: Llama 2), aceite a licença na página dele no Hub e faça login "
                "(huggingface_hub.login() ou a variável HF_TOKEN)."
            ) from exc
    else:
        raise TypeError("Passe um PretrainedConfig, um dict de configuração ou um ID do Hub (str), "
                        f"não {type(config_or_model_id).__name__}.")
    if hasattr(config, "get_text_config"):
        _check_fields(config.get_text_config(decoder=True), f"a configuração {type(config).__name__}")
    else:
        _check_fields(config, f"a configuração {type(config).__name__}")
    return config


def _check_fields(config, what):
    get = config.get if isinstance(config, dict) else (lambda k: getattr(config, k, None))
    missing = [k for k in REQUIRED_FIELDS if not isinstance(get(k), int) or isinstance(get(k), bool) or get(k) <= 0]
    if missing:
        raise ValueError(f"Faltam campos em {what}: {', '.join(missing)} (inteiros positivos). O planejador precisa "
                         f"de {', '.join(REQUIRED_FIELDS)} para contar pesos e cache KV.")


_META_CACHE: dict = {}


def meta_model(config, dtype_name: str):
    """O modelo montado no dispositivo meta (formatos sem bytes), em cache por (config, dtype)."""
    import torch
    from transformers import AutoModelForCausalLM

    key = (config.to_json_string(use_diff=False), dtype_name)
    if key not in _META_CACHE:
        from accelerate import init_empty_weights

        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
        with init_empty_weights(include_buffers=True):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        if len(_META_CACHE) > 8:
            _META_CACHE.clear()
        _META_CACHE[key] = model
    return _META_CACHE[key]


def _skip_patterns(model, extra=()):
    """Módulos que o transformers não quantiza (lm_head, pesos amarrados, último módulo, _keep_in_fp32_modules)."""
    try:
        from transformers.quantizers.base import get_keys_to_not_convert

        skip = set(get_keys_to_not_convert(model))
    except Exception:  # API interna: se mudar, cai para o essencial
        out = model.get_output_embeddings()
        skip = {n for n, m in model.named_modules() if out is not None and m is out}
    fp32 = set(getattr(model, "_keep_in_fp32_modules", None) or ()) | set(
        getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    return skip | fp32 | set(extra), fp32


def _matches(name, patterns):
    try:
        from transformers.quantizers.quantizers_utils import should_convert_module

        return not should_convert_module(name, list(patterns))
    except ImportError:
        return any(name == p or name.startswith(p + ".") or name.endswith(p) for p in patterns)


def _is_quantized(fmt) -> bool:
    """int8/nf4/nf4-dq, ou um número de bits por peso: as lineares dos blocos são quantizadas."""
    return not isinstance(fmt, str) or fmt in QUANTIZED


def _check_format(fmt):
    if isinstance(fmt, str):
        if fmt not in FORMATS:
            raise ValueError(f"Formato desconhecido {fmt!r}. Use um de: {', '.join(FORMATS)} "
                             "(ou um número de bits por peso).")
    elif isinstance(fmt, bool) or not isinstance(fmt, (int, float)) or not 0 < fmt <= 32:
        raise ValueError(f"Um formato numérico é bits por peso (entre 0 e 32, escalas e zeros já somados), "
                         f"não {fmt!r}.")


def _quantized_linear_bytes(out_f: int, in_f: int, fmt) -> tuple:
    """(bytes guardados, bytes que get_memory_footprint conta) do peso de uma linear quantizada."""
    n = out_f * in_f
    if not isinstance(fmt, str):                               # bits por peso (GPTQ/AWQ), escalas já somadas
        stored = math.ceil(n * fmt / 8)
        return stored, stored
    if fmt == "int8":
        return n + 4 * out_f, n                               # int8 + SCB (fp32 por linha)
    packed = (n + 1) // 2                                      # 2 pesos de 4 bits por byte (uint8)
    blocks = math.ceil(n / NF4_BLOCK)
    if fmt == "nf4":
        return packed + 4 * blocks + 4 * 16, packed            # absmax fp32 + quant_map de 16 floats
    blocks2 = math.ceil(blocks / DQ_BLOCK)
    # absmax uint8 + absmax fp32 do 2º nível + deslocamento fp32 + quant_map (16) + mapa dinâmico (256)
    return packed + blocks + 4 * blocks2 + 4 + 4 * 16 + 4 * 256, packed


def weight_bytes(config_or_model_id, fmt, compute_dtype: str = "fp16", skip_modules=()) -> dict:
    """Bytes dos pesos de um LM causal em `fmt`, contados tensor a tensor como as bibliotecas guardam.

    fmt: um de FORMATS, ou um número = bits por peso das lineares quantizadas, já com escalas e zeros
    (ex.: `quantization.bits_per_weight(4, 64, 16, 4)` para GPTQ/AWQ w4g64).
    Devolve {"stored": todos os bytes (com SCB/absmax/mapas), "footprint": o que `get_memory_footprint()`
    conta (parâmetros + buffers, sem o estado de quantização), "params": número de parâmetros,
    "quantized_params", "layers", "layer_stored" (um bloco no formato), "layer_unquantized" (um bloco no dtype
    de computação), "largest_linear" (parâmetros da maior linear quantizável), "linear_shapes" (os formatos
    (saídas, entradas) distintos das lineares quantizadas, para as ativações de `activation_bytes`)}.
    compute_dtype só importa para os formatos quantizados: é o dtype do que não é quantizado (embeddings,
    lm_head, normas).
    """
    _check_format(fmt)
    compute_dtype = dtype_name(compute_dtype)
    config = load_config(config_or_model_id)
    key = (config.to_json_string(use_diff=False), fmt, compute_dtype, tuple(skip_modules))
    if key not in _WEIGHT_CACHE:
        _WEIGHT_CACHE[key] = _count_weights(config, fmt, compute_dtype, skip_modules)
    return dict(_WEIGHT_CACHE[key])


def weight_gib(config_or_model_id, fmt, compute_dtype: str = "fp16") -> float:
    """GiB dos pesos como guardados (`weight_bytes(...)["stored"]`): a conta de "quanto ocupa este modelo em fmt"."""
    return weight_bytes(config_or_model_id, fmt, compute_dtype)["stored"] / GIB


_WEIGHT_CACHE: dict = {}


def _count_weights(config, fmt, compute_dtype, skip_modules):
    import torch

    base = fmt if fmt in DTYPE_BYTES else compute_dtype
    model = meta_model(config, base)
    skip, fp32_modules = _skip_patterns(model, skip_modules)
    e = DTYPE_BYTES[base]
    blocks = _blocks(model)
    block_of = {}
    for i, (prefix, _) in enumerate(blocks):
        block_of[prefix] = i

    def owner_block(name):
        for prefix in block_of:
            if name.startswith(prefix + "."):
                return block_of[prefix]
        return None

    stored = footprint = params = qparams = largest = 0
    shapes = set()        # (saídas, entradas) de cada linear quantizada: os buffers do bitsandbytes dependem deles
    per_block_stored = [0] * len(blocks)
    per_block_unq = [0] * len(blocks)
    quantized_weights = set()
    if _is_quantized(fmt):
        for name, module in model.named_modules():
            if type(module) is torch.nn.Linear and not _matches(name, skip):
                s, f = _quantized_linear_bytes(module.out_features, module.in_features, fmt)
                stored += s
                footprint += f
                n = module.out_features * module.in_features
                qparams += n
                largest = max(largest, n)
                shapes.add((module.out_features, module.in_features))
                quantized_weights.add(id(module.weight))
                b = owner_block(name)
                if b is not None:
                    per_block_stored[b] += s
                    per_block_unq[b] += n * e
    for name, p in model.named_parameters():  # pesos amarrados aparecem uma vez só
        params += p.numel()
        if id(p) in quantized_weights:
            continue
        module_name = name.rsplit(".", 1)[0]
        if not p.is_floating_point():
            elem = p.element_size()
        elif base != "fp32" and fp32_modules and _matches(module_name, fp32_modules):
            elem = 4  # _keep_in_fp32_modules: o transformers os mantém em fp32
        else:
            elem = e
        nbytes = p.numel() * elem
        stored += nbytes
        footprint += nbytes
        b = owner_block(name)
        if b is not None:
            per_block_stored[b] += nbytes
            per_block_unq[b] += p.numel() * e
    for _name, buf in model.named_buffers():
        nbytes = buf.numel() * buf.element_size()
        stored += nbytes
        footprint += nbytes
    return {
        "format": fmt, "compute_dtype": compute_dtype, "stored": stored, "footprint": footprint, "params": params,
        "quantized_params": qparams, "layers": len(blocks),
        "layer_stored": max(per_block_stored) if blocks else stored,
        "layer_unquantized": max(per_block_unq) if blocks else params * e,
        "largest_linear": largest, "linear_shapes": tuple(sorted(shapes)),
    }


def _blocks(model):
    """Os blocos repetidos do transformer (a maior nn.ModuleList), como (prefixo, módulo)."""
    import torch

    best = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and (best is None or len(module) > len(best[1])):
            best = (name, module)
    if best is None:
        return []
    return [(f"{best[0]}.{i}", m) for i, m in enumerate(best[1])]


def dtype_name(dtype) -> str:
    if dtype is None:
        return "fp16"
    if isinstance(dtype, str):
        name = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "half": "fp16"}.get(dtype, dtype)
    else:
        name = {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(dtype))
    if name not in DTYPE_BYTES:
        raise ValueError(f"compute_dtype deve ser 'fp32', 'fp16' ou 'bf16' (ou o dtype do torch), não {dtype!r}.")
    return name


# ---------------------------------------------------------------- medir para conferir

def measured_weight_bytes(model) -> dict:
    """O que um modelo carregado de fato guarda, para comparar com `weight_bytes`.

    "stored": parâmetros + buffers + estado de quantização do bitsandbytes (SCB; absmax, deslocamento,
    mapas de níveis e o segundo nível da dupla quantização), tensores compartilhados contados uma vez;
    "footprint": `model.get_memory_footprint()` do transformers (parâmetros + buffers, sem o estado).
    """
    import torch

    seen, total = set(), 0

    def add(t):
        nonlocal total
        if not isinstance(t, torch.Tensor):
            return
        key = (t.device.type, t.data_ptr(), t.numel(), t.dtype)
        if key in seen:
            return
        seen.add(key)
        total += t.numel() * t.element_size()

    for p in model.parameters():
        add(p)
        add(getattr(p, "SCB", None))
        state = getattr(p, "quant_state", None)
        while state is not None:
            for attr in ("absmax", "offset", "code"):
                add(getattr(state, attr, None))
            state = getattr(state, "state2", None)
    for b in model.buffers():
        add(b)
    footprint = model.get_memory_footprint() if hasattr(model, "get_memory_footprint") else total
    return {"stored": total, "footprint": footprint}


def describe_config(config_or_model_id) -> str:
    """Uma linha com o que importa da arquitetura (camadas, hidden, cabeças, vocabulário)."""
    c = load_config(config_or_model_id)
    t = c.get_text_config(decoder=True) if hasattr(c, "get_text_config") else c
    kv = getattr(t, "num_key_value_heads", None) or t.num_attention_heads
    return (f"{t.model_type}: {t.num_hidden_layers} camadas, hidden {t.hidden_size}, "
            f"{t.num_attention_heads} cabeças ({kv} KV), vocabulário {t.vocab_size}, "
            f"embeddings {'amarrados' if getattr(t, 'tie_word_embeddings', False) else 'separados do lm_head'}")
