"""Juízes dos exercícios do notebook 04 (janela deslizante), registrados com @exercise.

As funções que já resolvem o 04.2 e o 04.4 (DELEGATES) são vigiadas com `watch_calls`; os testes ocultos listam as
mesmas em `forbidden=` (grading/04_janela_deslizante.py).
"""

import math

import torch

from . import _judge_number, _number, _WrongType, delegation_message, exercise, watch_calls


def _mask_functions() -> tuple:
    """As funções do transformers que já fazem a máscara de janela deslizante (o exercício 04.2 pede escrevê-la)."""
    from transformers import masking_utils as mu

    names = ("sliding_window_causal_mask_function", "sliding_window_overlay", "sliding_window_bidirectional_overlay",
             "sliding_window_bidirectional_mask_function", "create_sliding_window_causal_mask")
    return tuple(getattr(mu, n) for n in names if hasattr(mu, n))


def _eviction_functions() -> tuple:
    """As funções do pacote que já despejam o cache para sinks + janela (o exercício 04.4 pede escrever o despejo)."""
    from .. import streaming

    return streaming.evict_to_sinks_and_window, streaming.stepwise_nll


DELEGATES = {"04.2": _mask_functions, "04.4": _eviction_functions}


def _delegated(exercise_id, answer, *args):
    """Roda answer(*args) vigiando as funções que já resolvem o exercício; devolve (nomes chamados, saída)."""
    with watch_calls(*DELEGATES[exercise_id]()) as called:
        out = answer(*args)
    return called, out


@exercise("04.1", "alcance teórico do Mistral 7B", "um número (tokens para trás)")
def _mistral_receptive_field(answer):
    layers, window = 32, 4096
    expected = layers * (window - 1)  # cada camada anda W-1 tokens para trás (a janela de W inclui o próprio)
    return _judge_number(answer, expected, 1e-6, [
        (layers * window, "quase: a janela de W tokens inclui o próprio token, então cada camada anda W-1 para trás."),
        (expected + 1, "isso conta o próprio token; a pergunta é quantos tokens para trás."),
        (window - 1, "isso é o alcance de UMA camada; a informação anda mais uma janela a cada camada."),
        (window, "isso é (quase) o alcance de UMA camada; a informação anda mais uma janela a cada camada."),
        (layers + window, "as camadas não somam uma janela só: cada uma estende o alcance por mais W-1 tokens."),
        (window ** 2, "não é W²: conte quanto cada camada anda para trás e quantas camadas há."),
    ])


# casos públicos do 04.2: (n, w, linhas da máscara esperada; 1 = a consulta da linha pode olhar a chave da coluna)
_MASK_CASES = [
    (6, 3, ["100000", "110000", "111000", "011100", "001110", "000111"]),
    (10, 4, ["1000000000", "1100000000", "1110000000", "1111000000", "0111100000", "0011110000", "0001111000",
             "0000111100", "0000011110", "0000001111"]),
    (5, 1, ["10000", "01000", "00100", "00010", "00001"]),
    (7, 7, ["1000000", "1100000", "1110000", "1111000", "1111100", "1111110", "1111111"]),
    (4, 10, ["1000", "1100", "1110", "1111"]),
]


