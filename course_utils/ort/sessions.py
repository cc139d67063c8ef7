"""Sessões do ONNX Runtime: criar, alimentar um LM causal, ler os logits e medir a perplexidade como no PyTorch."""

import contextlib
import logging
import os
import time

import numpy as np
import torch

from ..measure import perplexity
from .files import op_counts, scratch_path

LEVELS = {  # nome no curso -> nível do ONNX Runtime (preenchido sob demanda, para não importar o ORT à toa)
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


# ---------------------------------------------------------------- sessões

def create_session(path, providers=("CPUExecutionProvider",), level: str = "all", threads: int | None = None,
                   optimized_path=None):
    """InferenceSession com nível de otimização `level` ("disable", "basic", "extended", "all").

    threads: intra_op_num_threads (None = padrão do ORT, um por núcleo físico).
    optimized_path: grava o grafo já otimizado, para contar os nós depois (`op_counts`).
    """
    import onnxruntime as ort

    if level not in LEVELS:
        raise ValueError(f"Nível {level!r} desconhecido; use um de {list(LEVELS)}.")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    options.log_severity_level = 3  # só erros
    if threads is not None:
        options.intra_op_num_threads = threads
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), sess_options=options, providers=cuda_memory_capped(providers))


def session_at_level(path, level: str, **options):
    """(sessão, nós por tipo do grafo otimizado, segundos para criar a sessão) no nível `level`.

    A sessão grava o grafo que ela otimizou (`SessionOptions.optimized_model_filepath`) num arquivo de passagem;
    contamos os nós e apagamos o arquivo (ele tem todos os pesos).
    """
    optimized = scratch_path(f"otimizado_{level}.onnx")
    start = time.perf_counter()
    session = create_session(path, level=level, optimized_path=optimized, **options)
    seconds = time.perf_counter() - start
    counts = op_counts(optimized)
    for written in optimized.parent.glob("*"):
        written.unlink()
    return session, counts, seconds


def session_of_optimizer_output(optimized_model, **options):
    """(sessão, número de nós) do grafo que o `optimize_model` de `onnxruntime.transformers` devolveu (um OnnxModel).

    O grafo vai para um arquivo de passagem (pesos em arquivo externo), a sessão o carrega e o arquivo é apagado.
    """
    path = scratch_path("otimizador.onnx")
    with quiet_onnxruntime():
        optimized_model.save_model_to_file(str(path), use_external_data_format=True)
    session = create_session(path, **options)
    nodes = sum(op_counts(path).values())
    for written in path.parent.glob("*"):
        written.unlink()
    return session, nodes


def cuda_memory_capped(providers) -> list:
    """Os provedores, com `gpu_mem_limit` no da CUDA quando COURSE_CUDA_MEMORY_GIB pede um teto (o perfil `t4`)."""
    gib = float(os.environ.get("COURSE_CUDA_MEMORY_GIB") or 0)
    capped = []
    for provider in providers:
        name = provider[0] if isinstance(provider, tuple) else provider
        if name == "CUDAExecutionProvider" and gib:
            options = dict(provider[1]) if isinstance(provider, tuple) else {}
            options.setdefault("gpu_mem_limit", str(int(gib * 2**30)))
            provider = (name, options)
        capped.append(provider)
    return capped


