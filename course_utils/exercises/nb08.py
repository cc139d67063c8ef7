"""Juízes dos exercícios do notebook 08 (um modelo de 7B no Colab), registrados com @exercise."""

import copy

from . import _judge_number, delegation_message, exercise, watch_calls


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


# ---------------------------------------------------------------- exercícios de função (08.4 e 08.5)

def _package_planner():
    """As funções do pacote que já fazem a conta de memória: delegar a elas não é resolver o exercício."""
    from .. import generation, planner
    from ..planner import memory_plan, weights

    return (generation.kv_cache_bytes, planner.plan_memory, planner.plan_presets, planner.weight_bytes,
            planner.weight_gib, memory_plan.activation_bytes, weights._quantized_linear_bytes)


def _as_int(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:   # escalar do numpy/torch
        value = value.item()
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_MIXED = ["sliding_attention"] * 5 + ["full_attention"]
# entradas, a saída certa e as de erros típicos, guardadas como dados (bytes)
_KV_CASES = {
    "Llama-2-7B (MHA, sem janela)": {
        "args": ({"num_hidden_layers": 32, "num_attention_heads": 32, "hidden_size": 4096}, 4096), "kwargs": {},
        "y": 2147483648, "wrong": {1073741824: "metade"},
    },
    "Mistral-7B (GQA 4:1, janela de 4096, contexto de 16384)": {
        "args": ({"num_hidden_layers": 32, "num_attention_heads": 32, "hidden_size": 4096, "num_key_value_heads": 8,
                  "sliding_window": 4096}, 16384), "kwargs": {},
        "y": 536870912, "wrong": {2147483648: "mha_ou_sem_janela", 268435456: "metade"},
    },
    "camadas com e sem janela, head_dim explícito, lote 2": {
        "args": ({"num_hidden_layers": 6, "num_attention_heads": 8, "hidden_size": 1152, "num_key_value_heads": 4,
                  "head_dim": 256, "sliding_window": 512, "layer_types": _MIXED}, 2048), "kwargs": {"lote": 2},
        "y": 37748736, "wrong": {75497472: "mha", 100663296: "sem_janela", 18874368: "metade", 21233664: "head_dim",
                                 25165824: "todas_com_janela", 42467328: "head_dim_kv"},
    },
}
_KV_HINTS = {
    "metade": "o resultado é metade do certo: o cache guarda as chaves E os valores de cada camada.",
    "mha_ou_sem_janela": ("4x o certo neste caso, que tem GQA e janela: confira as duas coisas. O cache guarda só as "
                          "cabeças de K e V (num_key_value_heads), e uma camada com janela guarda no máximo "
                          "sliding_window tokens."),
    "mha": ("o cache foi contado com num_attention_heads: com GQA, as cabeças de consulta compartilham as de K e V, "
            "e só estas (num_key_value_heads) são guardadas."),
    "sem_janela": "a janela deslizante foi ignorada: uma camada com janela guarda no máximo sliding_window tokens.",
    "head_dim": ("a dimensão da cabeça veio de hidden_size / num_attention_heads, mas esta configuração traz head_dim: "
                 "quando ele existe, vale ele."),
    "todas_com_janela": ("a janela foi aplicada a todas as camadas: com layer_types, só as 'sliding_attention' usam "
                         "a janela; as 'full_attention' guardam o contexto inteiro."),
    "head_dim_kv": ("a dimensão da cabeça foi dividida pelas cabeças KV: ela é hidden_size / num_attention_heads (ou "
                    "head_dim); o GQA muda quantas cabeças K e V há, não o tamanho de cada uma."),
}


def _run_for_bytes(answer, *args, **kwargs):
    """Roda a resposta vigiando o planejador do pacote: (bytes, None) ou (None, o retorno para o aluno)."""
    with watch_calls(*_package_planner()) as called:
        got = answer(*args, **kwargs)
    if called:
        return None, delegation_message(called)
    if got is None:
        return None, "a função ainda devolve None: escreva o corpo e devolva os bytes."
    value = _as_int(got)
    if value is None:
        return None, f"devolva um inteiro (bytes), não {type(got).__name__}."
    return value, None


@exercise("08.4", "bytes do cache KV com GQA e janela deslizante",
          "uma função f(config, contexto, lote=1, bytes_por_elemento=2) -> int (bytes)")
def _kv_bytes_gqa_window(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for name, case in _KV_CASES.items():
        config, context = case["args"]
        value, feedback = _run_for_bytes(answer, copy.deepcopy(config), context, **case["kwargs"])
        if feedback:
            return False, feedback
        if value != case["y"]:
            hint = case["wrong"].get(value)
            return False, (f"no caso '{name}': " + (_KV_HINTS[hint] if hint else
                           "o número de bytes não confere. Some camada a camada: 2 (K e V) x lote x tokens guardados "
                           "x cabeças KV x dimensão da cabeça x bytes por elemento."))
    base = _KV_CASES["Mistral-7B (GQA 4:1, janela de 4096, contexto de 16384)"]["args"][0]
    (short, f1), (long_, f2), (double, f3) = (_run_for_bytes(answer, dict(base), 1000),
                                              _run_for_bytes(answer, dict(base), 50000),
                                              _run_for_bytes(answer, dict(base), 1000, lote=2))
    if f1 or f2 or f3:
        return False, f1 or f2 or f3
    if double != 2 * short:
        return False, "o cache deveria dobrar com o lote (use o parâmetro lote)."
    if long_ != 4096 * short // 1000:
        return False, ("além da janela o cache não cresce mais, e abaixo dela cresce linearmente com o contexto: "
                       "confira o min(contexto, janela).")
    return True, ("correto! GQA divide o cache pelas cabeças que compartilham K e V; a janela o limita, por camada, "
                  "a sliding_window tokens.")


# peso [saídas, entradas] -> bytes certos e os de erros típicos, guardados como dados
_NF4_CASES = {
    (4096, 4096): {"y": 8654848, "wrong": {8388608: "so_codigos", 9437184: "absmax_fp32", 8912896: "por_256_pesos",
                                           8650752: "sem_2o_nivel"}},
    (11008, 4096): {"y": 23259904, "wrong": {22544384: "so_codigos", 25362432: "absmax_fp32",
                                             23953408: "por_256_pesos", 23248896: "sem_2o_nivel"}},
    (10, 30): {"y": 159, "wrong": {150: "so_codigos", 170: "absmax_fp32", 163: "por_256_pesos", 155: "sem_2o_nivel",
                                   154: "piso"}},
    (1, 63): {"y": 37, "wrong": {32: "so_codigos", 36: "absmax_fp32", 33: "sem_2o_nivel", 31: "piso"}},
}
_NF4_HINTS = {
    "so_codigos": "só os códigos de 4 bits: falta o absmax de cada bloco de 64 pesos (e o 2º nível dele).",
    "absmax_fp32": ("o absmax foi contado em fp32 (4 bytes por bloco): é o NF4 sem dupla quantização. Com ela, o "
                    "absmax vira 8 bits."),
    "por_256_pesos": "o 2º nível tem uma constante fp32 a cada 256 BLOCOS (de 64 pesos), não a cada 256 pesos.",
    "sem_2o_nivel": "falta o 2º nível: o absmax de 8 bits precisa de uma constante fp32 a cada 256 blocos.",
    "piso": ("arredondou para baixo: um bloco incompleto também guarda o seu absmax (e um grupo incompleto de "
             "blocos, a sua constante fp32); e um número ímpar de pesos ocupa um byte a mais."),
}


@exercise("08.5", "bytes de um peso em NF4 com dupla quantização",
          "uma função f(saidas, entradas, bloco=64) -> int (bytes)")
def _nf4_dq_bytes(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for shape, case in _NF4_CASES.items():
        value, feedback = _run_for_bytes(answer, *shape)
        if feedback:
            return False, feedback
        if value != case["y"]:
            hint = case["wrong"].get(value)
            return False, (f"no peso {shape[0]} x {shape[1]}: " + (_NF4_HINTS[hint] if hint else
                           "o número de bytes não confere. Conte três partes: os códigos, os absmax dos blocos de "
                           "64 e as constantes do 2º nível."))
    with watch_calls(*_package_planner()) as called:
        a, b, wide = answer(2048, 2048), answer(4096, 1024), answer(4096, 4096, bloco=128)
    if called:
        return False, delegation_message(called)
    if _as_int(a) is None or _as_int(a) != _as_int(b):
        return False, "o resultado deveria depender só do número de pesos (saídas x entradas), não do formato."
    if _as_int(wide) != 8521728:   # 4096 x 4096 com blocos de 128 pesos, guardado como dado
        return False, ("com bloco=128 o resultado não confere: o tamanho do bloco do absmax é o parâmetro bloco (o 2º "
                       "nível continua com uma constante a cada 256 blocos).")
    return True, ("correto! A dupla quantização corta o custo dos absmax a cerca de um quarto do que ele é no NF4 "
                  "sem ela.")
