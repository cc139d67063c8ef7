"""A evidência de GPU commitada (results/gpu) cobre todos os notebooks e sustenta o que o README afirma.

Os números vêm de `python -m course_utils.run_course --profile gpu` numa GPU emprestada; aqui não há GPU, então
estes testes conferem o arquivo gravado: se um notebook novo entrar sem execução em GPU, ou se uma execução nova
contrariar uma afirmação do README, o teste falha.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = json.loads((ROOT / "results" / "gpu" / "resultados.json").read_text())
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def results(name):
    return SUMMARY["notebooks"][name]["results"]


def test_o_resumo_e_do_perfil_gpu_e_diz_qual_gpu_e_quais_versoes():
    env = SUMMARY["environment"]
    assert SUMMARY["profile"] == "gpu" and SUMMARY["smoke"] is False
    for key in ("gpu_name", "driver", "torch", "transformers", "cuda_torch"):
        assert env.get(key), f"falta {key} no ambiente do resumo de GPU"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_todo_notebook_rodou_na_gpu_com_status_ok(name):
    entry = SUMMARY["notebooks"].get(name)
    assert entry is not None, f"{name} não tem execução em results/gpu/resultados.json"
    assert entry["status"] == "ok", f"{name} falhou na GPU: {entry.get('error')}"
    assert entry["parameters"].get("DEVICE") == "cuda"


def test_readme_diz_o_que_foi_verificado_em_gpu_para_cada_notebook():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Verificado em GPU", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for row in re.findall(r"^\| ([0-9, ]+) \|", section, flags=re.M):
        listed.update(n.strip() for n in row.split(","))
    assert {n[:2] for n in NOTEBOOKS} <= listed
    assert SUMMARY["environment"]["gpu_name"] in section and SUMMARY["environment"]["driver"] in section
    assert "TensorRT" in section.split("Sem verificação em GPU", 1)[1], "o README deve dizer o que não foi verificado"


def test_08_picos_do_7b_de_configuracao_dentro_das_metas():
    r = results("08_colab_7b")
    assert r["gpu_7b_peak_gib_fp16"] <= 13.0
    assert r["gpu_7b_peak_gib_int8"] <= 7.0
    assert r["gpu_7b_peak_gib_nf4"] <= 4.0


def test_01_int8_e_nf4_medidos_em_cuda_ocupam_menos_e_custam_pouco():
    r = results("01_quantizacao_ptq")
    assert r["footprint_mb_nf4"] < r["footprint_mb_int8"] < r["footprint_mb_fp32"] / 2
    assert r["ppl_int8"] < 1.05 * r["ppl_fp32"]


def test_02_gptq_e_awq_removem_metade_do_aumento_do_rtn_em_3_bits():
    r = results("02_awq_gptq")
    assert r["gptq_w3g64_removed_fraction"] >= 0.5 and r["awq_w3g64_removed_fraction"] >= 0.5
    assert r["ppl_gptq_w4g64"] < r["ppl_rtn_w4g64"] and r["ppl_awq_w4g64"] < r["ppl_rtn_w4g64"]


def test_03_descarregar_camadas_na_gpu_custa_tempo_por_token():
    r = results("03_offloading")
    assert r["gpu_layers_offloaded_max"] > 0
    assert r["gpu_ms_per_token_max_offload"] > r["gpu_ms_per_token_no_offload"]


def test_05_cache_kv_e_compilacao_aceleram_na_gpu():
    r = results("05_kv_cache")
    assert r["speedup_kv_cache"] > 1
    assert r["tokens_per_s_static_compiled"] > r["tokens_per_s_static_cache"]


def test_06_provedor_cuda_mais_rapido_que_o_pytorch_na_gpu():
    r = results("06_onnx_runtime")
    assert r["latency_ms_ort_cuda"] < r["latency_ms_torch_cuda"]


def test_07_sem_tensorrt_nenhum_numero_de_tensorrt_e_as_celulas_puladas_contadas():
    r = results("07_tensorrt")
    assert r["tensorrt_available"] is False and r["cells_skipped"] > 0
    trt_numbers = [k for k in r if k.startswith("argmax_agreement_")
                   or (k.startswith("latency_ms_") and k not in ("latency_ms_eager", "latency_ms_torch_compile"))]
    assert not trt_numbers, f"número de TensorRT sem TensorRT instalado: {trt_numbers}"
    assert r["torch_compile_device"] == "cuda" and r["torch_compile_speedup"] > 1


def test_00_aot_pulado_so_com_motivo_registrado():
    r = results("00_zerogpu_spaces")
    assert "aoti_speedup" in r or r.get("aoti_skipped_reason")
