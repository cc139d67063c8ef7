"""Testes ocultos do notebook 00 (Spaces com ZeroGPU). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import ast
import math

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, same_value
from course_utils.zerogpu import LintInputError, canonical_name, import_aliases, lint_source, module_cuda_placements

# funções do pacote que já resolvem os exercícios 00.3 e 00.4: uma resposta que as chama tira zero no caso
QUOTA_FUNCTIONS = ("course_utils.zerogpu.quota:requested_seconds", "course_utils.zerogpu.quota:quota_multiplier",
                   "course_utils.zerogpu.quota:calls_using_full_request")
LINTER_FUNCTIONS = ("course_utils.zerogpu.ast_facts:gpu_functions", "course_utils.zerogpu.ast_facts:gpu_decorator",
                    "course_utils.zerogpu.ast_facts:import_aliases", "course_utils.zerogpu.ast_facts:canonical_name")

# ---------------------------------------------------------------- soluções de referência

FIXED_APP = '''import spaces  # primeiro: antes de qualquer coisa que toque em CUDA

import math

import gradio as gr
from transformers import pipeline

# no escopo do módulo, como a documentação do ZeroGPU pede: o `spaces` emula o "cuda" aqui e refaz a cópia na GPU
pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")


def estimar(question, max_new_tokens):
    return min(120, math.ceil(10 + max_new_tokens / 20))


@spaces.GPU(duration=estimar)
def answer(question, max_new_tokens):
    return pipe(question, max_new_tokens=max_new_tokens)[0]["generated_text"]


gr.Interface(answer, ["text", gr.Slider(16, 1024, step=16)], "text").launch()
'''


def estimate_duration(prompt, max_new_tokens):
    """10 s fixos + 0,05 s por token novo, arredondado para cima, com teto de 120 s."""
    return min(120, math.ceil(10 + max_new_tokens / 20))


def quota_of_the_day(calls, quota_s, factor):
    """Cota restante depois de cada chamada (spaces 0.51.3, zero/client.py; documentação do ZeroGPU).

    pedido = round(duration * (1 no xlarge, senão factor)) * (2 no xlarge); recusada se pedido > restante;
    aceita, desconta os segundos efetivos (em dobro no xlarge).
    """
    left, out = quota_s, []
    for duration, effective, size in calls:
        xlarge = size == "xlarge"
        requested = round(duration * (1 if xlarge else factor)) * (2 if xlarge else 1)
        if requested <= left:
            left -= effective * (2 if xlarge else 1)
        out.append(left)
    return out


def flag_async_gpu(source):
    """Linhas das `async def` decoradas com `@spaces.GPU` (qualquer apelido), em ordem. Resolve os apelidos sozinha:
    as funções do linter do pacote (import_aliases, canonical_name, gpu_functions) são proibidas na resposta."""
    tree = ast.parse(source)
    modules, names = set(), set()          # apelidos do módulo `spaces` e nomes que querem dizer `spaces.GPU`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "spaces"}
        elif isinstance(node, ast.ImportFrom) and node.module == "spaces":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "GPU"}

    def is_gpu(decorator):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name):
            return target.id in names
        return (isinstance(target, ast.Attribute) and target.attr == "GPU" and isinstance(target.value, ast.Name)
                and target.value.id in modules)

    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.AsyncFunctionDef) and any(map(is_gpu, node.decorator_list)))


ASYNC_SOURCES = {
    "parenteses_vazios": "import spaces\n\n@spaces.GPU()\nasync def f():\n    pass\n",
    "decoradores_empilhados": ("import functools\nimport spaces\n\n@functools.lru_cache\n@spaces.GPU(size='xlarge')\n"
                               "async def f():\n    pass\n"),
    "dentro_de_if": "import spaces\n\nif True:\n    @spaces.GPU\n    async def f():\n        pass\n",
    "texto_e_outro_gpu": ('import spaces\nimport other\n\n"""@spaces.GPU\nasync def falso(): pass"""\n\n'
                          "@other.GPU\nasync def g():\n    pass\n"),
    "varias": ("import spaces as sp\nfrom spaces import GPU as G\n\n@sp.GPU\nasync def a():\n    pass\n\n"
               "@G(duration=5)\nasync def b():\n    pass\n\n@G\ndef c():\n    pass\n\n"
               "@sp.GPU\ndef d():\n    yield 1\n"),
    "nada": "import gradio as gr\n\nasync def f():\n    pass\n",
}


def lint_clean(source):
    """O texto é Python e o linter do curso não acusa nada (nem avisos)."""
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
    """O app continua chamando o pipeline e o põe em "cuda" na inicialização."""
    try:
        tree = ast.parse(source)
        placements = module_cuda_placements(source)
    except (SyntaxError, ValueError, TypeError, LintInputError):
        return False, "o código não é Python válido"
    aliases = import_aliases(tree)
    calls = {canonical_name(node.func, aliases) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    if "transformers.pipeline" not in calls:
        return False, "o app deixou de usar o `pipeline`"
    if not placements:
        return False, "o pipeline não é mais posto em \"cuda\" na inicialização"
    return True, "correto"


CALLS = [(60, 20, "large"), (45, 30, "xlarge"), (190, 40, "large"), (33, 12, "large"), (80, 30, "xlarge"),
         (200, 100, "large"), (20, 5, "xlarge")]

EXERCISES = [
    ValueExercise("00.1", answer="app_consertado", reference=FIXED_APP, checks=[
        Check("o linter do ZeroGPU não acusa nada", 2, lint_clean),
        Check("o app ainda gera texto, com o pipeline em \"cuda\" na inicialização", 1, still_generates_on_gpu),
    ]),
    FunctionExercise("00.2", answer="estimar", reference=estimate_duration, compare=same_value, cases=[
        Case(("Oi", 0), 0.5, "nenhum token novo"),
        Case(("Uma pergunta qualquer", 21), 1, "arredonda para cima"),
        Case(("Resuma o texto", 500), 1, "500 tokens"),
        Case(("Escreva um conto", 2199), 0.5, "logo abaixo do teto"),
        Case(("Escreva um livro", 10_000), 1, "acima do teto"),
        Case((), 1, "argumentos por nome", kwargs={"prompt": "Olá", "max_new_tokens": 41}),
    ]),
    FunctionExercise("00.3", answer="cota_do_dia", reference=quota_of_the_day, compare=same_value,
                     forbidden=QUOTA_FUNCTIONS, cases=[
        Case((CALLS[:1], 300, 1.5), 0.5, "uma chamada large"),
        Case((CALLS[1:2], 300, 1.5), 1, "uma chamada xlarge"),
        Case((CALLS[:3], 300, 1.5), 1, "o fator decide uma recusa"),
        Case((CALLS, 420, 1.5), 1, "um dia inteiro, large e xlarge"),
        Case((CALLS, 420, 1.0), 1, "fator 1 (a GPU antiga)"),
        Case(([(33, 12, "large"), (61, 30, "large")], 100, 1.25), 0.5, "fator 1,25 e arredondamento"),
        Case(([], 120, 1.5), 0.5, "nenhuma chamada"),
    ]),
    FunctionExercise("00.4", answer="acusar_gpu_async", reference=flag_async_gpu, compare=same_value,
                     forbidden=LINTER_FUNCTIONS, cases=[
        Case((ASYNC_SOURCES["parenteses_vazios"],), 0.5, "@spaces.GPU() sem argumentos"),
        Case((ASYNC_SOURCES["decoradores_empilhados"],), 1, "decoradores empilhados"),
        Case((ASYNC_SOURCES["dentro_de_if"],), 0.5, "função definida dentro de um if"),
        Case((ASYNC_SOURCES["texto_e_outro_gpu"],), 1, "texto que parece código e um GPU de outro pacote"),
        Case((ASYNC_SOURCES["varias"],), 1, "vários apelidos e funções comuns e geradoras"),
        Case((ASYNC_SOURCES["nada"],), 0.5, "async def sem decorador"),
    ]),
]
