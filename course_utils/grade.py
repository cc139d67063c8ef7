"""Correção em lote das entregas dos alunos (professores): papermill, testes ocultos e boletim.

    python -m course_utils.grade run -n 04_janela_deslizante entregas/ --out correcao --smoke --jobs 2
    python -m course_utils.grade run -n 04 -n 05 entregas/ --shard 1/3 --out parte1    # numa de 3 máquinas
    python -m course_utils.grade merge parte1 parte2 parte3 --out correcao             # junta as partes
    curso-corrigir ...                                                                 # o mesmo comando

Como funciona, por entrega:
1. o arquivo é lido uma vez (e o hash do conteúdo decide se precisa corrigir de novo); JSON inválido, JSON que
   não é notebook e notebook de outra tarefa viram uma linha com o motivo, sem executar nada;
2. o corretor injeta, logo depois de cada célula de exercício, uma célula de coleta: ela lê a resposta do aluno
   (um valor, ou a função aplicada às entradas ocultas) e a devolve como dado JSON puro, marcado com um número
   aleatório desta execução (nonce); só as saídas das células injetadas, com o nonce certo, valem;
3. o notebook roda com papermill num processo próprio, num diretório temporário próprio, com os parâmetros
   do professor (ex.: SMOKE=True), tempo máximo por célula e total, e um kernel lançado por
   `course_utils.sandbox` (limites de memória, CPU e arquivo; sem rede, sem ver as outras entregas, o boletim
   nem os testes ocultos, quando o Linux deixa);
4. os dados coletados são julgados AQUI, no processo do corretor, contra as soluções de referência e os casos
   ocultos de `grading/` (que o kernel do aluno não enxerga): o código do aluno nunca vê a resposta esperada
   e nunca decide se passou.

Saídas em --out: `notas.csv` (uma linha por aluno, uma coluna por exercício, total), `feedback/<aluno>.md`
(retorno em pt-BR), `relatorio.html` (resumo), `registros/` (um JSON por entrega: o que foi coletado; é o que
permite retomar, e o que o `merge` junta) e `executados/` (cópias executadas, com as saídas cortadas).
"""

import argparse
import csv
import hashlib
import html
import importlib.util
import io
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
GRADING_DIR = ROOT / "grading"
COLLECT_MIME = "application/vnd.curso-llm-rapido.coleta+json"
KERNEL_NAME = "curso-correcao"
MAX_PAYLOAD_BYTES = 4 * 2**20  # maior resposta coletada de um exercício
MAX_ELEMENTS = 1_000_000  # maior tensor/array aceito numa resposta
STATUS = {"ok": "ok", "errors": "erros nas células", "stopped": "interrompida", "forged": "coleta forjada",
          "invalid": "inválida", "wrong": "outra tarefa"}


# ======================================================================= especificação dos testes ocultos
# Os arquivos grading/<notebook>.py usam estas classes; veja grading/README.md.

@dataclass
class Check:
    """Um teste oculto sobre o VALOR da resposta: judge(valor) -> (passou, mensagem)."""
    name: str
    points: float
    judge: Callable


@dataclass
class Case:
    """Uma entrada oculta para a FUNÇÃO do aluno: ela é chamada como f(*args, **kwargs) no kernel do aluno."""
    args: tuple
    points: float
    name: str = ""
    kwargs: dict = field(default_factory=dict)


@dataclass
class Code:
    """Entrada oculta que não é dado puro (ex.: um módulo do torch): uma expressão Python, avaliada no kernel do
    aluno e, para a referência, no corretor, com `torch` e `math` à mão. Ex.: Code("torch.nn.Linear(4, 4)")."""
    expr: str


@dataclass
class ValueExercise:
    """Exercício em que o aluno escreve um valor na variável `answer`."""
    id: str
    answer: str
    checks: list
    reference: object = None  # a resposta de referência (os testes conferem que ela passa nos checks)
    title: str = ""  # só para exercícios fora de course_utils.exercises (lá o título já existe)

    @property
    def points(self):
        return sum(c.points for c in self.checks)


@dataclass
class FunctionExercise:
    """Exercício em que o aluno escreve a função `answer`; compare(saída_do_aluno, saída_da_referência)."""
    id: str
    answer: str
    reference: Callable
    cases: list
    compare: Callable = None
    title: str = ""

    @property
    def points(self):
        return sum(c.points for c in self.cases)


def as_number(value) -> float:
    """Número (int, float, escalar numpy ou tensor de um elemento) como float; TypeError se não for."""
    if hasattr(value, "numel") and callable(value.numel):  # tensor já decodificado
        if value.numel() != 1 or str(value.dtype) == "torch.bool":
            raise TypeError(f"esperava um número, veio um tensor {str(value.dtype).replace('torch.', '')} "
                            f"com {value.numel()} elemento(s)")
        value = value.item()
    elif hasattr(value, "dtype") and getattr(value, "size", 0) == 1:  # array numpy de um elemento
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"esperava um número, veio {type(value).__name__}")
    return float(value)


def _is_close(got, expected, rel_tol, abs_tol) -> tuple:
    try:
        value = as_number(got)
    except TypeError as exc:
        return False, f"tipo errado: {exc}"
    if math.isclose(value, as_number(expected), rel_tol=rel_tol, abs_tol=abs_tol):
        return True, "correto"
    return False, "valor diferente do esperado"


def number(expected: float, rel_tol: float = 1e-6, abs_tol: float = 0.0) -> Callable:
    """Juiz de Check para um valor numérico, com tolerância."""
    return lambda value: _is_close(value, expected, rel_tol, abs_tol)


def close(rel_tol: float = 1e-6, abs_tol: float = 0.0) -> Callable:
    """compare para funções que devolvem um número: confere com a saída da referência, com tolerância."""
    return lambda got, expected: _is_close(got, expected, rel_tol, abs_tol)


def same_tensor(got, expected):
    """compare para funções que devolvem tensor: mesmo tipo (dtype), mesmo formato, mesmos valores."""
    import torch

    if not isinstance(got, torch.Tensor):
        return False, f"devolveu {type(got).__name__}; esperava um tensor"
    if got.dtype != expected.dtype:
        return False, f"devolveu um tensor {str(got.dtype).replace('torch.', '')}; o tipo esperado é outro"
    if got.shape != expected.shape:
        return False, f"formato {list(got.shape)} diferente do esperado"
    if not torch.equal(got, expected):
        wrong = int((got != expected).sum())
        return False, f"valores diferentes em {wrong} de {got.numel()} posições"
    return True, "correto"


def same_value(got, expected):
    """compare estrito para int, str, bool: mesmo tipo e mesmo valor."""
    if type(got) is not type(expected):
        return False, f"devolveu {type(got).__name__}; esperava {type(expected).__name__}"
    return (True, "correto") if got == expected else (False, "valor diferente do esperado")


@dataclass
class Assignment:
    """Os testes ocultos de um notebook, carregados de grading/<notebook>.py."""
    notebook: str
    exercises: list
    titles: dict
    collection_digest: str  # muda quando as entradas ocultas mudam (aí é preciso executar de novo)

    @property
    def ids(self):
        return [ex.id for ex in self.exercises]

    @property
    def points(self):
        return sum(ex.points for ex in self.exercises)


def find_spec(notebook: str, spec_dir=GRADING_DIR) -> Path:
    """grading/<notebook>.py; aceita o nome inteiro ou só o número ("04")."""
    spec_dir = Path(spec_dir)
    exact = spec_dir / f"{notebook}.py"
    if exact.exists():
        return exact
    matches = sorted(p for p in spec_dir.glob(f"{notebook}*.py") if not p.name.startswith("_"))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.stem for p in sorted(spec_dir.glob("[0-9]*.py")))
    raise SystemExit(f"Não há testes ocultos para {notebook!r} em {spec_dir} (disponíveis: {known or 'nenhum'}).")


