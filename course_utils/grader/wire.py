"""Dados puros entre o kernel do aluno e o corretor: encode/decode e o canal autenticado da coleta.

`encode` transforma a resposta do aluno em estrutura de tipos básicos (números, textos, listas, dicionários,
tensores como listas de números); `decode` faz o caminho inverso no corretor, sem nunca executar nada vindo do
kernel. O canal: cada coleta é uma linha `hmac-sha256 base64(marshal(registro))` escrita num descritor de arquivo
que o kernel herdou; a chave chega ao kernel antes de qualquer código do aluno e não está em lugar nenhum que ele
leia (veja `kernel.py` e o modelo de ameaça em docs/correcao_em_lote.md).
"""

import base64
import binascii
import hashlib
import hmac
import json
import marshal
import math
import sys

from .spec import Code

COLLECT_MIME = "application/vnd.curso-llm-rapido.coleta+json"  # só a imitação usa: nenhuma coleta sai por aqui
MAX_PAYLOAD_BYTES = 4 * 2**20  # maior resposta coletada de um exercício
MAX_ELEMENTS = 1_000_000  # maior tensor/array aceito numa resposta
_TENSOR_DTYPES = {"float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"}
_BASIC = {bool: bool, int: int.__int__, float: float.__float__, str: str.__str__}
# guardados na importação: a coleta (no kernel) usa estes, não os atributos dos módulos que o aluno pode trocar
_b2a_base64, _sha256, _modules = binascii.b2a_base64, hashlib.sha256, sys.modules


def _basic(value):
    """Subclasses de int/float/str viram o tipo básico (sem passar por métodos que o aluno possa trocar)."""
    for base, convert in _BASIC.items():
        if isinstance(value, base):
            return value if type(value) is base else convert(value)
    return value


def encode(value, depth: int = 0):
    """Objeto Python/torch/numpy -> estrutura de tipos básicos (JSON e marshal aceitam)."""
    if depth > 32:
        raise ValueError("estrutura aninhada demais")
    if value is None or isinstance(value, (bool, int, float, str)):
        return _basic(value)
    if value is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(value, Code):
        return {"__code__": value.expr}
    if isinstance(value, (tuple, list)):
        items = [encode(v, depth + 1) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    torch, numpy = _modules.get("torch"), _modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        if dtype not in _TENSOR_DTYPES or value.numel() > MAX_ELEMENTS:
            return {"__object__": f"tensor {dtype} com {value.numel()} elementos"}
        tensor, device = torch.Tensor.detach(value), value.device.type
        if device == "meta":  # sem valores: só formato, tipo e dispositivo
            return {"__tensor__": dtype, "shape": list(tensor.shape), "device": device, "data": None}
        data = [_basic(x) for x in tensor.cpu().reshape(-1).tolist()]
        return {"__tensor__": dtype, "shape": [int(s) for s in tensor.shape], "device": device, "data": data}
    if numpy is not None and isinstance(value, numpy.generic):
        return encode(value.item(), depth + 1)
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.kind not in "biuf" or value.size > MAX_ELEMENTS:
            return {"__object__": f"array {value.dtype} com {value.size} elementos"}
        return {"__ndarray__": value.dtype.str, "shape": [int(s) for s in value.shape],
                "data": [_basic(x) for x in value.ravel().tolist()]}
    return {"__object__": type(value).__name__}


class Opaque:
    """Uma resposta que não é dado puro (ex.: um objeto qualquer); guarda só o nome do tipo."""

    def __init__(self, type_name: str):
        self.type_name = str(type_name)[:80]

    def __repr__(self):
        return f"<{self.type_name}>"


def decode(data, trusted: bool = False, depth: int = 0):
    """Inverso de `encode`. Com dados vindos do kernel (trusted=False) o resultado é sempre dado puro
    (números, textos, tensores na CPU ou no dispositivo "meta"); só as entradas do professor (trusted=True)
    podem trazer `Code`, que é avaliado aqui."""
    if depth > 34:
        raise ValueError("estrutura aninhada demais")
    again = lambda x: decode(x, trusted, depth + 1)  # noqa: E731
    if isinstance(data, list):
        return [again(x) for x in data]
    if not isinstance(data, dict):
        return data
    if "__tuple__" in data:
        return tuple(again(x) for x in data["__tuple__"])
    if "__ellipsis__" in data:
        return Ellipsis
    if "__dict__" in data:
        return {again(k): again(v) for k, v in data["__dict__"]}
    if "__code__" in data and trusted:
        import torch

        return eval(data["__code__"], {"torch": torch, "math": math})  # noqa: S307 - expressão do professor
    if data.get("__tensor__") in _TENSOR_DTYPES:
        import torch

        dtype = getattr(torch, data["__tensor__"])
        if data.get("device") == "meta":
            return torch.empty(data["shape"], dtype=dtype, device="meta")
        return torch.tensor(data["data"], dtype=dtype).reshape(data["shape"])
    if "__ndarray__" in data:
        import numpy

        dtype = numpy.dtype(data["__ndarray__"])
        if dtype.kind not in "biuf":
            raise ValueError("tipo de array não suportado")
        return numpy.array(data["data"], dtype=dtype).reshape(data["shape"])
    return Opaque(data.get("__object__", "objeto"))


def encode_cases(exercise) -> list:
    """As entradas ocultas de um FunctionExercise, como vão para o kernel."""
    forbidden = list(getattr(exercise, "forbidden", ()) or ())
    extra = {"forbidden": forbidden} if forbidden else {}
    return [{"args": encode(tuple(case.args)), "kwargs": encode(dict(case.kwargs)), **extra}
            for case in exercise.cases]


def cases_digest(cases_json) -> str:
    """Impressão digital das entradas ocultas que a coleta recebeu (confere que foram as do corretor)."""
    return _sha256((cases_json or "").encode("utf-8", "surrogatepass")).hexdigest()[:32]


# ----------------------------------------------------------------------- o canal autenticado

def seal(signer, body: bytes) -> bytes:
    """Uma linha do canal: assinatura e corpo. `signer` é um HMAC já com a chave (copiado a cada linha)."""
    mac = signer.copy()
    mac.update(body)
    return mac.hexdigest().encode("ascii") + b" " + _b2a_base64(body, newline=False) + b"\n"


def _plain(value, depth=0) -> bool:
    """Só tipos básicos (o que `encode` produz); nada de objetos de código num registro."""
    if depth > 40:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def read_channel(path, key: bytes, max_bytes: int = 256 * 2**20) -> tuple:
    """(registros autênticos, linhas recusadas) do canal da coleta. Registro: (nonce, nº, exercício, entradas,
    dado JSON). Uma linha sem a assinatura certa (escrita pelo código do aluno) só conta como recusada."""
    records, refused = [], 0
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError:
        return records, refused
    if len(raw) > max_bytes:
        refused += 1
    for line in raw[:max_bytes].split(b"\n"):
        if not line:
            continue
        mac, _, encoded = line.partition(b" ")
        try:
            body = base64.b64decode(encoded, validate=True)
            expected = hmac.new(key, body, "sha256").hexdigest().encode("ascii")
            if not hmac.compare_digest(mac, expected):
                raise ValueError("assinatura errada")
            record = marshal.loads(body)
            if type(record) is not tuple or len(record) != 5 or not _plain(record):
                raise ValueError("registro malformado")
            nonce, seq, exercise, digest, data = record
            records.append({"nonce": nonce, "seq": seq, "exercise": exercise, "cases": digest,
                            "data": json.dumps(data)})
        except (ValueError, TypeError, EOFError, binascii.Error, RecursionError):
            refused += 1
    return records, refused
