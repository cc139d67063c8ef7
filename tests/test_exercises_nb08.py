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
    from course_utils.planner import PRESETS

    margin_gib = PRESETS["colab_t4"].gpu_gib * 0.1
    ok, message = evaluate("08.3", ref.T4_7B_KV_TOKENS + margin_gib * 2**30 / (2 * 32 * 32 * 128 * 2))
    assert not ok and "folga" in message


def test_kv_tokens_with_the_16_gb_of_the_spec_sheet_are_rejected():
    """Quem usa os 16 GB da ficha da NVIDIA (ou os 15 GiB depois do ECC) no lugar do que o CUDA informa erra."""
    from course_utils.planner import PRESETS

    for total_gib in (16e9 / 2**30, 15.0):
        extra = (total_gib - PRESETS["colab_t4"].gpu_gib) * 0.9 * 2**30 / (2 * 32 * 32 * 128 * 2)
        ok, message = evaluate("08.3", ref.T4_7B_KV_TOKENS + extra)
        assert not ok and f"{ref.T4_7B_KV_TOKENS:.0f}" not in message


def test_the_13b_context_reference_is_the_limit_the_planner_draws():
    from course_utils.models import LLAMA2_13B_CONFIG
    from course_utils.planner import plan_memory

    def verdict(n):
        return plan_memory(LLAMA2_13B_CONFIG, hardware="colab_t4", context_tokens=n, formats=("nf4-dq",))["nf4-dq"].verdict

    assert ref.T4_13B_CONTEXT % 1024 == 0
    assert verdict(ref.T4_13B_CONTEXT) == "gpu" and verdict(ref.T4_13B_CONTEXT + 1024) != "gpu"


# ---------------------------------------------------------------- 08.4 e 08.5 (de função)

def test_function_references_pass():
    assert evaluate("08.4", ref.kv_cache_bytes_gqa_window)[0]
    assert evaluate("08.5", ref.nf4_dq_row_bytes)[0]


def test_a_hand_written_kv_answer_passes():
    def meus_bytes_kv(config, contexto, lote=1, bytes_por_elemento=2):
        kv = config.get("num_key_value_heads") or config["num_attention_heads"]
        d = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        w = config.get("sliding_window")
        tipos = config.get("layer_types") or ["sliding_attention"] * config["num_hidden_layers"]
        tokens = sum(min(contexto, w) if w and t == "sliding_attention" else contexto for t in tipos)
        return 2 * lote * tokens * kv * d * bytes_por_elemento

    assert evaluate("08.4", meus_bytes_kv)[0]


def _kv_with(**changes):
    def answer(config, contexto, lote=1, bytes_por_elemento=2):
        config = dict(config)
        for key in changes.get("drop", ()):
            config.pop(key, None)
        return ref.kv_cache_bytes_gqa_window(config, contexto, lote, bytes_por_elemento)
    return answer


def test_kv_with_mha_instead_of_gqa_is_rejected_with_the_hint():
    ok, message = evaluate("08.4", _kv_with(drop=("num_key_value_heads",)))
    assert not ok and "num_key_value_heads" in message and "536870912" not in message


def test_kv_ignoring_the_window_is_rejected_with_the_hint():
    ok, message = evaluate("08.4", _kv_with(drop=("sliding_window",)))
    assert not ok and "sliding_window" in message


def test_kv_with_the_window_on_every_layer_is_rejected_with_the_hint():
    ok, message = evaluate("08.4", _kv_with(drop=("layer_types",)))
    assert not ok and "full_attention" in message


def test_kv_delegated_to_the_package_is_rejected_even_under_another_name():
    from course_utils.generation import kv_cache_bytes as minha_conta

    ok, message = evaluate("08.4", lambda c, n, lote=1, bytes_por_elemento=2: minha_conta(c, n, lote, bytes_por_elemento))
    assert not ok and "kv_cache_bytes" in message and "implementar" in message


