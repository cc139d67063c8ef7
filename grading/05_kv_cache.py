"""Testes ocultos do notebook 05 (cache KV). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number


# ---------------------------------------------------------------- soluções de referência

# K e V x 32 camadas x 32 cabeças KV x dimensão 128 x 2 bytes (fp16) x 4.096 tokens, em GiB
KV_LLAMA2_7B_GIB = 2 * 32 * 32 * 128 * 2 * 4096 / 2**30
GQA_RATIO = 9 / 3  # SmolLM2-135M: 9 cabeças de consulta, 3 cabeças KV


def top_p(logits, p):
    """Mantém o menor conjunto de tokens (em ordem de probabilidade) cuja soma chega a p; o resto vira -inf."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    remove = (probs.cumsum(-1) - probs) > p  # a massa ANTES do token já passou de p
    remove[..., 0] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def same_filter(got, expected):
    """Mesmos tokens mantidos, logits mantidos intactos, removidos em -inf."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False, "devolva um tensor com o formato dos logits"
    kept, ref = torch.isfinite(got), torch.isfinite(expected)
    if not torch.equal(kept, ref):
        rows = int((kept != ref).any(dim=-1).sum())
        return False, f"o conjunto de tokens mantidos não confere em {rows} de {kept.shape[0]} linha(s)"
    if not torch.allclose(got[kept], expected[kept]):
        return False, "os logits mantidos não devem mudar de valor"
    if not bool((got[~kept] == float("-inf")).all()):
        return False, "os tokens removidos devem virar -inf"
    return True, "correto"


# ---------------------------------------------------------------- entradas ocultas

def logits(rows, vocab, seed, temperature=3.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=gen) * temperature


EXERCISES = [
    ValueExercise("05.1", answer="resposta_1", reference=KV_LLAMA2_7B_GIB, checks=[
        Check("GiB do cache KV do Llama-2-7B com 4.096 tokens", 2, number(KV_LLAMA2_7B_GIB, rel_tol=0.01)),
    ]),
    FunctionExercise("05.2", answer="meu_top_p", reference=top_p, compare=same_filter, cases=[
        Case((logits(3, 50, seed=201), 0.3), 1, "p=0,3"),
        Case((logits(2, 100, seed=202), 0.8), 1, "p=0,8, vocabulário maior"),
        Case((logits(5, 20, seed=203, temperature=1.0), 0.95), 1, "distribuição achatada"),
        Case((logits(1, 10, seed=204), 1e-4), 1, "p minúsculo: só o mais provável"),
    ]),
    ValueExercise("05.3", answer="resposta_3", reference=GQA_RATIO, checks=[
        Check("quantas vezes o GQA encolhe o cache do SmolLM2-135M", 2, number(GQA_RATIO)),
    ]),
]
