"""As medidas do planejador (course_utils.planner.measure): memória agora, pesos previstos contra carregados e a
comparação do pico medido de um 7B com o plano (a parte que não precisa de GPU)."""

import math

import pytest

from course_utils import planner as P
from course_utils.models import LLAMA2_7B_CONFIG

pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {"model_type": "llama", "vocab_size": 320, "hidden_size": 128, "intermediate_size": 320,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return str(P.write_random_checkpoint(TINY, tmp_path_factory.mktemp("ckpt") / "tiny", "fp32", seed=3))


def test_memory_report_without_gpu_reports_the_process_only(capsys):
    report = P.memory_report("agora")
    assert set(report) == {"rss_mb"} and report["rss_mb"] > 10
    assert capsys.readouterr().out.startswith("[agora] RAM do processo")


@pytest.mark.parametrize("fmt", ["int8", "nf4", "nf4-dq"])
def test_bnb_quantization_config_is_what_from_pretrained_kwargs_uses(fmt):
    import torch

    plan = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", formats=(fmt,))
    planned = P.from_pretrained_kwargs(plan, fmt)["quantization_config"]
    direct = P.bnb_quantization_config(fmt, torch.float16)
    assert planned.to_dict() == direct.to_dict()
    assert P.bnb_quantization_config("fp16", torch.float16) is None


def test_verify_weight_predictions_loads_each_format_and_reuses_what_was_measured(tiny_checkpoint):
    fake = {"footprint": 1000, "stored": 1100}
    checks = P.verify_weight_predictions(tiny_checkpoint, ["fp32", "int8", "nf4-dq", "fp16"], "cpu", "fp32",
                                         measured={"fp16": fake})
    assert list(checks) == ["fp32", "int8", "nf4-dq", "fp16"]
    for fmt in ("fp32", "int8", "nf4-dq"):
        assert checks[fmt]["footprint_error_pct"] < 1 and checks[fmt]["stored_error_pct"] < 1, fmt
    assert checks["int8"]["measured"]["stored"] > checks["int8"]["measured"]["footprint"]   # as escalas SCB
    assert checks["fp16"]["measured"] is fake            # não carregou de novo
    predicted = checks["fp16"]["predicted"]["footprint"]
    assert math.isclose(checks["fp16"]["footprint_error_pct"], 100 * abs(1000 / predicted - 1))
    table = P.weight_check_table(checks)
    assert table.count("\n") == len(checks) and all(P.FORMAT_LABELS[f] in table for f in checks)


def _fake_results(plan, peaks, long_peaks):
    out = {}
    for fmt, peak in peaks.items():
        p = plan[fmt]
        out[fmt] = {"footprint_gib": p.footprint_bytes / 2**30, "planner_footprint_gib": p.footprint_bytes / 2**30,
                    "peak_allocated_gib": peak, "long_peak_allocated_gib": long_peaks.get(fmt), "tokens_per_s": 10.0,
                    "planner_weights_gib": p.weights_bytes / 2**30, "planner_kv_gib": p.kv_bytes / 2**30,
                    "planner_act_gib": p.activation_bytes / 2**30}
    return out


def test_compare_with_plan_and_peak_table():
    formats = ("fp16", "nf4-dq")
    plan = P.plan_memory(LLAMA2_7B_CONFIG, gpu_gib=79.0, cpu_gib=64.0, context_tokens=160, formats=formats)
    long_plan = P.plan_memory(LLAMA2_7B_CONFIG, gpu_gib=79.0, cpu_gib=64.0, context_tokens=2049, formats=formats)
    results = P.compare_with_plan(_fake_results(plan, {"fp16": 12.66, "nf4-dq": 3.80}, {"fp16": 13.5}), long_plan)
    fp16 = results["fp16"]
    planned = (plan["fp16"].weights_bytes + plan["fp16"].kv_bytes + plan["fp16"].activation_bytes) / 2**30
    assert math.isclose(fp16["planned_peak_gib"], planned)
    assert math.isclose(fp16["peak_error_pct"], 100 * (planned / 12.66 - 1))
    long_planned = (long_plan["fp16"].weights_bytes + long_plan["fp16"].kv_bytes + long_plan["fp16"].activation_bytes)
    assert math.isclose(fp16["long_peak_error_pct"], 100 * (long_planned / 2**30 / 13.5 - 1))
    assert fp16["planned_long_peak_gib"] > fp16["planned_peak_gib"]           # o cache KV e as ativações crescem
    assert results["nf4-dq"]["long_peak_error_pct"] is None                  # o prefill longo não foi medido
    table = P.peak_table(results, 2048)
    lines = table.splitlines()
    assert len(lines) == 3 and "prompt de 2048: pico 13.50G" in lines[1] and "não cabe nesta GPU" in lines[2]
    assert f"{fp16['peak_error_pct']:+.1f}%" in lines[1]


def test_measure_from_config_needs_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="GPU CUDA"):
        P.measure_from_config(LLAMA2_7B_CONFIG, None, ["fp16"])
