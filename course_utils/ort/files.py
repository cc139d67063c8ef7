"""Arquivos do ONNX: contar operadores, MiB em disco, bytes de pesos que cada passada lê; chaves de cache; a pasta
temporária dos arquivos de passagem; as versões das bibliotecas."""

import hashlib
import itertools
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np

_SCRATCH = None
_SCRATCH_NAMES = itertools.count()


# ---------------------------------------------------------------- arquivos de passagem

def scratch_dir() -> Path:
    """Uma pasta temporária deste processo para os arquivos de passagem (grafos otimizados, MatMuls isolados).

    É criada na primeira chamada e apagada quando o processo termina (o kernel do notebook, por exemplo).
    """
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = tempfile.TemporaryDirectory(prefix="curso-onnx-")
    return Path(_SCRATCH.name)


def scratch_path(name: str) -> Path:
    """Um caminho novo `.../<n>/name` dentro de `scratch_dir()`: duas chamadas nunca devolvem o mesmo."""
    folder = scratch_dir() / str(next(_SCRATCH_NAMES))
    folder.mkdir()
    return folder / name

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


# ---------------------------------------------------------------- chaves de cache

def dir_fingerprint(path: Path) -> str:
    """Impressão digital de um diretório (nome, tamanho e data de cada arquivo): entra nas chaves de cache."""
    h = hashlib.sha256()
    for f in sorted(Path(path).glob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}{st.st_size}{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def package_version(name):
    """Versão instalada de um pacote (None se ausente): uma versão nova invalida o que está em cache."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def onnx_versions() -> str:
    """As versões das três bibliotecas do notebook, numa linha: "onnx 1.x | onnxruntime 1.y | onnxruntime-genai 0.z".

    Lidas dos módulos (o pacote da GPU se chama onnxruntime-gpu, mas o módulo é o mesmo `onnxruntime`).
    """
    import importlib

    parts = []
    for label, module in (("onnx", "onnx"), ("onnxruntime", "onnxruntime"), ("onnxruntime-genai", "onnxruntime_genai")):
        try:
            parts.append(f"{label} {importlib.import_module(module).__version__}")
        except ImportError:
            parts.append(f"{label} ausente")
    return " | ".join(parts)


def matmulnbits_attributes(path) -> dict:
    """O que os MatMulNBits de um grafo dizem de si: {atributo: valores distintos} (bits, block_size,
    accuracy_level...) e `zero_points`: quantos têm ponto-zero guardado. Sem MatMulNBits: {}."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    found, with_zero = {}, 0
    nodes = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    for node in nodes:
        for attr in node.attribute:
            found.setdefault(attr.name, set()).add(helper.get_attribute_value(attr))
        with_zero += len(node.input) > 3 and bool(node.input[3])
    if not nodes:
        return {}
    found.setdefault("accuracy_level", {0})  # ausente = 0 (a ativação fica no tipo de entrada)
    return {**{k: sorted(v) for k, v in found.items()}, "zero_points": with_zero, "nodes": len(nodes)}


def int4_recipe(path) -> dict:
    """A receita de um grafo int4, lida do próprio grafo: o que muda entre dois "int4" com o mesmo nome.

    Devolve {"ponto-zero": "assimétrico (com ponto-zero)" / "simétrico (sem ponto-zero)" / "misto",
    "accuracy_level": os valores dos MatMulNBits, "bloco": os block_size, "embeddings": em que formato a tabela de
    embeddings é lida (`GatherBlockQuantized` = 4 bits, ou `Gather` de um tensor float)}.
    """
    attrs = matmulnbits_attributes(path)
    if not attrs:
        raise ValueError(f"{path} não tem MatMulNBits: não é um grafo int4 só de pesos.")
    with_zero, nodes = attrs["zero_points"], attrs["nodes"]
    zero = ("assimétrico (com ponto-zero)" if with_zero == nodes else
            "simétrico (sem ponto-zero)" if with_zero == 0 else f"misto ({with_zero} de {nodes} com ponto-zero)")
    counts = op_counts(path)
    embeddings = (f"{attrs['bits'][0]} bits (GatherBlockQuantized)" if counts["GatherBlockQuantized"]
                  else "float (Gather)")
    return {"ponto-zero": zero, "accuracy_level": attrs["accuracy_level"], "bloco": attrs["block_size"],
            "embeddings": embeddings}
