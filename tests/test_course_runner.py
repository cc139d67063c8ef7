"""O runner único (`python -m course_utils.course run`): perfis, um notebook ruim não estraga o lote, o resumo segue o
contrato (ambiente, versões, hash da fonte, afirmações) e o perfil t4 limita a memória CUDA dentro do kernel."""

import json
import subprocess
import sys

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.course import runner
from course_utils.course.runner import PROFILES, T4_MEMORY_GIB, library_versions, main, notebook_parameters, run_course

ENTRY_KEYS = {"status", "seconds", "results", "claims", "error", "parameters", "date", "source_sha256",
              "environment", "libraries"}


def _write(path, *sources, requires=None):
    cells = [new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if requires:
        nb.metadata["curso"] = {"requires": requires}
    nbformat.write(nb, path)
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    src = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("build")
    (src / "src").mkdir()
    (src / "src" / "a_bom.py").write_text("# fonte em texto do a_bom\n", encoding="utf-8")
    _write(src / "a_bom.ipynb", "SMOKE = False\nDEVICE = 'auto'",
           "from course_utils.results import claim, claim_skipped, record\nrecord('smoke', SMOKE)\n"
           "record('dois', 1 + 1)\nclaim('um mais um é dois', 1 + 1 == 2, measured=1 + 1)\n"
           "claim_skipped('(GPU) algo medido na GPU', 'sem GPU nesta execução')")
    _write(src / "b_falha.ipynb", "SMOKE = False",
           "from course_utils.results import claim, record\nrecord('antes', 7)",
           "claim('a conta fecha', 1 + 1 == 3, measured=1 + 1)",
           "record('depois', 8)")
    (src / "c_corrompido.ipynb").write_text('{"cells": [ isto não é json', encoding="utf-8")
    _write(src / "d_gpu.ipynb", "SMOKE = False", "raise RuntimeError('não deveria rodar')", requires="cuda")
    summary = run_course("offline", smoke=True, notebooks_dir=src, out_dir=out, progress=False)
    return src, out, summary


def test_bad_notebooks_do_not_spoil_the_batch(course):
    _, _, summary = course
    nbs = summary["notebooks"]
    assert list(nbs) == ["a_bom", "b_falha", "c_corrompido", "d_gpu"]
    assert nbs["a_bom"]["status"] == "ok" and nbs["a_bom"]["error"] is None
    assert nbs["a_bom"]["results"] == {"smoke": True, "dois": 2}  # o parâmetro SMOKE chegou ao notebook
    assert nbs["b_falha"]["status"] == "failed"
    assert "célula" in nbs["b_falha"]["error"] and "a conta fecha" in nbs["b_falha"]["error"]
    assert nbs["b_falha"]["results"] == {"antes": 7}  # o que foi medido antes da falha não se perde
    assert nbs["c_corrompido"]["status"] == "failed" and "inválido" in nbs["c_corrompido"]["error"]
    assert nbs["d_gpu"]["status"] == "skipped" and "GPU" in nbs["d_gpu"]["error"]


def test_claims_are_recorded_with_status(course):
    _, _, summary = course
    assert summary["notebooks"]["a_bom"]["claims"] == {
        "um mais um é dois": {"status": "ok", "measured": 2},
        "(GPU) algo medido na GPU": {"status": "skipped", "reason": "sem GPU nesta execução"}}
    assert summary["notebooks"]["b_falha"]["claims"] == {"a conta fecha": {"status": "failed", "measured": 2}}


def test_summary_files_follow_the_contract(course):
    src, out, summary = course
    data = json.loads((out / "resultados.json").read_text(encoding="utf-8"))
    assert data == summary
    assert data["profile"] == "offline" and data["smoke"] is True and data["libraries"]["torch"]
    assert {"python", "torch", "transformers", "device", "cpu_count"} <= set(data["environment"])
    for name, entry in data["notebooks"].items():
        assert set(entry) == ENTRY_KEYS, name
        assert entry["status"] in {"ok", "failed", "skipped"}
        assert isinstance(entry["seconds"], (int, float))
    # o hash é o da fonte em texto quando ela existe, senão o do .ipynb
    assert data["notebooks"]["a_bom"]["source_sha256"] == runner.source_hash("a_bom", src)
    import hashlib
    assert data["notebooks"]["a_bom"]["source_sha256"] == hashlib.sha256(
        (src / "src" / "a_bom.py").read_bytes()).hexdigest()
    md = (out / "resultados.md").read_text(encoding="utf-8")
    assert "| `b_falha` | failed |" in md and "`dois`" in md and "1 ok, 1 puladas" in md
    assert (out / "notebooks" / "a_bom.ipynb").exists()


def test_only_keeps_the_other_notebooks_and_cli_exit_code(course, tmp_path):
    src, out, _ = course
    assert main(["--notebooks", str(src), "--out", str(out), "--only", "a_bom"]) == 0
    again = json.loads((out / "resultados.json").read_text(encoding="utf-8"))
    assert set(again["notebooks"]) == {"a_bom", "b_falha", "c_corrompido", "d_gpu"}
    assert again["notebooks"]["a_bom"]["results"]["smoke"] is False and again["smoke"] is False
    assert main(["--notebooks", str(src), "--out", str(tmp_path / "falha"), "--only", "b_falha"]) == 1
    with pytest.raises(SystemExit, match="não encontrado"):
        main(["--notebooks", str(src), "--out", str(tmp_path / "x"), "--only", "nao_existe"])


def test_profile_parameters_are_only_those_the_notebook_declares(tmp_path):
    nb = _write(tmp_path / "x.ipynb", "MODEL_ID = 'm'\nSMOKE = False\nDEVICE = 'auto'\nALLOW_BF16 = True")
    assert notebook_parameters("t4", nb, smoke=True) == {"DEVICE": "cuda", "ALLOW_BF16": False, "SMOKE": True}
    assert notebook_parameters("gpu", nb, smoke=False) == {"DEVICE": "cuda"}
    plain = _write(tmp_path / "y.ipynb", "SMOKE = False\nDEVICE = 'auto'")
    assert notebook_parameters("t4", plain, smoke=False) == {"DEVICE": "cuda"}  # sem ALLOW_BF16: não é injetado
    assert notebook_parameters("offline", plain, smoke=False) == {}
    assert set(PROFILES) == {"offline", "gpu", "t4"}


def test_library_versions_include_missing_ones():
    versions = library_versions()
    assert versions["torch"] in (torch.__version__, torch.__version__.split("+")[0])
    assert "tensorrt" in versions  # ausente aqui: None, mas a chave existe para o resumo dizer o que faltou


@pytest.mark.skipif(torch.cuda.is_available(), reason="só faz sentido numa máquina sem GPU")
def test_gpu_profiles_refuse_without_gpu(tmp_path):
    for profile in ("gpu", "t4"):
        with pytest.raises(SystemExit, match="precisa de uma GPU"):
            run_course(profile, notebooks_dir=tmp_path, out_dir=tmp_path / "out", progress=False)
    with pytest.raises(SystemExit, match="Perfil desconhecido"):
        run_course("tpu", notebooks_dir=tmp_path, out_dir=tmp_path / "out", progress=False)


def test_t4_startup_script_caps_cuda_memory_fraction(tmp_path):
    """O script que o perfil t4 põe na inicialização do IPython chama set_per_process_memory_fraction(15 GiB/total).

    Sem GPU aqui, o torch.cuda é trocado por um falso de 80 GiB; na GPU emprestada o limite é conferido pelo notebook
    08 (picos medidos) e pelo resumo do perfil t4."""
    script = runner.CUDA_CAP_STARTUP
    probe = (
        "import sys, types\n"
        "calls = []\n"
        "cuda = types.SimpleNamespace(is_available=lambda: True,\n"
        "    get_device_properties=lambda i: types.SimpleNamespace(total_memory=80 * 2**30),\n"
        "    set_per_process_memory_fraction=lambda f: calls.append(f))\n"
        "sys.modules['torch'] = types.SimpleNamespace(cuda=cuda)\n"
        f"exec(compile({script!r}, 'startup', 'exec'))\n"
        "print(calls)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={"COURSE_CUDA_MEMORY_GIB": "15", "PATH": ""}, check=True)
    assert out.stdout.strip() == f"[{15 / 80}]"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={"PATH": ""}, check=True)
    assert out.stdout.strip() == "[]"  # fora do perfil t4, nada muda


def test_t4_profile_makes_the_planner_see_a_colab_t4(monkeypatch):
    from course_utils.planner import PRESETS, detect_hardware

    monkeypatch.delenv("COURSE_HARDWARE", raising=False)
    here = detect_hardware()
    monkeypatch.setenv("COURSE_HARDWARE", PROFILES["t4"]["env"]["COURSE_HARDWARE"])
    t4 = detect_hardware()
    assert t4.gpu_bf16 is False and "T4" in t4.name
    assert t4.cpu_gib == min(here.cpu_gib, PRESETS["colab_t4"].cpu_gib)
    assert t4.has_gpu == here.has_gpu  # sem GPU aqui, continua sem GPU: o perfil limita, não inventa memória
    monkeypatch.setenv("COURSE_HARDWARE", "tpu_v9")
    with pytest.raises(ValueError, match="preset"):
        detect_hardware()


def test_t4_profile_caps_onnx_runtime_cuda_sessions(monkeypatch):
    from course_utils.ort.sessions import cuda_memory_capped

    monkeypatch.delenv("COURSE_CUDA_MEMORY_GIB", raising=False)
    assert cuda_memory_capped(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setenv("COURSE_CUDA_MEMORY_GIB", PROFILES["t4"]["env"]["COURSE_CUDA_MEMORY_GIB"])
    assert cuda_memory_capped(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"gpu_mem_limit": str(int(T4_MEMORY_GIB * 2**30))}), "CPUExecutionProvider"]
    assert cuda_memory_capped([("CUDAExecutionProvider", {"device_id": 0})]) == [
        ("CUDAExecutionProvider", {"device_id": 0, "gpu_mem_limit": str(int(T4_MEMORY_GIB * 2**30))})]


def test_a_stuck_cell_fails_with_a_reason_instead_of_holding_the_course(tmp_path):
    nb = new_notebook(cells=[new_code_cell("import time\ntime.sleep(60)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "travado.ipynb"
    nbformat.write(nb, path)
    (tmp_path / "saida").mkdir()
    entry = runner.run_notebook(path, tmp_path / "saida", {}, progress=False, cell_timeout=3)
    assert entry["status"] == "failed"
    assert "passou de 3 s" in entry["error"] and entry["seconds"] < 50
