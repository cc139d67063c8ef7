"""Exercícios do notebook 07: referência, um erro realista por exercício (dica sem a resposta), funções do pacote."""

import importlib
import sys
from pathlib import Path

import pytest
import torch

from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "grading"))
sys.path.insert(0, str(ROOT / "tests"))
ref = importlib.import_module("07_tensorrt")
from test_exercises_nb06 import package_functions  # noqa: E402


def test_references_pass():
    assert evaluate("07.1", ref.FP16_SQUARE_LIMIT)[0]
    assert evaluate("07.2", ref.rmsnorm_fp16)[0]
    assert evaluate("07.3", ref.profile_for)[0]


def test_forgetting_the_square_root_is_rejected_with_the_hint():
    ok, message = evaluate("07.1", 65504)
    assert not ok and "QUADRADO" in message and "255" not in message


def test_rmsnorm_that_upcasts_to_fp32_is_rejected_with_the_hint():
    def upcast(x, peso, eps=1e-5):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).half() * peso

    ok, message = evaluate("07.2", upcast)
    assert not ok and "fp32" in message


def test_rmsnorm_with_eps_over_m_squared_is_rejected_with_the_hint():
    def overflowing_eps(x, peso, eps=1e-5):   # a escala certa, mas eps / (m*m): 1/m² estoura em fp16
        m = x.abs().amax(-1, keepdim=True)
        return x / (m * torch.sqrt((x / m).pow(2).mean(-1, keepdim=True) + eps / (m * m))) * peso

    ok, message = evaluate("07.2", overflowing_eps)
    assert not ok and "1/m²" in message


def test_profile_with_tuple_min_max_is_rejected_with_the_hint():
    def lexicographic(formatos):
        from collections import Counter
        return {"min": min(formatos), "max": max(formatos), "opt": Counter(formatos).most_common(1)[0][0]}

    ok, message = evaluate("07.3", lexicographic)
    assert not ok and "CADA eixo" in message


@pytest.mark.parametrize("ex_id, n_args", [("07.2", 2), ("07.3", 1)])
def test_no_package_function_passes(ex_id, n_args):
    for name, fn in package_functions(n_args).items():
        ok, _ = evaluate(ex_id, fn)
        assert not ok, f"{name} passa no exercício {ex_id}"
