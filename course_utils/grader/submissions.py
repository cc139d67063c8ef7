"""Achar e ler as entregas: uma linha do boletim para cada caminho achado, seja ele o que for.

Uma pasta de entregas tem `<aluno>.ipynb` ou `<aluno>/<qualquer>.ipynb` (um repositório por aluno). Cada arquivo é
lido uma vez aqui (o hash do conteúdo decide se precisa corrigir de novo). Nada aqui levanta exceção por causa de
uma entrega: link quebrado, link para fora da pasta do aluno, arquivo ilegível, FIFO, nome com bytes que não são
UTF-8 ou com quebra de linha viram uma entrega com `problem` (o motivo), que vira uma linha sem executar nada.
"""

import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_MB = 20


@dataclass
class Submission:
    path: Path
    relpath: str  # caminho relativo à pasta de entregas, em texto seguro (identifica a entrega)
    student: str
    data: bytes = None
    sha256: str = ""
    problem: str = ""  # motivo para não executar (link para fora, ilegível, grande demais...)
    raw_relpath: bytes = b""

    @property
    def record_name(self):
        return hashlib.sha1(self.relpath.encode()).hexdigest()[:16]

    @property
    def too_big(self):
        return self.problem.startswith("arquivo grande demais")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_name(raw: bytes) -> str:
    """Nome de arquivo (bytes) como texto seguro e sem ambiguidade: bytes que não são UTF-8 viram \\xNN e
    caracteres de controle (quebra de linha...) viram \\xNN; a barra invertida do próprio nome vira \\\\."""
    text = raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def _is_notebook_name(raw: bytes) -> bool:
    return raw.lower().endswith(b".ipynb")


def _stem(raw: bytes) -> bytes:
    return raw[:-len(b".ipynb")] if _is_notebook_name(raw) else raw


def _inside(path: bytes, folder: bytes) -> bool:
    return path == folder or path.startswith(folder.rstrip(b"/") + b"/")


def _read(path: bytes, max_file_mb: int) -> tuple:
    """(conteúdo, motivo): só arquivos comuns; nada bloqueia (FIFO) nem derruba o lote (EIO, permissão)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return None, f"não deu para abrir o arquivo ({_oserror(exc)})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "não é um arquivo comum (pasta, FIFO, socket ou dispositivo com nome .ipynb)"
        if info.st_size > max_file_mb * 2**20:
            return None, f"arquivo grande demais para um notebook de exercícios ({info.st_size // 2**20} MB)"
        chunks, size = [], 0
        while chunk := os.read(fd, 2**20):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_file_mb * 2**20:
                return None, f"arquivo grande demais para um notebook de exercícios (mais de {max_file_mb} MB)"
        return b"".join(chunks), ""
    except OSError as exc:
        return None, f"não deu para ler o arquivo ({_oserror(exc)})"
    finally:
        os.close(fd)


def _oserror(exc: OSError) -> str:
    names = {errno.EACCES: "sem permissão de leitura", errno.EIO: "erro de entrada e saída do disco",
             errno.ELOOP: "link simbólico", errno.ENOENT: "o arquivo sumiu", errno.EPERM: "operação não permitida"}
    return names.get(exc.errno, os.strerror(exc.errno) if exc.errno else type(exc).__name__)


def _make(root: bytes, path: bytes, student: bytes, max_file_mb: int, problem: str = "") -> Submission:
    rel = os.path.relpath(path, root) if root else os.path.basename(path)
    sub = Submission(Path(os.fsdecode(path)), display_name(rel), display_name(student), raw_relpath=rel)
    if not problem:  # um link que resolve dentro da pasta do aluno é lido no destino
        sub.data, problem = _read(os.path.realpath(path) if os.path.islink(path) else path, max_file_mb)
    sub.problem = problem
    sub.data = sub.data if sub.data is not None else b""
    sub.sha256 = hashlib.sha256(sub.data).hexdigest() if not problem else f"sem-conteudo-{sub.record_name}"
    return sub


def _symlink_problem(path: bytes, folder: bytes) -> str | None:
    """None se o link resolve dentro da pasta do aluno; senão, o motivo da recusa."""
    target = os.path.realpath(path)
    if not os.path.exists(target):
        return "link simbólico quebrado: aponta para um arquivo que não existe"
    if folder is None or not _inside(target, folder):
        return ("link simbólico que aponta para fora da pasta do aluno (para "
                f"{display_name(os.path.basename(target))}): recusada; entregue o arquivo, não um link")
    return None


def _walk(root: bytes, folder: bytes, student: bytes, max_file_mb: int, found: list) -> None:
    """Entregas dentro de `folder` (a pasta de um aluno), sem seguir links de pastas."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        found.append(_make(root, folder, student, max_file_mb, f"não deu para listar a pasta ({_oserror(exc)})"))
        return
    real_folder = os.path.realpath(folder)
    for entry in entries:
        path = entry.path
        if entry.is_symlink():
            problem = _symlink_problem(path, real_folder)
            if _is_notebook_name(entry.name) and (problem or os.path.isfile(path)):
                found.append(_make(root, path, student, max_file_mb, problem or ""))
            elif problem and os.path.isdir(path):
                found.append(_make(root, path, student, max_file_mb, problem))
        elif entry.is_dir(follow_symlinks=False):
            if not entry.name.startswith(b"."):  # .git, .ipynb_checkpoints
                _walk(root, path, student, max_file_mb, found)
        elif _is_notebook_name(entry.name):
            found.append(_make(root, path, student, max_file_mb))


