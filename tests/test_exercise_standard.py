"""O padrão das lições para os exercícios: nenhum exercício de função é resolvido por uma função do pacote do aluno.

Para cada exercício de função dos testes ocultos (`grading/`), toda função pública dos módulos de algoritmos de
`course_utils`, chamada com os seus padrões, tem de ser recusada pela autocorreção: se uma delas passa, o pacote que
o aluno importa virou o gabarito.
"""

import importlib
import inspect
import pkgutil
import signal
from functools import lru_cache
from pathlib import Path

import pytest
import torch

import course_utils
from course_utils.exercises import evaluate
from course_utils.grade import FunctionExercise, load_assignment

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "grading").glob("[0-9][0-9]_*.py"))
# o que não é algoritmo de lição: infraestrutura que nenhum exercício poderia querer
SKIPPED_PACKAGES = ("course_utils.course", "course_utils.grader", "course_utils.grade", "course_utils.exercises",
                    "course_utils.sandbox")


@lru_cache(maxsize=1)
def package_functions() -> tuple:
    """(nome, função) de cada função pública definida nos módulos de `course_utils` (sem a infraestrutura)."""
    found, seen = [], set()
    for info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        if info.name.startswith(SKIPPED_PACKAGES) or info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # um módulo que precisa de uma biblioteca ausente aqui (ex.: TensorRT)
            continue
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            # `main` e afins são linhas de comando (argparse), não algoritmos que um exercício pediria
            if name.startswith("_") or name.startswith("main") or fn.__module__ != module.__name__ or fn in seen:
                continue
            seen.add(fn)
            found.append((f"{module.__name__}.{name}", fn))
    return tuple(found)


FUNCTION_EXERCISES = [ex for name in NOTEBOOKS for ex in load_assignment(name).exercises
                      if isinstance(ex, FunctionExercise)]


class _TooSlow(Exception):
    pass


def _alarm(signum, frame):
    raise _TooSlow


@pytest.mark.parametrize("exercise", FUNCTION_EXERCISES, ids=[ex.id for ex in FUNCTION_EXERCISES])
def test_no_package_function_passes_a_function_exercise(exercise):
    passing = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for name, fn in package_functions():
            signal.alarm(5)
            try:
                ok, _ = evaluate(exercise.id, fn)
            except _TooSlow:
                ok = False
            finally:
                signal.alarm(0)
            if ok:
                passing.append(name)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not passing, f"o exercício {exercise.id} é resolvido por funções do pacote do aluno: {passing}"


def test_the_check_finds_package_functions():
    names = {name for name, _ in package_functions()}
    assert "course_utils.quantization.absmax_quantize" in names
    assert not any(n.startswith(SKIPPED_PACKAGES) for n in names)


def test_watch_calls_ve_a_delegacao_por_qualquer_nome():
    from course_utils.exercises import delegation_message, watch_calls
    from course_utils.generation import top_k_filter as outro_nome

    def delega(logits):
        return outro_nome(logits, 2)

    def escreve(logits):
        return logits.masked_fill(logits < logits.topk(2).values[..., -1:], float("-inf"))

    from course_utils import generation
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    with watch_calls(generation.top_k_filter) as called:
        escreve(logits)
    assert called == set()
    with watch_calls(generation.top_k_filter) as called:
        delega(logits)
    assert called == {"top_k_filter"}
    assert "top_k_filter" in delegation_message(called)

    class Filtro:
        def __call__(self, x):
            return x

    with watch_calls(Filtro) as called:
        Filtro()(logits)
    assert len(called) == 1 and next(iter(called)).endswith("Filtro")