@exercise("04.2", "máscara de janela deslizante", "uma função f(n, w) -> tensor bool [n, n] (True = pode olhar)")
def _sliding_window_mask(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for n, w, rows in _MASK_CASES:
        called, got = _delegated("04.2", answer, n, w)
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva a máscara."
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (n, n):
            return False, f"para n={n} a função deve devolver um tensor [n, n]."
        if got.dtype != torch.bool:
            return False, "devolva um tensor bool (True onde a consulta pode olhar a chave), não números."
        i = torch.arange(n)[:, None]
        j = torch.arange(n)[None, :]
        if (got & (j > i)).any():
            return False, "a consulta i está olhando chaves do futuro (j > i): a máscara também é causal."
        if not got.diagonal().all():
            return False, "cada token deve poder olhar a si mesmo (a diagonal é True)."
        expected = torch.tensor([[c == "1" for c in row] for row in rows])
        if not torch.equal(got, expected):
            if got.sum(-1).max() == min(w, n - 1) + 1:
                return False, ("erro de um: a janela tem w tokens contando o próprio token; conte quantos True a "
                               "última linha tem.")
            return False, f"com n={n}, w={w} a máscara não confere: a consulta i vê as chaves i-w+1 .. i."
    return True, "correto!"


# casos públicos do 04.3: a resposta certa para as duas atenções sorteadas acima (semente 4), como dado
_MASS_EXPECTED = (0.59211868, 0.56215632)


@exercise("04.3", "massa de atenção no primeiro token",
          "uma função f(attn) -> float, attn com formato [lote, cabeças, consultas, chaves]")
def _attention_mass_on_first(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(4)
    for (b, h, n), expected in zip(((1, 3, 8), (2, 4, 12)), _MASS_EXPECTED, strict=True):
        scores = torch.randn(b, h, n, n, generator=gen) * 2
        scores[..., 0] += 3  # um "sumidouro" artificial na chave 0
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        got = answer(attn.clone())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva a fração."
        try:
            got = _number(got)
        except _WrongType as exc:
            return False, f"Tipo errado: {exc}."
        if math.isclose(got, expected, rel_tol=1e-4):
            continue
        if math.isclose(got, attn[..., 0].mean().item(), rel_tol=1e-4):
            return False, ("você incluiu a primeira consulta, que só pode olhar a si mesma (massa 1 por definição): "
                           "comece da segunda consulta.")
        if math.isclose(got, attn[..., 0].sum().item(), rel_tol=1e-4):
            return False, "pedimos a média (uma fração entre 0 e 1), não a soma."
        return False, ("o valor não confere: confira quais consultas entram na média (a primeira só pode olhar a si "
                       "mesma) e sobre quais eixos você tira a média.")
    return True, "correto!"


def _rope_freq(dim):
    return 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


# casos públicos do 04.4: (semente, tokens no cache, sinks, janela, bloco) e quantos tokens devem sair
_EVICT_CASES = [(1, 10, 2, 4, 1, 4), (2, 10, 2, 4, 3, 6), (3, 6, 2, 4, 2, 0), (4, 13, 1, 5, 4, 8), (5, 9, 0, 4, 2, 6)]


@exercise("04.4", "despejo em blocos com sinks e re-rotação das chaves",
          "uma função f(keys, values, sinks, window, block, inv_freq) -> (keys, values)")
def _evict_in_blocks(answer):
    from ..streaming import shift_rotary

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    dim = 8
    inv_freq = _rope_freq(dim)
    for seed, n, sinks, window, block, removed in _EVICT_CASES:
        gen = torch.Generator().manual_seed(seed)
        keys, values = torch.randn(1, 2, n, dim, generator=gen), torch.randn(1, 2, n, dim, generator=gen)
        called, out = _delegated("04.4", answer, keys.clone(), values.clone(), sinks, window, block, inv_freq)
        if called:
            return False, delegation_message(called)
        if out is None:
            return False, "a função ainda devolve None: devolva a tupla (keys, values)."
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
            return False, "devolva uma tupla (keys, values) de tensores."
        got_k, got_v = out
        if got_k.shape != got_v.shape or got_k.shape[:2] != keys.shape[:2] or got_k.shape[-1] != dim:
            return False, "keys e values devem manter lote, cabeças e dimensão; só o número de tokens (dim=-2) muda."
        kept = got_k.shape[-2]
        if removed == 0 and kept != n:
            return False, "com o cache dentro de sinks + janela, nada sai: devolva os tensores como vieram."
        if kept != n - removed:
            if kept == sinks + window:
                return False, ("o despejo é em blocos: tire o menor múltiplo de `block` que deixa o cache com no "
                               "máximo sinks + janela tokens (pode sobrar menos que isso).")
            return False, "o número de tokens que ficou não confere: conte quantos passam de sinks + janela."
        if not torch.equal(got_k[..., :sinks, :], keys[..., :sinks, :]) or \
                not torch.equal(got_v[..., :sinks, :], values[..., :sinks, :]):
            return False, "os sinks (os primeiros tokens) ficam no cache, sem mudar nada."
        if not torch.equal(got_v[..., sinks:, :], values[..., sinks + removed:, :]):
            return False, "os valores que ficam são os mais recentes, na ordem; valores não têm posição: só corte."
        recent, original = got_k[..., sinks:, :], keys[..., sinks + removed:, :]
        if removed and torch.allclose(recent, original, atol=1e-5):
            return False, ("as chaves recentes andaram para trás no cache: gire-as pelo RoPE (shift_rotary) tantas "
                           "posições quantas saíram.")
        if removed and torch.allclose(shift_rotary(recent, -removed, inv_freq), original, atol=1e-5):
            return False, "a rotação está no sentido errado: as chaves vão para posições MENORES (delta negativo)."
        if not torch.allclose(shift_rotary(recent, removed, inv_freq), original, atol=1e-4):
            return False, "as chaves recentes não conferem: cada uma deve girar exatamente o número de tokens que saiu."
    return True, "correto! É o despejo do StreamingLLM, em blocos (menos cópias do cache)."