def attention_head_dim(config) -> int:
    """Dimensão de cada cabeça de atenção: `config.head_dim` quando a configuração a traz (Qwen3, Gemma...), senão
    `hidden_size // num_attention_heads` (nem toda configuração tem o campo: o Llama antigo, o Mistral...)."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def cuda_branch_skip_reason(device: str) -> str | None:
    """Por que o ramo CUDA do notebook 06 não roda aqui (texto curto), ou None se ele roda: precisa de uma GPU e do
    provedor CUDA no onnxruntime instalado (o pacote onnxruntime-gpu)."""
    import onnxruntime as ort

    if not str(device).startswith("cuda"):
        return "sem GPU nesta execução"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime sem CUDA"
    return None


def make_feeds(session, input_ids, head_dim: int | None = None) -> dict:
    """Entradas de uma passada sobre `input_ids` [lote, seq] para qualquer grafo de LM causal.

    Serve para o grafo do torch.onnx.export (só input_ids) e para o do model builder (input_ids,
    attention_mask e cache KV "passado" vazio, de comprimento 0). `head_dim` só é preciso quando o
    grafo tem cache e não diz a dimensão da cabeça.
    """
    ids = np.ascontiguousarray(np.asarray(input_ids, dtype=np.int64))
    if ids.ndim == 1:
        ids = ids[None]
    batch, seq = ids.shape
    feeds = {}
    for inp in session.get_inputs():
        name = inp.name
        if name == "input_ids":
            feeds[name] = ids
        elif name == "attention_mask":
            feeds[name] = np.ones((batch, seq), dtype=np.int64)
        elif name == "position_ids":
            feeds[name] = np.broadcast_to(np.arange(seq, dtype=np.int64), (batch, seq)).copy()
        elif name.startswith("past_key_values"):
            shape = []
            for dim in inp.shape:
                if isinstance(dim, int):
                    shape.append(dim)
                elif "batch" in dim:
                    shape.append(batch)
                elif "sequence" in dim or "past" in dim:
                    shape.append(0)
                elif head_dim is not None:
                    shape.append(head_dim)
                else:
                    raise ValueError(f"Não sei o tamanho do eixo {dim!r} de {name}; passe head_dim=.")
            dtype = np.float16 if "float16" in inp.type else np.float32
            feeds[name] = np.zeros(shape, dtype=dtype)
        else:
            raise ValueError(f"Entrada {name!r} desconhecida para um LM causal.")
    return feeds


def run_logits(session, input_ids, head_dim: int | None = None) -> np.ndarray:
    """Logits [lote, seq, vocabulário] de uma passada (fp32)."""
    out = session.run(["logits"], make_feeds(session, input_ids, head_dim))[0]
    return out.astype(np.float32, copy=False)


class OrtCausalLM(torch.nn.Module):
    """Uma sessão do ORT com a cara de um modelo do transformers: `model(x).logits` (tensor do torch).

    Assim `course_utils.measure.perplexity` roda igual sobre o PyTorch e sobre o ONNX Runtime.
    keep_argmax=True guarda em `self.argmax` o token mais provável de cada posição de cada chamada
    (um array [lote, seq] por chamada): a mesma passada da perplexidade dá o acerto do próximo token.
    """

    def __init__(self, session, head_dim: int | None = None, keep_argmax: bool = False):
        super().__init__()
        self.session = session
        self.head_dim = head_dim
        self.keep_argmax = keep_argmax
        self.argmax = []
        self._device_anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # perplexity lê o device daqui

    def forward(self, input_ids):
        logits = run_logits(self.session, input_ids.cpu().numpy(), self.head_dim)
        if self.keep_argmax:
            self.argmax.append(logits.argmax(-1))
        return _Output(torch.from_numpy(logits))


class _Output:
    def __init__(self, logits):
        self.logits = logits


def ort_perplexity(session, input_ids, window: int = 1024, stride: int = 512, head_dim: int | None = None,
                   progress: bool = True) -> float:
    """Perplexidade de uma sessão do ORT com o mesmo algoritmo (e os mesmos tokens) de measure.perplexity."""
    return perplexity(OrtCausalLM(session, head_dim), input_ids, window=window, stride=stride, progress=progress)


@contextlib.contextmanager
def quiet_onnxruntime(log_path=None):
    """Silencia os logs INFO do ONNX Runtime e manda stdout/stderr (barras do builder) para um arquivo."""
    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(("onnxruntime", "transformers"))]
    loggers = [logging.getLogger(n) for n in names] + [logging.getLogger()]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sink = open(log_path, "a", encoding="utf-8") if log_path else open(os.devnull, "w")
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        sink.close()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
