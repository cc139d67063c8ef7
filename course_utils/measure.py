"""Medidas honestas: memória, latência, tokens/s e perplexidade.

Tudo aqui mede o que roda agora, na máquina do aluno; nenhum número é copiado de lugar nenhum.
"""

import math
import resource
import statistics
import time
import warnings
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

# ---------------------------------------------------------------- memória

def _tensor_pieces(t):
    """Tensores que de fato guardam bytes: desmonta subclasses (torchao) e estados de quantização (bitsandbytes)."""
    if hasattr(t, "__tensor_flatten__") and type(t) not in (torch.Tensor, torch.nn.Parameter):
        names, _ = t.__tensor_flatten__()
        for name in names:
            yield from _tensor_pieces(getattr(t, name))
    else:
        yield t
    # bitsandbytes: escalas por linha do LLM.int8 e estado (absmax, dupla quantização) do 4 bits
    scb = getattr(t, "SCB", None)
    if isinstance(scb, torch.Tensor):
        yield scb
    state = getattr(t, "quant_state", None)
    while state is not None:
        for attr in ("absmax", "offset"):
            v = getattr(state, attr, None)
            if isinstance(v, torch.Tensor):
                yield v
        state = getattr(state, "state2", None)


def model_footprint(model) -> dict:
    """Bytes de parâmetros + buffers, por dtype; pesos compartilhados (embeddings amarrados) contam uma vez.

    Retorna {"total_mb": ..., "by_dtype_mb": {"torch.float32": ..., "torch.int8": ...}}.
    """
    seen = set()
    by_dtype = {}
    tensors = [p for _, p in model.named_parameters()] + [b for _, b in model.named_buffers()]
    for t in tensors:
        for piece in _tensor_pieces(t):
            if piece.device.type == "meta":
                continue
            key = (piece.device.type, piece.untyped_storage().data_ptr(), piece.data_ptr(), piece.numel())
            if key in seen:
                continue
            seen.add(key)
            nbytes = piece.numel() * piece.element_size()
            by_dtype[str(piece.dtype)] = by_dtype.get(str(piece.dtype), 0) + nbytes
    mb = {k: v / 2**20 for k, v in sorted(by_dtype.items())}
    return {"total_mb": sum(mb.values()), "by_dtype_mb": mb}


def stored_bits_per_weight(linear) -> float:
    """Bits guardados por peso de uma camada linear: (bytes de tudo o que o peso guarda) x 8 / (linhas x colunas).

    Conta os mesmos pedaços que `model_footprint` (códigos, escalas, estado da dupla quantização), sem o bias. É o
    número que a fórmula `quantization.bits_per_weight` promete, medido nos tensores de verdade.
    """
    pieces = {(p.untyped_storage().data_ptr(), p.data_ptr(), p.numel()): p.numel() * p.element_size()
              for p in _tensor_pieces(linear.weight) if p.device.type != "meta"}
    return 8 * sum(pieces.values()) / (linear.in_features * linear.out_features)


def _proc_status_mb(field: str) -> float | None:
    """Um campo em kB de /proc/self/status (Linux), em MiB; None se não existir."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """Memória residente do processo agora (Linux), em MiB."""
    value = _proc_status_mb("VmRSS")
    return float("nan") if value is None else value


def peak_rss_mb() -> float:
    """Pico de memória residente do processo desde que ele começou, em MiB.

    Usa VmHWM do Linux; o ru_maxrss do getrusage pode ficar um pouco atrás da memória atual.
    """
    candidates = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  _proc_status_mb("VmHWM"), _proc_status_mb("VmRSS")]
    return max(c for c in candidates if c is not None)


def cuda_peak_mb(reset: bool = False) -> float:
    """Pico de memória alocada na GPU (0.0 sem GPU); reset=True zera o contador depois de ler."""
    if not torch.cuda.is_available():
        return 0.0
    peak = torch.cuda.max_memory_allocated() / 2**20
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak


# ---------------------------------------------------------------- tempo

@contextmanager
def one_cpu_thread(device="cpu"):
    """Uma thread de CPU no torch dentro do `with` (restaura o número anterior na saída); na GPU não faz nada.

    Para laços de milhares de operações pequenas (GPTQ coluna a coluna, um modelo minúsculo token a token):
    com 2 threads, a espera ativa do OpenMP (sobretudo com outro processo ocupando um núcleo) deixa cada
    operação várias vezes mais lenta. Medido (torch 2.13, 2 núcleos): o cholesky_inverse de uma matriz
    1536x1536 levou 20 s com 2 threads e 0,3 s com uma; uma suíte de testes token a token, 60 s contra 0,4 s.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure_latency(fn, warmup: int = 2, repeats: int = 10) -> dict:
    """Roda fn() `warmup` vezes sem medir e `repeats` vezes medindo; devolve a mediana em ms.

    A mediana resiste a um pico ocasional (outro processo, coleta de lixo) melhor que a média.
    """
    if repeats < 1:
        raise ValueError("repeats precisa ser pelo menos 1.")
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        _sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            _sync()
            times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "times_ms": times}


