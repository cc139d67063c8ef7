"""Planejador de memória: antes de baixar um byte de pesos, diz se um modelo cabe no seu hardware.

    plan = plan_memory("meta-llama/Llama-2-7b-chat-hf", hardware="colab_t4", context_tokens=2048)
    print(plan)            # tabela por formato + veredito + explicação em português
    plan.choice            # o formato recomendado, ex. "nf4-dq"

Os pesos são contados **como as bibliotecas os guardam**, a partir da configuração (um `PretrainedConfig`,
um dict no estilo do config.json ou o ID do Hub): o modelo é montado no dispositivo `meta` (só formatos,
nenhum byte alocado) e cada tensor é contado:

- fp32/fp16/bf16: todos os parâmetros e buffers no dtype (buffers como `inv_freq` ficam em fp32);
- int8 (LLM.int8 do bitsandbytes): cada `nn.Linear` quantizável guarda o peso em int8 [saídas, entradas]
  e uma escala fp32 por linha (`SCB`);
- nf4 (4 bits do bitsandbytes): peso empacotado em uint8 (2 pesos por byte), um absmax fp32 por bloco de 64
  pesos e o mapa de 16 níveis (`quant_map`, 16 floats);
- nf4-dq (dupla quantização, QLoRA): o absmax vira uint8, com um absmax fp32 por bloco de 256 absmax,
  um deslocamento fp32 e o mapa dinâmico de 256 floats do segundo nível.

Como no transformers, não são quantizados: embeddings, normas, o `lm_head` (e tudo o que está amarrado a ele),
que ficam no dtype de computação (fp16 na GPU, fp32 na CPU), e os módulos de `_keep_in_fp32_modules`, em fp32.
Com offload, o transformers também deixa sem quantizar os módulos que vão para a CPU ou o disco
(`llm_int8_enable_fp32_cpu_offload`): eles ficam no dtype de carga (medido: fp16), não em int8/nf4.

O resto da conta (cache KV, folga para ativações, reserva do runtime) está em `plan_memory`.
"""

import math
import os
import shutil
from dataclasses import dataclass, field, replace

from .generation import kv_cache_bytes

GIB = 2**30

# ---------------------------------------------------------------- formatos

FORMATS = ("fp32", "fp16", "bf16", "int8", "nf4", "nf4-dq")
FORMAT_LABELS = {
    "fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "INT8 (LLM.int8)", "nf4": "NF4",
    "nf4-dq": "NF4 + dupla quant.",
}
QUANTIZED = ("int8", "nf4", "nf4-dq")
_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
NF4_BLOCK = 64          # pesos por bloco (um absmax cada), padrão do bitsandbytes na CPU e na CUDA
DQ_BLOCK = 256          # absmax por bloco no segundo nível da dupla quantização

# Ordem de preferência do planejador (o primeiro que couber inteiro vence).
# Na GPU: 16 bits se couber; senão NF4 + DQ. O INT8 do bitsandbytes ocupa o dobro do NF4 e, na tabela medida
# numa H100 (../shared/REFERENCIAS.md), gera mais devagar que o fp16 e que o NF4 (7,8 contra 14,4 e 23,8 tokens/s);
# fica para quem pedir (prefer=...) porque perde menos qualidade.
PREFER_GPU = ("bf16", "fp16", "nf4-dq", "int8", "nf4", "fp32")
# Na CPU: fp32 é o caminho rápido garantido; bf16 depende do processador; int8/nf4 economizam memória.
PREFER_CPU = ("fp32", "bf16", "int8", "nf4-dq", "nf4", "fp16")

VERDICTS = {
    "gpu": "cabe na GPU",
    "cpu": "cabe na RAM (só CPU)",
    "cpu_offload": "precisa de offload para a CPU",
    "disk_offload": "precisa de offload para o disco",
    "impossible": "impossível",
}
_VERDICT_RANK = {"gpu": 0, "cpu": 0, "cpu_offload": 1, "disk_offload": 2, "impossible": 3}

# Configurações (só formatos, sem pesos) para perguntas "e se": Llama-2-13B como no config.json do Hub.
LLAMA2_13B_CONFIG = {
    "vocab_size": 32000, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
    "num_attention_heads": 40, "num_key_value_heads": 40, "tie_word_embeddings": False,
}