def load_assignment(notebook: str, spec_dir=GRADING_DIR) -> Assignment:
    """Importa o arquivo de testes ocultos e confere que ele está bem formado."""
    path = find_spec(notebook, spec_dir)
    module_spec = importlib.util.spec_from_file_location(f"_grading_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    exercises = list(module.EXERCISES)
    for ex in exercises:
        if not isinstance(ex, (ValueExercise, FunctionExercise)) or ex.points <= 0:
            raise SystemExit(f"{path}: {ex!r} precisa ser ValueExercise/FunctionExercise com pontos > 0.")
    from .exercises import EXERCISES

    titles = {ex.id: EXERCISES[ex.id].title if ex.id in EXERCISES else (ex.title or ex.id) for ex in exercises}
    collection = [(ex.id, ex.answer, encode_cases(ex) if isinstance(ex, FunctionExercise) else None)
                  for ex in exercises]
    digest = hashlib.sha256(json.dumps(collection, sort_keys=True).encode()).hexdigest()
    return Assignment(path.stem, exercises, titles, digest)


# ======================================================================= dados puros (kernel <-> corretor)

_TENSOR_DTYPES = {"float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"}


def encode(value, depth: int = 0):
    """Objeto Python/torch/numpy -> estrutura JSON (o json.dumps transforma subclasses em tipos básicos)."""
    if depth > 32:
        raise ValueError("estrutura aninhada demais")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if value is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(value, Code):
        return {"__code__": value.expr}
    if isinstance(value, (tuple, list)):
        items = [encode(v, depth + 1) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    torch, numpy = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        if dtype not in _TENSOR_DTYPES or value.numel() > MAX_ELEMENTS:
            return {"__object__": f"tensor {dtype} com {value.numel()} elementos"}
        tensor, device = torch.Tensor.detach(value), value.device.type
        if device == "meta":  # sem valores: só formato, tipo e dispositivo
            return {"__tensor__": dtype, "shape": list(tensor.shape), "device": device, "data": None}
        data = tensor.cpu().reshape(-1).tolist()
        return {"__tensor__": dtype, "shape": list(tensor.shape), "device": device, "data": data}
    if numpy is not None and isinstance(value, numpy.generic):
        return encode(value.item(), depth + 1)
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.kind not in "biuf" or value.size > MAX_ELEMENTS:
            return {"__object__": f"array {value.dtype} com {value.size} elementos"}
        return {"__ndarray__": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
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


def encode_cases(exercise: FunctionExercise) -> list:
    return [{"args": encode(tuple(case.args)), "kwargs": encode(dict(case.kwargs))} for case in exercise.cases]


# ======================================================================= coleta (roda no kernel do aluno)

class _CallTimeout(Exception):
    pass


def _guarded(fn, timeout_s: float) -> dict:
    """fn() com tempo máximo (SIGALRM, na thread principal); exceções viram {"error": [tipo, mensagem]}."""
    import signal

    use_alarm = threading.current_thread() is threading.main_thread() and timeout_s
    if use_alarm:
        def _raise(*_):
            raise _CallTimeout(f"passou de {timeout_s:g} s")
        previous = signal.signal(signal.SIGALRM, _raise)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001 - o código do aluno pode levantar qualquer coisa
        name = "TempoEsgotado" if isinstance(exc, _CallTimeout) else type(exc).__name__
        try:
            message = str(exc)[:300]
        except BaseException:  # noqa: BLE001
            message = ""
        return {"error": [name, message]}
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def collect(nonce: str, exercise: str, answer: str, cases_json: str = None, call_timeout_s: float = 10.0) -> None:
    """Chamada pela célula que o corretor injeta: publica a resposta de `answer` como dado JSON.

    Nada aqui decide se a resposta está certa; o corretor julga fora deste processo.
    """
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    namespace = shell.user_ns if shell is not None else {}
    if answer not in namespace:
        data = {"missing": True}
    elif cases_json is None:
        data = _guarded(lambda: {"value": encode(namespace[answer])}, call_timeout_s)
    elif not callable(namespace[answer]):
        data = {"not_callable": type(namespace[answer]).__name__}
    else:
        function, results = namespace[answer], []
        for case in json.loads(cases_json):
            def call(case=case):
                output = function(*decode(case["args"], trusted=True), **decode(case["kwargs"], trusted=True))
                return {"output": encode(output)}
            results.append(_guarded(call, call_timeout_s))
        data = {"results": results}
    try:
        text = json.dumps(data)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"error": ["RespostaIlegível", str(exc)[:200]]})
    if len(text) > MAX_PAYLOAD_BYTES:
        text = json.dumps({"error": ["RespostaGrandeDemais", f"{len(text)} bytes"]})
    display({COLLECT_MIME: {"nonce": nonce, "exercise": exercise, "data": text},
             "text/plain": f"[corretor] resposta do exercício {exercise} coletada"}, raw=True)


# ======================================================================= entregas

@dataclass
class Submission:
    path: Path
    relpath: str  # caminho relativo à pasta de entregas: identifica a entrega (registros, shards)
    student: str
    data: bytes = None
    sha256: str = ""
    too_big: bool = False

    @property
    def record_name(self):
        return hashlib.sha1(self.relpath.encode()).hexdigest()[:16]


def find_submissions(paths, max_file_mb: int = 20) -> list:
    """Entregas em pastas (alunos/<aluno>.ipynb ou alunos/<aluno>/<qualquer>.ipynb) ou arquivos soltos."""
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in file.parts or not file.is_file():
                    continue
                rel = file.relative_to(path)
                found.append(Submission(file, rel.as_posix(), rel.parts[0] if len(rel.parts) > 1 else rel.stem))
        elif path.is_file():
            found.append(Submission(path, path.name, path.stem))
        else:
            raise SystemExit(f"Entrega não encontrada: {path}")
    for sub in found:
        sub.too_big = sub.path.stat().st_size > max_file_mb * 2**20
        sub.data = b"" if sub.too_big else sub.path.read_bytes()
        sub.sha256 = hashlib.sha256(sub.data).hexdigest() if not sub.too_big else f"grande-{sub.path.stat().st_size}"
    return found


def select_shard(submissions: list, shard: tuple) -> list:
    """--shard K/N: a K-ésima de N partes (alternando na ordem dos caminhos, para equilibrar)."""
    k, n = shard
    ordered = sorted(submissions, key=lambda s: s.relpath)
    return [s for i, s in enumerate(ordered) if i % n == k - 1]


def parse_notebook(data: bytes):
    """(notebook, None) ou (None, motivo em pt-BR)."""
    import nbformat

    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"o arquivo não é JSON (um .ipynb é um JSON): {str(exc)[:120]}"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list) or "nbformat" not in raw:
        return None, "o arquivo é JSON, mas não é um notebook (faltam 'cells' e 'nbformat')"
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - qualquer falha aqui é "notebook inválido"
        return None, f"o arquivo é JSON, mas não é um notebook válido ({type(exc).__name__}: {str(exc)[:150]})"
    return nb, None


_CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.\d+)["']""")


def _exercise_of(cell) -> str | None:
    meta = cell.metadata.get("curso", {})
    if isinstance(meta, dict) and isinstance(meta.get("exercicio"), str):
        return meta["exercicio"]
    found = _CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []
    return found[-1] if found else None


