"""Os notebooks do curso: higiene do arquivo, badges coerentes e execução completa com papermill.

A execução roda cada notebook com SMOKE=True (cargas de CI) no perfil offline e confere que
os resultados registrados existem e batem as metas de cada issue. As afirmações de cada
notebook também são conferidas dentro dele (um assert que falha derruba a execução).
"""

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.badges import badge_markdown, badges_file, setup_cell_source
from course_utils.config import GITHUB_BRANCH, GITHUB_REPO, NOTEBOOKS
from course_utils.runner import run_notebook

ROOT = Path(__file__).resolve().parent.parent
PATHS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in PATHS]

# Metas por notebook: chaves que têm de ser registradas e afirmações sobre elas.
TARGETS = {
    "00_zerogpu_spaces": {
        "keys": ["lint_rules", "lint_bad_flagged", "lint_bad_total", "lint_good_false_positives", "local_app_ok",
                 "aoti_speedup"],
        "claims": {
            "toda fixture ruim acusada pela regra certa":
                lambda r: r["lint_bad_flagged"] == r["lint_bad_total"] >= r["lint_rules"],
            "nenhum achado nas fixtures boas": lambda r: r["lint_good_false_positives"] == 0,
            "o Space roda localmente e responde ao gradio_client": lambda r: r["local_app_ok"] is True,
            "AoT medido (eager e compilado)": lambda r: r["aoti_speedup"] > 0,
        },
    },
    "01_quantizacao_ptq": {
        "keys": ["footprint_mb_fp32", "footprint_mb_int8", "footprint_mb_nf4", "ppl_fp32", "ppl_int8", "ppl_nf4",
                 "ppl_fp4", "ppl_torchao_int8", "latency_ms_fp32", "latency_ms_torchao_int8"],
        "claims": {
            "INT8 ocupa <= 45% do fp32": lambda r: r["footprint_mb_int8"] / r["footprint_mb_fp32"] <= 0.45,
            "NF4 ocupa <= 33% do fp32": lambda r: r["footprint_mb_nf4"] / r["footprint_mb_fp32"] <= 0.33,
            "LLM.int8 a menos de 3% da perplexidade fp32": lambda r: r["ppl_int8"] <= 1.03 * r["ppl_fp32"],
            "NF4 melhor que FP4 (QLoRA)": lambda r: r["ppl_nf4"] < r["ppl_fp4"],
            "perplexidades plausíveis": lambda r: 1 < r["ppl_fp32"] < 200,
            "latências medidas": lambda r: r["latency_ms_fp32"] > 0 and r["latency_ms_torchao_int8"] > 0,
        },
    },
    "02_awq_gptq": {
        "keys": ["ppl_fp32", "ppl_rtn_w4g64", "ppl_gptq_w4g64", "ppl_awq_w4g64", "ppl_rtn_w3g64", "ppl_gptq_w3g64",
                 "ppl_awq_w3g64", "seconds_gptq", "seconds_awq", "bits_per_weight_w4g64", "bits_per_weight_w3g64",
                 "gib_llama2_7b_w4g64", "gib_llama2_7b_w3g64", "awq_fold_max_logit_diff", "gptqmodel_ran"],
        "claims": {
            "GPTQ e AWQ melhores que RTN em w4g64":
                lambda r: max(r["ppl_gptq_w4g64"], r["ppl_awq_w4g64"]) < r["ppl_rtn_w4g64"],
            "GPTQ e AWQ melhores que RTN em w3g64":
                lambda r: max(r["ppl_gptq_w3g64"], r["ppl_awq_w3g64"]) < r["ppl_rtn_w3g64"],
            "GPTQ w3g64 remove >= metade do aumento do RTN sobre o fp32":
                lambda r: r["ppl_gptq_w3g64"] - r["ppl_fp32"] <= 0.5 * (r["ppl_rtn_w3g64"] - r["ppl_fp32"]),
            "AWQ w3g64 remove >= metade do aumento do RTN sobre o fp32":
                lambda r: r["ppl_awq_w3g64"] - r["ppl_fp32"] <= 0.5 * (r["ppl_rtn_w3g64"] - r["ppl_fp32"]),
            "RTN: 3 bits pior que 4, 4 pior que fp32":
                lambda r: r["ppl_rtn_w3g64"] > r["ppl_rtn_w4g64"] > r["ppl_fp32"],
            "bits por peso com escala fp16 e ponto-zero": lambda r: abs(r["bits_per_weight_w4g64"] - (4 + 20 / 64)) < 1e-9
                and abs(r["bits_per_weight_w3g64"] - (3 + 19 / 64)) < 1e-9,
            "7B em w3g64 < w4g64 < 4 GiB": lambda r: r["gib_llama2_7b_w3g64"] < r["gib_llama2_7b_w4g64"] < 4,
            "dobrar as escalas do AWQ não muda o modelo": lambda r: r["awq_fold_max_logit_diff"] < 1e-3,
            "tempos de GPTQ e AWQ medidos": lambda r: r["seconds_gptq"] > 0 and r["seconds_awq"] > 0,
            "(GPTQModel) ambos abaixo do RTN w4g64": lambda r: not r["gptqmodel_ran"]
                or max(r["gptqmodel_gptq_ppl"], r["gptqmodel_awq_ppl"]) < r["ppl_rtn_w4g64"],
        },
    },
    "03_offloading": {
        "keys": ["rss_peak_mb_in_memory", "rss_peak_mb_disk_offload", "seconds_per_token_in_memory",
                 "seconds_per_token_disk_offload", "disk_budget_mb", "model_size_mb", "jit_offload_matches"],
        "claims": {
            "offload para o disco: pico de RSS < 60% do em memória":
                lambda r: r["rss_peak_mb_disk_offload"] < 0.60 * r["rss_peak_mb_in_memory"],
            "orçamento do disco abaixo da metade do modelo": lambda r: r["disk_budget_mb"] < 0.5 * r["model_size_mb"],
            "disco mais lento por token que a RAM":
                lambda r: r["seconds_per_token_disk_offload"] > r["seconds_per_token_in_memory"] > 0,
            "offload à mão reproduz o modelo": lambda r: r["jit_offload_matches"] is True,
            "(GPU) mais camadas na CPU, mais tempo por token":
                lambda r: "gpu_ms_per_token_max_offload" not in r
                or r["gpu_ms_per_token_max_offload"] > r["gpu_ms_per_token_no_offload"],
        },
    },
    "04_janela_deslizante": {
        "keys": ["ppl_full", "ppl_window_only", "ppl_sinks_window", "window", "sinks", "tokens_evaluated",
                 "cache_tokens_max", "receptive_field_matches_theory"],
        "claims": {
            "só janela >= 2x sinks + janela": lambda r: r["ppl_window_only"] >= 2 * r["ppl_sinks_window"],
            "sinks + janela <= 1,25x contexto inteiro": lambda r: r["ppl_sinks_window"] <= 1.25 * r["ppl_full"],
            "cache fica em S + W": lambda r: r["cache_tokens_max"] == r["sinks"] + r["window"],
            "campo receptivo medido = L(W-1)": lambda r: r["receptive_field_matches_theory"] is True,
            "streaming avaliou mais de 1000 tokens": lambda r: r["tokens_evaluated"] >= 1000,
        },
    },
    "05_kv_cache": {
        "keys": ["kv_new_tokens", "speedup_kv_cache", "kv_bytes_formula", "kv_bytes_measured", "batch_throughput_gain"],
        "claims": {
            "cache KV >= 3x com 256 tokens novos": lambda r: r["kv_new_tokens"] == 256 and r["speedup_kv_cache"] >= 3,
            "fórmula do cache = bytes medidos (5%)": lambda r: abs(r["kv_bytes_measured"] / r["kv_bytes_formula"] - 1) < 0.05,
            "gerar em lote aumenta a vazão": lambda r: r["batch_throughput_gain"] > 1,
        },
    },
    "06_onnx_runtime": {
        "keys": ["max_abs_logit_diff_fp32", "ppl_ort_fp32", "ppl_ort_int8_dynamic", "ppl_ort_int8_weight_only",
                 "ppl_ort_int4_weight_only", "decode_tok_s_torch", "decode_tok_s_ort_fp32", "decode_tok_s_ort_int4",
                 "ort_int4_output_ok", "tokenizer_round_trip_ok", "memory_bandwidth_gbs"],
        "claims": {
            "logits do ONNX a <= 1e-3 do PyTorch": lambda r: r["max_abs_logit_diff_fp32"] <= 1e-3,
            "INT8 só nos pesos a menos de 2% do fp32": lambda r: r["ppl_ort_int8_weight_only"] <= 1.02 * r["ppl_ort_fp32"],
            "INT8 dinâmico perde mais que o só-pesos": lambda r: r["ppl_ort_int8_dynamic"] > r["ppl_ort_int8_weight_only"],
            "tokenizador do builder faz ida e volta": lambda r: r["tokenizer_round_trip_ok"] is True,
            "saída do int4 coerente": lambda r: r["ort_int4_output_ok"] is True,
            # as metas de velocidade da issue (fp32 >= 1,5x, int4 >= 4x) valem na execução completa, numa máquina
            # quieta (README); aqui, com a CI ocupada, conferimos só a direção, que tem folga grande
            "int4 do ORT decodifica mais rápido que o PyTorch":
                lambda r: r["decode_tok_s_ort_int4"] > r["decode_tok_s_torch"],
            "largura de banda medida": lambda r: r["memory_bandwidth_gbs"] > 0,
        },
    },
    "07_tensorrt": {
        "keys": ["tensorrt_available", "torch_compile_speedup", "onnx_max_abs_diff_fp32", "cells_skipped"],
        "claims": {
            "torch.compile medido (eager / compilado)": lambda r: r["torch_compile_speedup"] > 0,
            "ONNX que o TensorRT consome confere com o PyTorch": lambda r: r["onnx_max_abs_diff_fp32"] <= 1e-3,
            "sem TensorRT, as células puladas são contadas": lambda r: r["tensorrt_available"] or r["cells_skipped"] > 0,
        },
    },
    "08_colab_7b": {
        "keys": ["planner_max_error_pct", "planner_choice_colab_t4", "recipe_footprint_mb", "tokens_per_s_chat"],
        "claims": {
            "planejador erra < 5% nos pesos": lambda r: 0 <= r["planner_max_error_pct"] < 5,
            "na T4 o 7B vai em NF4 + dupla quantização": lambda r: r["planner_choice_colab_t4"] == "nf4-dq",
            "chat gerou tokens": lambda r: r["tokens_per_s_chat"] > 0,
            "(GPU) 7B em NF4 + DQ com pico <= 4,0 GiB": lambda r: r.get("gpu_7b_peak_gib_nf4", 0) <= 4.0,
            "(GPU) 7B em INT8 com pico <= 7,0 GiB": lambda r: r.get("gpu_7b_peak_gib_int8", 0) <= 7.0,
            "(GPU) 7B em fp16 com pico <= 13,0 GiB": lambda r: r.get("gpu_7b_peak_gib_fp16", 0) <= 13.0,
        },
    },
}

