"""A escolha da build do Torch-TensorRT (função pura) e a sondagem do TensorRT (import dentro de try)."""

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


def test_cuda13_torch_gets_the_pypi_build():
    plan = tensorrt_install_plan("2.11.0+cu130", "13.0")
    assert plan.pip_args == ("torch-tensorrt==2.11.0",)
    assert "tensorrt-cu13" in plan.notes[0]


@pytest.mark.parametrize("torch_version, cuda, words", [
    ("2.13.0+cpu", None, "só de CPU"),
    ("2.11.0+cu118", "11.8", "não há Torch-TensorRT 2.11 para CUDA 11.8"),
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
