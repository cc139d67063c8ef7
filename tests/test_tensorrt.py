"""A escolha da build do Torch-TensorRT (função pura) e a sondagem do TensorRT (import dentro de try).

O TensorRT não instala onde pypi.nvidia.com não é alcançável (docs/referencias.md#colab-tensorrt): o que pode ser
conferido sem ele é conferido aqui, contra o torch dos snapshots do Colab e de outras builds."""

import re
from pathlib import Path

import pytest

from course_utils.tensorrt import PYTORCH_INDEX, cuda_tag, probe_tensorrt, tensorrt_install_plan


def test_colab_torch_gets_the_cu128_build_from_the_pytorch_index_with_its_dependencies():
    plan = tensorrt_install_plan("2.11.0+cu128", "12.8")  # o Colab de 2026-08
    assert plan.installs and plan.cuda_tag == "cu128"
    assert plan.pip_args[0] == "torch-tensorrt==2.11.0+cu128"
    assert PYTORCH_INDEX.format(tag="cu128") in plan.pip_args
    assert "--no-deps" not in plan.pip_args  # a biblioteca do TensorRT vem pelas dependências
    assert "tensorrt-cu12" in plan.notes[0]
    assert plan.command().startswith("pip install torch-tensorrt==2.11.0+cu128")


@pytest.mark.parametrize("snapshot", sorted((Path(__file__).parent / "fixtures" / "colab").glob("*/pip-freeze.gpu.txt")),
                         ids=lambda p: p.parent.name)
def test_the_torch_of_each_colab_snapshot_gets_a_build_of_its_own_cuda(snapshot):
    """O torch que o Colab traz (googlecolab/backend-info, em tests/fixtures/colab) tem uma build que casa com ele."""
    version = re.search(r"^torch==(\S+)$", snapshot.read_text(), re.M).group(1)
    local = re.fullmatch(r"[\d.]+\+cu(\d+)(\d)", version)
    assert local, f"o snapshot {snapshot.parent.name} não traz um torch com CUDA: {version}"
    cuda = f"{local.group(1)}.{local.group(2)}"
    plan = tensorrt_install_plan(version, cuda)
    assert plan.installs and plan.pip_args[0] == f"torch-tensorrt=={version}"
    assert plan.pip_args[1:] == ("--extra-index-url", PYTORCH_INDEX.format(tag=f"cu{local.group(1)}{local.group(2)}"))


@pytest.mark.parametrize("torch_version, cuda, first", [
    ("2.11.0+cu126", "12.6", "torch-tensorrt==2.11.0+cu126"),
    ("2.11.0+cu129", "12.9", "torch-tensorrt==2.11.0+cu129"),
    ("2.11.1+cu128", "12.8", "torch-tensorrt==2.11.1+cu128"),   # a versão vem do torch instalado, não de uma tabela
    ("2.12.1+cu130", "13.0", "torch-tensorrt==2.12.1"),
    ("2.11.0", "13.0", "torch-tensorrt==2.11.0"),               # o torch do PyPI (CUDA 13) sem versão local
])
def test_other_torch_builds(torch_version, cuda, first):
    plan = tensorrt_install_plan(torch_version, cuda)
    assert plan.installs and plan.pip_args[0] == first and "--no-deps" not in plan.pip_args


def test_cuda13_torch_gets_the_pypi_build():
    plan = tensorrt_install_plan("2.11.0+cu130", "13.0")
    assert plan.pip_args == ("torch-tensorrt==2.11.0",)
    assert "tensorrt-cu13" in plan.notes[0]


@pytest.mark.parametrize("torch_version, cuda, words", [
    ("2.13.0+cpu", None, "só de CPU"),
    ("2.11.0+cu118", "11.8", "não há Torch-TensorRT 2.11 para CUDA 11.8"),
    ("2.12.0+cu128", "12.8", "não há Torch-TensorRT 2.12 para CUDA 12.8"),   # a 2.12 só tem a build da CUDA 13
    ("2.9.1+cu126", "12.6", "não conhece"),
    ("nightly", "12.8", "não reconhecida"),
])
def test_no_build_means_no_install_and_a_portuguese_reason(torch_version, cuda, words):
    plan = tensorrt_install_plan(torch_version, cuda)
    assert not plan.installs and words in plan.reason
    assert plan.command().startswith("(nada a instalar")