def detect_assignment(nb, assignments: dict, filename: str):
    """(notebook, None) ou (None, motivo): pelos exercícios que o notebook traz; sem nenhum, pelo nome."""
    present = {ex for cell in nb.cells if (ex := _exercise_of(cell))}
    overlap = {name: len(present & set(a.ids)) for name, a in assignments.items()}
    best = max(overlap.values(), default=0)
    winners = [name for name, n in overlap.items() if n == best]
    if present and not best:
        return None, (f"notebook de outra tarefa: traz os exercícios {', '.join(sorted(present))}, "
                      f"e esta correção é de {', '.join(assignments)}")
    if len(winners) > 1:  # empate (ou nenhum exercício achado): o número do notebook no nome do arquivo decide
        winners = [name for name in winners if re.search(rf"(^|\D){name[:2]}(\D|$)", filename)]
    if len(winners) == 1:
        return winners[0], None
    return None, "não deu para saber de qual tarefa é o notebook (nenhuma célula de exercício reconhecida)"


def _collect_cell(nonce: str, exercise, call_timeout_s: float, ids_label: str):
    import nbformat

    cases = json.dumps(encode_cases(exercise)) if isinstance(exercise, FunctionExercise) else None
    source = (f"# Célula injetada pelo corretor: coleta a resposta do exercício {ids_label}.\n"
              f"from course_utils.grade import collect as _curso_collect\n"
              f"_curso_collect({nonce!r}, {exercise.id!r}, {exercise.answer!r}, {cases!r}, {call_timeout_s!r})\n"
              f"del _curso_collect")
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["curso-coleta"]
    cell.metadata["curso_correcao"] = {"coleta": exercise.id}
    return cell


def prepare_notebook(nb, assignment: Assignment, nonce: str, call_timeout_s: float):
    """Limpa saídas, numera as células do aluno e injeta uma célula de coleta depois de cada exercício.

    Devolve (notebook, {exercício: nº da célula de código do exercício, ou None se ela não foi achada}).
    """
    by_id = {ex.id: ex for ex in assignment.exercises}
    last_cell = {}
    code_number = 0
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("curso_correcao", None)
        if "curso-coleta" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "curso-coleta"]
        if cell.cell_type != "code":
            continue
        code_number += 1
        cell.outputs, cell.execution_count = [], None
        cell.metadata["curso_correcao"] = {"celula": code_number}
        ex = _exercise_of(cell)
        if ex in by_id:
            last_cell[ex] = index
    cells, where = [], {}
    inserts = {}
    for ex_id, index in last_cell.items():
        inserts.setdefault(index, []).append(ex_id)
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        for ex_id in inserts.get(index, []):
            cells.append(_collect_cell(nonce, by_id[ex_id], call_timeout_s, ex_id))
            where[ex_id] = cell.metadata["curso_correcao"]["celula"]
    for ex in assignment.exercises:
        if ex.id not in where:
            cells.append(_collect_cell(nonce, ex, call_timeout_s, f"{ex.id} (célula do exercício não achada)"))
            where[ex.id] = None
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (correção)", "language": "python"}
    nb.metadata.setdefault("language_info", {})["name"] = "python"
    return nb, where


# ======================================================================= execução (processo "executor")

@dataclass
class Limits:
    timeout_s: int = 1800  # o notebook inteiro
    cell_timeout_s: int = 600  # cada célula (ao passar, o kernel é interrompido e a execução segue)
    call_timeout_s: float = 10.0  # cada chamada da função do aluno numa entrada oculta
    memory_mb: int = 8192  # memória virtual do kernel (RLIMIT_AS)
    file_mb: int = 512  # maior arquivo que o kernel pode escrever
    scratch_mb: int = 1024  # tamanho do diretório de trabalho (tmpfs, quando isolado)
    max_output_kb: int = 256  # saída guardada por célula; o resto é cortado
    threads: int = 1  # threads de CPU por kernel (OMP_NUM_THREADS)
    isolation: str = "auto"  # auto | namespaces | nenhum

    def execution_key(self) -> dict:
        """O que muda o resultado da execução (threads e isolamento não mudam a nota)."""
        keep = ("timeout_s", "cell_timeout_s", "call_timeout_s", "memory_mb", "file_mb", "scratch_mb",
                "max_output_kb")
        return {k: getattr(self, k) for k in keep}


_SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY|AUTH", re.I)
DEAD_PROXY = "http://127.0.0.1:9"  # porta "discard": nenhuma conexão por proxy chega a lugar nenhum


