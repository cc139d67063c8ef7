"""ONNX Runtime para LLMs: sessões, logits, perplexidade, quantização e geração com o onnxruntime-genai.

- `create_session`: uma InferenceSession com o nível de otimização de grafo e os provedores escolhidos.
- `OrtCausalLM` / `ort_perplexity`: a sessão vestida de modelo do PyTorch, para usar exatamente a
  mesma `course_utils.measure.perplexity` (os mesmos tokens avaliados, a mesma janela).
- `quantize_dynamic_int8`, `quantize_weight_only`: INT8 dinâmico e INT8/INT4 só nos pesos (MatMulNBits).
- `build_genai_model`, `genai_generate`: o model builder do onnxruntime-genai (grafo com cache KV,
  GroupQueryAttention, pesos fp32 ou int4) e a geração gulosa com medida de prefill e decode.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from .measure import perplexity
from .onnx_export import cached_build, onnx_cache_dir

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
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))


def _head_dim_from_genai_config(session_path) -> int | None:
    cfg = Path(session_path).parent / "genai_config.json" if session_path else None
    if cfg is not None and cfg.exists():
        return json.loads(cfg.read_text())["model"]["decoder"]["head_size"]
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
    """

    def __init__(self, session, head_dim: int | None = None):
        super().__init__()
        self.session = session
        self.head_dim = head_dim
        self._device_anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # perplexity lê o device daqui

    def forward(self, input_ids):
        logits = run_logits(self.session, input_ids.cpu().numpy(), self.head_dim)
        return _Output(torch.from_numpy(logits))


class _Output:
    def __init__(self, logits):
        self.logits = logits


def ort_perplexity(session, input_ids, window: int = 1024, stride: int = 512, head_dim: int | None = None,
                   progress: bool = True) -> float:
    """Perplexidade de uma sessão do ORT com o mesmo algoritmo (e os mesmos tokens) de measure.perplexity."""
    return perplexity(OrtCausalLM(session, head_dim), input_ids, window=window, stride=stride, progress=progress)


# ---------------------------------------------------------------- inspecionar arquivos

def op_counts(path) -> Counter:
    """Quantos nós de cada tipo (MatMul, RotaryEmbedding, ...) o grafo tem; não carrega os pesos."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return Counter(node.op_type for node in model.graph.node)


def onnx_file_mb(path) -> float:
    """MiB em disco do .onnx mais os arquivos de pesos externos que ele cita."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    files = {path}
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                files.add(path.parent / entry.value)
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


# ---------------------------------------------------------------- quantização