REQUIRED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")


# ---------------------------------------------------------------- hardware

@dataclass(frozen=True)
class Hardware:
    """Memória de um ambiente, em GiB. gpu_gib=0 (ou None) quer dizer sem GPU; cpu_gib=None, RAM não informada."""
    name: str
    gpu_gib: float | None
    cpu_gib: float | None
    gpu_bf16: bool = True           # a GPU faz bf16 rápido? (a T4 não)
    gpu_reserved_gib: float = 0.5   # contexto CUDA + kernels: ocupa VRAM fora do alocador do PyTorch
    cpu_reserved_gib: float = 1.0   # sistema, Python, torch e transformers importados
    disk_gib: float | None = None   # None: não limita o offload para o disco
    note: str = ""

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpu_gib)


# Valores como o painel de recursos do Colab os mostra ("GB" lá são GiB: a T4 tem 15.360 MiB).
PRESETS = {
    "colab_t4": Hardware("Colab grátis (T4)", 15.0, 12.7, gpu_bf16=False,
                         note="T4 de 16 GB (15,0 GiB úteis), 12,7 GiB de RAM; sem bf16 rápido"),
    "colab_l4": Hardware("Colab (L4)", 22.5, 53.0, note="L4 de 24 GB, RAM alta"),
    "colab_a100": Hardware("Colab (A100 40 GB)", 40.0, 83.5, note="A100 de 40 GB, RAM alta"),
    "laptop_cpu": Hardware("Notebook sem GPU, 16 GiB de RAM", None, 16.0, cpu_reserved_gib=4.0,
                           note="o sistema e o navegador ficam com uns 4 GiB"),
    # ../shared/REFERENCIAS.md: em 2026 o ZeroGPU passou a fatias de RTX Pro 6000 Blackwell (large 48 GB, xlarge 96 GB).
    "zerogpu": Hardware("Space ZeroGPU (fatia large, 48 GB, 2026)", 48e9 / GIB, None,
                        note="fatia 'large' de uma RTX Pro 6000 Blackwell (REFERENCIAS.md, 2026); sem offload: "
                             "o modelo precisa caber na fatia"),
}


def _gib(x) -> float:
    return x / GIB


def detect_hardware(disk_path: str | None = None) -> Hardware:
    """A máquina onde o código roda agora: GPU (memória livre) e RAM disponível, em GiB.

    Usa a memória LIVRE, não a total: é ela que o modelo vai encontrar ao carregar.
    """
    import torch

    gpu_gib, gpu_name, bf16 = None, None, True
    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        gpu_gib = free / GIB
        gpu_name = torch.cuda.get_device_name(0)
        bf16 = torch.cuda.get_device_capability(0) >= (8, 0)  # bf16 rápido a partir da Ampere
    cpu_gib = _available_ram_gib()
    disk_gib = shutil.disk_usage(disk_path or os.getcwd()).free / GIB
    name = f"esta máquina ({gpu_name} + CPU)" if gpu_name else "esta máquina (só CPU)"
    # a RAM disponível já desconta o sistema; sobra reservar o próprio processo (~0,5 GiB)
    return Hardware(name, gpu_gib, cpu_gib, gpu_bf16=bf16, cpu_reserved_gib=0.5,
                    gpu_reserved_gib=0.0 if gpu_gib is None else 0.5, disk_gib=disk_gib,
                    note="memória livre medida agora")


def _available_ram_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().available / GIB
    except ImportError:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / GIB
    raise RuntimeError("Não consegui ler a RAM disponível (nem psutil nem /proc/meminfo).")


