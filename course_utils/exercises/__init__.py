"""Exercícios com autocorreção: `check("01.2", minha_funcao)` imprime um retorno em português.

Cada exercício é uma função registrada com @exercise que recebe a resposta do aluno e
devolve (acertou, mensagem). `check` nunca deixa uma resposta ruim quebrar o notebook:
tipo errado, exceção no código do aluno ou resposta ausente viram uma mensagem com dica,
sem revelar a resposta. A correção em lote (professor) reutiliza o mesmo registro.

Aqui ficam o registro (`exercise`, `EXERCISES`, `evaluate`, `check`) e os ajudantes de retorno que os juízes
compartilham; os juízes de cada notebook ficam em `nb00.py` … `nb08.py`, importados no fim deste arquivo.
"""

import contextlib
import math
import numbers
import sys
import types
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


def check(id: str, answer) -> None:
    """Confere a resposta e imprime o retorno (✅ ou ❌ com dica). Não devolve nada, para a célula do exercício não
    ecoar um `False` embaixo do retorno (quem precisa do resultado usa `evaluate`)."""
    ok, message = evaluate(id, answer)
    title = EXERCISES[id].title if id in EXERCISES else id
    print(f"{'✅' if ok else '❌'} Exercício {id} ({title}): {message}")


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


def _code_objects(function) -> set:
    """O código de `function` (função, método ou classe: os métodos dela) e o das funções definidas dentro dele."""
    if isinstance(function, type):
        found = set()
        for value in vars(function).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, types.FunctionType):
                found |= _code_objects(value)
        return found
    function = getattr(function, "__func__", function)
    while hasattr(function, "__wrapped__"):   # um decorador (torch.no_grad...) tem código compartilhado: vale o de dentro
        function = function.__wrapped__
    code = getattr(function, "__code__", None)
    if code is None:
        return set()
    found, todo = set(), [code]
    while todo:
        c = todo.pop()
        found.add(c)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return found


@contextlib.contextmanager
def watch_calls(*functions):
    """Durante o bloco, anota quais de `functions` (funções, métodos ou classes) foram chamadas, por qualquer nome.

    Serve para o juiz saber se a resposta do aluno delegou o exercício a uma função que já o resolve (do pacote do
    curso ou de uma biblioteca): guarda no conjunto devolvido o nome de cada uma que rodou. Vê a chamada mesmo quando
    o aluno importou a função com outro nome, porque compara o código que executa (sys.setprofile), não o nome.
    """
    watched = {}
    for function in functions:
        name = getattr(function, "__qualname__", repr(function))
        for code in _code_objects(function):
            watched[code] = name
    called = set()
    previous = sys.getprofile()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in watched:
            called.add(watched[frame.f_code])

    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)


def delegation_message(called: set) -> str:
    """O retorno de quem delegou: diz o que foi chamado e pede a regra escrita, sem dar a resposta."""
    names = ", ".join(sorted(called))
    return (f"sua função chamou {names}, que já resolve o exercício. Escreva a regra você mesmo, com operações de "
            "tensores (a ideia é implementar, não delegar).")


# Os juízes de cada notebook se registram ao serem importados; precisam do registro definido acima.
from . import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08  # noqa: E402

__all__ = ["EXERCISES", "Exercise", "check", "delegation_message", "evaluate", "exercise", "watch_calls",
           "nb00", "nb01", "nb02", "nb03", "nb04", "nb05", "nb06", "nb07", "nb08"]
