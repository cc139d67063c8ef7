"""Exercícios do notebook 08 (de valor): a referência passa e um erro realista é recusado com a dica, sem a resposta."""

import importlib
import sys
from pathlib import Path

from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "grading"))
ref = importlib.import_module("08_colab_7b")


def test_references_pass():
    for ex_id, value in (("08.1", ref.T4_13B_CONTEXT), ("08.2", ref.NF4_DQ_BITS), ("08.3", ref.T4_7B_KV_TOKENS)):
        assert evaluate(ex_id, value)[0], ex_id


def test_context_past_the_limit_is_rejected_with_the_hint():
    ok, message = evaluate("08.1", ref.T4_13B_CONTEXT + 1024)
    assert not ok and "cache KV" in message and str(ref.T4_13B_CONTEXT) not in message


def test_bits_without_double_quantization_are_rejected_with_the_hint():
    ok, message = evaluate("08.2", 4 + 32 / 64)
    assert not ok and "dupla quantização" in message


def test_kv_tokens_with_the_footprint_instead_of_the_stored_weights_are_rejected_with_the_hint():
    from course_utils.models import LLAMA2_7B_CONFIG
    from course_utils.planner import weight_bytes

    w = weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")
    wrong = ref.T4_7B_KV_TOKENS + (w["stored"] - w["footprint"]) / (2 * 32 * 32 * 128 * 2)
    ok, message = evaluate("08.3", wrong)
    assert not ok and "GUARDADO" in message and f"{ref.T4_7B_KV_TOKENS:.0f}" not in message


def test_kv_tokens_without_the_margin_are_rejected_with_the_hint():
    ok, message = evaluate("08.3", ref.T4_7B_KV_TOKENS + 15 * 0.1 * 2**30 / (2 * 32 * 32 * 128 * 2))
    assert not ok and "folga" in message