def _hardware(hardware, gpu_gib, cpu_gib, disk_gib) -> Hardware:
    if isinstance(hardware, str):
        if hardware not in PRESETS:
            raise ValueError(f"Hardware desconhecido {hardware!r}. Use um de: {', '.join(PRESETS)} "
                             "(ou passe gpu_gib=/cpu_gib=, ou um Hardware).")
        hw = PRESETS[hardware]
    elif isinstance(hardware, Hardware):
        hw = hardware
    elif hardware is None:
        hw = None if (gpu_gib is not None or cpu_gib is not None) else detect_hardware()
    else:
        raise TypeError(f"hardware deve ser o nome de um preset, um Hardware ou None, não {type(hardware).__name__}.")
    for name, value in (("gpu_gib", gpu_gib), ("cpu_gib", cpu_gib), ("disk_gib", disk_gib)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise ValueError(f"{name} precisa ser um número de GiB maior ou igual a zero, não {value!r} "
                             "(memória negativa não existe).")
    if hw is None:
        hw = Hardware("hardware informado", gpu_gib or None, cpu_gib, note="valores passados à mão")
    changes = {k: v for k, v in (("gpu_gib", gpu_gib), ("cpu_gib", cpu_gib), ("disk_gib", disk_gib)) if v is not None}
    if changes:
        hw = replace(hw, **changes)
    return hw


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
        from .models import ModelNotAvailableError, resolve_model

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


def _meta_model(config, dtype_name: str):
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


def _quantized_linear_bytes(out_f: int, in_f: int, fmt: str) -> tuple:
    """(bytes guardados, bytes que get_memory_footprint conta) do peso de uma linear quantizada."""
    n = out_f * in_f
    if fmt == "int8":
        return n + 4 * out_f, n                               # int8 + SCB (fp32 por linha)
    packed = (n + 1) // 2                                      # 2 pesos de 4 bits por byte (uint8)
    blocks = math.ceil(n / NF4_BLOCK)
    if fmt == "nf4":
        return packed + 4 * blocks + 4 * 16, packed            # absmax fp32 + quant_map de 16 floats
    blocks2 = math.ceil(blocks / DQ_BLOCK)
    # absmax uint8 + absmax fp32 do 2º nível + deslocamento fp32 + quant_map (16) + mapa dinâmico (256)
    return packed + blocks + 4 * blocks2 + 4 + 4 * 16 + 4 * 256, packed


def weight_bytes(config_or_model_id, fmt: str, compute_dtype: str = "fp16", skip_modules=()) -> dict:
    """Bytes dos pesos de um LM causal em `fmt`, contados tensor a tensor como as bibliotecas guardam.

    Devolve {"stored": todos os bytes (com SCB/absmax/mapas), "footprint": o que `get_memory_footprint()`
    conta (parâmetros + buffers, sem o estado de quantização), "params": número de parâmetros,
    "quantized_params", "layers", "layer_stored" (um bloco no formato), "layer_unquantized" (um bloco no dtype
    de computação), "largest_linear" (parâmetros da maior linear quantizável)}.
    compute_dtype só importa para int8/nf4: é o dtype do que não é quantizado.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Formato desconhecido {fmt!r}. Use um de: {', '.join(FORMATS)}.")
    compute_dtype = _dtype_name(compute_dtype)
    config = load_config(config_or_model_id)
    key = (config.to_json_string(use_diff=False), fmt, compute_dtype, tuple(skip_modules))
    if key not in _WEIGHT_CACHE:
        _WEIGHT_CACHE[key] = _count_weights(config, fmt, compute_dtype, skip_modules)
    return dict(_WEIGHT_CACHE[key])


_WEIGHT_CACHE: dict = {}


def _count_weights(config, fmt, compute_dtype, skip_modules):
    import torch

    base = fmt if fmt in _DTYPE_BYTES else compute_dtype
    model = _meta_model(config, base)
    skip, fp32_modules = _skip_patterns(model, skip_modules)
    e = _DTYPE_BYTES[base]
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
    per_block_stored = [0] * len(blocks)
    per_block_unq = [0] * len(blocks)
    quantized_weights = set()
    if fmt in QUANTIZED:
        for name, module in model.named_modules():
            if type(module) is torch.nn.Linear and not _matches(name, skip):
                s, f = _quantized_linear_bytes(module.out_features, module.in_features, fmt)
                stored += s
                footprint += f
                n = module.out_features * module.in_features
                qparams += n
                largest = max(largest, n)
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
        "largest_linear": largest,
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


def _dtype_name(dtype) -> str:
    if dtype is None:
        return "fp16"
    if isinstance(dtype, str):
        name = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "half": "fp16"}.get(dtype, dtype)
    else:
        name = {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(dtype))
    if name not in _DTYPE_BYTES:
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


# ---------------------------------------------------------------- o plano

@dataclass
class FormatPlan:
    format: str
    weights_bytes: int          # como guardado (com escalas)
    footprint_bytes: int        # o que get_memory_footprint() contaria
    kv_bytes: int
    activation_bytes: int
    reserved_bytes: int         # runtime (contexto CUDA ou processo) no dispositivo de computação
    total_bytes: int            # no dispositivo de computação, se tudo couber nele
    gpu_bytes: int
    cpu_bytes: int
    disk_bytes: int
    verdict: str
    explanation: str
    note: str = ""
    spare_bytes: int = 0        # quanto sobra no dispositivo quando cabe inteiro

    @property
    def label(self) -> str:
        return FORMAT_LABELS[self.format]

    @property
    def verdict_text(self) -> str:
        return VERDICTS[self.verdict]


@dataclass
class MemoryPlan:
    model: str
    params: int
    hardware: Hardware
    context_tokens: int
    batch: int
    compute_dtype: str
    margin: float
    formats: dict = field(default_factory=dict)
    choice: str | None = None
    explanation: str = ""

    def __getitem__(self, fmt) -> FormatPlan:
        return self.formats[fmt]

    def table(self) -> str:
        hw = self.hardware
        gpu = f"GPU {hw.gpu_gib:.1f} GiB" if hw.has_gpu else "sem GPU"
        cpu = f"RAM {hw.cpu_gib:.1f} GiB" if hw.cpu_gib is not None else "RAM não informada"
        lines = [f"Plano de memória: {self.model} ({self.params / 1e9:.2f} B parâmetros) | {hw.name}: {gpu}, {cpu} | "
                 f"contexto {self.context_tokens} tokens, lote {self.batch}",
                 f"{'formato':<20}{'pesos':>10}{'cache KV':>10}{'ativações':>11}{'total':>10}  veredito (GiB)"]
        for f in self.formats.values():
            lines.append(f"{f.label:<20}{_gib(f.weights_bytes):>10.2f}{_gib(f.kv_bytes):>10.2f}"
                         f"{_gib(f.activation_bytes):>11.2f}{_gib(f.total_bytes):>10.2f}  {f.verdict_text}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\n" + self.explanation

    def to_dict(self) -> dict:
        return {"model": self.model, "params": self.params, "hardware": self.hardware.name,
                "context_tokens": self.context_tokens, "batch": self.batch, "choice": self.choice,
                "formats": {k: {"verdict": v.verdict, "weights_gib": _gib(v.weights_bytes),
                                "total_gib": _gib(v.total_bytes)} for k, v in self.formats.items()}}


def activation_bytes(config, context_tokens: int, batch: int, elem: int, fmt: str, largest_linear: int) -> int:
    """Folga para ativações no prefill (a maior passada), por camada, já que as camadas rodam uma de cada vez:

        b·n·(4·h + 3·i)·e      resíduo, norma, q/k/v/saída da atenção; gate, up e ativação do MLP
      + 2·b·V·4                logits da última posição em fp32 (o generate só calcula essa) e o softmax
      + maior linear · e       só int8/nf4: o bitsandbytes desquantiza um peso inteiro por vez no prefill

    b = lote, n = tokens, h = hidden, i = intermediate (4h se faltar), V = vocabulário, e = bytes do dtype.
    A atenção SDPA (padrão do transformers 5) não materializa a matriz n×n, por isso ela não entra.
    """
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    h = text.hidden_size
    inter = getattr(text, "intermediate_size", None) or 4 * h
    act = batch * context_tokens * (4 * h + 3 * inter) * elem + 2 * batch * text.vocab_size * 4
    if fmt in QUANTIZED:
        act += largest_linear * elem
    return int(act)


def plan_memory(config_or_model_id, gpu_gib=None, cpu_gib=None, context_tokens: int = 2048, batch: int = 1,
                hardware=None, disk_gib=None, compute_dtype=None, formats=FORMATS, prefer=None,
                margin: float = 0.10, name: str | None = None) -> MemoryPlan:
    """Para cada formato: bytes dos pesos, do cache KV e das ativações, e um veredito para o hardware.

    config_or_model_id: PretrainedConfig, dict (campos do config.json; model_type padrão "llama") ou ID do
    Hub / diretório local. hardware: nome de um preset (PRESETS), um Hardware, ou None = esta máquina
    (`detect_hardware`), a menos que gpu_gib/cpu_gib sejam dados. gpu_gib/cpu_gib/disk_gib (GiB) trocam os
    do preset; gpu_gib=0 = sem GPU. compute_dtype: o dtype do que não é quantizado e do cache KV
    (padrão: fp16 com GPU, fp32 sem). margin: fração da memória deixada livre (fragmentação, picos).

    Veredito, no dispositivo de computação (GPU, ou CPU se não houver GPU), com livre = memória × (1 - margem)
    - reserva do runtime - cache KV - ativações:
      - "gpu"/"cpu": os pesos cabem no livre;
      - "cpu_offload": com GPU, parte das camadas fica na RAM e vai à GPU a cada passada (precisa caber
        na RAM, no dtype de carga: o transformers não quantiza camadas offloaded);
      - "disk_offload": o que não cabe na RAM vai para o disco (lento: lido a cada token);
      - "impossible": nem uma camada cabe junto do cache e das ativações, ou o disco não basta, ou o
        ambiente não permite offload (ZeroGPU).
    """
    if not isinstance(context_tokens, int) or isinstance(context_tokens, bool) or context_tokens < 1:
        raise ValueError(f"context_tokens precisa ser um inteiro positivo (tokens de contexto), não {context_tokens!r}.")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch precisa ser um inteiro >= 1, não {batch!r}.")
    if not 0 <= margin < 1:
        raise ValueError(f"margin é uma fração entre 0 e 1 (ex.: 0.1 = 10% de folga), não {margin!r}.")
    hw = _hardware(hardware, gpu_gib, cpu_gib, disk_gib)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Formato(s) desconhecido(s) {unknown}. Use: {', '.join(FORMATS)}.")
    config = load_config(config_or_model_id)
    compute = _dtype_name(compute_dtype) if compute_dtype is not None else ("fp16" if hw.has_gpu else "fp32")
    model_name = name or (config_or_model_id if isinstance(config_or_model_id, str)
                          else getattr(config, "_name_or_path", "") or config.model_type)

    plans = {}
    params = 0
    for fmt in formats:
        w = weight_bytes(config, fmt, compute)
        params = w["params"]
        elem = _DTYPE_BYTES[fmt] if fmt in _DTYPE_BYTES else _DTYPE_BYTES[compute]
        kv = kv_cache_bytes(config, context_tokens, batch, elem)
        act = activation_bytes(config, context_tokens, batch, elem, fmt, w["largest_linear"])
        plans[fmt] = _verdict(fmt, w, kv, act, elem, hw, margin, compute)
    order = prefer or (PREFER_GPU if hw.has_gpu else PREFER_CPU)
    choice, why = _choose(plans, order, hw)
    plan = MemoryPlan(model_name, params, hw, context_tokens, batch, compute, margin, plans, choice, why)
    return plan


def _verdict(fmt, w, kv, act, elem, hw, margin, compute) -> FormatPlan:
    on_gpu = hw.has_gpu
    device = "GPU" if on_gpu else "RAM"
    capacity = (hw.gpu_gib if on_gpu else (hw.cpu_gib or 0.0)) * GIB
    reserved = (hw.gpu_reserved_gib if on_gpu else hw.cpu_reserved_gib) * GIB
    usable = capacity * (1 - margin) - reserved
    weights = w["stored"]
    total = weights + kv + act + reserved
    free = usable - kv - act
    # uma camada executada precisa estar inteira no dispositivo de computação (no dtype de carga, se offloaded)
    exec_layer = w["layer_unquantized"] if fmt in QUANTIZED else w["layer_stored"]
    # camadas offloaded ficam sem quantizar (dtype de carga) na RAM/disco
    unq_ratio = (w["layer_unquantized"] / w["layer_stored"]) if fmt in QUANTIZED and w["layer_stored"] else 1.0
    head = (f"{FORMAT_LABELS[fmt]}: pesos {_gib(weights):.2f} GiB + cache KV {_gib(kv):.2f} GiB + ativações "
            f"{_gib(act):.2f} GiB + reserva {_gib(reserved):.2f} GiB = {_gib(total):.2f} GiB; "
            f"{device} útil com {margin:.0%} de folga: {_gib(capacity * (1 - margin)):.2f} GiB")
    gpu_b = cpu_b = disk_b = 0
    note = ""
    if capacity <= 0:
        verdict = "impossible"
        expl = f"{head}. Sem memória informada para computar."
    elif weights <= free:
        verdict = "gpu" if on_gpu else "cpu"
        if on_gpu:
            gpu_b = weights
        else:
            cpu_b = weights
        expl = f"{head}. Cabe inteiro: sobram {_gib(free - weights):.2f} GiB."
    elif free < exec_layer:
        verdict = "impossible"
        expl = (f"{head}. Nem uma camada ({_gib(exec_layer):.2f} GiB) cabe junto do cache KV e das ativações: "
                "reduza o contexto ou o lote, ou use uma máquina maior.")
    else:
        resident = max(0.0, free - exec_layer)             # espaço para camadas residentes
        offloaded = (weights - resident) * unq_ratio         # o resto, sem quantizar, fora do dispositivo
        if fmt in QUANTIZED:
            note = ("com offload, o transformers deixa as camadas offloaded sem quantizar "
                    "(llm_int8_enable_fp32_cpu_offload), no dtype de carga")
        if on_gpu:
            gpu_b = int(resident) + int(exec_layer)
            cpu_room = None if hw.cpu_gib is None else max(0.0, hw.cpu_gib * GIB * (1 - margin) - hw.cpu_reserved_gib * GIB)
            if cpu_room is None:
                verdict = "impossible"
                expl = (f"{head}. Não cabe na GPU ({_gib(weights - resident):.2f} GiB de pesos sobrando) e este ambiente "
                        "não tem RAM para offload: use um formato menor ou um modelo menor.")
            elif offloaded <= cpu_room:
                verdict = "cpu_offload"
                cpu_b = int(offloaded)
                expl = (f"{head}. Não cabe inteiro: {_gib(resident):.2f} GiB de pesos ficam na GPU e "
                        f"{_gib(offloaded):.2f} GiB vão para a RAM ({_gib(cpu_room):.2f} GiB úteis) e atravessam o "
                        "PCIe a cada token (lento).")
            else:
                cpu_b = int(cpu_room)
                disk_b = int(offloaded - cpu_room)
                verdict, expl = _disk_verdict(hw, disk_b, head, f"GPU e RAM não bastam; {_gib(disk_b):.2f} GiB iriam para o disco")
        else:
            cpu_b = int(resident) + int(exec_layer)
            disk_b = int(offloaded)
            verdict, expl = _disk_verdict(hw, disk_b, head, f"Não cabe na RAM; {_gib(disk_b):.2f} GiB de pesos iriam para o "
                                                           "disco e seriam lidos a cada token (muito lento)")
    if note:
        expl += f" (Obs.: {note}.)"
    spare = int(free - weights) if verdict in ("gpu", "cpu") else 0
    return FormatPlan(fmt, int(weights), int(w["footprint"]), int(kv), int(act), int(reserved), int(total),
                      int(gpu_b), int(cpu_b), int(disk_b), verdict, expl, note, spare)


def _disk_verdict(hw, disk_b, head, text):
    if hw.disk_gib is not None and disk_b > hw.disk_gib * GIB:
        return "impossible", f"{head}. {text}, mas só há {hw.disk_gib:.1f} GiB livres no disco."
    return "disk_offload", f"{head}. {text}."


def _choose(plans, order, hw):
    """O primeiro formato da ordem de preferência que cabe inteiro; senão, o de melhor veredito."""
    candidates = [f for f in order if f in plans]
    if hw.has_gpu and not hw.gpu_bf16:
        candidates = [f for f in candidates if f != "bf16"]
    if not candidates:
        return None, "Nenhum formato considerado."
    fits = [f for f in candidates if plans[f].verdict in ("gpu", "cpu")]
    skipped = []
    for f in candidates:
        if f in fits:
            break
        skipped.append(f)
    if fits:
        c = fits[0]
        why = [f"Escolha: {FORMAT_LABELS[c]} — o primeiro da ordem de preferência ({', '.join(candidates)}) que "
               f"cabe inteiro ({_gib(plans[c].total_bytes):.2f} GiB no total, com folga de {_gib(plans[c].spare_bytes):.2f} GiB)."]
        for f in skipped:
            why.append(f"  {FORMAT_LABELS[f]} não serve: {plans[f].verdict_text} ({_gib(plans[f].total_bytes):.2f} GiB "
                       "no total).")
        if hw.has_gpu and not hw.gpu_bf16 and "bf16" in plans:
            why.append("  bf16 ficou de fora: esta GPU não faz bf16 rápido (use fp16).")
        if c in ("nf4", "nf4-dq"):
            why.append("  NF4 calcula em fp16/bf16 (bnb_4bit_compute_dtype): os pesos são desquantizados camada a "
                       "camada, então a qualidade fica perto do fp16 com ~1/4 da memória.")
        return c, "\n".join(why)
    viable = [f for f in candidates if plans[f].verdict != "impossible"]
    if not viable:
        return None, ("Nenhum formato roda aqui: nem uma camada cabe junto do cache KV e das ativações. Reduza o "
                      "contexto ou o lote, escolha um modelo menor ou use um Space/máquina com mais memória.")
    best = min(viable, key=lambda f: (_VERDICT_RANK[plans[f].verdict], candidates.index(f)))
    return best, (f"Escolha: {FORMAT_LABELS[best]} — nenhum formato cabe inteiro, este é o que precisa de menos "
                  f"offload ({plans[best].verdict_text}). Offload funciona, mas cada token relê os pesos offloaded: "
                  "considere um modelo menor, contexto menor ou uma máquina maior.")


def plan_presets(config_or_model_id, presets=None, **kwargs) -> dict:
    """Um plano por preset de hardware: {nome: MemoryPlan}."""
    names = presets or list(PRESETS)
    return {n: plan_memory(config_or_model_id, hardware=n, **kwargs) for n in names}


def verdict_table(plans: dict) -> str:
    """Tabela texto: uma linha por hardware, uma coluna por formato, com o veredito curto e a escolha."""
    short = {"gpu": "GPU", "cpu": "RAM", "cpu_offload": "offl. CPU", "disk_offload": "offl. disco",
             "impossible": "não roda"}
    first = next(iter(plans.values()))
    fmts = list(first.formats)
    lines = [f"{'hardware':<42}" + "".join(f"{f:>12}" for f in fmts) + "   escolha"]
    for p in plans.values():
        cells = "".join(f"{short[p.formats[f].verdict]:>12}" for f in fmts)
        lines.append(f"{p.hardware.name[:41]:<42}{cells}   {p.choice or '—'}")
    return "\n".join(lines)


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
        from transformers import BitsAndBytesConfig

        if fmt == "int8":
            q = BitsAndBytesConfig(load_in_8bit=True, llm_int8_enable_fp32_cpu_offload=offload)
        else:
            q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                                   bnb_4bit_use_double_quant=(fmt == "nf4-dq"),
                                   llm_int8_enable_fp32_cpu_offload=offload)
        kwargs["quantization_config"] = q
    return kwargs


def describe_config(config_or_model_id) -> str:
    """Uma linha com o que importa da arquitetura (camadas, hidden, cabeças, vocabulário)."""
    c = load_config(config_or_model_id)
    t = c.get_text_config(decoder=True) if hasattr(c, "get_text_config") else c
    kv = getattr(t, "num_key_value_heads", None) or t.num_attention_heads
    return (f"{t.model_type}: {t.num_hidden_layers} camadas, hidden {t.hidden_size}, "
            f"{t.num_attention_heads} cabeças ({kv} KV), vocabulário {t.vocab_size}, "
            f"embeddings {'amarrados' if getattr(t, 'tie_word_embeddings', False) else 'separados do lm_head'}")



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
    name = _dtype_name(dtype)
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
    model = _meta_model(config, name)
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