PT_WORDS = {"de", "que", "não", "para", "com", "uma", "os", "é", "em", "um", "do", "da", "mais", "como", "se"}
EN_WORDS = {"the", "and", "of", "to", "is", "with", "that", "this", "for", "are", "it", "you"}


def _read(path):
    return nbformat.read(path, as_version=4)


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]


def test_every_notebook_is_a_known_course_notebook():
    assert PATHS, "não há notebooks em notebooks/"
    for path in PATHS:
        assert path.stem in NOTEBOOKS, f"{path.name} não está em course_utils.config.NOTEBOOKS"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_hygiene(path):
    nb = _read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: célula com saída gravada (salve o notebook limpo)"
            assert cell.execution_count is None, f"{path.name}: contador de execução gravado"
    params = _tagged(nb, "parameters")
    assert len(params) == 1, f"{path.name}: precisa de exatamente uma célula com a tag 'parameters'"
    for name in ("MODEL_ID", "SMOKE", "SEED", "DEVICE"):
        assert re.search(rf"^{name}\s*=", nb.cells[params[0]].source, re.M), f"{path.name}: parâmetro {name} ausente"
    setup = _tagged(nb, "setup")
    assert len(setup) == 1 and setup[0] < params[0], f"{path.name}: a célula 'setup' vem antes dos parâmetros"
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    for word in ("Objetivos", "Pré-requisitos", "Tempo estimado", "Hardware"):
        assert word in first.source, f"{path.name}: a primeira célula deve dizer '{word}'"
    sources = "\n".join(c.source for c in nb.cells)
    assert "## Resumo" in sources, f"{path.name}: falta a seção 'Resumo'"
    assert "record(" in sources, f"{path.name}: o notebook não registra resultados"
    assert len(re.findall(r"check\(\"\d\d\.\d+\"", sources)) >= 3, f"{path.name}: precisa de pelo menos 3 exercícios com check()"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_prose_is_portuguese(path):
    text = " ".join(c.source for c in _read(path).cells if c.cell_type == "markdown").lower()
    words = re.findall(r"[a-zà-ú]+", text)
    pt = sum(w in PT_WORDS for w in words)
    en = sum(w in EN_WORDS for w in words)
    assert pt > 4 * max(en, 1), f"{path.name}: o texto não parece pt-BR ({pt} palavras pt, {en} en)"


