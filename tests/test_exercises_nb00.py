"""Exercícios do notebook 00: respostas realistas erradas recusadas com a dica (sem a resposta), e as funções do
próprio pacote, de assinatura compatível, nunca passam num exercício de função."""

import importlib
import importlib.util
import inspect
import math
from pathlib import Path

import pytest

from course_utils import zerogpu
from course_utils.exercises import evaluate
from course_utils.zerogpu import aot, installed, lint_source, local_space, timeline

ROOT = Path(__file__).resolve().parent.parent
SRC = (ROOT / "notebooks" / "src" / "00_zerogpu_spaces.py").read_text(encoding="utf-8")


def _grading():
    spec = importlib.util.spec_from_file_location("grading_00", ROOT / "grading" / "00_zerogpu_spaces.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _broken_app():
    start = SRC.index("APP_QUEBRADO = '''") + len("APP_QUEBRADO = '''")
    return SRC[start:SRC.index("'''", start)]


def test_broken_app_of_the_notebook_breaks_the_rules_the_exercise_teaches():
    rules = {f.rule for f in lint_source(_broken_app())}
    assert rules == {"module_cuda", "no_gpu_function", "spaces_import_order"}


def test_fix_app_reference_passes_and_old_doctrine_fails_with_hint():
    fixed = _grading().FIXED_APP
    assert evaluate("00.1", fixed)[0]
    # o padrão do guia antigo: pipeline criado dentro da função decorada (a documentação desaconselha)
    old_doctrine = fixed.replace(
        'pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")\n',
        "pipe = None\n").replace(
        '    return pipe(question',
        '    global pipe\n    if pipe is None:\n        pipe = pipeline("text-generation", '
        'model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")\n    return pipe(question')
    ok, message = evaluate("00.1", old_doctrine)
    assert not ok and "gpu_lazy_load" in message and "desaconselha" in message
    assert 'device="cuda"' not in message
    ok, message = evaluate("00.1", fixed.replace('device="cuda"', 'device="cpu"'))
    assert not ok and "não vai mais para a GPU" in message
    ok, message = evaluate("00.1", _broken_app())
    assert not ok and "linha" in message and "pipe = pipeline" not in message
    assert not evaluate("00.1", "def (")[0]
    assert not evaluate("00.1", 42)[0]


def test_duration_wrong_answers_get_hints_without_the_answer():
    assert evaluate("00.2", _grading().estimate_duration)[0]
    ok, message = evaluate("00.2", lambda prompt, max_new_tokens: math.ceil(10 + 0.05 * max_new_tokens))
    assert not ok and "teto" in message
    ok, message = evaluate("00.2", lambda prompt, max_new_tokens: min(120, round(10 + 0.05 * max_new_tokens)))
    assert not ok and "para cima" in message
    ok, message = evaluate("00.2", lambda a, b: min(120, math.ceil(10 + 0.05 * b)))
    assert not ok and "`prompt` e `max_new_tokens`" in message
    for value in ("11", "15", "60"):
        assert value not in message


def _charge_requested(calls, quota_s, factor):
    """Erro realista: desconta a duração pedida em vez do tempo efetivo."""
    left, out = quota_s, []
    for duration, _effective, size in calls:
        cost = round(duration * (1 if size == "xlarge" else factor)) * (2 if size == "xlarge" else 1)
        if cost <= left:
            left -= cost
        out.append(left)
    return out


def _no_factor(calls, quota_s, factor):
    """Erro realista: esquece o duration_factor na hora de comparar o pedido com a cota."""
    left, out = quota_s, []
    for duration, effective, size in calls:
        mult = 2 if size == "xlarge" else 1
        if duration * mult <= left:
            left -= effective * mult
        out.append(left)
    return out


def test_quota_reference_passes_and_realistic_errors_get_their_hint():
    assert evaluate("00.3", _grading().quota_of_the_day)[0]
    ok, message = evaluate("00.3", _charge_requested)
    assert not ok and "tempo que a função de fato usou" in message
    ok, message = evaluate("00.3", _no_factor)
    assert not ok and "duration_factor" in message
    for value in ("280", "240", "140"):
        assert value not in message
    ok, message = evaluate("00.3", lambda chamadas, cota_s, fator: None)
    assert not ok and "None" in message


def _package_functions():
    for module in (zerogpu, installed, local_space, aot, timeline):
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__.startswith("course_utils"):
                yield f"{fn.__module__}.{name}", fn


@pytest.mark.parametrize("ex_id, arity", [("00.2", 2), ("00.3", 3)])
def test_package_functions_never_pass_a_function_exercise(ex_id, arity):
    for name, fn in _package_functions():
        try:
            inspect.signature(fn).bind(*range(arity))
        except TypeError:
            continue
        assert not evaluate(ex_id, fn)[0], f"{name} passa no exercício {ex_id}"


def _async_without_aliases(codigo):
    """Erro realista: só reconhece o nome literal `spaces.GPU`."""
    import ast

    lines = []
    for node in ast.walk(ast.parse(codigo)):
        if isinstance(node, ast.AsyncFunctionDef):
            names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
            if "spaces.GPU" in names:
                lines.append(node.lineno)
    return sorted(lines)


def _every_async(codigo):
    """Erro realista: acusa toda `async def`, decorada ou não."""
    import ast

    return sorted(n.lineno for n in ast.walk(ast.parse(codigo)) if isinstance(n, ast.AsyncFunctionDef))


def test_async_rule_reference_passes_and_realistic_errors_get_their_hint():
    assert evaluate("00.4", _grading().flag_async_gpu)[0]
    ok, message = evaluate("00.4", _async_without_aliases)
    assert not ok and "import spaces as sp" in message
    ok, message = evaluate("00.4", _every_async)
    assert not ok and "DECORADAS" in message
    ok, message = evaluate("00.4", lambda codigo: "5")
    assert not ok and "lista de números inteiros" in message


def test_package_functions_never_pass_the_async_rule_exercise():
    for name, fn in _package_functions():
        try:
            inspect.signature(fn).bind("codigo")
        except TypeError:
            continue
        if name.endswith(("ensure_space_packages", "plot_zerogpu_timeline", "spaces_facts", "lint_cli", "main")):
            continue  # sem argumento de texto (ou abrem processos/janelas): não são candidatas a resposta
        assert not evaluate("00.4", fn)[0], f"{name} passa no exercício 00.4"


def _async_rule_by_the_linter(codigo):  # a resposta de duas linhas que usa o linter do pacote
    import ast

    from course_utils.zerogpu import ast_facts

    tree = ast.parse(codigo)
    return sorted(f.lineno for f, _ in ast_facts.gpu_functions(tree, ast_facts.import_aliases(tree)).values()
                  if isinstance(f, ast.AsyncFunctionDef))


def _quota_by_the_package(chamadas, cota_s, fator):  # a cota do dia montada com as funções do pacote
    from course_utils.zerogpu import quota

    left, out = cota_s, []
    for duration, effective, size in chamadas:
        if quota.requested_seconds(duration, size, fator) <= left:
            left -= effective * quota.quota_multiplier(size)
        out.append(left)
    return out


@pytest.mark.parametrize("ex_id, delegating, called", [
    ("00.3", _quota_by_the_package, "requested_seconds"),
    ("00.4", _async_rule_by_the_linter, "gpu_functions"),
])
def test_answers_built_on_the_package_are_refused_in_self_check_and_listed_for_the_hidden_tests(ex_id, delegating,
                                                                                                  called):
    ok, msg = evaluate(ex_id, delegating)
    assert not ok and called in msg and "Escreva a regra" in msg, msg
    forbidden = next(e for e in _grading().EXERCISES if e.id == ex_id).forbidden
    assert any(target.endswith(f":{called}") for target in forbidden), forbidden
    for target in forbidden:   # cada nome proibido existe (um erro de digitação desligaria a vigia)
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name)), target
