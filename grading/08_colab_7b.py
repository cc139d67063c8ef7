"""Testes ocultos do notebook 08 (um modelo 7B no Colab). Arquivo do professor.

Edite à vontade os pontos (de cada teste). Os três exercícios são de valor: a resposta certa é conferida
também contra a autocorreção do notebook (tests/test_grade.py), que a calcula com course_utils.planner.
"""

from course_utils.grade import Check, ValueExercise, number
from course_utils.models import LLAMA2_7B_CONFIG
from course_utils.planner import PRESETS, weight_bytes

# ---------------------------------------------------------------- soluções de referência

# maior múltiplo de 1024 em que o planejador ainda dá "gpu" para o Llama-2-13B em NF4 + DQ numa T4
T4_13B_CONTEXT = 6144
NF4_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # código + absmax de 8 bits por bloco de 64 + fp32 a cada 256 blocos
# a T4 do curso (15 GiB úteis, 10% de folga, 0,5 GiB de reserva) menos os pesos NF4 + DQ guardados, em tokens de K e V
T4_7B_KV_TOKENS = ((PRESETS["colab_t4"].gpu_gib * 0.9 - PRESETS["colab_t4"].gpu_reserved_gib) * 2**30
                   - weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")["stored"]) / (2 * 32 * 32 * 128 * 2)

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
]
