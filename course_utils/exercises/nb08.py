"""Juízes dos exercícios do notebook 08 (um modelo de 7B no Colab), registrados com @exercise."""

from . import _judge_number, exercise


@exercise("08.1", "maior contexto do Llama-2-13B em NF4 + DQ numa T4",
          "um inteiro (tokens, múltiplo de 1024)")
def _t4_13b_context(answer):
    from ..models import LLAMA2_13B_CONFIG
    from ..planner import plan_memory

    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return False, f"Tipo errado: esperava um inteiro (tokens), recebi {type(answer).__name__}."
    if answer <= 0 or answer % 1024:
        return False, "use um múltiplo de 1024 maior que zero (1024, 2048, 3072, ...)."

    def fits(n):
        return plan_memory(LLAMA2_13B_CONFIG, hardware="colab_t4", context_tokens=n, formats=("nf4-dq",),
                           name="Llama-2-13B")["nf4-dq"].verdict == "gpu"

    if not fits(answer):
        return False, ("com esse contexto o NF4 + DQ já não cabe inteiro na GPU (veredito do planejador diferente de "
                       "'gpu'): o cache KV cresce linearmente com o contexto. Tente menos.")
    if fits(answer + 1024):
        return False, "ainda cabe mais: com 1024 tokens a mais o veredito continua 'gpu'. Procure o maior."
    return True, "correto! O que limita o contexto na T4 é o cache KV, não os pesos em 4 bits."


@exercise("08.2", "bits por peso do NF4 com dupla quantização", "um número (bits por peso, float)")
def _nf4_dq_bits(answer):
    expected = 4 + 8 / 64 + 32 / (64 * 256)
    return _judge_number(answer, expected, 1e-5, [
        (4.0, "4 bits é só o código de cada peso: falta o custo do absmax de cada bloco de 64."),
        (4 + 32 / 64, "isso é o NF4 sem dupla quantização (absmax em fp32 por bloco); com ela o absmax vira 8 bits."),
        (4 + 8 / 64, "quase: o absmax de 8 bits precisa de uma constante fp32 por bloco de 256 absmax (2º nível)."),
        (4 + 8 / 64 + 32 / 256,
         "o 2º nível tem uma constante fp32 a cada 256 BLOCOS (256 × 64 pesos), não a cada 256 pesos."),
    ])


@exercise("08.3", "tokens de cache KV que cabem numa T4 com o 7B em NF4", "um número (tokens)")
def _t4_kv_tokens(answer):
    from ..models import LLAMA2_7B_CONFIG
    from ..planner import PRESETS, weight_bytes

    t4 = PRESETS["colab_t4"]
    stored = weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")["stored"] / 2**30
    footprint = weight_bytes(LLAMA2_7B_CONFIG, "nf4-dq", "fp16")["footprint"] / 2**30
    per_token = 2 * 32 * 32 * 128 * 2  # K e V, camadas, cabeças KV, dimensão, bytes do fp16
    free = t4.gpu_gib * 0.9 - t4.gpu_reserved_gib - stored
    expected = free * 2**30 / per_token
    return _judge_number(answer, expected, 0.01, [
        (expected * 2, "faltou o fator 2: o cache guarda as chaves E os valores."),
        (expected / 2, "o cache está em fp16: 2 bytes por elemento, não 4."),
        ((free + t4.gpu_reserved_gib) * 2**30 / per_token, "faltou descontar a reserva do runtime (0,5 GiB)."),
        ((t4.gpu_gib - t4.gpu_reserved_gib - stored) * 2**30 / per_token, "faltou a folga de 10% da memória útil."),
        ((free + stored - footprint) * 2**30 / per_token,
         "esse é o footprint (sem as escalas); os pesos ocupam o que está GUARDADO, escalas incluídas."),
        (free * 1e9 / per_token, "GiB é 2³⁰ bytes, não 10⁹."),
    ])
