"""O curso num perfil de hardware: parâmetros por perfil, evidência das versões, recusa clara sem GPU."""

import json

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.run_course import PROFILES, library_versions, notebook_parameters, run_profile


def _write(path, *sources):
    cells = [new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_parametros_do_perfil_somam_o_geral_e_o_do_notebook(monkeypatch):
    monkeypatch.setitem(PROFILES, "teste", {"*": {"DEVICE": "cuda"}, "08_colab_7b": {"DEVICE": "cuda", "N": 3}})
    assert notebook_parameters("teste", "01_quantizacao_ptq", smoke=False) == {"DEVICE": "cuda"}
    assert notebook_parameters("teste", "08_colab_7b", smoke=True) == {"DEVICE": "cuda", "N": 3, "SMOKE": True}


def test_versoes_das_bibliotecas_incluem_as_instaladas_e_as_ausentes():
    versions = library_versions()
    assert versions["torch"] == torch.__version__.split("+")[0] or versions["torch"] == torch.__version__
    assert "tensorrt" in versions  # ausente aqui: None, mas a chave existe para o resumo dizer o que faltou


@pytest.mark.skipif(torch.cuda.is_available(), reason="só faz sentido numa máquina sem GPU")
def test_perfil_gpu_sem_gpu_recusa_com_mensagem_clara(tmp_path):
    with pytest.raises(SystemExit, match="precisa de uma GPU"):
        run_profile("gpu", notebooks_dir=tmp_path, out_dir=tmp_path / "out", progress=False)
    with pytest.raises(SystemExit, match="Perfil desconhecido"):
        run_profile("tpu", notebooks_dir=tmp_path, out_dir=tmp_path / "out", progress=False)


def test_perfil_cpu_executa_e_grava_o_resumo_com_ambiente(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _write(src / "a.ipynb", "DEVICE = 'auto'\nSMOKE = False",
           "from course_utils.results import record\nrecord('device', DEVICE)\nrecord('smoke', SMOKE)")
    _write(src / "b.ipynb", "DEVICE = 'auto'", "raise ValueError('quebrou')")
    out = tmp_path / "out"
    summary = run_profile("cpu", smoke=True, notebooks_dir=src, out_dir=out, progress=False)
    saved = json.loads((out / "resultados.json").read_text(encoding="utf-8"))
    assert saved["profile"] == "cpu" and saved["libraries"]["torch"]
    assert saved["notebooks"]["a"]["results"] == {"device": "cpu", "smoke": True}
    assert saved["notebooks"]["b"]["status"] == "failed" and "quebrou" in saved["notebooks"]["b"]["error"]
    assert (out / "resultados.md").exists()
    # rodar só um notebook preserva os outros no resumo
    run_profile("cpu", only=["a"], notebooks_dir=src, out_dir=out, progress=False)
    again = json.loads((out / "resultados.json").read_text(encoding="utf-8"))
    assert set(again["notebooks"]) == {"a", "b"} and again["notebooks"]["a"]["results"]["smoke"] is False
    assert summary["notebooks"]["a"]["parameters"] == {"DEVICE": "cpu", "SMOKE": True}