def kernel_environment(threads: int, scratch: Path) -> dict:
    """Ambiente do kernel: sem segredos, offline, proxies mortos, 1 thread por kernel, caches no tmp."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_ENV.search(k)}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[name] = DEAD_PROXY
    local = "localhost,127.0.0.1,::1"  # o servidor de teste de um notebook (ex.: o 00) roda no próprio kernel
    env.update(NO_PROXY=local, no_proxy=local, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PIP_NO_INDEX="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", TOKENIZERS_PARALLELISM="false",
               TMPDIR=str(scratch), MPLCONFIGDIR=str(scratch / ".matplotlib"), IPYTHONDIR=str(scratch / ".ipython"),
               JUPYTER_RUNTIME_DIR=str(scratch / ".jupyter"), TRITON_CACHE_DIR=str(scratch / ".triton"),
               HF_MODULES_CACHE=str(scratch / ".hf_modules"))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _register_engine():
    """Um engine do papermill igual ao padrão, mas que corta a saída de cada célula (ex.: 50 MB de print)."""
    from nbformat.v4 import new_output
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class CappedClient(PapermillNotebookClient):
        max_output_bytes = 256 * 1024
        max_payloads = 64

        def output(self, outs, msg, display_id, cell_index):
            """Guarda a saída até o limite por célula (bytes; e no máximo `max_payloads` coletas)."""
            if not hasattr(self, "_used"):
                self._used = {}
            content = msg.get("content", {})
            is_payload = COLLECT_MIME in (content.get("data") or {})
            key = (cell_index, is_payload)
            size = 1 if is_payload else len(json.dumps(content, default=str))
            if self._used.get(key, 0) + size > (self.max_payloads if is_payload else self.max_output_bytes):
                meta = self.nb.cells[cell_index].metadata.setdefault("curso_correcao", {})
                if not meta.get("cortada"):
                    meta["cortada"] = True
                    outs.append(new_output("stream", name="stderr",
                                           text="\n[... saída cortada pelo corretor: passou do limite ...]\n"))
                return None
            self._used[key] = self._used.get(key, 0) + size
            return super().output(outs, msg, display_id, cell_index)

    class CappedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None,
                                     max_output_bytes=256 * 1024, **kwargs):
            kwargs.pop("input_path", None)
            client = CappedClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                  kernel_name=kernel_name, log_output=log_output, **kwargs)
            client.max_output_bytes = max_output_bytes
            return client.execute()

    papermill_engines.register(KERNEL_NAME, CappedEngine)


def _sandbox_command(job: dict) -> list:
    limits = job["limits"]
    cmd = [sys.executable, "-m", "course_utils.sandbox", "--memory-mb", str(limits["memory_mb"]),
           "--cpu-s", str(int(limits["timeout_s"] * max(1, limits["threads"]) + 60)),
           "--file-mb", str(limits["file_mb"]), "--scratch", job["kernel_dir"],
           "--scratch-mb", str(limits["scratch_mb"])]
    if job["isolate"]:
        cmd.append("--isolate")
        cmd += [a for path in job["hide"] for a in ("--hide", path)]
        cmd += [a for path in job["read_only"] for a in ("--read-only", path)]
        cmd += ["--share", job["ipc_dir"]]
    return cmd + ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def execute_job(job_dir: Path) -> dict:
    """Executa o notebook preparado de um job com papermill; devolve (e grava) o que foi coletado."""
    import papermill as pm
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    limits = job["limits"]
    spec_dir = job_dir / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": _sandbox_command(job), "display_name": "Python 3 (correção)", "language": "python"}))
    env = kernel_environment(limits["threads"], Path(job["kernel_dir"]))
    os.environ.clear()
    os.environ.update(env)
    os.environ["JUPYTER_PATH"] = str(job_dir / "jupyter")
    _register_engine()
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc",
                            connection_file=str(Path(job["ipc_dir"]) / "conexao.json"))
    state = {"deadline": False}

    def kill_kernel():
        state["deadline"] = True
        pgid = getattr(km.provisioner, "pgid", None) if km.provisioner else None
        if pgid:
            try:
                os.killpg(pgid, 9)
            except OSError:
                pass

    timer = threading.Timer(limits["timeout_s"], kill_kernel)
    timer.daemon = True
    start, error = time.time(), None
    timer.start()
    try:
        pm.execute_notebook(str(job_dir / "entrada.ipynb"), str(job_dir / "saida.ipynb"),
                            parameters=job["parameters"], engine_name=KERNEL_NAME, kernel_name=KERNEL_NAME,
                            km=km, cwd=job["kernel_dir"], progress_bar=False, log_output=False,
                            start_timeout=60, execution_timeout=limits["cell_timeout_s"], allow_errors=True,
                            interrupt_on_timeout=True, max_output_bytes=limits["max_output_kb"] * 1024)
    except pm.PapermillExecutionError:
        pass  # erros de célula: lidos do notebook executado
    except Exception as exc:  # noqa: BLE001 - kernel morto, tempo esgotado, kernel que não sobe...
        error = "deadline" if state["deadline"] else f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        timer.cancel()
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001
            kill_kernel()
    result = summarize_execution(job_dir / "saida.ipynb", job["nonce"], limits["cell_timeout_s"])
    result.update(error=error, seconds=round(time.time() - start, 1))
    (job_dir / "resultado.json").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return result


def _first_line(source: str) -> str:
    line = next((l.strip() for l in source.splitlines() if l.strip()), "").replace("`", "'")
    return line[:60] + ("…" if len(line) > 60 else "")


def summarize_execution(executed_path: Path, nonce: str, cell_timeout_s: float) -> dict:
    """Do notebook executado: respostas coletadas (só células injetadas, nonce certo) e problemas por célula."""
    import nbformat

    result = {"payloads": [], "foreign_payloads": [], "cells": [], "last_cell": None, "ran_to_end": False}
    if not executed_path.exists():
        return result
    nb = nbformat.read(str(executed_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("curso_correcao", {})
        pm_meta = cell.metadata.get("papermill", {})
        if pm_meta.get("start_time"):
            result["last_cell"] = meta.get("celula", result["last_cell"])
        for out in cell.outputs:
            payload = out.get("data", {}).get(COLLECT_MIME)
            if payload is None:
                continue
            genuine = ("coleta" in meta and isinstance(payload, dict) and payload.get("nonce") == nonce
                       and payload.get("exercise") == meta["coleta"] and isinstance(payload.get("data"), str))
            if genuine:
                result["payloads"].append({"exercise": meta["coleta"], "data": payload["data"]})
            else:
                result["foreign_payloads"].append(meta.get("celula"))
        errors = [o for o in cell.outputs if o.output_type == "error"]
        duration = pm_meta.get("duration") or 0
        if "celula" in meta and (errors or meta.get("cortada")):
            entry = {"cell": meta["celula"], "head": _first_line(cell.source), "truncated": bool(meta.get("cortada"))}
            if errors:
                entry.update(ename=str(errors[0].ename)[:80], evalue=" ".join(str(errors[0].evalue).split())[:300],
                             timeout=errors[0].ename == "KeyboardInterrupt" and duration >= 0.9 * cell_timeout_s)
            result["cells"].append(entry)
    result["ran_to_end"] = bool(nb.cells) and bool(nb.cells[-1].metadata.get("papermill", {}).get("end_time"))
    return result


# ======================================================================= orquestração (processo do professor)

@dataclass
class Options:
    notebooks: list
    out_dir: Path
    parameters: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    jobs: int = 1
    shard: tuple = (1, 1)
    force: bool = False
    progress: bool = True
    spec_dir: Path = GRADING_DIR
    keep_jobs: bool = False  # mantém os diretórios temporários (para depurar o corretor)


def probe_isolation(requested: str) -> dict:
    """Qual isolamento o kernel vai ter aqui; 'namespaces' exigido e indisponível é erro."""
    if requested == "nenhum":
        return {"isolation": "nenhum", "detail": "desligado com --isolation nenhum"}
    done = subprocess.run([sys.executable, "-m", "course_utils.sandbox", "--probe"], capture_output=True,
                          text=True, timeout=60)
    try:
        info = json.loads(done.stdout)
    except ValueError:
        info = {"isolation": "nenhum", "detail": f"o teste do isolamento falhou: {done.stderr[-300:]}"}
    if requested == "namespaces" and info["isolation"] != "namespaces":
        raise SystemExit(f"Isolamento por namespaces indisponível aqui: {info['detail']}.")
    return info


def _protected_paths() -> list:
    """Só leitura no kernel, nunca escondido: o código do curso, o Python, os caches do modelo e a pasta pessoal
    (um kernel hostil não pode deixar um .bashrc ou um script de inicialização do IPython para o professor)."""
    home = Path.home()
    paths = [ROOT, Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parent, home,
             Path(os.environ.get("COURSE_CACHE_DIR", home / ".cache" / "curso-llm-rapido")),
             Path(os.environ.get("HF_HOME", home / ".cache" / "huggingface"))]
    return [p.resolve() for p in paths if p.exists()]


def prepare_model_cache() -> None:
    """Converte o modelo offline do curso AGORA, se preciso: no kernel isolado o cache é só leitura."""
    from .models import REFERENCE_MODEL_ID, ModelNotAvailableError, offline_model_dir

    try:
        offline_model_dir(REFERENCE_MODEL_ID)
    except ModelNotAvailableError:
        pass  # sem a cópia offline (ex.: só Hub): cada notebook resolve do jeito dele


def hidden_paths(candidates, warn=print) -> list:
    """Pastas escondidas do kernel; nunca uma que contenha o código, o Python ou a pasta pessoal."""
    keep = _protected_paths() + [Path("/")]
    hidden = []
    for path in candidates:
        path = Path(path).resolve()
        if any(path == k or path in k.parents for k in keep):
            warn(f"⚠️  {path} não pode ser escondida do kernel (contém o código do curso, o Python ou a pasta "
                 f"pessoal); guarde as entregas e a saída em outra pasta para isolá-las.")
        elif path not in hidden:
            hidden.append(path)
    return hidden


def execution_key(sub: Submission, opts: Options, assignments: dict) -> str:
    key = {"file": sub.sha256, "parameters": opts.parameters, "limits": opts.limits.execution_key(),
           "collection": {name: a.collection_digest for name, a in sorted(assignments.items())}}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _base_record(sub: Submission, key: str, opts: Options) -> dict:
    return {"file": sub.relpath, "student": sub.student, "sha256": sub.sha256, "key": key,
            "notebooks": list(opts.notebooks), "assignment": None, "status": "invalid", "reason": "",
            "problems": [], "answers": {}, "where": {}, "seconds": 0.0, "executed": None,
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _run_worker(job_dir: Path, timeout_s: float, nonce: str, cell_timeout_s: float) -> tuple:
    """Roda o executor num processo (e sessão) próprio; devolve (resultado ou None, mensagem de erro).

    Se o executor morrer ou travar, aproveita o que o papermill já tinha salvo do notebook executado.
    """
    log_path = job_dir / "executor.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.grade", "_execute", str(job_dir)],
                                cwd=job_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
            error = None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # o kernel morre junto (PR_SET_PDEATHSIG no sandbox)
            proc.wait()
            error = "o executor não terminou no tempo total e foi encerrado"
    result_path = job_dir / "resultado.json"
    if error is None and result_path.exists() and result_path.stat().st_size < 64 * 2**20:
        return json.loads(result_path.read_text(encoding="utf-8")), None
    if error is None:
        tail = log_path.read_bytes()[-400:].decode("utf-8", "replace").strip()
        error = f"o executor falhou (código {proc.returncode})" + (f": {tail}" if tail else "")
    partial = job_dir / "saida.ipynb"
    if partial.exists() and partial.stat().st_size < 32 * 2**20:
        try:
            return {**summarize_execution(partial, nonce, cell_timeout_s), "error": error}, error
        except Exception:  # noqa: BLE001 - notebook salvo pela metade
            pass
    return None, error


def _describe_cell(entry: dict) -> str:
    return f"célula de código nº {entry['cell']} (`{entry['head']}`)"


def _problems(result: dict, limits: dict) -> list:
    problems = []
    for entry in result["cells"]:
        where = _describe_cell(entry)
        if entry.get("timeout"):
            problems.append(f"{where}: passou de {limits['cell_timeout_s']} s e foi interrompida")
        elif entry.get("ename"):
            problems.append(f"{where}: {entry['ename']}: {entry['evalue']}".rstrip(": "))
        if entry.get("truncated"):
            problems.append(f"{where}: saída cortada (passou de {limits['max_output_kb']} KB)")
    for cell in sorted({c for c in result["foreign_payloads"] if c}):
        problems.append(f"célula de código nº {cell} imitou a saída do corretor: ignorada")
    return problems


def _interpret(record: dict, result: dict, error: str, limits: dict) -> dict:
    """Junta o resultado do executor ao registro da entrega."""
    if result is None:
        record.update(status="stopped", reason=error)
        return record
    record["seconds"] = result.get("seconds", 0.0)
    record["problems"] = _problems(result, limits)
    by_exercise = {}
    for payload in result["payloads"]:
        by_exercise.setdefault(payload["exercise"], []).append(payload["data"])
    forged = sorted(ex_id for ex_id, texts in by_exercise.items() if len(texts) > 1)
    for ex_id, texts in by_exercise.items():
        if ex_id in forged:
            record["answers"][ex_id] = {"forged": True}
            continue
        try:
            record["answers"][ex_id] = json.loads(texts[0])
        except (ValueError, RecursionError):
            record["answers"][ex_id] = {"error": ["RespostaIlegível", ""]}
    last = f"na célula de código nº {result['last_cell']}" if result.get("last_cell") else "ao iniciar"
    if error == "deadline":
        record.update(status="stopped", reason=f"tempo total esgotado ({limits['timeout_s']} s) {last}")
    elif error and ("DeadKernel" in error or "Kernel died" in error):
        record.update(status="stopped", reason=f"o kernel morreu {last} (memória, os._exit ou falha nativa)")
    elif error:
        record.update(status="stopped", reason=f"a execução parou {last}: {error}")
    elif not result["ran_to_end"]:
        record.update(status="stopped", reason=f"a execução parou {last}")
    elif any(e.get("ename") for e in result["cells"]):
        record.update(status="errors", reason=f"{sum(bool(e.get('ename')) for e in result['cells'])} célula(s) "
                                              f"com erro; a execução seguiu até o fim")
    else:
        record.update(status="ok", reason="")
    if forged:
        why = (f"a coleta de {', '.join(forged)} apareceu mais de uma vez (alguma célula imitou o corretor); "
               f"essas respostas valem zero")
        record.update(status="forged", reason=why + (f"; {record['reason']}" if record["reason"] else ""))
    return record


def execute_submission(sub: Submission, assignments: dict, opts: Options, key: str, isolation: dict,
                       hidden: list, work_root: Path) -> dict:
    """Uma entrega do começo ao fim (nunca levanta exceção por causa dela): devolve o registro."""
    record = _base_record(sub, key, opts)
    if sub.too_big:
        record["reason"] = "arquivo grande demais para um notebook de exercícios"
        return record
    nb, why = parse_notebook(sub.data)
    if nb is None:
        record["reason"] = why
        return record
    name, why = detect_assignment(nb, assignments, Path(sub.relpath).name)
    if name is None:
        record.update(status="wrong", reason=why)
        return record
    record["assignment"] = name
    nonce = secrets.token_hex(16)
    nb, record["where"] = prepare_notebook(nb, assignments[name], nonce, opts.limits.call_timeout_s)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=work_root))
    try:
        import nbformat

        (job_dir / "kernel").mkdir()
        (job_dir / "ipc").mkdir()
        nbformat.write(nb, str(job_dir / "entrada.ipynb"))
        job = {"nonce": nonce, "parameters": opts.parameters, "limits": asdict(opts.limits),
               "kernel_dir": str(job_dir / "kernel"), "ipc_dir": str(job_dir / "ipc"),
               "isolate": isolation["isolation"] == "namespaces", "hide": [str(p) for p in hidden],
               "read_only": [str(p) for p in _protected_paths()]}
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        result, error = _run_worker(job_dir, opts.limits.timeout_s + 120, nonce, opts.limits.cell_timeout_s)
        if result is not None:
            error = result.get("error")
        record = _interpret(record, result, error, asdict(opts.limits))
        executed = job_dir / "saida.ipynb"
        if executed.exists() and executed.stat().st_size < 32 * 2**20:
            target = opts.out_dir / "executados" / f"{sub.record_name}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, target)
            record["executed"] = f"executados/{target.name}"
    finally:
        if not opts.keep_jobs:
            shutil.rmtree(job_dir, ignore_errors=True)
    return record


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def load_records(out_dir: Path) -> dict:
    """{arquivo relativo: registro} de out/registros; arquivos ilegíveis são ignorados."""
    records = {}
    for path in sorted((Path(out_dir) / "registros").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            previous = records.get(record["file"])
            if previous is None or record["graded_at"] >= previous["graded_at"]:
                records[record["file"]] = record
        except (ValueError, KeyError, TypeError):
            continue
    return records


def _execute_pending(todo: list, keys: dict, assignments: dict, opts: Options, isolation: dict,
                     submission_paths) -> dict:
    """Executa as entregas de `todo` (--jobs em paralelo), gravando o registro de cada uma assim que termina."""
    from tqdm.auto import tqdm

    out_dir = Path(opts.out_dir)
    work_root = Path(tempfile.mkdtemp(prefix="curso-correcao-"))
    roots = {Path(p).resolve() if Path(p).is_dir() else Path(p).resolve().parent for p in submission_paths}
    hidden = hidden_paths([work_root, out_dir, opts.spec_dir, *roots], warn=tqdm.write)
    records = {}
    bar = tqdm(total=len(todo), desc="entregas", unit="entrega", disable=not opts.progress)
    try:
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            futures = {pool.submit(execute_submission, s, assignments, opts, keys[s.relpath], isolation, hidden,
                                   work_root): s for s in todo}
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # noqa: BLE001 - falha do corretor: a entrega não se perde
                    record = _base_record(sub, "", opts)
                    record.update(status="stopped", reason=f"erro do corretor: {type(exc).__name__}: {exc}")
                record["isolation"] = isolation["isolation"]
                _write_json(out_dir / "registros" / f"{sub.record_name}.json", record)
                records[sub.relpath] = record
                evaluation = evaluate_record(record, assignments)
                bar.update(1)
                tqdm.write(f"{'✅' if record['status'] == 'ok' else '⚠️ '} {sub.relpath}: "
                           f"{_fmt(evaluation['total'])}/{_fmt(evaluation['max'])} ({STATUS[record['status']]}"
                           f"{', ' + record['reason'] if record['reason'] else ''}) em {record['seconds']} s")
    finally:
        bar.close()
        if opts.keep_jobs:
            tqdm.write(f"diretórios dos jobs mantidos em {work_root}")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    return records


def _changed_during_grading(submissions: list) -> list:
    """Entregas cujo arquivo mudou desde a leitura (sem isolamento, um kernel hostil poderia fazer isso)."""
    return [s.relpath for s in submissions if not s.too_big and s.path.exists()
            and hashlib.sha256(s.path.read_bytes()).hexdigest() != s.sha256]


def grade(submission_paths, opts: Options) -> tuple:
    """Corrige as entregas; devolve (registros, avaliações), em ordem de caminho, e grava os relatórios."""
    from tqdm.auto import tqdm

    assignments = {a.notebook: a for a in (load_assignment(n, opts.spec_dir) for n in opts.notebooks)}
    opts.notebooks = list(assignments)
    import course_utils.exercises  # noqa: F401 - juízes carregados antes de qualquer kernel rodar

    submissions = sorted(select_shard(find_submissions(submission_paths), opts.shard), key=lambda s: s.relpath)
    if not submissions:
        raise SystemExit(f"Nenhuma entrega (.ipynb) em {', '.join(map(str, submission_paths))} "
                         f"(parte {opts.shard[0]}/{opts.shard[1]}).")
    out_dir = Path(opts.out_dir)
    (out_dir / "registros").mkdir(parents=True, exist_ok=True)
    isolation = probe_isolation(opts.limits.isolation)
    if isolation["isolation"] == "namespaces":
        prepare_model_cache()
    else:
        tqdm.write(f"⚠️  sem isolamento de rede e de arquivos ({isolation['detail']}): só limites de recursos, "
                   f"proxies apontando para {DEAD_PROXY} e HF_HUB_OFFLINE=1. Rode num container ou com um "
                   f"usuário que não enxergue as outras entregas (veja docs/correcao_em_lote.md).")
    previous = {} if opts.force else load_records(out_dir)
    keys = {s.relpath: execution_key(s, opts, assignments) for s in submissions}
    todo = [s for s in submissions if previous.get(s.relpath, {}).get("key") != keys[s.relpath]]
    records = {s.relpath: previous[s.relpath] for s in submissions if s not in todo}
    if records:
        tqdm.write(f"{len(records)} entrega(s) já corrigida(s) e sem mudança: puladas (use --force para refazer)")
    records.update(_execute_pending(todo, keys, assignments, opts, isolation, submission_paths))
    changed = _changed_during_grading(submissions)
    if changed:
        tqdm.write(f"⚠️  entregas alteradas durante a correção (valeu o conteúdo lido no início): "
                   f"{', '.join(changed)}")
    ordered = [records[s.relpath] for s in submissions]
    info = {**isolation, "parameters": opts.parameters, "limits": asdict(opts.limits)}
    return ordered, write_reports(ordered, assignments, out_dir, info)


def merge(inputs, out_dir: Path, spec_dir=GRADING_DIR) -> tuple:
    """Junta os registros de várias pastas de saída (--shard) e escreve os relatórios de todos."""
    out_dir = Path(out_dir)
    (out_dir / "registros").mkdir(parents=True, exist_ok=True)
    records = {}
    for folder in inputs:
        folder = Path(folder)
        if not (folder / "registros").is_dir():
            raise SystemExit(f"{folder} não tem a pasta registros/: é mesmo uma saída de `grade run`?")
        for rel, record in load_records(folder).items():
            if rel not in records or record["graded_at"] >= records[rel]["graded_at"]:
                records[rel] = record
                executed = record.get("executed")
                if executed and (folder / executed).exists() and folder.resolve() != out_dir.resolve():
                    (out_dir / "executados").mkdir(exist_ok=True)
                    shutil.copyfile(folder / executed, out_dir / executed)
    names = sorted({n for r in records.values() for n in r.get("notebooks", [])})
    assignments = {a.notebook: a for a in (load_assignment(n, spec_dir) for n in names)}
    for rel, record in records.items():
        _write_json(out_dir / "registros" / f"{hashlib.sha1(rel.encode()).hexdigest()[:16]}.json", record)
    ordered = [records[rel] for rel in sorted(records)]
    isolation = sorted({r.get("isolation", "?") for r in ordered})
    return ordered, write_reports(ordered, assignments, out_dir, {"isolation": ", ".join(isolation) or "?",
                                                                  "detail": f"junção de {len(inputs)} parte(s)"})


# ======================================================================= julgamento (processo do professor)

def _answer_problem(data) -> str | None:
    """Mensagem para respostas que nem chegam a ser julgadas (ausente, forjada, erro...)."""
    if data is None:
        return "resposta não coletada: a execução não chegou a este exercício (veja os problemas abaixo)"
    if not isinstance(data, dict):
        return "resposta ilegível"
    if data.get("forged"):
        return "resposta desconsiderada: a coleta foi forjada ou duplicada"
    if data.get("missing"):
        return None
    if "error" in data:
        name, message = (list(data["error"]) + ["", ""])[:2]
        return f"ler a resposta levantou {name}: {message}".rstrip(": ")
    return None


def judge_value(exercise: ValueExercise, data: dict) -> tuple:
    """(pontos, linhas de retorno) de um exercício de valor."""
    from .exercises import EXERCISES, evaluate

    if data.get("missing"):
        return 0.0, [f"❌ resposta ausente: não há a variável `{exercise.answer}` no notebook "
                     f"(a célula do exercício foi apagada ou renomeada?)"]
    value = decode(data["value"])
    if value is None or value is Ellipsis:
        return 0.0, ["❌ ainda sem resposta (o esqueleto não foi preenchido)"]
    points, lines, hint_needed = 0.0, [], False
    for check in exercise.checks:
        try:
            ok, message = check.judge(value)
        except Exception as exc:  # noqa: BLE001 - o teste nunca derruba o boletim
            ok, message = False, f"resposta em formato inesperado ({type(exc).__name__})"
        points += check.points if ok else 0.0
        hint_needed |= not ok
        lines.append(f"{'✅' if ok else '❌'} {check.name} ({_fmt(check.points if ok else 0)}/{_fmt(check.points)}): "
                     f"{message}")
    if hint_needed and exercise.id in EXERCISES:
        ok, message = evaluate(exercise.id, value)
        if not ok:
            lines.append(f"💡 dica: {message}")
    return points, lines


def reference_outputs(exercise: FunctionExercise) -> list:
    """Saída da referência em cada caso oculto (calculada uma vez), ou a exceção que ela levantou.

    As entradas passam por encode/decode, exatamente como chegam ao kernel do aluno.
    """
    if getattr(exercise, "_reference_outputs", None) is None:
        outputs = []
        for case in exercise.cases:
            try:
                args = decode(encode(tuple(case.args)), trusted=True)
                kwargs = decode(encode(dict(case.kwargs)), trusted=True)
                outputs.append(exercise.reference(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - teste oculto quebrado: o professor precisa saber
                outputs.append(exc)
        exercise._reference_outputs = outputs
    return exercise._reference_outputs


def _judge_case(exercise: FunctionExercise, got, expected) -> tuple:
    """(passou, mensagem) de um caso: o que veio do kernel contra a saída da referência."""
    if isinstance(expected, Exception):
        return False, (f"o teste oculto está quebrado (a referência levantou {type(expected).__name__}); "
                       f"avise o professor")
    if not isinstance(got, dict) or ("error" not in got and "output" not in got):
        return False, "resultado ilegível"
    if "error" in got:
        name, message = (list(got["error"]) + ["", ""])[:2]
        if name == "TempoEsgotado":
            return False, f"{message} e foi interrompida"
        return False, f"sua função levantou {name}: {message}".rstrip(": ")
    if got["output"] is None:
        return False, "a função devolveu None (ainda é o esqueleto?)"
    try:
        return (exercise.compare or same_value)(decode(got["output"]), expected)
    except Exception as exc:  # noqa: BLE001 - uma saída estranha nunca derruba o boletim
        return False, f"saída em formato inesperado ({type(exc).__name__})"


def judge_function(exercise: FunctionExercise, data: dict) -> tuple:
    """(pontos, linhas de retorno): a saída do aluno em cada caso oculto contra a saída da referência."""
    if data.get("missing"):
        return 0.0, [f"❌ resposta ausente: não há a função `{exercise.answer}` no notebook "
                     f"(a célula do exercício foi apagada ou a função foi renomeada?)"]
    if "not_callable" in data:
        return 0.0, [f"❌ `{exercise.answer}` deveria ser uma função, mas é {data['not_callable']}"]
    results = data.get("results")
    results = results if isinstance(results, list) else []
    points, lines = 0.0, []
    for number_, (case, expected) in enumerate(zip(exercise.cases, reference_outputs(exercise)), 1):
        got = results[number_ - 1] if number_ - 1 < len(results) else None
        ok, message = _judge_case(exercise, got, expected)
        points += case.points if ok else 0.0
        label = f"caso oculto {number_}" + (f" ({case.name})" if case.name else "")
        lines.append(f"{'✅' if ok else '❌'} {label} ({_fmt(case.points if ok else 0)}/{_fmt(case.points)})"
                     + ("" if ok else f": {message}"))
    return points, lines


def evaluate_record(record: dict, assignments: dict) -> dict:
    """Nota de uma entrega: {"assignment", "exercises": {id: {"title","points","max","lines"}}, "total","max"}."""
    name = record.get("assignment")
    assignment = assignments.get(name)
    if assignment is None:
        return {"assignment": name, "exercises": {}, "total": 0.0, "max": 0.0}
    exercises = {}
    for ex in assignment.exercises:
        data = record["answers"].get(ex.id)
        try:
            problem = _answer_problem(data)
            if problem:
                points, lines = 0.0, [f"❌ {problem}"]
            elif isinstance(ex, ValueExercise):
                points, lines = judge_value(ex, data)
            else:
                points, lines = judge_function(ex, data)
        except Exception as exc:  # noqa: BLE001 - dado coletado estranho: zero, com o motivo
            points, lines = 0.0, [f"❌ resposta ilegível ({type(exc).__name__})"]
        if ex.id in record.get("where", {}) and record["where"][ex.id] is None:
            lines.append("ℹ️ a célula do exercício não foi achada; a resposta foi lida no fim do notebook")
        exercises[ex.id] = {"title": assignment.titles[ex.id], "points": round(points, 4),
                            "max": ex.points, "lines": lines}
    total = round(sum(e["points"] for e in exercises.values()), 4)
    return {"assignment": name, "exercises": exercises, "total": total, "max": assignment.points}


# ======================================================================= relatórios

def _fmt(x: float) -> str:
    """2 -> "2"; 2.5 -> "2,5" (vírgula decimal, como no Brasil)."""
    return f"{x:.2f}".rstrip("0").rstrip(".").replace(".", ",") if x != int(x) else str(int(x))


def _safe_cell(text) -> str:
    """Evita fórmulas ao abrir o CSV numa planilha (textos do aluno começando com =, +, -, @)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def student_rows(records: list, evaluations: list, assignments: dict) -> list:
    """Uma linha por aluno: para cada tarefa vale a melhor entrega; problemas vão para 'observacoes'."""
    rows = {}
    for record, ev in zip(records, evaluations):
        row = rows.setdefault(record["student"], {"student": record["student"], "best": {}, "notes": []})
        name = record.get("assignment")
        if name in assignments:
            best = row["best"].get(name)
            if best is not None:
                row["notes"].append(f"{record['file']}: mais de uma entrega para {name}; vale a de maior nota")
            if best is None or ev["total"] > best[1]["total"]:
                row["best"][name] = (record, ev)
        if record["status"] != "ok" or record["problems"]:
            details = [record["reason"]] if record["reason"] else []
            details += record["problems"][:3] + ([f"+{len(record['problems']) - 3} problema(s)"]
                                                 if len(record["problems"]) > 3 else [])
            row["notes"].append(f"{record['file']}: {STATUS[record['status']]} — {'; '.join(details)}")
    for row in rows.values():
        statuses = []
        for name in assignments:
            if name in row["best"]:
                statuses.append((name, STATUS[row["best"][name][0]["status"]]))
            else:
                statuses.append((name, "sem entrega válida"))
        row["status"] = statuses[0][1] if len(statuses) == 1 else "; ".join(f"{n[:2]}: {s}" for n, s in statuses)
        row["total"] = sum(ev["total"] for _, ev in row["best"].values())
    return sorted(rows.values(), key=lambda r: r["student"])


