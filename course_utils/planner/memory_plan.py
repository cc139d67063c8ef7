"""O plano: cache KV, folga para ativações e reserva do runtime somados aos pesos; veredito por formato e escolha."""

from dataclasses import dataclass, field

from ..generation import kv_cache_bytes
from .hardware import GIB, PRESETS, Hardware, resolve_hardware
from .weights import DTYPE_BYTES, FORMAT_LABELS, FORMATS, QUANTIZED, dtype_name, load_config, weight_bytes

# Ordem de preferência do planejador (o primeiro que couber inteiro vence).
# Na GPU: 16 bits se couber; senão NF4 + DQ. O INT8 do bitsandbytes ocupa o dobro do NF4 e, na tabela medida
# numa H100 (docs/referencias.md#h100-7b), gera mais devagar que o fp16 e que o NF4 (7,8 contra 14,4 e 23,8 tokens/s);
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

def _gib(x) -> float:
    return x / GIB

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


# O workspace do cuBLAS: o PyTorch o pede ao próprio alocador no primeiro matmul da GPU e o guarda (conta em
# max_memory_allocated): 32 MiB nas Hopper e Blackwell, ~8 MiB nas outras (docs/referencias.md#pico-7b). Vale o maior.
CUBLAS_WORKSPACE_BYTES = 32 * 2**20


def int8_linear_peak_bytes(out_f: int, in_f: int, tokens: int, elem: int = 2, outlier_cols: int | None = None) -> int:
    """O maior momento de uma linear [o, k] do LLM.int8 (bitsandbytes 0.50) com n tokens, além da entrada [n, k]:

        quantizar a entrada: int8 [n, k] + |x| em 16 bits + máscara |x| >= 6 (bool)      = (2 + e)·n·k
        c colunas de outliers: a cópia delas [n, c] e as colunas do peso [o, c] em int8
                               e desquantizadas em fp32 duas vezes (x·escala, ·1/127)      = n·k + e·n·c + 9·o·c
        o matmul int8: resultado int32 [n, o] e a saída em 16 bits                        = n·k + e·n·c + e·o·c + (4 + e)·n·o

    Quantas colunas passam de 6 depende das ativações; o plano usa o pior caso, c = k (todas: `outlier_cols=None`).
    """
    n, o, k = tokens, out_f, in_f
    c = in_f if outlier_cols is None else outlier_cols
    return max((2 + elem) * n * k, n * k + elem * n * c + 9 * o * c,
               n * k + elem * n * c + elem * o * c + (4 + elem) * n * o)


def activation_bytes(config, context_tokens: int, batch: int, elem: int, fmt: str, linear_shapes=()) -> int:
    """Folga para ativações no prefill (a maior passada): um limite de cima do que está vivo no pico. As camadas
    rodam uma de cada vez, e dentro de uma camada a atenção e o MLP também: vale o maior dos dois momentos.

        b·n·(3·h + max(atenção, MLP))·e
              3·h: a saída dos embeddings (o forward do modelo a guarda até o fim), a entrada da camada e a
                   versão normalizada dela, vivas a camada toda;
              atenção = 2·h + 2·h_kv + max(2·h, 3·h_kv): q, k e v (com GQA, k e v têm h_kv = cabeças KV x
                   dimensão da cabeça) e as contas da RoPE (q girado e os temporários de q ou de k);
              MLP = h + 3·i: o fluxo residual depois da atenção, gate, up e a ativação do gate;
      + 2·b·V·4          logits da última posição em fp32 (o generate só calcula essa)
      + 32 MiB           o workspace do cuBLAS (CUBLAS_WORKSPACE_BYTES)
      + o·k·e            só nf4/nf4-dq: no prefill, o bitsandbytes desquantiza um peso inteiro (a maior linear)
      + 2·o·k·4/64       só nf4-dq: os absmax dessa linear em fp32, duas cópias (desquantizados e + deslocamento)
      + int8_linear_peak_bytes   só int8: a linear do LLM.int8 de maior momento, no pior caso de outliers

    b = lote, n = tokens, h = hidden, i = intermediate (4h se faltar), V = vocabulário, e = bytes do dtype;
    linear_shapes: os (o, k) das lineares quantizadas (`weight_bytes(...)["linear_shapes"]`). A atenção SDPA
    (padrão do transformers 5) não materializa a matriz n×n, por isso ela não entra.
    """
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    h = text.hidden_size
    inter = getattr(text, "intermediate_size", None) or 4 * h
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    h_kv = kv_heads * (getattr(text, "head_dim", None) or h // heads)
    tokens = batch * context_tokens
    attention, mlp = 2 * h + 2 * h_kv + max(2 * h, 3 * h_kv), h + 3 * inter
    act = tokens * (3 * h + max(attention, mlp)) * elem + 2 * batch * text.vocab_size * 4
    act += CUBLAS_WORKSPACE_BYTES
    largest = max((o * k for o, k in linear_shapes), default=0)
    if fmt in ("nf4", "nf4-dq"):
        act += largest * elem + (2 * largest * 4 // 64 if fmt == "nf4-dq" else 0)
    if fmt == "int8":
        act += max((int8_linear_peak_bytes(o, k, tokens, elem) for o, k in linear_shapes), default=0)
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
    hw = resolve_hardware(hardware, gpu_gib, cpu_gib, disk_gib)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Formato(s) desconhecido(s) {unknown}. Use: {', '.join(FORMATS)}.")
    config = load_config(config_or_model_id)
    compute = dtype_name(compute_dtype) if compute_dtype is not None else ("fp16" if hw.has_gpu else "fp32")
    model_name = name or (config_or_model_id if isinstance(config_or_model_id, str)
                          else getattr(config, "_name_or_path", "") or config.model_type)

    plans = {}
    params = 0
    for fmt in formats:
        w = weight_bytes(config, fmt, compute)
        params = w["params"]
        elem = DTYPE_BYTES[fmt] if fmt in DTYPE_BYTES else DTYPE_BYTES[compute]
        kv = kv_cache_bytes(config, context_tokens, batch, elem)
        act = activation_bytes(config, context_tokens, batch, elem, fmt, w["linear_shapes"])
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