def test_a_hand_written_nf4_answer_passes():
    import math

    def meus_bytes_nf4_dq(saidas, entradas, bloco=64):
        blocos = saidas * math.ceil(entradas / bloco)
        return saidas * ((entradas + 1) // 2) + blocos + 4 * math.ceil(blocos / 256)

    assert evaluate("08.5", meus_bytes_nf4_dq)[0]


def _lesson_formula_without_constants(saidas, entradas, bloco=64):
    """O realista errado: copiar a conta da seção 2 (`_quantized_linear_bytes`, a fila só) sem as constantes."""
    import math

    n = saidas * entradas
    blocos = math.ceil(n / bloco)
    return (n + 1) // 2 + blocos + 4 * math.ceil(blocos / 256)


def test_copying_the_formula_the_lesson_shows_is_rejected_with_the_hint():
    ok, message = evaluate("08.5", _lesson_formula_without_constants)
    assert not ok and "fila só" in message and "164" not in message


def test_copying_the_lesson_formula_loses_most_hidden_points():
    nf4 = {ex.id: ex for ex in ref.EXERCISES}["08.5"]
    lost = sum(c.points for c in nf4.cases
               if _lesson_formula_without_constants(*c.args, **c.kwargs) != nf4.reference(*c.args, **c.kwargs))
    assert lost > sum(c.points for c in nf4.cases) / 2


def test_nf4_forgetting_the_absmax_bytes_is_rejected_with_the_hint():
    ok, message = evaluate("08.5", lambda saidas, entradas, bloco=64: saidas * ((entradas + 1) // 2))
    assert not ok and "absmax" in message and "8654848" not in message


def test_nf4_with_fp32_absmax_is_rejected_with_the_hint():
    import math

    ok, message = evaluate("08.5", lambda o, i, bloco=64: o * math.ceil(i / 2) + 4 * o * math.ceil(i / bloco))
    assert not ok and "sem dupla quantização" in message


def test_nf4_with_the_codes_of_a_single_row_is_rejected_with_the_hint():
    import math

    def codigos_em_fila(saidas, entradas, bloco=64):
        blocos = saidas * math.ceil(entradas / bloco)
        return math.ceil(saidas * entradas / 2) + blocos + 4 * math.ceil(blocos / 256)

    ok, message = evaluate("08.5", codigos_em_fila)
    assert not ok and "meio byte" in message


def test_nf4_delegated_to_the_planner_is_rejected():
    from course_utils.planner.weights import _quantized_linear_bytes

    ok, message = evaluate("08.5", lambda o, i, bloco=64: _quantized_linear_bytes(o, i, "nf4-dq")[0] - 4 - 64 - 1024)
    assert not ok and "_quantized_linear_bytes" in message


def test_hidden_cases_reject_delegation_to_the_package_by_their_outputs():
    """No corretor em lote só as saídas voltam: os casos ocultos precisam reprovar quem delega pelo resultado."""
    from course_utils.generation import kv_cache_bytes
    from course_utils.planner.weights import _quantized_linear_bytes

    by_id = {ex.id: ex for ex in ref.EXERCISES}
    kv, nf4 = by_id["08.4"], by_id["08.5"]
    kv_fails = [c for c in kv.cases if kv_cache_bytes(*c.args, c.kwargs.get("lote", 1), c.kwargs.get(
        "bytes_por_elemento", 2)) != kv.reference(*c.args, **c.kwargs)]
    assert sum(c.points for c in kv_fails) >= kv.points / 2
    assert all(_quantized_linear_bytes(*c.args, "nf4-dq")[0] != nf4.reference(*c.args, **c.kwargs) for c in nf4.cases)


def test_nf4_ignoring_the_block_parameter_is_rejected_with_the_hint():
    ok, message = evaluate("08.5", lambda saidas, entradas, bloco=64: ref.nf4_dq_row_bytes(saidas, entradas))
    assert not ok and "parâmetro bloco" in message
