"""O pacote course_utils.grader: fronteiras entre os processos, o canal da coleta, mensagens e a receita Docker."""

import _hashlib
import json
import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.grader.assignments import load_assignment
from course_utils.grader.orchestrate import verify_collections
from course_utils.grader.report import feedback_name
from course_utils.grader.submissions import parse_notebook
from course_utils.grader.wire import cases_digest, encode_cases, read_channel, seal

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "tests" / "fixtures" / "submissions" / "grading"


def test_importing_the_collection_loads_neither_judge_nor_report():
    code = ("import sys, course_utils.grader.collect, course_utils.grader.kernel\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('course_utils'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "course_utils.grader.collect" in loaded
    for heavy in ("judge", "report", "orchestrate", "execute", "cli", "submissions"):
        assert f"course_utils.grader.{heavy}" not in loaded, loaded


def test_spec_is_what_grading_files_import_and_the_old_names_still_work():
    from course_utils import grade
    from course_utils.grader import spec

    for name in ("Case", "Check", "Code", "ValueExercise", "FunctionExercise", "number", "close", "same_tensor",
                 "same_value", "as_number"):
        assert getattr(grade, name) is getattr(spec, name)
    done = subprocess.run([sys.executable, "-m", "course_utils.grade", "run"], capture_output=True, text=True)
    assert done.returncode == 2 and "faltam os argumentos" in done.stderr  # argparse em pt-BR


def _line(key, record):
    return seal(_hashlib.hmac_new(key, digestmod="sha256"), marshal.dumps(record))


def test_channel_accepts_only_lines_signed_with_the_run_key(tmp_path):
    key = b"a" * 32
    good = _line(key, ("n", 1, "99.1", cases_digest(None), {"value": 42}))
    other_key = _line(b"b" * 32, ("n", 2, "99.1", cases_digest(None), {"value": 7}))
    code = _line(key, ("n", 3, "99.1", "", compile("1", "x", "eval")))  # nunca um objeto de código
    (tmp_path / "canal").write_bytes(good + other_key + b"lixo\n" + code)
    records, refused = read_channel(tmp_path / "canal", key)
    assert [json.loads(r["data"]) for r in records] == [{"value": 42}] and refused == 3


def _states(*pairs):
    return [{"exercise": ex, "state": state, "ename": ename} for ex, state, ename in pairs]


def test_verify_collections_flags_duplicates_missing_and_tampered_collections():
    assignment = load_assignment("99", SPEC_DIR)
    digests = {ex.id: cases_digest(json.dumps(encode_cases(ex)) if hasattr(ex, "cases") else None)
               for ex in assignment.exercises}
    record = lambda seq, ex, data: {"nonce": "n", "seq": seq, "exercise": ex, "cases": digests[ex],  # noqa: E731
                                    "data": json.dumps(data)}
    honest = {"payloads": [record(1, "99.1", {"value": 42}), record(2, "99.2", {"results": []})],
              "collections": _states(("99.1", "ok", ""), ("99.2", "ok", ""), ("99.3", "not_run", ""))}
    answers, forged, general = verify_collections(honest, assignment)
    assert set(answers) == {"99.1", "99.2"} and not forged and not general  # 99.3: a execução não chegou lá
    tampered = {"payloads": [record(1, "99.1", {"value": 42}), record(2, "99.1", {"value": 42})],
                "collections": _states(("99.1", "ok", ""), ("99.2", "ok", ""), ("99.3", "error", "TypeError"))}
    answers, forged, general = verify_collections(tampered, assignment)
    assert not answers and set(forged) == {"99.1", "99.2", "99.3"}
    interrupted = {"payloads": [], "collections": _states(("99.1", "error", "KeyboardInterrupt"))}
    assert verify_collections(interrupted, assignment)[1] == {}  # o tempo da célula acabou: não é forjada


@pytest.mark.parametrize("data,expected", [
    (b"", "esperava um valor na linha 1, coluna 1"),
    (b'{"cells": [1,]}', "esperava um valor na linha 1, coluna 14"),
    (b"\xff\xfe{}", "não está em UTF-8"),
    (b'{"a": 1', "faltou uma vírgula"),
])
def test_parser_errors_are_in_portuguese(data, expected):
    nb, why = parse_notebook(data)
    assert nb is None and expected in why and "Expecting" not in why


def test_lone_surrogates_in_json_are_read_normally():
    text = json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "meio \ud83d emoji",
                                  "id": "a"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    nb, why = parse_notebook(text.encode())
    assert why is None and nb.cells[0].source == "meio \ufffd emoji"


@pytest.mark.parametrize("names", [("ana b", "ana_b"), ("Ana", "ana"), ("a/b", "a_b"), ("", "aluno")])
def test_feedback_names_are_unique_and_stable(names):
    files = [feedback_name(n) for n in names]
    assert len(set(f.lower() for f in files)) == len(files)  # únicos mesmo em disco sem maiúsculas
    assert files == [feedback_name(n) for n in names]
    assert feedback_name("ana_b") == "ana_b.md"


def test_dockerfile_recipe_is_coherent():
    """Sem Docker Hub aqui: confere a receita (imagem oficial, instalação não editável, ponto de entrada, o que
    fica fora do contexto) e que os arquivos que ela copia existem."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    for line in lines:
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    installs = [line for line in lines if "pip install" in line]
    assert any('".[runner]"' in line for line in installs) and not any(" -e " in line for line in installs)
    assert any(line.startswith("ENTRYPOINT") and "curso-corrigir" in line for line in lines)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for folder in (".git", ".venv", "tests", "build"):
        assert folder in ignored
