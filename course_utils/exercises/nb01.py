"""Juízes dos exercícios do notebook 01 (quantização pós-treinamento), registrados com @exercise.

Os exercícios 01.2 e 01.3 pedem a regra escrita: uma resposta que delega a uma função de quantização pronta (do
`course_utils` ou, se já importadas, do bitsandbytes e do torchao) é recusada com `delegation_message`, mesmo que dê a
saída certa.
"""

import inspect
import sys

import torch

from . import _judge_number, delegation_message, exercise, watch_calls

# funções de bibliotecas que já quantizam (por bloco, com tabela de níveis, afim): vigiadas se o módulo foi importado
_LIBRARY_QUANTIZERS = {
    "bitsandbytes.functional": ("quantize_4bit", "quantize_blockwise", "quantize_nf4", "quantize_fp4"),
    "torchao.quantization.quant_primitives": ("quantize_affine", "choose_qparams_affine", "_choose_qparams_affine",
                                              "_quantize_affine"),
}


def ready_made_quantizers() -> list:
    """As funções de quantização prontas que resolveriam 01.2/01.3: as públicas de `course_utils.quantization` e, entre
    as de `_LIBRARY_QUANTIZERS`, as dos módulos já importados (um módulo não importado não pode ter sido chamado)."""
    from .. import quantization

    found = [f for name, f in vars(quantization).items()
             if inspect.isfunction(f) and f.__module__ == quantization.__name__ and not name.startswith("_")]
    for module_name, names in _LIBRARY_QUANTIZERS.items():
        module = sys.modules.get(module_name)
        found += [getattr(module, n) for n in names if module is not None and callable(getattr(module, n, None))]
    return found


def _call_watched(answer, *args):
    """(saída, funções prontas que ela chamou): roda a resposta do aluno vigiando as funções de quantização."""
    with watch_calls(*ready_made_quantizers()) as called:
        try:
            out = answer(*args)
        except Exception:
            if called:  # delegou e a função pronta falhou: o retorno é sobre a delegação
                return None, called
            raise
    return out, called


@exercise("01.1", "bits por peso do Q4_1", "um número (bits por peso, float)")
def _q4_1_bits(answer):
    # 4 bits + escala fp16 + mínimo fp16 por grupo de 32 pesos
    expected = 4 + (16 + 16) / 32
    return _judge_number(answer, expected, 1e-6, [
        (4.0, "4 é só o código de cada peso: some o custo da escala e do mínimo, divididos pelo grupo."),
        (4 + 16 / 32, "faltou um dos dois números de 16 bits guardados por grupo (escala e mínimo)."),
        (4 + 32 / 32 / 8, "4,125 é o que sai dividindo os 32 bits por 8 (bytes em vez de bits), ou o custo de uma escala "
                          "fp16 para 128 pesos: no Q4_1 o grupo tem 32 pesos e guarda dois números de 16 bits."),
        (4 + (16 + 4) / 32, "4,625 trata o mínimo como um ponto-zero inteiro de 4 bits; no Q4_1 o mínimo é um float de "
                            "16 bits, como a escala."),
    ])


# Casos públicos (entradas e saídas guardadas como dados; os casos da correção ficam com o professor).
_W_PUBLIC = [[0.5, -1.0, 0.25, 8.0, 0.75], [2.0, -0.5, 1.0, -1.5, 0.1]]
_CLIP_PUBLIC = {  # p: (códigos q, escalas por linha)
    1.0: ([[8, -16, 4, 127, 12], [127, -32, 64, -95, 6]], [0.0629921, 0.0157480]),
    0.8: ([[26, -53, 13, 127, 40], [127, -40, 79, -119, 8]], [0.0188976, 0.0125984]),
    0.5: ([[85, -127, 42, 127, 127], [127, -64, 127, -127, 13]], [0.0059055, 0.0078740]),
}


@exercise("01.2", "absmax INT8 por canal com recorte no quantil p",
          "uma função f(w, p) -> (q, escala), com q int8 [linhas, colunas] e escala [linhas, 1]")