def eager_and_compiled_latency(module, *inputs, warmup: int = 2, repeats: int = 10) -> dict:
    """Latência mediana de module(*inputs) como está (eager) e depois de `torch.compile`, em ms.

    Devolve {"eager_ms", "compiled_ms", "compile_s", "error"}: compile_s é o tempo da primeira chamada compilada
    (a compilação em si). Se a compilação falhar (sem compilador C++, backend sem suporte...), "compiled_ms" fica
    None e "error" diz o motivo; a medida eager continua valendo.
    """
    eager = measure_latency(lambda: module(*inputs), warmup=warmup, repeats=repeats)["median_ms"]
    result = {"eager_ms": eager, "compiled_ms": None, "compile_s": None, "error": None}
    try:
        compiled = torch.compile(module)
        start = time.perf_counter()
        with torch.inference_mode(), warnings.catch_warnings():
            # subclasses de tensor do torchao: "does not implement _stable_hash_for_caching" (só afeta o cache)
            warnings.filterwarnings("ignore", message=r".*_stable_hash_for_caching.*")
            compiled(*inputs)
        _sync()
        result["compile_s"] = time.perf_counter() - start
        result["compiled_ms"] = measure_latency(lambda: compiled(*inputs), warmup=warmup, repeats=repeats)["median_ms"]
    except Exception as exc:  # noqa: BLE001 - a compilação pode falhar de muitos jeitos; a lição diz qual
        message = str(exc).strip().splitlines()
        result["error"] = f"{type(exc).__name__}: {message[0][:200] if message else ''}"
    return result


def tokens_per_second(model, tokenizer, prompt: str, max_new_tokens: int = 32, warmup: int = 1, repeats: int = 3,
                      make_cache=None, **generate_kwargs) -> dict:
    """Velocidade de geração gulosa do `model.generate`: novos tokens por segundo (mediana de `repeats`).

    Gera exatamente `max_new_tokens` (min_new_tokens igual), com a máscara de atenção do tokenizador.
    `generate_kwargs` vão para o generate (ex.: cache_implementation="static"). Devolve também os
    ids da última geração ("output_ids"), para conferir que variantes geram os mesmos tokens.
    `make_cache()`, se dado, cria um cache novo para cada geração (passado como past_key_values).
    """
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                  **generate_kwargs)
    outputs = []
    def run():
        cache = {} if make_cache is None else {"past_key_values": make_cache()}
        outputs.append(model.generate(**inputs, **kwargs, **cache))

    stats = measure_latency(run, warmup=warmup, repeats=repeats)
    seconds = stats["median_ms"] / 1000
    return {"tokens_per_s": max_new_tokens / seconds, "median_s": seconds, "new_tokens": max_new_tokens,
            "output_ids": outputs[-1]}


# ---------------------------------------------------------------- qualidade

@torch.inference_mode()
def perplexity(model, input_ids, window: int = 1024, stride: int = 512, progress: bool = True) -> float:
    """Perplexidade com janela deslizante: exp(média de -log p(x_t | contexto)).

    Nenhum token é avaliado duas vezes. A janela avança `stride` tokens; os primeiros
    `window - stride` tokens de cada janela servem só de contexto, então todo token avaliado
    depois da primeira janela vê pelo menos `window - stride` tokens anteriores. Com
    stride < window, todos os tokens menos o primeiro são avaliados. stride == window dá
    janelas disjuntas: mais rápido, mas o início de cada janela fica sem contexto (e o
    primeiro token de cada janela não é avaliado), o que piora a perplexidade.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if input_ids.shape[0] != 1:
        raise ValueError("perplexity espera um único texto (batch 1).")
    if not 0 < stride <= window:
        raise ValueError("Use 0 < stride <= window.")
    n = input_ids.shape[1]
    if n < 2:
        raise ValueError("O texto precisa de pelo menos 2 tokens.")
    device = next(model.parameters()).device
    starts = list(range(0, max(n - window, 0) + stride, stride))
    starts = [s for s in starts if s == 0 or s + window - stride < n]
    nll, count, scored_until = 0.0, 0, 1  # o token 0 não tem contexto: nunca é avaliado
    for begin in tqdm(starts, desc="perplexidade", disable=not progress or len(starts) < 2, leave=False):
        end = min(begin + window, n)
        x = input_ids[:, begin:end].to(device)
        logits = model(x).logits.float()
        logprobs = torch.log_softmax(logits[0, :-1], dim=-1)          # prevê posições begin+1 .. end-1
        targets = x[0, 1:]
        token_nll = -logprobs.gather(1, targets[:, None])[:, 0]
        first_new = max(scored_until - (begin + 1), 0)                  # índice do primeiro alvo ainda não avaliado
        nll += token_nll[first_new:].double().sum().item()
        count += token_nll.shape[0] - first_new
        scored_until = end
        if end == n:
            break
    return math.exp(nll / count)


def generation_peak_mib(model, input_ids, max_new_tokens: int, make_cache=None, **generate_kwargs) -> float:
    """MiB que uma geração gulosa aloca na GPU ALÉM do que já estava alocado (os pesos): o pico do cache e das
    ativações. `make_cache()`, se dado, cria o cache da geração; `generate_kwargs` vão para o `model.generate`."""
    if not torch.cuda.is_available() or input_ids.device.type != "cuda":
        raise ValueError("generation_peak_mib mede memória da GPU: passe um modelo e input_ids na GPU.")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    if make_cache is not None:
        generate_kwargs = {**generate_kwargs, "past_key_values": make_cache()}
    model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                   min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=model.config.eos_token_id,
                   **generate_kwargs)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20
