"""Exercícios do notebook 06: a referência passa, um erro realista é recusado com a dica e sem a resposta, e nenhuma
função do pacote do aluno com assinatura compatível passa."""

import importlib
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "grading"))
ref = importlib.import_module("06_onnx_runtime")


PACKAGE_MODULES = ("course_utils.ort", "course_utils.quantization", "course_utils.onnx_export", "course_utils.tensorrt",
                   "course_utils.planner", "course_utils.measure", "course_utils.generation")


def package_functions(n_args, modules=PACKAGE_MODULES):
    """Funções públicas dos módulos do pacote que estas lições usam e que aceitam n_args posicionais."""
    import pkgutil

    names = []
    for base in modules:
        module = importlib.import_module(base)
        names.append(base)
        if hasattr(module, "__path__"):
            names += [info.name for info in pkgutil.walk_packages(module.__path__, base + ".")]
    found = {}
    for module_name in names:
        module = importlib.import_module(module_name)
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn) or not fn.__module__.startswith("course_utils"):
                continue
            positional = [p for p in inspect.signature(fn).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            required = [p for p in positional if p.default is p.empty]
            if len(required) <= n_args <= len(positional):
                found[f"{fn.__module__}.{name}"] = fn
    return found


def test_references_pass():
    assert evaluate("06.1", ref.DECODE_CEILING)[0]
    assert evaluate("06.2", ref.unpack_int4_blocks)[0]
    assert evaluate("06.3", ref.llm_int8_matmul)[0]


def test_ceiling_without_the_scale_is_rejected_with_the_hint():
    ok, message = evaluate("06.1", 50e9 / (7e9 * 4 / 8))
    assert not ok and "escala" in message and f"{ref.DECODE_CEILING:.1f}" not in message


def test_unpack_with_swapped_nibbles_is_rejected_with_the_hint():
    def swapped(B, escalas, pontos_zero):
        w = ref.unpack_int4_blocks(B, escalas, pontos_zero)
        out = w.copy()
        out[0::2], out[1::2] = w[1::2], w[0::2]
        return out

    ok, message = evaluate("06.2", swapped)
    assert not ok and "nibble baixo" in message


def test_unpack_that_ignores_the_zero_point_is_rejected_with_the_hint():
    def no_zero(B, escalas, pontos_zero):
        return ref.unpack_int4_blocks(B, escalas, np.full_like(pontos_zero, 0x88) if pontos_zero is not None else None)

    ok, message = evaluate("06.2", no_zero)
    assert not ok and "ponto-zero" in message


def test_llm_int8_with_one_scale_per_tensor_is_rejected_with_the_hint():
    def per_tensor(x, w, limiar=6.0):
        x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
        out = np.abs(x).max(0) > limiar
        xr, wr = x[:, ~out], w[~out]
        sx, sw = np.abs(xr).max() / 127, np.abs(wr).max() / 127
        return (x[:, out] @ w[out] + (np.rint(xr / sx) @ np.rint(wr / sw)) * sx * sw).astype(np.float32)

    ok, message = evaluate("06.3", per_tensor)
    assert not ok and "LINHA" in message and "COLUNA" in message


def test_llm_int8_without_the_outlier_split_is_rejected_with_the_hint():
    ok, message = evaluate("06.3", lambda x, w, limiar=6.0: ref.llm_int8_matmul(x, w, limiar=np.inf))
    assert not ok and "outliers" in message


@pytest.mark.parametrize("ex_id, n_args", [("06.2", 3), ("06.3", 2)])
def test_no_package_function_passes(ex_id, n_args):
    for name, fn in package_functions(n_args).items():
        ok, _ = evaluate(ex_id, fn)
        assert not ok, f"{name} passa no exercício {ex_id}"


def _delegated_unpack(B, escalas, pontos_zero):
    """A resposta que delega ao kernel: um MatMulNBits do pacote numa sessão do ORT, com X = identidade."""
    from course_utils.ort import create_session, matmulnbits_model

    k = B.shape[1] * B.shape[2] * 2
    session = create_session(matmulnbits_model(B, escalas, pontos_zero))
    return session.run(None, {"X": np.eye(k, dtype=np.float32)})[0]


def test_unpack_delegated_to_an_ort_session_is_rejected_with_the_delegation_message():
    ok, message = evaluate("06.2", _delegated_unpack)
    assert not ok and "matmulnbits_model" in message and "implementar" in message


def test_unpack_delegated_to_a_raw_inference_session_is_rejected():
    import onnxruntime as ort

    from course_utils.ort import matmulnbits_model

    def raw(B, escalas, pontos_zero):
        k = B.shape[1] * B.shape[2] * 2
        path = str(matmulnbits_model(B, escalas, pontos_zero))
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"X": np.eye(k, dtype=np.float32)})[0]

    ok, message = evaluate("06.2", raw)
    assert not ok and "InferenceSession" in message


def test_hidden_cases_take_most_points_from_delegation_to_the_ort_kernel():
    """No corretor em lote só as saídas voltam: os blocos que o MatMulNBits recusa reprovam quem delega a ele."""
    from course_utils.grade import judge_function
    from course_utils.grader.wire import encode

    exercise = next(ex for ex in ref.EXERCISES if ex.id == "06.2")
    results = []
    for case in exercise.cases:
        try:
            results.append({"output": encode(_delegated_unpack(*case.args))})
        except Exception as exc:  # o ORT recusa o bloco: a chamada falha, como falharia no kernel do aluno
            results.append({"error": [type(exc).__name__, str(exc)[:200]]})
    outcome = judge_function(exercise, {"results": results})
    earned = outcome[0] if isinstance(outcome[0], (int, float)) else None
    assert earned is not None and earned <= exercise.points / 2, outcome
    hand = [{"output": encode(ref.unpack_int4_blocks(*case.args))} for case in exercise.cases]
    assert judge_function(exercise, {"results": hand})[0] == exercise.points
