"""Testes do planejador de memória (course_utils.planner).

Os bytes previstos são conferidos contra modelos de verdade carregados pelo transformers + bitsandbytes na
CPU (checkpoints pequenos com pesos aleatórios, e o modelo de referência), e contra a tabela medida numa
H100 em docs/referencias.md. Os vereditos são conferidos pelas propriedades que precisam ter
(monotonia, o formato escolhido cabe, offload quando a GPU não basta), e as entradas ruins pelos erros
em português.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from course_utils import planner as P
from course_utils.config import REFERENCE_MODEL_ID
from course_utils.generation import kv_cache_bytes
from course_utils.measure import model_footprint
from course_utils.models import LLAMA2_7B_CONFIG, ModelNotAvailableError
from course_utils.quantization import bits_per_weight

pytestmark = pytest.mark.usefixtures("single_thread")

TINY_LLAMA = {"model_type": "llama", "vocab_size": 320, "hidden_size": 128, "intermediate_size": 320,
              "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
              "tie_word_embeddings": False}
# Qwen2: vieses em q/k/v (ficam sem quantizar) e embeddings amarrados ao lm_head
TINY_QWEN2 = {"model_type": "qwen2", "vocab_size": 256, "hidden_size": 64, "intermediate_size": 192,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "tie_word_embeddings": True}


def _bnb_config(fmt, compute):
    from transformers import BitsAndBytesConfig

    if fmt == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                              bnb_4bit_use_double_quant=(fmt == "nf4-dq"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    base = tmp_path_factory.mktemp("ckpt")
    out = {}
    for name, cfg in (("llama", TINY_LLAMA), ("qwen2", TINY_QWEN2)):
        out[name] = (cfg, P.write_random_checkpoint(cfg, base / name, "fp32", max_shard_gib=0.0004, seed=1))
    return out


def _load(folder, fmt, compute):
    from transformers import AutoModelForCausalLM

    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if fmt in dtypes:
        return AutoModelForCausalLM.from_pretrained(folder, dtype=dtypes[fmt])
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtypes[compute], device_map={"": "cpu"},
                                                quantization_config=_bnb_config(fmt, dtypes[compute]))


# ---------------------------------------------------------------- bytes dos pesos contra modelos carregados

@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("fmt", P.FORMATS)
def test_bytes_previstos_iguais_aos_do_modelo_carregado(checkpoints, arch, fmt):
    cfg, folder = checkpoints[arch]
    compute = "fp16" if arch == "llama" else "fp32"
    model = _load(folder, fmt, compute)
    measured = P.measured_weight_bytes(model)
    predicted = P.weight_bytes(cfg, fmt, compute)
    assert predicted["footprint"] == measured["footprint"] == model.get_memory_footprint()
    assert predicted["stored"] == measured["stored"]
    if fmt in P.QUANTIZED:
        assert predicted["stored"] > predicted["footprint"], "o estado de quantização (SCB/absmax) também ocupa memória"
        assert predicted["quantized_params"] < predicted["params"]


def test_lm_head_e_vieses_ficam_sem_quantizar(checkpoints):
    cfg, folder = checkpoints["llama"]
    model = _load(folder, "nf4-dq", "fp16")
    assert model.lm_head.weight.dtype == torch.float16
    assert model.model.embed_tokens.weight.dtype == torch.float16
    cfg_q, folder_q = checkpoints["qwen2"]
    q = _load(folder_q, "int8", "fp32")
    attn = q.model.layers[0].self_attn
    assert attn.q_proj.weight.dtype == torch.int8 and attn.q_proj.bias.dtype == torch.float32
    w = P.weight_bytes(cfg_q, "int8", "fp32")
    linear_weights = sum(m.in_features * m.out_features for n, m in q.named_modules()
                         if type(m).__name__ == "Linear8bitLt")
    assert w["quantized_params"] == linear_weights


def test_modelo_de_referencia_fp32_exato(reference_model):
    predicted = P.weight_bytes(REFERENCE_MODEL_ID, "fp32", "fp32")
    assert predicted["stored"] == P.measured_weight_bytes(reference_model)["stored"]
    assert predicted["stored"] == pytest.approx(model_footprint(reference_model)["total_mb"] * 2**20, abs=1)
    assert predicted["params"] == sum(p.numel() for p in reference_model.parameters())


@pytest.mark.parametrize("fmt,cited_gib", [("fp16", 12.55), ("int8", 6.52), ("nf4-dq", 3.50)])
def test_llama2_7b_bate_com_a_tabela_medida_na_h100(fmt, cited_gib):
    """docs/referencias.md: get_memory_footprint de um Llama-2-7B aleatório numa H100 (fp16, LLM.int8, NF4 + DQ)."""
    w = P.weight_bytes(LLAMA2_7B_CONFIG, fmt, "fp16")
    assert w["footprint"] / 2**30 == pytest.approx(cited_gib, rel=0.005)
    assert w["params"] == pytest.approx(6.74e9, rel=0.001)


def test_dupla_quantizacao_economiza_o_que_o_qlora_diz():
    """QLoRA: a dupla quantização economiza ~0,37 bit por parâmetro (citado em docs/referencias.md)."""
    nf4 = P.weight_bytes(LLAMA2_7B_CONFIG, "nf4", "fp16")
    dq = P.weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")
    saved_bits = 8 * (nf4["stored"] - dq["stored"]) / nf4["quantized_params"]
    assert saved_bits == pytest.approx(0.373, abs=0.01)


def test_bits_por_peso_numericos_valem_para_as_lineares_quantizadas():
    """GPTQ/AWQ: um número de bits por peso (escalas e zeros somados) nas lineares dos blocos; o resto em fp16."""
    fp16 = P.weight_bytes(LLAMA2_7B_CONFIG, "fp16")
    w3 = P.weight_bytes(LLAMA2_7B_CONFIG, 3.0)
    # cada peso quantizado sai de 2 bytes para 3/8 de byte; embeddings, lm_head e normas não mudam
    assert fp16["stored"] - w3["stored"] == w3["quantized_params"] * (2 - 3 / 8)
    assert P.weight_gib(LLAMA2_7B_CONFIG, 16) == pytest.approx(P.weight_gib(LLAMA2_7B_CONFIG, "fp16"))
    w4g64 = P.weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(4, 64, 16, 4))
    assert P.weight_gib(LLAMA2_7B_CONFIG, "nf4-dq") < w4g64 < P.weight_gib(LLAMA2_7B_CONFIG, "int8")
    assert P.weight_gib(LLAMA2_7B_CONFIG, 3.0, "fp32") > P.weight_gib(LLAMA2_7B_CONFIG, 3.0)
    with pytest.raises(ValueError, match="bits por peso"):
        P.weight_bytes(LLAMA2_7B_CONFIG, 0)
    with pytest.raises(ValueError, match="Formato desconhecido"):
        P.weight_bytes(LLAMA2_7B_CONFIG, "int3")


# ---------------------------------------------------------------- cache KV, ativações e vereditos

def test_cache_kv_segue_a_formula_e_cresce_linearmente():
    p1 = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=1024, batch=1)
    p2 = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=2048, batch=3)
    assert p1["fp16"].kv_bytes == kv_cache_bytes(LLAMA2_7B_CONFIG, 1024, 1, 2) == 512 * 2**20
    assert p2["fp16"].kv_bytes == 6 * p1["fp16"].kv_bytes
    assert p1["fp32"].kv_bytes == 2 * p1["fp16"].kv_bytes
    assert p1["nf4-dq"].kv_bytes == p1["fp16"].kv_bytes  # o cache fica no dtype de computação (fp16 com GPU)
    assert p2["fp16"].activation_bytes > p1["fp16"].activation_bytes > 0
    assert p1["nf4-dq"].activation_bytes > p1["fp16"].activation_bytes  # + um peso desquantizado por vez


def test_as_ativacoes_somam_cada_termo_da_formula():
    """activation_bytes termo a termo, num Llama pequeno (h=128, i=320, V=320, 4 cabeças, 2 KV), lote 2, 10 tokens."""
    from course_utils.planner import CUBLAS_WORKSPACE_BYTES, int8_linear_peak_bytes, load_config

    cfg = load_config(TINY_LLAMA)
    h, i, V, h_kv, n = 128, 320, 320, 64, 20          # n = lote x tokens
    shapes = P.weight_bytes(cfg, "int8")["linear_shapes"]
    assert set(shapes) == {(128, 128), (64, 128), (320, 128), (128, 320)}   # q/o, k/v, gate/up, down
    base = n * (3 * h + max(2 * h + 2 * h_kv + max(2 * h, 3 * h_kv), h + 3 * i)) * 2 + 2 * 2 * V * 4
    fp16 = P.activation_bytes(cfg, 10, 2, 2, "fp16", shapes)
    assert fp16 == base + CUBLAS_WORKSPACE_BYTES
    assert P.activation_bytes(cfg, 10, 2, 2, "nf4", shapes) - fp16 == 320 * 128 * 2       # a maior linear em fp16
    assert P.activation_bytes(cfg, 10, 2, 2, "nf4-dq", shapes) - fp16 == 320 * 128 * 2 + 2 * 320 * 128 * 4 // 64
    worst = max(int8_linear_peak_bytes(o, k, n) for o, k in shapes)
    assert P.activation_bytes(cfg, 10, 2, 2, "int8", shapes) - fp16 == worst


def test_o_pior_caso_do_llm_int8_segue_as_tres_fases_do_bitsandbytes():
    from course_utils.planner import int8_linear_peak_bytes

    n, o, k = 10, 6, 4
    quantize, outliers, matmul = 4 * n * k, n * k + 2 * n * k + 9 * o * k, n * k + 2 * n * k + 2 * o * k + 6 * n * o
    assert int8_linear_peak_bytes(o, k, n) == max(quantize, outliers, matmul) == matmul
    assert int8_linear_peak_bytes(4096, 11008, 2049) == 2049 * 11008 * 3 + 9 * 4096 * 11008   # a fase dos outliers
    assert int8_linear_peak_bytes(4096, 11008, 2049, outlier_cols=0) == 4 * 2049 * 11008        # quantizar a entrada
    # mais colunas de outliers, mais memória; nunca além do pior caso
    sizes = [int8_linear_peak_bytes(4096, 11008, 128, outlier_cols=c) for c in (0, 100, 4000, 11008)]
    assert sizes == sorted(sizes) and sizes[-1] == int8_linear_peak_bytes(4096, 11008, 128)


def test_o_c_da_t4_e_o_total_que_a_bibliografia_cita_para_o_cuda():
    """PRESETS["colab_t4"] usa o que o CUDA informa numa T4 do Colab (docs/referencias.md#colab-t4), não os 16 GB da
    ficha nem os 15 GB depois do ECC."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "referencias.md").read_text(encoding="utf-8")
    section = text[text.index('<a id="colab-t4"></a>'):]
    section = section[:section.index("<a id=", 10)]
    t4 = P.PRESETS["colab_t4"]
    assert f"total capacity of {t4.gpu_gib:.2f} GiB" in section and "16 GB" in section and "6.25%" in section
    assert t4.gpu_gib == P.T4_CUDA_TOTAL_GIB < 16 * (1 - 0.0625)   # mesmo lendo os 16 GB como GiB


def test_t4_escolhe_nf4_dq_para_o_7b_e_explica():
    plan = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=2048, name="Llama-2-7B")
    assert plan.choice == "nf4-dq"
    assert plan["nf4-dq"].verdict == "gpu" and plan["int8"].verdict == "gpu"
    assert plan["fp16"].verdict == "cpu_offload"
    assert plan["fp32"].verdict == "disk_offload"
    text = str(plan)
    assert "Escolha: NF4 + dupla quant." in text and "fp16 não serve" in text and "bf16 ficou de fora" in text
    assert "cabe na GPU" in text and "precisa de offload para a CPU" in text
    # a conta da explicação bate com os bytes do plano
    f = plan["nf4-dq"]
    assert f.total_bytes == f.weights_bytes + f.kv_bytes + f.activation_bytes + f.reserved_bytes
    assert f"{f.total_bytes / 2**30:.2f} GiB" in f.explanation