def write_gradebook(rows: list, assignments: dict, path: Path) -> None:
    ids = [ex_id for a in assignments.values() for ex_id in a.ids]
    maximum = sum(a.points for a in assignments.values())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["aluno", "situacao", *ids, "total", "maximo", "observacoes"])
    for row in rows:
        points = {ex_id: e["points"] for _, ev in row["best"].values() for ex_id, e in ev["exercises"].items()}
        writer.writerow([_safe_cell(row["student"]), row["status"], *[points.get(i, 0) for i in ids],
                         round(row["total"], 4), maximum, _safe_cell(" | ".join(row["notes"]))])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def feedback_markdown(row: dict, records: list, evaluations: list, assignments: dict) -> str:
    """Retorno de um aluno em pt-BR: nota por exercício, cada teste oculto, problemas da execução."""
    lines = [f"# Correção: {row['student']}", ""]
    mine = [(r, ev) for r, ev in zip(records, evaluations) if r["student"] == row["student"]]
    for record, ev in mine:
        header = f"## `{record['file']}`"
        if ev["assignment"] in assignments:
            header += f" — notebook {ev['assignment']}: **{_fmt(ev['total'])} de {_fmt(ev['max'])} pontos**"
        lines += [header, "", f"Situação: **{STATUS[record['status']]}**"
                  + (f". {record['reason'][0].upper()}{record['reason'][1:]}." if record["reason"] else "."), ""]
        for ex_id, e in ev["exercises"].items():
            lines += [f"### Exercício {ex_id} ({e['title']}): {_fmt(e['points'])} de {_fmt(e['max'])}", ""]
            lines += [f"- {line}" for line in e["lines"]] + [""]
        if record["problems"]:
            lines += ["### Problemas na execução", ""] + [f"- {p}" for p in record["problems"]] + [""]
    lines += ["---", "Correção automática: as respostas foram coletadas do seu notebook executado e comparadas "
              "com casos de teste que não aparecem no notebook. Dúvidas? Fale com o professor."]
    return "\n".join(lines) + "\n"


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "aluno"


