"""Testes ocultos do notebook 00 (Spaces com ZeroGPU). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import ast
import math

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number, same_value
from course_utils.zerogpu import LintInputError, canonical_name, gpu_functions_use_cuda, import_aliases, lint_source


# ---------------------------------------------------------------- soluções de referência

QUOTA_SECONDS = 2 * 30  # a cota desconta o tempo efetivo (30 s), em dobro no tamanho xlarge

FIXED_APP = '''import spaces  # primeiro: antes de qualquer coisa que toque em CUDA

import math

import gradio as gr
from transformers import pipeline

pipe = None  # criado na primeira chamada, já dentro da GPU emprestada


def estimar(question, max_new_tokens):
    return min(120, math.ceil(10 + max_new_tokens / 20))


@spaces.GPU(duration=estimar)
def answer(question, max_new_tokens):
    global pipe
    if pipe is None:
        pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")
    return pipe(question, max_new_tokens=max_new_tokens)[0]["generated_text"]


gr.Interface(answer, ["text", gr.Slider(16, 1024, step=16)], "text").launch()
'''


def estimate_duration(prompt, max_new_tokens):
    """10 s fixos + 0,05 s por token novo, arredondado para cima, com teto de 120 s."""
    return min(120, math.ceil(10 + max_new_tokens / 20))


def lint_clean(source):
    """O texto é Python e o linter do curso não acusa nada."""
    if not isinstance(source, str):
        return False, f"esperava o código do app.py como texto (str), veio {type(source).__name__}"
    try:
        findings = lint_source(source)
    except LintInputError as exc:
        return False, f"o Python não consegue ler o código: {exc}"
    if findings:
        return False, f"o linter ainda acusa {len(findings)} problema(s) (o primeiro: [{findings[0].rule}])"
    return True, "correto"


def still_generates_on_gpu(source):
    """O app continua chamando o pipeline e usando a GPU dentro da função decorada."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, TypeError):
        return False, "o código não é Python válido"
    aliases = import_aliases(tree)
    calls = {canonical_name(node.func, aliases) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    if "transformers.pipeline" not in calls:
        return False, "o app deixou de usar o `pipeline`"
    if not gpu_functions_use_cuda(source):
        return False, "o pipeline não vai mais para a GPU dentro da função decorada"
    return True, "correto"


EXERCISES = [
    ValueExercise("00.1", answer="app_consertado", reference=FIXED_APP, checks=[
        Check("o linter do ZeroGPU não acusa nada", 2, lint_clean),
        Check("o app ainda gera texto na GPU, dentro da função decorada", 1, still_generates_on_gpu),
    ]),
    FunctionExercise("00.2", answer="estimar", reference=estimate_duration, compare=same_value, cases=[
        Case(("Oi", 0), 0.5, "nenhum token novo"),
        Case(("Uma pergunta qualquer", 21), 1, "arredonda para cima"),
        Case(("Resuma o texto", 500), 1, "500 tokens"),
        Case(("Escreva um conto", 2199), 0.5, "logo abaixo do teto"),
        Case(("Escreva um livro", 10_000), 1, "acima do teto"),
        Case((), 1, "argumentos por nome", kwargs={"prompt": "Olá", "max_new_tokens": 41}),
    ]),
    ValueExercise("00.3", answer="resposta_3", reference=QUOTA_SECONDS, checks=[
        Check("segundos de cota de uma chamada xlarge de 30 s", 2, number(QUOTA_SECONDS)),
    ]),
]
