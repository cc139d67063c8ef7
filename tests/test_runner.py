"""O runner do `make course`: um notebook ruim não estraga o lote, e o resumo segue o contrato."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.runner import main, run_course


def _write(path, *sources, requires=None):
    cells = [new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if requires:
        nb.metadata["curso"] = {"requires": requires}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    src = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("build")
    _write(src / "a_bom.ipynb", "SMOKE = False",
           "from course_utils.results import record\nrecord('smoke', SMOKE)\nrecord('dois', 1 + 1)")
    _write(src / "b_falha.ipynb", "SMOKE = False",
           "from course_utils.results import record\nrecord('antes', 7)",
           "assert 1 + 1 == 3, 'a conta não fecha'",
           "record('depois', 8)")
    (src / "c_corrompido.ipynb").write_text('{"cells": [ isto não é json', encoding="utf-8")
    _write(src / "d_gpu.ipynb", "SMOKE = False", "raise RuntimeError('não deveria rodar')", requires="cuda")
    summary = run_course(src, out, parameters={"SMOKE": True}, progress=False)
    return src, out, summary


def test_bad_notebooks_do_not_spoil_the_batch(course):
    _, _, summary = course
    nbs = summary["notebooks"]
    assert list(nbs) == ["a_bom", "b_falha", "c_corrompido", "d_gpu"]
    assert nbs["a_bom"]["status"] == "ok" and nbs["a_bom"]["error"] is None
    assert nbs["a_bom"]["results"] == {"smoke": True, "dois": 2}  # o parâmetro SMOKE chegou ao notebook
    assert nbs["b_falha"]["status"] == "failed"
    assert "célula" in nbs["b_falha"]["error"] and "a conta não fecha" in nbs["b_falha"]["error"]
    assert nbs["b_falha"]["results"] == {"antes": 7}  # o que foi medido antes da falha não se perde
    assert nbs["c_corrompido"]["status"] == "failed" and "inválido" in nbs["c_corrompido"]["error"]
    assert nbs["d_gpu"]["status"] == "skipped" and "GPU" in nbs["d_gpu"]["error"]


def test_summary_files_follow_the_contract(course):
    _, out, summary = course
    data = json.loads((out / "resultados.json").read_text(encoding="utf-8"))
    assert data == summary
    assert set(data["environment"]) == {"python", "torch", "transformers", "device", "cpu_count"}
    assert data["environment"]["device"] == "cpu" or data["environment"]["device"].startswith("cuda:")
    for entry in data["notebooks"].values():
        assert set(entry) == {"status", "seconds", "results", "error"}
        assert entry["status"] in {"ok", "failed", "skipped"}
        assert isinstance(entry["seconds"], (int, float))
    md = (out / "resultados.md").read_text(encoding="utf-8")
    assert "| `b_falha` | failed |" in md and "`dois`" in md
    assert (out / "notebooks" / "a_bom.ipynb").exists()


def test_cli_exit_code_says_whether_all_passed(course, tmp_path):
    src, _, _ = course
    assert main(["--notebooks", str(src), "--out", str(tmp_path / "todos"), "--only", "a_bom"]) == 0
    assert main(["--notebooks", str(src), "--out", str(tmp_path / "falha"), "--only", "b_falha"]) == 1
    with pytest.raises(SystemExit, match="não encontrado"):
        main(["--notebooks", str(src), "--out", str(tmp_path / "x"), "--only", "nao_existe"])
