"""Testes ocultos do notebook 08 (um modelo 7B no Colab). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Os exercícios 1 a 3 são de valor (prática; a resposta certa é
conferida também contra a autocorreção do notebook, tests/test_grade.py). Os 4 e 5 são de função: as referências
abaixo ficam só aqui, nunca no pacote do aluno. Delegar ao pacote não passa nos casos ocultos: `kv_cache_bytes` do
curso ignora a janela deslizante, e o planejador lê o peso como uma fila só (a conta do bitsandbytes, que a lição
mostra), enquanto o 08.5 pede os blocos por linha.
"""

import math

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number
from course_utils.models import LLAMA2_7B_CONFIG
from course_utils.planner import PRESETS, weight_bytes

# ---------------------------------------------------------------- soluções de referência

def _t4_13b_context():
    """O maior múltiplo de 1024 em que o planejador ainda dá "gpu" para o Llama-2-13B em NF4 + DQ numa T4."""
    from course_utils.models import LLAMA2_13B_CONFIG
    from course_utils.planner import plan_memory

    n = 1024
    while plan_memory(LLAMA2_13B_CONFIG, hardware="colab_t4", context_tokens=n + 1024,
                      formats=("nf4-dq",))["nf4-dq"].verdict == "gpu":
        n += 1024
    return n


T4_13B_CONTEXT = _t4_13b_context()
NF4_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # código + absmax de 8 bits por bloco de 64 + fp32 a cada 256 blocos
# a T4 do curso (14,74 GiB, 10% de folga, 0,5 GiB de reserva) menos os pesos NF4 + DQ guardados, em tokens de K e V
T4_7B_KV_TOKENS = ((PRESETS["colab_t4"].gpu_gib * 0.9 - PRESETS["colab_t4"].gpu_reserved_gib) * 2**30
                   - weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")["stored"]) / (2 * 32 * 32 * 128 * 2)



def kv_cache_bytes_gqa_window(config, contexto, lote=1, bytes_por_elemento=2):
    """Cache KV com GQA e janela deslizante: cada camada guarda K e V de min(contexto, janela) tokens se usa a janela
    (todas, sem `layer_types`; só as 'sliding_attention', com ele), ou do contexto inteiro."""
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    window = config.get("sliding_window")
    kinds = config.get("layer_types") or ["sliding_attention"] * config["num_hidden_layers"]
    total = 0
    for kind in kinds:
        tokens = min(contexto, window) if window and kind == "sliding_attention" else contexto
        total += 2 * lote * tokens * kv_heads * head_dim * bytes_por_elemento
    return int(total)


def nf4_dq_row_bytes(saidas, entradas, bloco=64):
    """Bytes de um peso [saídas, entradas] em NF4 + DQ guardado por linha: cada linha com os seus códigos de 4 bits
    (meio byte a mais numa linha ímpar) e os seus blocos de `bloco` pesos (um absmax uint8 cada); um fp32 a cada 256
    blocos, contados sobre todas as linhas (sem as constantes que existem uma vez por tensor)."""
    blocks = saidas * math.ceil(entradas / bloco)
    return saidas * math.ceil(entradas / 2) + blocks + 4 * math.ceil(blocks / 256)


def same_int(got, expected):
    if isinstance(got, float) and got.is_integer():
        got = int(got)
    if isinstance(got, bool) or not isinstance(got, int):
        return False, f"devolva um inteiro (bytes), não {type(got).__name__}"
    return (True, "correto") if got == expected else (False, "o número de bytes não confere")


def cfg(layers, heads, hidden, kv=None, head_dim=None, window=None, layer_types=None):
    out = {"num_hidden_layers": layers, "num_attention_heads": heads, "hidden_size": hidden}
    for key, value in (("num_key_value_heads", kv), ("head_dim", head_dim), ("sliding_window", window),
                       ("layer_types", layer_types)):
        if value is not None:
            out[key] = value
    return out


MIXED = ["sliding_attention"] * 3 + ["full_attention"]

EXERCISES = [
    ValueExercise("08.1", answer="resposta_1", reference=T4_13B_CONTEXT, checks=[
        Check("maior contexto do 13B em NF4 + DQ que cabe na T4", 2, number(T4_13B_CONTEXT, rel_tol=1e-9)),
    ]),
    ValueExercise("08.2", answer="resposta_2", reference=NF4_DQ_BITS, checks=[
        Check("bits por peso do NF4 com dupla quantização", 2, number(NF4_DQ_BITS, rel_tol=1e-5)),
    ]),
    ValueExercise("08.3", answer="resposta_3", reference=T4_7B_KV_TOKENS, checks=[
        Check("tokens de cache KV que cabem na T4 com o 7B em NF4", 2, number(T4_7B_KV_TOKENS, rel_tol=0.01)),
    ]),
    FunctionExercise("08.4", answer="meus_bytes_kv", reference=kv_cache_bytes_gqa_window, compare=same_int, cases=[
        Case((cfg(32, 32, 4096, kv=8, window=4096), 32768), 1, "GQA 4:1 e janela menor que o contexto (Mistral-7B)"),
        Case((cfg(28, 28, 3584, kv=4), 8192), 1, "GQA sem janela"),
        Case((cfg(8, 8, 2048, kv=2, head_dim=256, window=1024, layer_types=MIXED * 2), 4096), 1,
             "camadas com e sem janela, head_dim explícito"),
        Case((cfg(4, 16, 1024, window=2048), 512), 0.5, "contexto menor que a janela", kwargs={"lote": 3}),
        Case((cfg(2, 4, 256, kv=1), 100), 0.5, "fp32, por nome", kwargs={"lote": 2, "bytes_por_elemento": 4}),
    ]),
    FunctionExercise("08.5", answer="meus_bytes_nf4_dq", reference=nf4_dq_row_bytes, compare=same_int, cases=[
        Case((576, 576), 1, "q_proj do SmolLM2-135M, blocos de 128", kwargs={"bloco": 128}),
        Case((896, 896), 1, "q_proj do Qwen2.5-0.5B, blocos de 256", kwargs={"bloco": 256}),
        Case((7, 100), 1, "100 entradas: um bloco incompleto no fim de cada linha"),
        Case((3, 70), 0.5, "blocos de 32 pesos, por nome", kwargs={"bloco": 32}),
        Case((4096, 11008), 0.5, "down_proj do Llama-2-7B (entradas múltiplas do bloco)"),
        Case((1, 64 * 256 + 1), 0.5, "uma linha só, um bloco a mais que 256: outro fp32 no 2º nível"),
    ]),
]
