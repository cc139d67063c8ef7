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
            planner.weight_gib, memory_plan.activation_bytes, memory_plan.int8_linear_peak_bytes,
            weights._quantized_linear_bytes)


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


# peso [saídas, entradas] e bloco -> bytes certos (blocos por linha) e os de erros típicos, guardados como dados
_NF4_ROW_CASES = [
    ((4096, 4096), {}, 8654848, {8388608: "so_codigos", 9437184: "absmax_fp32", 8912896: "por_256_pesos",
                                 8650752: "sem_2o_nivel"}),
    ((10, 30), {}, 164, {159: "fila_so", 150: "so_codigos", 190: "absmax_fp32", 168: "por_256_pesos",
                         160: "sem_2o_nivel"}),
    ((3, 7), {}, 19, {16: "fila_so", 18: "codigos_por_linha", 12: "so_codigos", 24: "absmax_fp32",
                      15: "sem_2o_nivel"}),
    ((576, 576), {"bloco": 128}, 168816, {168524: "fila_so", 171156: "bloco", 165888: "so_codigos",
                                          177408: "absmax_fp32", 173952: "por_256_pesos", 168768: "sem_2o_nivel"}),
]
_NF4_HINTS = {
    "fila_so": ("o peso foi lido como uma fila só, como o bitsandbytes guarda (a conta da seção 2): aqui cada linha é "
                "cortada em blocos próprios, e o último bloco de cada linha pode ser incompleto."),
    "codigos_por_linha": ("os blocos estão por linha, mas os códigos não: cada linha guarda os seus códigos, e uma "
                          "linha com número ímpar de pesos ocupa meio byte a mais."),
    "so_codigos": "só os códigos de 4 bits: falta o absmax de cada bloco (e o 2º nível dele).",
    "absmax_fp32": ("o absmax foi contado em fp32 (4 bytes por bloco): é o NF4 sem dupla quantização. Com ela, o "
                    "absmax vira 8 bits."),
    "por_256_pesos": "o 2º nível tem uma constante fp32 a cada 256 BLOCOS, não a cada 256 pesos.",
    "sem_2o_nivel": "falta o 2º nível: o absmax de 8 bits precisa de uma constante fp32 a cada 256 blocos.",
    "bloco": "o tamanho do bloco do absmax é o parâmetro bloco (o 2º nível continua com uma constante a cada 256 blocos).",
}


@exercise("08.5", "bytes de um peso em NF4 com dupla quantização, em blocos por linha",
          "uma função f(saidas, entradas, bloco=64) -> int (bytes)")
def _nf4_dq_row_bytes(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for shape, kwargs, expected, wrong in _NF4_ROW_CASES:
        value, feedback = _run_for_bytes(answer, *shape, **kwargs)
        if feedback:
            return False, feedback
        if value != expected:
            hint = wrong.get(value)
            where = f"no peso {shape[0]} x {shape[1]}" + (f" com bloco={kwargs['bloco']}" if kwargs else "")
            return False, (f"{where}: " + (_NF4_HINTS[hint] if hint else
                           "o número de bytes não confere. Conte, linha a linha, os códigos e os absmax dos blocos; "
                           "depois as constantes do 2º nível, sobre os blocos de todas as linhas."))
    return True, ("correto! Cortar cada linha em blocos próprios custa um absmax a mais por linha sempre que as entradas "
                  "não são múltiplas do bloco.")