def _absmax_clipped(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(w, p), recebi {type(answer).__name__}."
    w = torch.tensor(_W_PUBLIC)
    for p, (q_exp, s_exp) in _CLIP_PUBLIC.items():
        out, called = _call_watched(answer, w.clone(), p)
        if called:
            return False, delegation_message(called)
        if out is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva (q, escala)."
        if not (isinstance(out, tuple) and len(out) == 2):
            return False, "a função deve devolver uma tupla (q, escala)."
        q, scale = out
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
            return False, (f"q deve ser um tensor torch.int8 (veio {getattr(q, 'dtype', type(q).__name__)}). "
                           "Dica: .to(torch.int8) depois de arredondar e limitar.")
        if tuple(q.shape) != tuple(w.shape):
            return False, f"q deve ter o formato dos pesos {tuple(w.shape)}, veio {tuple(q.shape)}."
        scale = torch.as_tensor(scale, dtype=torch.float32)
        if scale.numel() != w.shape[0]:
            return False, f"esperava {w.shape[0]} escalas (uma por linha), vieram {scale.numel()}."
        scale = scale.reshape(-1)
        if q.abs().max().item() > 127:
            return False, "há códigos fora de [-127, 127]: depois de arredondar, limite (torch.clamp)."
        if not torch.allclose(scale, torch.tensor(s_exp), rtol=1e-4):
            if p < 1 and torch.allclose(scale, torch.tensor(_CLIP_PUBLIC[1.0][1]), rtol=1e-4):
                return False, (f"com p={p} a escala ainda vem do máximo de cada linha: o limite do recorte é o "
                               "quantil p de |w| da linha (torch.quantile), não o max.")
            return False, (f"com p={p}, as escalas do caso público não conferem: escala = (quantil p de |w| na "
                           "linha) / 127, uma por linha.")
        if not torch.equal(q, torch.tensor(q_exp, dtype=torch.int8)):
            return False, (f"com p={p}, as escalas conferem mas os códigos não: q = round(w / escala), limitado a "
                           "[-127, 127] (os pesos acima do limite viram ±127).")
    return True, "correto! Com p < 1 o peso enorme da linha 0 é recortado, e os outros ganham resolução."


_LEVELS_PUBLIC = [-1.0, -0.5, 0.0, 0.5, 1.0]
_TABLE_PUBLIC = ([0.1, -0.8, 0.3, 1.0, 2.0, -0.4, 0.9, 4.0], 4, [2, 0, 3, 4, 3, 2, 2, 4], [1.0, 4.0])


@exercise("01.3", "quantização por tabela de níveis (como o NF4)",
          "uma função f(w, niveis, bloco) -> (indices uint8 no formato de w, absmax [blocos])")
def _table_quantize(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(w, niveis, bloco), recebi {type(answer).__name__}."
    w_list, block, idx_exp, absmax_exp = _TABLE_PUBLIC
    w, levels = torch.tensor(w_list), torch.tensor(_LEVELS_PUBLIC)
    out, called = _call_watched(answer, w.clone(), levels.clone(), block)
    if called:
        return False, delegation_message(called)
    if out is None:
        return False, "a função ainda devolve None: escreva o corpo e devolva (indices, absmax)."
    if not (isinstance(out, tuple) and len(out) == 2):
        return False, "devolva uma tupla (indices, absmax)."
    idx, absmax = out
    if not isinstance(idx, torch.Tensor) or idx.dtype != torch.uint8:
        return False, f"os índices devem ser um tensor torch.uint8 (veio {getattr(idx, 'dtype', type(idx).__name__)})."
    if tuple(idx.shape) != tuple(w.shape):
        return False, f"os índices devem ter o formato de w {tuple(w.shape)}, vieram {tuple(idx.shape)}."
    absmax = torch.as_tensor(absmax, dtype=torch.float32).reshape(-1)
    if absmax.numel() != len(absmax_exp):
        return False, (f"esperava um absmax por bloco de {block} pesos ({len(absmax_exp)} blocos), "
                       f"vieram {absmax.numel()}.")
    if not torch.allclose(absmax, torch.tensor(absmax_exp)):
        return False, "o absmax de cada bloco é max|w| dos pesos DO BLOCO (bloco pesos consecutivos), não do tensor."
    if int(idx.max()) >= len(levels):
        return False, "há índices maiores que o número de níveis: cada índice aponta para uma posição de `niveis`."
    if not torch.equal(idx, torch.tensor(idx_exp, dtype=torch.uint8)):
        return False, ("o absmax confere mas os índices não: normalize cada peso pelo absmax do seu bloco e escolha o "
                       "nível MAIS PRÓXIMO (o menor |w/absmax − nível|), não o primeiro nível abaixo.")
    # propriedade: reconstruir e conferir que nenhum outro nível fica mais perto
    for seed in (1, 2):
        gen = torch.Generator().manual_seed(seed)
        w = torch.randn(6 * 16, generator=gen)
        levels = torch.sort(torch.rand(7, generator=gen) * 2 - 1).values
        (idx, absmax), called = _call_watched(answer, w.clone(), levels.clone(), 16)
        if called:
            return False, delegation_message(called)
        g = w.reshape(-1, 16) / torch.as_tensor(absmax, dtype=torch.float32).reshape(-1, 1)
        chosen = (g - levels[idx.long().reshape(-1, 16)]).abs()
        if (chosen > (g[..., None] - levels).abs().amin(-1) + 1e-6).any():
            return False, "num caso aleatório, algum peso não foi para o nível mais próximo."
    return True, "correto! É assim que o NF4 guarda cada peso: um índice de 4 bits numa tabela de 16 níveis."
