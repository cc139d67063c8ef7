"""Juízes dos exercícios do notebook 00 (Spaces ZeroGPU), registrados com @exercise."""

import math

from . import _judge_number, exercise

_ZEROGPU_HINTS = {
    "module_cuda": "nada de GPU no escopo do módulo: crie o pipeline (com a GPU) dentro da função que gera, "
                   "e guarde-o numa variável global para a próxima chamada.",
    "no_gpu_function": "a função que usa a GPU precisa do decorador do pacote `spaces`.",
    "spaces_import_order": "o pacote `spaces` tem de ser importado antes de qualquer coisa que toque em CUDA.",
    "gpu_duration": "o número de tokens vem da interface; diga ao decorador quantos segundos pedir "
                    "(um número, ou uma função dos mesmos argumentos).",
}


@exercise("00.1", "consertar um app.py para o ZeroGPU", "o código do app.py corrigido, como texto (str)")
def _fix_zerogpu_app(answer):
    import ast

    from ..zerogpu import LintInputError, canonical_name, gpu_functions_use_cuda, import_aliases, lint_source

    if not isinstance(answer, str):
        return False, f"Tipo errado: esperava o código do app.py como texto (str), recebi {type(answer).__name__}."
    try:
        findings = lint_source(answer)
    except LintInputError as exc:
        return False, f"o Python não consegue ler o seu código: {exc}"
    if findings:
        first = findings[0]
        return False, (f"o linter ainda acusa {len(findings)} problema(s); o primeiro é [{first.rule}] na linha "
                       f"{first.line}. Dica: {_ZEROGPU_HINTS[first.rule]}")
    tree = ast.parse(answer)
    aliases = import_aliases(tree)
    calls = {canonical_name(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    if "transformers.pipeline" not in calls:
        return False, "o linter passa, mas o app deixou de gerar texto: ele ainda precisa do `pipeline`."
    if not gpu_functions_use_cuda(answer):
        return False, ("o linter passa, mas o app não usa mais a GPU: o pipeline deve ir para a GPU "
                       "(dentro da função decorada, não no escopo do módulo).")
    return True, "correto! Nenhum achado do linter, e a GPU só é usada dentro da função decorada."


@exercise("00.2", "duração calculada para @spaces.GPU",
          "uma função estimar(prompt, max_new_tokens) -> segundos (int)")
def _zerogpu_duration(answer):
    import inspect

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    try:
        inspect.signature(answer).bind(prompt="oi", max_new_tokens=8)
    except TypeError:
        return False, ("o `spaces` chama a função de duração com os MESMOS argumentos da função decorada, "
                       "inclusive pelo nome: ela precisa aceitar `prompt` e `max_new_tokens`.")
    except ValueError:
        pass  # sem assinatura legível (função embutida): confere só pelos resultados
    for tokens in (7, 100, 1000, 3000, 8):
        expected = min(120, math.ceil(10 + 0.05 * tokens))
        got = answer("Uma pergunta qualquer", tokens)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva os segundos."
        if got != answer(prompt="Uma pergunta qualquer", max_new_tokens=tokens):
            return False, "a função deve dar o mesmo resultado com argumentos por posição e por nome."
        if isinstance(got, bool) or not isinstance(got, int):
            return False, f"devolva um número inteiro de segundos (veio {type(got).__name__}). Dica: math.ceil."
        if got == expected:
            continue
        raw = 10 + 0.05 * tokens
        if got in (math.floor(raw), round(raw)) and got != math.ceil(raw):
            return False, "arredonde para cima: pedir menos segundos do que o necessário faz a chamada ser abortada."
        if got > 120:
            return False, "falta o teto: nunca peça mais que 120 s (pedidos longos perdem prioridade na fila)."
        return False, f"com max_new_tokens={tokens} o valor não confere: 10 s fixos + 0,05 s por token."
    return True, "correto!"


@exercise("00.3", "cota consumida por uma chamada xlarge", "um número (segundos de cota)")
def _zerogpu_quota(answer):
    # duration=45, size="xlarge", a função roda de fato 30 s: a cota desconta o tempo efetivo, em dobro no xlarge
    return _judge_number(answer, 2 * 30, 1e-6, [
        (2 * 45, "a cota desconta o tempo que a função de fato usou, não a duração pedida."),
        (30.0, "faltou o custo do tamanho: `xlarge` consome cota em dobro."),
        (45.0, "45 s é a duração pedida; a cota desconta o tempo efetivo, com o fator do `xlarge`."),
    ])