def _walk_root(root: bytes, max_file_mb: int, found: list) -> None:
    """A pasta de entregas: cada item do primeiro nível é um aluno (arquivo <aluno>.ipynb ou pasta <aluno>/)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise SystemExit(f"Não deu para listar a pasta de entregas {os.fsdecode(root)}: {_oserror(exc)}.") from exc
    for entry in entries:
        path, name = entry.path, entry.name
        if entry.is_symlink():
            # no primeiro nível, um link é sempre "de fora" da entrega do aluno (a pasta dele é o próprio item)
            problem = _symlink_problem(path, None)
            if _is_notebook_name(name) or os.path.isdir(path) or problem.startswith("link simbólico quebrado"):
                found.append(_make(root, path, _stem(name), max_file_mb, problem))
        elif entry.is_dir(follow_symlinks=False):
            if not name.startswith(b"."):
                _walk(root, path, name, max_file_mb, found)
        elif _is_notebook_name(name):
            found.append(_make(root, path, _stem(name), max_file_mb))


def find_submissions(paths, max_file_mb: int = MAX_FILE_MB) -> list:
    """Entregas em pastas (alunos/<aluno>.ipynb ou alunos/<aluno>/<qualquer>.ipynb) ou arquivos soltos."""
    found = []
    for raw in paths:
        path = os.fsencode(raw)
        if os.path.isdir(path):
            _walk_root(path, max_file_mb, found)
        elif os.path.lexists(path):
            base = os.path.basename(path)
            problem = "" if os.path.exists(path) else "link simbólico quebrado: aponta para um arquivo que não existe"
            found.append(_make(b"", path, _stem(base), max_file_mb, problem))
        else:
            raise SystemExit(f"Entrega não encontrada: {os.fsdecode(path)} (confira o caminho).")
    return found


def select_shard(submissions: list, shard: tuple) -> list:
    """--shard K/N: a K-ésima de N partes (alternando na ordem dos caminhos, para equilibrar)."""
    k, n = shard
    ordered = sorted(submissions, key=lambda s: s.relpath)
    return [s for i, s in enumerate(ordered) if i % n == k - 1]


# ----------------------------------------------------------------------- o conteúdo: JSON e notebook

_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_MESSAGES = {
    "Expecting value": "esperava um valor", "Expecting property name enclosed in double quotes":
    "esperava o nome de um campo entre aspas", "Expecting ',' delimiter": "faltou uma vírgula",
    "Expecting ':' delimiter": "faltaram os dois-pontos", "Unterminated string starting at": "um texto não foi fechado",
    "Extra data": "sobrou conteúdo depois do fim do JSON", "Invalid control character at": "caractere de controle "
    "dentro de um texto", "Invalid \\escape": "escape inválido num texto", "Invalid \\uXXXX escape": "escape \\u "
    "inválido num texto",
}


def _without_surrogates(value):
    """Metade de um emoji escapada no JSON (\\ud83d sozinho) vira U+FFFD: o resto da entrega vale igual."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def json_problem(exc: Exception) -> str:
    """O erro do leitor de JSON em pt-BR (em vez de "Expecting value: line 1 column 1")."""
    if isinstance(exc, UnicodeDecodeError):
        return f"o arquivo não está em UTF-8 (byte inválido na posição {exc.start})"
    if isinstance(exc, RecursionError):
        return "o JSON tem estruturas aninhadas demais"
    if isinstance(exc, json.JSONDecodeError):
        what = next((pt for en, pt in _JSON_MESSAGES.items() if exc.msg.startswith(en)), "JSON malformado")
        return f"{what} na linha {exc.lineno}, coluna {exc.colno}"
    return "JSON malformado"


def parse_notebook(data: bytes):
    """(notebook, None) ou (None, motivo em pt-BR)."""
    import nbformat

    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"o arquivo não é um JSON válido (um .ipynb é um JSON): {json_problem(exc)}"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list) or "nbformat" not in raw:
        return None, "o arquivo é JSON, mas não é um notebook (faltam 'cells' e 'nbformat')"
    try:
        nb = nbformat.reads(json.dumps(_without_surrogates(raw)), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - qualquer falha aqui é "notebook inválido"
        where = "/".join(str(p) for p in getattr(exc, "absolute_path", []) or [])
        return None, ("o arquivo é JSON, mas não segue o formato de notebook (nbformat)"
                      + (f": problema em {where}" if where else f" ({type(exc).__name__})"))
    return nb, None
