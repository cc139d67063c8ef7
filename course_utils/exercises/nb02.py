"""Juízes dos exercícios do notebook 02 (AWQ e GPTQ), registrados com @exercise."""

import torch

from . import _judge_number, exercise


def _reference_hessian(batches):
    """H = 2/N Σ x xᵀ sobre todos os tokens dos lotes (referência dos exercícios 02.1)."""
    x = torch.cat([b.reshape(-1, b.shape[-1]).double() for b in batches])
    return 2 * x.T @ x / x.shape[0], x.shape[0]


@exercise("02.1", "acumulação do Hessiano do GPTQ",
          "uma função f(H, n, x) -> (H, n), com x [lote, tokens, entradas] e H [entradas, entradas]")
def _hessian_accumulation(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(2)
    batches = [torch.randn(2, 5, 6, generator=gen), torch.randn(1, 7, 6, generator=gen) * 3,
               torch.randn(3, 2, 6, generator=gen)]
    H, n = None, 0
    for k, x in enumerate(batches):
        got = answer(H, n, x.clone())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva (H, n)."
        if not (isinstance(got, tuple) and len(got) == 2):
            return False, "devolva uma tupla (H, n): a média atualizada e o total de tokens vistos."
        H, n = got
        if not isinstance(H, torch.Tensor) or tuple(H.shape) != (6, 6):
            return False, "H deve ser um tensor [entradas, entradas] (aqui 6x6): junte lote e tokens numa dimensão só."
        expected, expected_n = _reference_hessian(batches[: k + 1])
        if isinstance(n, torch.Tensor):
            n = n.item()
        if n == k + 1 or n == sum(b.shape[0] for b in batches[: k + 1]):
            return False, "n conta TOKENS (lote x tokens de cada lote), não lotes nem sequências."
        if n != expected_n:
            return False, "n deve ser o total de tokens vistos até agora (o anterior mais os do lote novo)."
        H64 = H.double()
        if torch.allclose(H64, expected, rtol=1e-4, atol=1e-5):
            continue
        if torch.allclose(H64, expected / 2, rtol=1e-4, atol=1e-5):
            return False, "faltou o fator 2 de H = 2XᵀX (a derivada segunda de ‖XWᵀ − XŴᵀ‖²)."
        if torch.allclose(H64, expected * expected_n, rtol=1e-4, atol=1e-5) or \
           torch.allclose(H64, expected * expected_n / 2, rtol=1e-4, atol=1e-5):
            return False, "isso é a soma; pedimos a MÉDIA por token: reescale o H anterior antes de somar o lote novo."
        return False, (f"depois do lote {k + 1}, H não confere: H deve ser 2/N Σ x xᵀ sobre TODOS os N tokens vistos "
                       "(o H anterior pesa n/(n + novos)).")
    return True, "correto!"


@exercise("02.2", "memória de um Llama-2-7B em w3g64", "um número (GiB)")
def _llama2_7b_w3g64_gib(answer):
    from ..models import LLAMA2_7B_CONFIG
    from ..planner import weight_gib
    from ..quantization import bits_per_weight

    expected = weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3))
    return _judge_number(answer, expected, 0.005, [
        (weight_gib(LLAMA2_7B_CONFIG, 3.0), "faltou o custo das escalas e dos pontos-zero: são bits por peso a mais."),
        (weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 0)),
         "faltou o ponto-zero de 3 bits de cada grupo (a escala fp16 você contou)."),
        (weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 16)),
         "o ponto-zero é um inteiro de 3 bits, não um número de 16 bits."),
        (expected * 2**30 / 1e9, "a resposta deve estar em GiB (2³⁰ bytes), não em GB (10⁹)."),
        (weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3), "fp32"),
         "embeddings, lm_head e normas ficam em fp16 (16 bits), não em fp32."),
    ])


@exercise("02.3", "dobra da escala do AWQ numa RMSNorm",
          "uma função f(g, W, s) -> (g_novo, W_novo), com g [d], W [saídas, d] e s [d]")
def _awq_fold(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(3)
    d, out = 8, 5
    g = torch.rand(d, generator=gen) + 0.5
    W = torch.randn(out, d, generator=gen)
    s = torch.rand(d, generator=gen) * 3 + 0.2
    x = torch.randn(4, d, generator=gen)
    got = answer(g.clone(), W.clone(), s.clone())
    if got is None:
        return False, "a função ainda devolve None: escreva o corpo e devolva (g_novo, W_novo)."
    if not (isinstance(got, tuple) and len(got) == 2) or not all(isinstance(t, torch.Tensor) for t in got):
        return False, "devolva uma tupla de dois tensores: (g_novo, W_novo)."
    g_new, W_new = got
    if tuple(g_new.shape) != (d,) or tuple(W_new.shape) != (out, d):
        return False, "g_novo deve ter o formato de g [d] e W_novo o de W [saídas, d]; s multiplica as COLUNAS de W."
    y, y_new = (x * g) @ W.T, (x * g_new) @ W_new.T
    if not torch.allclose(y_new, y, rtol=1e-4, atol=1e-5):
        if torch.allclose(W_new, W * s, rtol=1e-5):
            return False, "W_novo está certo, mas a saída mudou: a norma tem de compensar, dividindo g pela mesma escala."
        return False, "a saída mudou: em ponto flutuante, (x ⊙ g_novo) W_novoᵀ deve ser igual a (x ⊙ g) Wᵀ."
    if torch.allclose(W_new, W / s, rtol=1e-5):
        return False, "a saída não muda, mas está invertido: os canais com s > 1 devem ficar MAIORES em W_novo."
    if not torch.allclose(W_new, W * s, rtol=1e-5):
        return False, "a saída não muda, mas W_novo não é W com cada coluna j multiplicada por s_j."
    return True, "correto!"