def write_html(rows: list, assignments: dict, records: list, evaluations: list, info: dict, path: Path) -> None:
    e = html.escape
    ids = [ex_id for a in assignments.values() for ex_id in a.ids]
    maximum = sum(a.points for a in assignments.values())
    head = "".join(f"<th title='{e(a.titles[i])}'>{e(i)}</th>" for a in assignments.values() for i in a.ids)
    body = []
    for row in rows:
        points = {ex_id: x for _, ev in row["best"].values() for ex_id, x in ev["exercises"].items()}
        cells = "".join(f"<td class='{'full' if i in points and points[i]['points'] >= points[i]['max'] else ''}'>"
                        f"{_fmt(points[i]['points']) if i in points else '–'}</td>" for i in ids)
        body.append(f"<tr><td>{e(row['student'])}</td><td>{e(row['status'])}</td>{cells}"
                    f"<td><b>{_fmt(row['total'])}</b></td><td class='notes'>{e(' | '.join(row['notes']))}</td></tr>")
    stats = []
    for a in assignments.values():
        graded = [ev for r, ev in zip(records, evaluations) if ev["assignment"] == a.notebook]
        for ex in a.exercises:
            got = [ev["exercises"][ex.id]["points"] for ev in graded]
            mean = sum(got) / len(got) if got else 0.0
            full = sum(p >= ex.points for p in got)
            stats.append(f"<tr><td>{e(ex.id)}</td><td>{e(a.titles[ex.id])}</td><td>{_fmt(ex.points)}</td>"
                         f"<td>{_fmt(round(mean, 2))}</td><td>{full} de {len(got)}</td></tr>")
    counts = {}
    for record in records:
        counts[STATUS[record["status"]]] = counts.get(STATUS[record["status"]], 0) + 1
    summary = ", ".join(f"{n} {e(s)}" for s, n in sorted(counts.items()))
    params = e(json.dumps(info.get("parameters", {}), ensure_ascii=False))
    limits = info.get("limits", {})
    limit_text = (f"{limits['timeout_s']} s por notebook, {limits['cell_timeout_s']} s por célula, "
                  f"{limits['memory_mb']} MB de memória, {limits['threads']} thread(s) por kernel"
                  if limits else "—")
    page = f"""<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Correção: {e(', '.join(assignments))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:center}}td.full{{background:#dfd}}
td.notes{{text-align:left;font-size:85%;max-width:40em}}</style></head><body>
<h1>Correção em lote: {e(', '.join(assignments))}</h1>
<p>{len(records)} entrega(s) de {len(rows)} aluno(s): {summary}. Gerado em
{e(datetime.now().strftime('%d/%m/%Y %H:%M'))}.</p>
<p>Isolamento do kernel: <b>{e(str(info.get('isolation')))}</b> ({e(str(info.get('detail', '')))}).
Parâmetros injetados: <code>{params}</code>. Limites: {e(limit_text)}.</p>
<h2>Notas</h2><table><tr><th>aluno</th><th>situação</th>{head}<th>total (de {_fmt(maximum)})</th>
<th>observações</th></tr>{''.join(body)}</table>
<h2>Por exercício</h2><table><tr><th>exercício</th><th>título</th><th>pontos</th><th>média</th>
<th>nota cheia</th></tr>{''.join(stats)}</table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def write_reports(records: list, assignments: dict, out_dir: Path, info: dict) -> list:
    """notas.csv, feedback/<aluno>.md e relatorio.html a partir dos registros; devolve as avaliações."""
    out_dir = Path(out_dir)
    evaluations = [evaluate_record(r, assignments) for r in records]
    rows = student_rows(records, evaluations, assignments)
    write_gradebook(rows, assignments, out_dir / "notas.csv")
    feedback_dir = out_dir / "feedback"
    feedback_dir.mkdir(exist_ok=True)
    used = set()
    for row in rows:
        name = _safe_name(row["student"])
        if name in used:  # dois nomes que viram o mesmo arquivo ("ana b" e "ana_b")
            name += "-" + hashlib.sha1(row["student"].encode()).hexdigest()[:6]
        used.add(name)
        text = feedback_markdown(row, records, evaluations, assignments)
        (feedback_dir / f"{name}.md").write_text(text, encoding="utf-8")
    write_html(rows, assignments, records, evaluations, info, out_dir / "relatorio.html")
    return evaluations


# ======================================================================= linha de comando

def _parse_shard(text: str) -> tuple:
    match = re.fullmatch(r"(\d+)/(\d+)", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(f"--shard espera K/N com 1 <= K <= N (ex.: 2/4), veio {text!r}")
    return int(match[1]), int(match[2])


def _parse_value(text: str):
    """Valor de -p NOME VALOR: literal Python (True, 3, [1, 2], "x") ou, se não for, texto."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curso-corrigir", description="Correção em lote das entregas.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,merge}")
    run = sub.add_parser("run", help="executa e corrige as entregas")
    run.add_argument("submissions", nargs="+", help="pastas com entregas (.ipynb) ou arquivos")
    run.add_argument("-n", "--notebook", action="append", required=True,
                     help="notebook da tarefa (ex.: 04_janela_deslizante ou 04); repita para vários")
    run.add_argument("--out", default="correcao", help="pasta de saída (padrão: correcao/)")
    run.add_argument("--jobs", type=int, default=1, help="entregas em paralelo (padrão: 1)")
    run.add_argument("--shard", type=_parse_shard, default=(1, 1), help="K/N: corrige só a K-ésima de N partes")
    run.add_argument("--force", action="store_true", help="corrige de novo mesmo o que não mudou")
    run.add_argument("--smoke", action="store_true", help="injeta SMOKE=True (cargas pequenas, bem mais barato)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NOME", "VALOR"),
                     help="parâmetro injetado pelo papermill (ex.: -p SEED 1); repita para vários")
    d = Limits()
    run.add_argument("--timeout", type=int, default=d.timeout_s, help=f"segundos por notebook ({d.timeout_s})")
    run.add_argument("--cell-timeout", type=int, default=d.cell_timeout_s,
                     help=f"segundos por célula ({d.cell_timeout_s})")
    run.add_argument("--call-timeout", type=float, default=d.call_timeout_s,
                     help=f"segundos por caso oculto ({d.call_timeout_s:g})")
    run.add_argument("--memory-mb", type=int, default=d.memory_mb, help=f"memória do kernel ({d.memory_mb})")
    run.add_argument("--threads", type=int, default=None, help="threads por kernel (padrão: núcleos / jobs)")
    run.add_argument("--isolation", choices=["auto", "namespaces", "nenhum"], default="auto",
                     help="isolamento do kernel (padrão: auto, usa namespaces quando o Linux deixa)")
    run.add_argument("--spec-dir", default=str(GRADING_DIR), help="pasta dos testes ocultos (grading/)")
    run.add_argument("--no-progress", action="store_true", help="sem barra de progresso")
    run.add_argument("--keep-jobs", action="store_true", help=argparse.SUPPRESS)
    merge_parser = sub.add_parser("merge", help="junta as saídas de vários --shard")
    merge_parser.add_argument("inputs", nargs="+", help="pastas de saída das partes")
    merge_parser.add_argument("--out", required=True, help="pasta de saída final")
    merge_parser.add_argument("--spec-dir", default=str(GRADING_DIR), help="pasta dos testes ocultos (grading/)")
    execute = sub.add_parser("_execute")  # interno: o processo executor de uma entrega
    execute.add_argument("job_dir")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "_execute":
        execute_job(Path(args.job_dir))
        return 0
    if args.command == "merge":
        records, evaluations = merge(args.inputs, Path(args.out), Path(args.spec_dir))
        print(f"{len(records)} entrega(s) juntadas. Boletim em {Path(args.out) / 'notas.csv'}")
        return 0
    parameters = {name: _parse_value(value) for name, value in args.param}
    if args.smoke:
        parameters["SMOKE"] = True
    jobs = max(1, args.jobs)
    threads = args.threads or max(1, (os.cpu_count() or 1) // jobs)
    limits = Limits(timeout_s=args.timeout, cell_timeout_s=args.cell_timeout, call_timeout_s=args.call_timeout,
                    memory_mb=args.memory_mb, threads=threads, isolation=args.isolation)
    opts = Options(notebooks=args.notebook, out_dir=Path(args.out), parameters=parameters, limits=limits,
                   jobs=jobs, shard=args.shard, force=args.force, progress=not args.no_progress,
                   spec_dir=Path(args.spec_dir), keep_jobs=args.keep_jobs)
    records, evaluations = grade(args.submissions, opts)
    total = sum(ev["total"] for ev in evaluations)
    print(f"\n{len(records)} entrega(s) nesta parte; soma das notas {_fmt(round(total, 2))}. "
          f"Boletim: {opts.out_dir / 'notas.csv'}; relatório: {opts.out_dir / 'relatorio.html'}")
    return 0


if __name__ == "__main__":
    # roda pelo módulo importado: os arquivos de grading/ importam course_utils.grade, e as classes
    # (ValueExercise...) precisam ser as mesmas daqui
    from course_utils.grade import main as _main

    sys.exit(_main())
