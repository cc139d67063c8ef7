"""Juízes dos exercícios do notebook 05 (cache KV), registrados com @exercise."""

import torch

from . import _judge_number, exercise


@exercise("05.1", "GiB do cache KV de um Llama-2-7B com 4.096 tokens", "um número (GiB, float)")
def _kv_llama(answer):
    per_token = 2 * 32 * 32 * 128 * 2  # K e V, camadas, cabeças KV, dimensão, bytes do fp16
    expected = per_token * 4096 / 2**30
    return _judge_number(answer, expected, 0.01, [
        (expected / 2, "faltou o fator 2: o cache guarda as chaves E os valores."),
        (expected * 2, "fp16 tem 2 bytes por elemento, não 4."),
        (per_token * 4096 / 1e9, "isso está em GB (10^9 bytes); pedimos GiB (2^30 bytes)."),
    ])


@exercise("05.2", "filtro top-p", "uma função f(logits, p) -> logits com -inf nos tokens removidos")
def _top_p(answer):
    from ..generation import top_p_filter

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(5)
    for p in (0.5, 0.9, 0.99):
        logits = torch.randn(4, 40, generator=gen) * 3
        got = answer(logits.clone(), p)
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            return False, "a função deve devolver um tensor com o mesmo formato dos logits."
        kept, ref = torch.isfinite(got), torch.isfinite(top_p_filter(logits, p))
        if not kept.any(dim=-1).all():
            return False, "alguma linha ficou sem nenhum token: mantenha sempre pelo menos o mais provável."
        if not torch.equal(kept, ref):
            probs = torch.softmax(logits, -1)
            out_of_order = any((~k).any() and pr[k].min() < pr[~k].max() for k, pr in zip(kept, probs))
            if out_of_order:
                return False, ("você manteve um token menos provável que outro removido: a máscara calculada na ordem "
                               "ordenada precisa voltar às posições originais (scatter).")
            if kept.sum() < ref.sum():
                return False, "removeu tokens demais: mantenha também o token que faz a soma passar de p."
            return False, f"com p={p} o conjunto mantido não confere. Some as probabilidades em ordem decrescente."
        if not torch.allclose(got[kept], logits[kept]):
            return False, "os logits mantidos não devem mudar de valor."
    return True, "correto!"


@exercise("05.3", "quanto o GQA encolhe o cache do modelo de referência", "um número (quantas vezes menor)")
def _gqa_ratio(answer):
    return _judge_number(answer, 9 / 3, 1e-6, [
        (1 / 3, "é o inverso: quantas vezes MENOR, ou seja, cache sem GQA dividido pelo cache com GQA."),
        (9.0, "o cache depende das cabeças KV (3), não só das de consulta (9): compare 9 com 3."),
    ])