def quantize_dynamic_int8(src, dst, per_channel: bool = False, reduce_range: bool = False) -> Path:
    """INT8 dinâmico do ORT: pesos int8 simétricos (por tensor, ou por canal), ativações uint8 quantizadas a
    cada execução com UMA escala por tensor (min/max do tensor inteiro naquele momento).

    reduce_range=True usa só 7 bits nos pesos ([-64, 63]): evita a saturação da instrução u8 x s8 das
    CPUs com AVX2 sem VNNI (veja `u8s8_matmul`).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with quiet_onnxruntime():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         reduce_range=reduce_range,
                         use_external_data_format=True)
    return dst


def quantize_weight_only(src, dst, bits: int = 4, block_size: int = 32, symmetric: bool = True,
                         accuracy_level: int | None = None) -> Path:
    """Quantização só dos pesos em blocos (MatMulNBits): cada bloco de `block_size` pesos de uma coluna
    ganha a sua escala (e o seu ponto-zero, se symmetric=False). As ativações continuam em fp32.

    accuracy_level=4 deixa o kernel da CPU converter a ativação para int8 na hora da conta (mais rápido,
    um pouco menos preciso); None usa o padrão (fp32).
    """
    import onnx

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {} if accuracy_level is None else {"accuracy_level": accuracy_level}
    with quiet_onnxruntime():  # importar o quantizador chama logging.basicConfig(INFO); o with desfaz
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), bits=bits, block_size=block_size,
                                         is_symmetric=symmetric, **kwargs)
        quantizer.process()
        for stale in (dst, dst.with_name(dst.name + ".data")):
            stale.unlink(missing_ok=True)
        quantizer.model.save_model_to_file(str(dst), use_external_data_format=True)
    return dst


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
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# ---------------------------------------------------------------- onnxruntime-genai

def _dir_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(Path(path).glob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}{st.st_size}{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def build_genai_model(source, precision: str = "fp32", execution_provider: str = "cpu",
                      extra_options: dict | None = None, out_root=None, refresh: bool = False) -> tuple[Path, bool]:
    """Roda o model builder do onnxruntime-genai (no mesmo processo) e devolve (diretório, veio_do_cache).

    source: diretório do modelo do transformers (config.json, pesos, tokenizador) ou um ID do Hub.
    O builder escreve model.onnx (com GroupQueryAttention e cache KV), genai_config.json e o tokenizador.
    O resultado fica no cache do curso; a saída do builder vai para build.log dentro dele.
    """
    with quiet_onnxruntime():  # o import do builder também mexe no logging
        from onnxruntime_genai.models.builder import create_model, parse_extra_options

    src = str(source)
    local = Path(src).is_dir()
    extra = {k: str(v) for k, v in (extra_options or {}).items()}
    versions = {n: _version(n) for n in ("onnxruntime-genai", "onnxruntime", "transformers")}
    key_src = json.dumps({"src": _dir_fingerprint(Path(src)) if local else src, "p": precision,
                          "ep": execution_provider, "x": extra, "v": versions}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    root = Path(out_root) if out_root else onnx_cache_dir()
    out_dir = root / f"genai-{precision}-{execution_provider}-{key}"
    if (out_dir / "genai_config.json").exists() and not refresh:
        return out_dir, True
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_name, input_path = (None, src) if local else (src, "")
    hf_cache = root / "hf-cache"
    with quiet_onnxruntime(tmp / "build.log"):
        options = parse_extra_options(model_name, input_path, str(tmp), precision, execution_provider, str(hf_cache),
                                      [f"{k}={v}" for k, v in extra.items()])
        create_model(model_name, input_path, str(tmp), precision, execution_provider, str(hf_cache), **options)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir, False


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def load_genai_model(path, threads: int | None = None, providers=None):
    """og.Model de um diretório do builder; threads muda intra_op_num_threads da sessão do decoder."""
    import onnxruntime_genai as og

    config = og.Config(str(path))
    if threads is not None:
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    if providers is not None:
        config.clear_providers()
        for provider in providers:
            config.append_provider(provider)
    return og.Model(config)


def genai_generate(model, prompt_ids, new_tokens: int) -> dict:
    """Geração gulosa de exatamente `new_tokens` tokens com o onnxruntime-genai, medindo prefill e decode.

    append_tokens roda o prompt inteiro (prefill) e enche o cache KV; cada generate_next_token escolhe
    um token e, a partir do segundo, roda o modelo sobre o token anterior (um passo de decode).
    decode_tokens_per_s = (new_tokens - 1) / tempo do laço: passos de decode por segundo.
    """
    import onnxruntime_genai as og

    prompt = [int(t) for t in np.asarray(prompt_ids).reshape(-1)]
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + new_tokens, min_length=len(prompt) + new_tokens,
                              do_sample=False)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(prompt)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    while not generator.is_done():
        generator.generate_next_token()
    decode = time.perf_counter() - start
    sequence = [int(t) for t in generator.get_sequence(0)]
    new = sequence[len(prompt):]
    return {"new_ids": new, "prefill_s": prefill, "decode_s": decode,
            "decode_tokens_per_s": (len(new) - 1) / decode if len(new) > 1 else float("nan")}


def tokenizer_round_trip(genai_model, hf_tokenizer, texts) -> dict:
    """Confere o tokenizador que o builder escreveu (og.Tokenizer de um og.Model) contra o do transformers.

    Para cada texto: ids iguais aos do transformers? decode(encode(texto)) == texto? (Sem tokens
    especiais no texto: o decode do onnxruntime-genai os omite.)
    Devolve {"ids_match": bool, "text_match": bool, "failures": [...]}.
    """
    import onnxruntime_genai as og

    tokenizer = og.Tokenizer(genai_model)
    failures = []
    ids_match = text_match = True
    for text in texts:
        ids = [int(t) for t in tokenizer.encode(text)]
        ref = hf_tokenizer(text, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids)
        if ids != ref:
            ids_match = False
            failures.append(f"ids diferentes para {text!r}")
        if back != text:
            text_match = False
            failures.append(f"ida e volta mudou {text!r} para {back!r}")
    return {"ids_match": ids_match, "text_match": text_match, "failures": failures}


# ---------------------------------------------------------------- artefatos em cache

def cached_quantization(src, kind: str, refresh: bool = False, **options) -> tuple[Path, bool]:
    """Quantiza `src` uma vez e guarda no cache do curso; devolve (caminho, veio_do_cache).

    kind: "int8_dynamic" (quantize_dynamic_int8) ou "weight_only" (quantize_weight_only).
    A chave junta o diretório de origem (que já carrega a chave dele), o tipo, as opções e a versão do ORT.
    """
    builders = {"int8_dynamic": quantize_dynamic_int8, "weight_only": quantize_weight_only}
    if kind not in builders:
        raise ValueError(f"kind deve ser um de {list(builders)}; recebi {kind!r}.")
    src = Path(src)
    key_src = json.dumps({"src": str(src.resolve()), "fp": _dir_fingerprint(src.parent), "k": kind, "o": options,
                          "v": _version("onnxruntime")}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    return cached_build(onnx_cache_dir() / f"{src.parent.name}-{kind}-{key}",
                        lambda path: builders[kind](src, path, **options), refresh)


# ---------------------------------------------------------------- INT8 por dentro (um MatMul só)

def single_matmul_model(weight, path) -> Path:
    """Um grafo ONNX com um único Y = X @ W (W: [K, N], fp32), para estudar a quantização de uma camada."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.ascontiguousarray(np.asarray(weight, dtype=np.float32))
    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "matmul",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["tokens", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["tokens", n])],
        [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def dynamic_quantize_uint8(x):
    """DynamicQuantizeLinear do ONNX: uint8 assimétrico com UMA escala para o tensor inteiro.

    escala = (max(0, max x) - min(0, min x)) / 255;  ponto-zero = round(-min(0, min x) / escala);
    q = clip(round(x / escala) + ponto-zero, 0, 255), arredondando metades para o par.
    Devolve (q como int64, escala, ponto-zero).
    """
    x = np.asarray(x, dtype=np.float32)
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = np.float32((hi - lo) / 255) if hi > lo else np.float32(1.0)
    zero_point = int(np.clip(np.rint(-lo / scale), 0, 255))
    q = np.clip(np.rint(x / scale) + zero_point, 0, 255).astype(np.int64)
    return q, float(scale), zero_point


def u8s8_matmul(a_q, a_zero_point: int, w_q, saturate_pairs: bool = False, chunk: int = 32):
    """Acumulador inteiro de (a_q - a_zp) @ w_q, com a_q uint8 [M, K] e w_q int8 simétrico [K, N].

    saturate_pairs=True imita a instrução VPMADDUBSW do AVX2 (sem VNNI): ela multiplica u8 x s8 e soma
    os produtos DOIS A DOIS num inteiro de 16 bits com saturação (teto 32767, piso -32768) antes de
    acumular em 32 bits. Se a soma de um par passa do teto, a conta sai errada sem aviso.
    Devolve (acumulador int64 [M, N], fração dos pares que saturaram).
    """
    a_q = np.asarray(a_q, dtype=np.int64)
    w_q = np.asarray(w_q, dtype=np.int64)
    k = a_q.shape[1]
    correction = a_zero_point * w_q.sum(axis=0)  # o kernel soma a*w com a cru e desconta o ponto-zero depois
    if not saturate_pairs:
        exact = a_q.astype(np.float64) @ w_q.astype(np.float64)  # inteiros < 2^53: a conta em float64 é exata
        return np.rint(exact).astype(np.int64) - correction, 0.0
    if k % 2:
        a_q = np.pad(a_q, ((0, 0), (0, 1)))
        w_q = np.pad(w_q, ((0, 1), (0, 0)))
    out = np.empty((a_q.shape[0], w_q.shape[1]), dtype=np.int64)
    saturated = 0
    w_even, w_odd = w_q[0::2].astype(np.int32), w_q[1::2].astype(np.int32)
    for start in range(0, a_q.shape[0], chunk):
        a = a_q[start:start + chunk].astype(np.int32)
        pairs = a[:, 0::2, None] * w_even[None] + a[:, 1::2, None] * w_odd[None]   # [m, K/2, N]
        clipped = np.clip(pairs, -32768, 32767)
        saturated += int((clipped != pairs).sum())
        out[start:start + chunk] = clipped.sum(axis=1, dtype=np.int64)
    total_pairs = a_q.shape[0] * (a_q.shape[1] // 2) * w_q.shape[1]
    return out - correction, saturated / total_pairs


def matmul_weight_bytes(path) -> int:
    """Bytes dos pesos que os MatMul (fp32, MatMulNBits, MatMulInteger) leem a cada passada: pesos, escalas e
    pontos-zero guardados como inicializadores. É o que um passo de decode precisa trazer da memória."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    sizes = {}
    for t in model.graph.initializer:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        sizes[t.name] = n * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    total = 0
    seen = set()
    for node in model.graph.node:
        if node.op_type in ("MatMul", "MatMulNBits", "MatMulInteger", "Gemm"):
            for name in node.input[1:]:
                if name in sizes and name not in seen:
                    seen.add(name)
                    total += sizes[name]
    return total
