"""Testes ocultos do notebook 07 (TensorRT). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import statistics

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, close, number


# ---------------------------------------------------------------- soluções de referência

FP16_MAX = (2 - 2**-10) * 2**15  # 65504


def speedup(eager_ms, compiled_ms):
    """Quantas vezes mais rápido, com a estatística robusta do curso (mediana)."""
    return statistics.median(eager_ms) / statistics.median(compiled_ms)


def agreement(ref, other):
    """(maior |ref - outro|, fração das posições com o mesmo argmax no vocabulário)."""
    return float((ref - other).abs().max()), float((ref.argmax(-1) == other.argmax(-1)).float().mean())


def same_pair(got, expected):
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return False, "devolva uma tupla (diferença máxima, fração com o mesmo argmax)"
    for value, ref, what in zip(got, expected, ("a diferença máxima", "a concordância do argmax")):
        ok, _ = close(rel_tol=1e-5)(value, ref)
        if not ok:
            return False, f"{what} não confere"
    return True, "correto"


# ---------------------------------------------------------------- entradas ocultas

def logits_pair(seed, shape, noise=0.05, flips=1):
    """Logits de referência e uma versão "compilada" com ruído e `flips` posições com outro argmax."""
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(*shape, generator=gen) * 4
    other = ref + torch.randn(*shape, generator=gen) * noise
    for k in range(flips):
        other.view(-1, shape[-1])[k] = ref.view(-1, shape[-1])[k].flip(-1)
    return ref, other


EXERCISES = [
    ValueExercise("07.1", answer="resposta_1", reference=FP16_MAX, checks=[
        Check("maior valor finito do fp16", 2, number(FP16_MAX, rel_tol=1e-9)),
    ]),
    FunctionExercise("07.2", answer="meu_ganho", reference=speedup, compare=close(rel_tol=1e-6), cases=[
        Case(([12.0, 12.5, 11.8, 90.0, 12.1], [4.0, 4.1, 3.9, 25.0, 4.0]), 1, "picos isolados"),
        Case(([10.0, 11.0, 12.0, 13.0], [5.0, 5.0, 6.0, 6.0]), 1, "número par de medidas"),
        Case(([7.0], [3.5]), 0.5, "uma medida só"),
        Case(([2.0, 2.0, 2.0], [4.0, 4.0, 4.0]), 0.5, "o compilado é mais lento"),
    ]),
    FunctionExercise("07.3", answer="minha_conferencia", reference=agreement, compare=same_pair, cases=[
        Case(logits_pair(701, (3, 5, 13)), 1, "lote 3, 5 posições"),
        Case(logits_pair(702, (1, 8, 32), flips=3), 1, "três posições trocadas"),
        Case(logits_pair(703, (2, 4, 7), noise=0.0, flips=0), 1, "saídas idênticas"),
    ]),
]