def test_gpus_maiores_escolhem_16_bits_e_a_t4_nunca_bf16():
    assert P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_a100").choice == "bf16"
    assert P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_l4").choice == "bf16"
    small = {**TINY_LLAMA}
    assert P.plan_memory(small, hardware="colab_t4").choice == "fp16"  # cabe em tudo, mas a T4 não faz bf16 rápido


def test_veredito_nunca_melhora_com_menos_memoria():
    ranks = []
    for gpu in (80, 40, 24, 15, 8, 4, 2, 1, 0.5):
        plan = P.plan_memory(LLAMA2_7B_CONFIG, gpu_gib=gpu, cpu_gib=12.0, context_tokens=2048)
        ranks.append([P.memory_plan._VERDICT_RANK[plan[f].verdict] for f in P.FORMATS])
    for before, after in zip(ranks, ranks[1:], strict=False):
        assert all(a >= b for a, b in zip(after, before, strict=True))
    assert ranks[0] == [0] * len(P.FORMATS) and ranks[-1] == [3] * len(P.FORMATS)


def test_offload_para_cpu_disco_e_impossivel():
    t4 = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4")
    assert t4["fp16"].cpu_bytes > 0 and t4["fp16"].disk_bytes == 0
    no_ram = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", cpu_gib=1.0)
    assert no_ram["fp16"].verdict == "disk_offload" and no_ram["fp16"].disk_bytes > 0
    no_disk = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", cpu_gib=1.0, disk_gib=0.5)
    assert no_disk["fp16"].verdict == "impossible" and "disco" in no_disk["fp16"].explanation
    laptop = P.plan_memory(LLAMA2_7B_CONFIG, hardware="laptop_cpu")
    assert laptop["fp32"].verdict == "disk_offload" and laptop["nf4-dq"].verdict == "cpu"
    assert laptop.compute_dtype == "fp32"
    huge_context = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=32768)
    assert all(f.verdict == "impossible" for f in huge_context.formats.values())
    assert huge_context.choice is None and "Reduza o contexto" in huge_context.explanation
    # ZeroGPU: sem RAM declarada, o que não cabe na fatia não roda
    big = {**LLAMA2_7B_CONFIG, "num_hidden_layers": 200}
    zero = P.plan_memory(big, hardware="zerogpu", formats=("fp16",))
    assert zero["fp16"].verdict == "impossible" and "RAM" in zero["fp16"].explanation