def test_badges_and_setup_cells_agree_with_config():
    assert (ROOT / "colab_badges.md").read_text(encoding="utf-8") == badges_file(), \
        "colab_badges.md desatualizado: rode `make badges`"
    for path in PATHS:
        nb = _read(path)
        assert nb.cells[0].source.splitlines()[0] == badge_markdown(path.stem), f"{path.name}: badge desatualizado"
        assert f"{GITHUB_REPO}/blob/{GITHUB_BRANCH}/notebooks/{path.name}" in nb.cells[0].source
        assert nb.cells[_tagged(nb, "setup")[0]].source == setup_cell_source(), f"{path.name}: célula setup desatualizada"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in PATHS:
        assert badge_markdown(path.stem) in readme, f"README sem o badge de {path.stem}"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Executa cada notebook uma vez (SMOKE=True) e guarda o resultado para os testes abaixo."""
    out = tmp_path_factory.mktemp("executados")
    return {p.stem: (run_notebook(p, out, {"SMOKE": True}, progress=False), out / p.name) for p in PATHS}


@pytest.mark.notebook
@pytest.mark.parametrize("name", IDS)
def test_notebook_runs_and_meets_targets(executed, name):
    entry, out_path = executed[name]
    assert entry["status"] == "ok", f"{name} falhou: {entry['error']}"
    assert name in TARGETS, f"declare as metas de {name} em TARGETS"
    results = entry["results"]
    missing = [k for k in TARGETS[name]["keys"] if k not in results]
    assert not missing, f"{name} não registrou: {missing}"
    failed = [claim for claim, ok in TARGETS[name]["claims"].items() if not ok(results)]
    assert not failed, f"{name}: metas não atingidas: {failed} (resultados: {results})"
    # os exercícios deixados em branco dão retorno, não quebram o notebook
    outputs = "".join(o.get("text", "") for c in _read(out_path).cells if c.cell_type == "code" for o in c.outputs)
    assert "Ainda sem resposta" in outputs
