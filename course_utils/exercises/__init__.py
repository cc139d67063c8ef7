"""Exercícios com autocorreção: `check("01.2", minha_funcao)` imprime um retorno em português.

Cada exercício é uma função registrada com @exercise que recebe a resposta do aluno e
devolve (acertou, mensagem). `check` nunca deixa uma resposta ruim quebrar o notebook:
tipo errado, exceção no código do aluno ou resposta ausente viram uma mensagem com dica,
sem revelar a resposta. A correção em lote (professor) reutiliza o mesmo registro.

Aqui ficam o registro (`exercise`, `EXERCISES`, `evaluate`, `check`) e os ajudantes de retorno que os juízes
compartilham; os juízes de cada notebook ficam em `nb00.py` … `nb08.py`, importados no fim deste arquivo.
"""

import math
import numbers
from dataclasses import dataclass

import torch


@dataclass
class Exercise:
    id: str
    title: str
    expects: str  # o que a resposta deve ser, dito para o aluno
    judge: callable


EXERCISES: dict = {}


def exercise(id: str, title: str, expects: str):
    """Registra a função que julga o exercício `id` ("01.1" = notebook 01, exercício 1)."""
    def register(judge):
        EXERCISES[id] = Exercise(id, title, expects, judge)
        return judge
    return register


def evaluate(id: str, answer) -> tuple:
    """(acertou, mensagem) sem imprimir nada; nunca levanta exceção por causa da resposta."""
    if id not in EXERCISES:
        return False, f"Não existe o exercício {id!r}. Os disponíveis são: {', '.join(sorted(EXERCISES))}."
    ex = EXERCISES[id]
    if answer is None or answer is Ellipsis:
        return False, f"Ainda sem resposta. Esperado: {ex.expects}."
    try:
        return ex.judge(answer)
    except (Exception, SystemExit) as exc:  # o código do aluno pode falhar de qualquer jeito, até com sys.exit
        return False, f"Sua resposta levantou {type(exc).__name__}: {exc}. Esperado: {ex.expects}."


def check(id: str, answer) -> bool:
    """Confere a resposta e imprime o retorno (✅ ou ❌ com dica). Devolve True se acertou."""
    ok, message = evaluate(id, answer)
    title = EXERCISES[id].title if id in EXERCISES else id
    print(f"{'✅' if ok else '❌'} Exercício {id} ({title}): {message}")
    return ok


def _number(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 and not answer.dtype == torch.bool:
        answer = answer.item()
    elif hasattr(answer, "dtype") and hasattr(answer, "item") and getattr(answer, "size", 0) == 1:  # escalar numpy
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise _WrongType(f"a resposta deve ser um número, mas é do tipo {type(answer).__name__}")
    return float(answer)


class _WrongType(Exception):
    pass


def _judge_number(answer, expected, rel_tol, hints):
    """Compara números; `hints` é uma lista de (valor errado típico, dica)."""
    try:
        value = _number(answer)
    except _WrongType as exc:
        return False, f"Tipo errado: {exc}."
    if math.isclose(value, expected, rel_tol=rel_tol):
        return True, "correto!"
    for wrong, hint in hints:
        if math.isclose(value, wrong, rel_tol=rel_tol):
            return False, hint
    return False, "ainda não. Refaça a conta passo a passo com a fórmula da seção acima."


# Os juízes de cada notebook se registram ao serem importados; precisam do registro definido acima.
from . import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08  # noqa: E402

__all__ = ["EXERCISES", "Exercise", "check", "evaluate", "exercise",
           "nb00", "nb01", "nb02", "nb03", "nb04", "nb05", "nb06", "nb07", "nb08"]