def test_offload_de_int8_conta_as_camadas_sem_quantizar():
    """Com offload o transformers deixa as camadas offloaded no dtype de carga: ocupam 2 bytes/peso na RAM."""
    plan = P.plan_memory(LLAMA2_7B_CONFIG, gpu_gib=5.0, cpu_gib=64.0, formats=("int8",))
    f = plan["int8"]
    assert f.verdict == "cpu_offload" and "sem quantizar" in f.note
    w = P.weight_bytes(LLAMA2_7B_CONFIG, "int8", "fp16")
    ratio = w["layer_unquantized"] / w["layer_stored"]
    assert ratio == pytest.approx(2.0, rel=0.01)   # fp16 (2 bytes) contra int8 (1 byte + escalas)
    resident_weights = f.gpu_bytes - w["layer_unquantized"]
    assert f.cpu_bytes == pytest.approx((f.weights_bytes - resident_weights) * ratio, rel=0.01)


def test_from_pretrained_kwargs_realiza_o_plano():
    plan = P.plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4")
    kw = P.from_pretrained_kwargs(plan)
    q = kw["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.float16 and kw["dtype"] == torch.float16
    assert kw["device_map"] == "auto" and 0 < kw["max_memory"][0] < 15 * 2**30
    offl = P.from_pretrained_kwargs(plan, "int8")
    assert not offl["quantization_config"].llm_int8_enable_fp32_cpu_offload  # int8 cabe: sem offload
    fp16 = P.from_pretrained_kwargs(plan, "fp16")
    assert "quantization_config" not in fp16 and fp16["dtype"] == torch.float16
    disk = P.plan_memory(LLAMA2_7B_CONFIG, hardware="laptop_cpu")
    kw_disk = P.from_pretrained_kwargs(disk, "fp32", offload_folder="/tmp/x")
    assert kw_disk["offload_folder"] == "/tmp/x" and kw_disk["dtype"] == torch.float32
    off_q = P.from_pretrained_kwargs(P.plan_memory(LLAMA2_7B_CONFIG, gpu_gib=5.0, cpu_gib=64.0), "int8")
    assert off_q["quantization_config"].llm_int8_enable_fp32_cpu_offload


def test_planeja_a_partir_do_id_offline_e_de_um_config(reference_model):
    by_id = P.plan_memory(REFERENCE_MODEL_ID, gpu_gib=0, cpu_gib=8.0)
    by_cfg = P.plan_memory(reference_model.config, gpu_gib=0, cpu_gib=8.0)
    assert by_id.choice == by_cfg.choice == "fp32"
    assert by_id["fp32"].weights_bytes == by_cfg["fp32"].weights_bytes
    assert by_id.params == sum(p.numel() for p in reference_model.parameters())


def test_detect_hardware_sem_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    hw = P.detect_hardware()
    assert not hw.has_gpu and hw.cpu_gib > 0 and hw.disk_gib > 0
    assert P.plan_memory(TINY_LLAMA, hardware=hw).compute_dtype == "fp32"


def test_checkpoint_aleatorio_em_shards(checkpoints):
    cfg, folder = checkpoints["llama"]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    model = _load(folder, "fp32", "fp32")
    assert torch.all(model.model.norm.weight == 1)
    std = model.model.layers[0].mlp.up_proj.weight.std().item()
    assert std == pytest.approx(0.02, rel=0.1)


# ---------------------------------------------------------------- entradas ruins: erros em português

def test_modelo_desconhecido_sem_hub_da_erro_em_portugues():
    with pytest.raises(ModelNotAvailableError, match="Hub não está acessível"):
        P.plan_memory("organizacao-que-nao-existe/modelo-7b", hardware="colab_t4")


@pytest.mark.parametrize("kwargs", [dict(gpu_gib=-1.0), dict(cpu_gib=-0.5), dict(disk_gib=-2),
                                    dict(gpu_gib=float("nan"))])
def test_memoria_negativa_da_erro(kwargs):
    with pytest.raises(ValueError, match="negativa"):
        P.plan_memory(TINY_LLAMA, **{"cpu_gib": 8.0, **kwargs})


def test_config_sem_campos_da_erro_com_o_nome_do_campo():
    broken = {k: v for k, v in LLAMA2_7B_CONFIG.items() if k != "hidden_size"}
    with pytest.raises(ValueError, match="Faltam campos.*hidden_size"):
        P.plan_memory(broken, hardware="colab_t4")
    from transformers import PretrainedConfig

    with pytest.raises(ValueError, match="Faltam campos.*vocab_size"):
        P.plan_memory(PretrainedConfig(), hardware="colab_t4")


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(hardware="tpu_v9"), "Hardware desconhecido"),
    (dict(hardware="colab_t4", formats=("fp8",)), "Formato"),
    (dict(hardware="colab_t4", context_tokens=0), "context_tokens"),
    (dict(hardware="colab_t4", batch=0), "batch"),
    (dict(hardware="colab_t4", margin=1.5), "margin"),
    (dict(hardware="colab_t4", compute_dtype="int4"), "compute_dtype"),
])
def test_parametros_invalidos_dao_erro_em_portugues(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        P.plan_memory(TINY_LLAMA, **kwargs)


def test_tipo_de_entrada_errado():
    with pytest.raises(TypeError, match="PretrainedConfig"):
        P.plan_memory(42, hardware="colab_t4")
    plan = P.plan_memory(TINY_LLAMA, hardware="colab_t4")
    with pytest.raises(ValueError, match="não avaliou"):
        P.from_pretrained_kwargs(P.plan_memory(TINY_LLAMA, hardware="colab_t4", formats=("fp16",)), "int8")
    assert math.isfinite(plan["fp16"].total_bytes)


# ---------------------------------------------------------------- contra picos medidos numa GPU (results/)

MEASURED_KEYS = (("fp16", "fp16"), ("int8", "int8"), ("nf4-dq", "nf4"))


def _measured_7b(profile="gpu", kind=""):
    """{formato: pico medido em GiB} do 7B de pesos aleatórios na evidência de GPU de `profile` ("gpu" ou "t4");
    kind="long_": o prefill longo (2048 tokens + 1 gerado)."""
    import json

    path = Path(__file__).resolve().parents[1] / "results" / profile / "resultados.json"
    if not path.exists():
        pytest.skip(f"sem evidência de GPU commitada (results/{profile}/resultados.json)")
    results = json.loads(path.read_text())["notebooks"]["08_colab_7b"]["results"]
    return {fmt: results[f"gpu_7b_{kind}peak_gib_{key}"] for fmt, key in MEASURED_KEYS
            if f"gpu_7b_{kind}peak_gib_{key}" in results}


@pytest.mark.parametrize("profile,kind,context", [("gpu", "", 160), ("t4", "", 160), ("t4", "long_", 2049)])
def test_the_plan_covers_every_measured_7b_peak_without_wasting_more_than_15_percent(profile, kind, context):
    """Pesos + cache KV + ativações do plano (sem a reserva, que o alocador do PyTorch não vê) contra o pico medido do
    7B de pesos aleatórios numa H100 (results/gpu) e numa H200 (results/t4), como no notebook 08: prompt de 128 + 32
    tokens gerados, e o prefill de 2048 tokens. O plano é um limite de cima: nunca abaixo do medido."""
    from course_utils.models import LLAMA2_7B_CONFIG
    from course_utils.planner import plan_memory

    peaks = _measured_7b(profile, kind)
    assert peaks, f"results/{profile} não tem picos {kind or 'curtos'} do 7B"
    plan = plan_memory(LLAMA2_7B_CONFIG, gpu_gib=79.0, cpu_gib=64.0, context_tokens=context, formats=tuple(peaks))
    for fmt, peak in peaks.items():
        p = plan[fmt]
        planned = (p.weights_bytes + p.kv_bytes + p.activation_bytes) / 2**30
        assert 0 <= planned / peak - 1 <= 0.15, f"{fmt}: plano {planned:.3f} GiB x pico medido {peak:.3f} GiB"


def test_the_int8_worst_case_is_what_the_long_prefill_of_random_weights_reaches():
    """Com 2048 tokens quase todas as colunas da entrada do down_proj passam de 6 com pesos aleatórios: o pico medido
    do INT8 fica perto do pior caso do plano (a menos de 3%), e bem acima do plano sem o termo dos outliers."""
    from course_utils.models import LLAMA2_7B_CONFIG
    from course_utils.planner import int8_linear_peak_bytes, plan_memory

    peak = _measured_7b("t4", "long_").get("int8")
    if peak is None:
        pytest.skip("a evidência t4 não tem o prefill longo do INT8")
    p = plan_memory(LLAMA2_7B_CONFIG, gpu_gib=79.0, cpu_gib=64.0, context_tokens=2049, formats=("int8",))["int8"]
    planned = (p.weights_bytes + p.kv_bytes + p.activation_bytes) / 2**30
    no_outliers = planned - (int8_linear_peak_bytes(4096, 11008, 2049)
                             - int8_linear_peak_bytes(4096, 11008, 2049, outlier_cols=0)) / 2**30
    assert planned / peak - 1 < 0.03
    assert no_outliers < peak


def test_t4_verdicts_fit_what_was_measured():
    """O que o planejador manda para a GPU da T4 cabe nela com o pico medido mais a reserva; o que ele recusa não."""
    from course_utils.models import LLAMA2_7B_CONFIG
    from course_utils.planner import PRESETS, plan_memory

    peaks = _measured_7b("t4")
    t4 = PRESETS["colab_t4"]
    plan = plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=160, formats=tuple(peaks))
    for fmt, peak in peaks.items():
        fits = peak + t4.gpu_reserved_gib <= t4.gpu_gib
        if plan[fmt].verdict == "gpu":
            assert fits, f"{fmt}: o plano diz 'gpu', mas o pico medido + reserva não cabe em {t4.gpu_gib} GiB"
    assert plan_memory(LLAMA2_7B_CONFIG, hardware="colab_t4", context_tokens=2048).choice == "nf4-dq"