def test_cuda_tag():
    assert cuda_tag("12.8") == "cu128" and cuda_tag("13.0.1") == "cu130" and cuda_tag(None) is None
    with pytest.raises(ValueError, match="não reconhecida"):
        cuda_tag("doze")


def test_probe_never_raises_and_says_why():
    probe = probe_tensorrt()
    assert set(probe) == {"tensorrt", "torch_tensorrt", "errors"}
    for name in ("tensorrt", "torch_tensorrt"):
        assert (probe[name] is None) == (name in probe["errors"])


def test_a_half_done_install_becomes_a_message_not_an_exception(monkeypatch):
    """Sem a libnvinfer o import do tensorrt levanta OSError (não ImportError): a sonda o diz e segue."""
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "tensorrt":
            raise OSError("libnvinfer.so.10: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    probe = probe_tensorrt()
    assert probe["tensorrt"] is None and "OSError" in probe["errors"]["tensorrt"]
    assert "libnvinfer" in probe["errors"]["tensorrt"]


def test_the_skip_message_says_what_did_not_run_and_why_tensorrt_is_missing():
    from course_utils.tensorrt import tensorrt_missing_reason

    text = tensorrt_missing_reason("torch_tensorrt", "ModuleNotFoundError: No module named 'torch_tensorrt'",
                                   "os engines fixo e dinâmico não foram montados nem medidos", "2.11.0+cu128", "12.8")
    assert text.startswith("torch_tensorrt não importa (ModuleNotFoundError")
    assert "os engines fixo e dinâmico não foram montados nem medidos" in text
    assert "pypi.nvidia.com" in text and "tensorrt-cu12-libs" in text and "não vêm do PyPI como rodas" in text
    assert text.endswith("pip install torch-tensorrt==2.11.0+cu128 --extra-index-url https://download.pytorch.org/whl/cu128")
    assert "sem mensagem" in tensorrt_missing_reason("tensorrt", None, "nada rodou", "2.13.0+cpu", None)


def test_measure_engine_times_and_compares_against_the_reference():
    import numpy as np
    import torch

    from course_utils.tensorrt import measure_engine

    torch.manual_seed(0)
    reference = torch.randn(1, 6, 10)
    flipped = reference.clone()
    flipped[0, 0] = -flipped[0, 0]          # a posição 0 passa a escolher outro token
    calls = []

    def run():
        calls.append(1)
        return flipped.half()

    result = measure_engine(run, reference, build_seconds=1.5, repeats=4, warmup=2)
    assert set(result) == {"ms", "build_s", "diff", "agree"} and result["build_s"] == 1.5
    assert len(calls) == 1 + 2 + 4 and result["ms"] >= 0
    assert abs(result["agree"] - 5 / 6) < 1e-6
    assert abs(result["diff"] - float((flipped.half().float() - reference).abs().max())) < 1e-6

    buffer = {"logits": None}               # um engine que escreve num buffer, lido por output()
    same = measure_engine(lambda: buffer.update(logits=reference.numpy().astype(np.float16)), reference.numpy(),
                          build_seconds=0.0, repeats=1, output=lambda: buffer["logits"])
    assert same["agree"] == 1.0 and same["diff"] < 1e-2
    with pytest.raises(ValueError, match="formato"):
        measure_engine(lambda: reference[:, :3], reference, build_seconds=0.0, repeats=1)


def test_the_constraint_pins_the_installed_torch_so_pip_cannot_replace_it(tmp_path):
    from course_utils.tensorrt import torch_constraint, write_torch_constraint

    assert torch_constraint("2.11.0+cu128") == "torch==2.11.0+cu128"
    path = write_torch_constraint("2.11.0+cu128", tmp_path / "c.txt")
    assert path.read_text().strip() == "torch==2.11.0+cu128"
    with pytest.raises(ValueError):
        torch_constraint("torch nightly")