def test_plan_presets_and_verdict_table_agree_with_plan_memory():
    from course_utils.models import LLAMA2_7B_CONFIG
    from course_utils.planner import PRESETS, plan_memory, plan_presets, verdict_table

    plans = plan_presets(LLAMA2_7B_CONFIG, context_tokens=2048)
    assert set(plans) == set(PRESETS)
    table = verdict_table(plans)
    for name, plan in plans.items():
        alone = plan_memory(LLAMA2_7B_CONFIG, hardware=name, context_tokens=2048)
        assert plan.choice == alone.choice, name
        assert PRESETS[name].name in table


def _fake_gpu(monkeypatch, free_gib, total_gib, torch_reserved_gib=0.0):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (int(free_gib * 2**30), int(total_gib * 2**30)))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: int(torch_reserved_gib * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "GPU de teste")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))


def test_the_gpu_reserve_is_subtracted_once_on_the_detected_machine(monkeypatch):
    """A memória livre medida já não conta o contexto CUDA: a reserva desconta só o que falta dela."""
    _fake_gpu(monkeypatch, free_gib=14.4, total_gib=14.75)   # 0,35 GiB já ocupados pelo contexto
    monkeypatch.delenv("COURSE_HARDWARE", raising=False)
    hw = P.detect_hardware()
    assert hw.gpu_outside_gib == pytest.approx(0.35)
    assert hw.gpu_reserved_gib == pytest.approx(P.GPU_RESERVE_GIB - 0.35)
    assert hw.gpu_gib - hw.gpu_reserved_gib == pytest.approx(14.75 - P.GPU_RESERVE_GIB)   # o que o plano usa


def test_an_emulated_preset_keeps_its_total_and_the_whole_reserve(monkeypatch):
    _fake_gpu(monkeypatch, free_gib=139.0, total_gib=139.8)
    monkeypatch.setenv("COURSE_HARDWARE", "colab_t4")
    hw = P.detect_hardware()
    assert hw.gpu_gib == P.PRESETS["colab_t4"].gpu_gib and hw.gpu_reserved_gib == P.GPU_RESERVE_GIB
    assert not hw.gpu_bf16
