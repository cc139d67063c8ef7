"""Juízes dos exercícios do notebook 00 (Spaces ZeroGPU), registrados com @exercise.

A autocorreção confere casos públicos guardados como dados (entradas e saídas esperadas) e propriedades; a solução
de referência fica só com os testes ocultos (grading/00_zerogpu_spaces.py).
"""

import inspect
import math

from . import delegation_message, exercise, watch_calls

_ZEROGPU_HINTS = {
    "module_cuda": "no escopo do módulo, só o que o `spaces` emula: pôr o modelo em \"cuda\" pode; ler o estado da "
                   "GPU, chamar o driver ou usar torch.compile, não (isso vai para dentro da função decorada, "
                   "ou sai do app).",
    "no_gpu_function": "a função que usa a GPU precisa do decorador do pacote `spaces`.",
    "spaces_import_order": "o pacote `spaces` tem de ser importado antes de qualquer coisa que toque em CUDA.",
    "gpu_duration": "o número de tokens vem da interface; diga ao decorador quantos segundos pedir "
                    "(um número, ou uma função dos mesmos argumentos).",
    "gpu_lazy_load": "criar ou mover o pipeline dentro da função decorada funciona, mas a documentação do ZeroGPU "
                     "desaconselha: as cópias para a GPU são otimizadas para o que é posto em \"cuda\" na "
                     "inicialização.",
}


@exercise("00.1", "consertar um app.py para o ZeroGPU", "o código do app.py corrigido, como texto (str)")
def _fix_zerogpu_app(answer):
    import ast

    from ..zerogpu import LintInputError, canonical_name, import_aliases, lint_source, module_cuda_placements

    if not isinstance(answer, str):
        return False, f"Tipo errado: esperava o código do app.py como texto (str), recebi {type(answer).__name__}."
    try:
        findings = lint_source(answer)
    except LintInputError as exc:
        return False, f"o Python não consegue ler o seu código: {exc}"
    if findings:
        first = findings[0]
        return False, (f"o linter ainda acusa {len(findings)} problema(s); o primeiro é [{first.rule}] na linha "
                       f"{first.line}. Dica: {_ZEROGPU_HINTS.get(first.rule, first.message)}")
    tree = ast.parse(answer)
    aliases = import_aliases(tree)
    calls = {canonical_name(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    if "transformers.pipeline" not in calls:
        return False, "o linter passa, mas o app deixou de gerar texto: ele ainda precisa do `pipeline`."
    if not module_cuda_placements(answer):
        return False, ("o linter passa, mas o pipeline não vai mais para a GPU: no ZeroGPU ele é posto em \"cuda\" "
                       "na inicialização (o `spaces` emula isso no processo principal).")
    return True, ("correto! Nenhum achado do linter, e o pipeline vai para \"cuda\" na inicialização, como a "
                  "documentação pede.")


# Casos públicos do exercício 2: (max_new_tokens, segundos esperados).
DURATION_CASES = [(7, 11), (100, 15), (1000, 60), (3000, 120), (8, 11)]


@exercise("00.2", "duração calculada para @spaces.GPU",
          "uma função estimar(prompt, max_new_tokens) -> segundos (int)")
def _zerogpu_duration(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    try:
        inspect.signature(answer).bind(prompt="oi", max_new_tokens=8)
    except TypeError:
        return False, ("o `spaces` chama a função de duração com os MESMOS argumentos da função decorada, "
                       "inclusive pelo nome: ela precisa aceitar `prompt` e `max_new_tokens`.")
    except ValueError:
        pass  # sem assinatura legível (função embutida): confere só pelos resultados
    for tokens, expected in DURATION_CASES:
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
        if got in (math.floor(raw), round(raw)) and got < expected:
            return False, "arredonde para cima: pedir menos segundos do que o necessário faz a chamada ser abortada."
        if got > 120:
            return False, "falta o teto: nunca peça mais que 120 s (pedidos longos perdem prioridade na fila)."
        return False, f"com max_new_tokens={tokens} o valor não confere: 10 s fixos + 0,05 s por token."
    return True, "correto!"


# Casos públicos do exercício 3: (chamadas, cota_s, fator) -> cota restante depois de cada chamada, e as saídas
# dos erros mais comuns nos mesmos casos (para a dica). Cada chamada é (duration pedida, segundos efetivos, size).
QUOTA_CASES = [
    {"args": ([(60, 20, "large")], 300, 1.5), "expected": [280], "wrong": {"cobra_pedido": [210]}},
    {"args": ([(45, 30, "xlarge")], 300, 1.5), "expected": [240], "wrong": {"xlarge_simples": [270]}},
    {"args": ([(60, 20, "large"), (190, 40, "large")], 300, 1.5), "expected": [280, 280],
     "wrong": {"sem_fator": [280, 240]}},
    {"args": ([(100, 10, "large"), (80, 30, "xlarge")], 150, 1.5), "expected": [140, 140],
     "wrong": {"sem_dobro_no_pedido": [140, 80]}},
    {"args": ([(50, 10, "xlarge")], 120, 1.5), "expected": [100], "wrong": {"fator_no_xlarge": [120]}},
    {"args": ([(60, 59, "large"), (60, 59, "large"), (60, 59, "large")], 120, 1.0), "expected": [61, 2, 2],
     "wrong": {}},
    {"args": ([], 300, 1.5), "expected": [], "wrong": {}},
]
_QUOTA_HINTS = {
    "cobra_pedido": "a cota desconta o tempo que a função de fato usou, não a duração pedida.",
    "xlarge_simples": "no `xlarge` a cota é descontada em dobro (a documentação: 45 s efetivos custam 90 s).",
    "sem_fator": "para aceitar ou recusar, o agendador compara o pedido, que o `spaces` multiplica pelo "
                 "`duration_factor` da GPU (fora do `xlarge`), com a cota que resta.",
    "sem_dobro_no_pedido": "o pedido de uma chamada `xlarge` também conta em dobro na hora de comparar com a cota "
                           "que resta (veja `requested *= 2` no client.py).",
    "fator_no_xlarge": "o `duration_factor` não vale para o `xlarge` (veja o `if gpu_size != 'xlarge'`).",
}


@exercise("00.3", "simular a cota diária do ZeroGPU",
          "uma função cota_do_dia(chamadas, cota_s, fator) -> lista com a cota restante depois de cada chamada")
def _zerogpu_quota(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    from ..zerogpu import quota

    for case in QUOTA_CASES:
        calls, quota_s, factor = case["args"]
        with watch_calls(quota.requested_seconds, quota.quota_multiplier, quota.calls_using_full_request) as called:
            got = answer([tuple(c) for c in calls], quota_s, factor)
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva a lista."
        try:
            got = [float(x) for x in got]
        except (TypeError, ValueError):
            return False, f"devolva uma lista de números (a cota restante depois de cada chamada), não {got!r}."
        if len(got) != len(calls):
            return False, f"a lista deve ter um número por chamada: {len(calls)} chamada(s), veio {len(got)}."
        if all(math.isclose(g, e, abs_tol=1e-6) for g, e in zip(got, case["expected"], strict=True)):
            continue
        for name, wrong in case["wrong"].items():
            if all(math.isclose(g, w, abs_tol=1e-6) for g, w in zip(got, wrong, strict=True)):
                return False, _QUOTA_HINTS[name]
        steps = zip([quota_s, *got[:-1]], got, strict=True)
        if any(after > before + 1e-6 for before, after in steps):
            return False, "a cota restante nunca sobe ao longo do dia: confira o sinal do desconto."
        return False, (f"com {len(calls)} chamada(s), cota de {quota_s} s e fator {factor}, a lista não confere. "
                       "Refaça as contas de uma chamada por vez: pedido, aceita ou recusa, desconto.")
    return True, "correto!"


# Casos públicos do exercício 4: código -> linhas esperadas, e as saídas de erros comuns (para a dica).
ASYNC_CASES = [
    {"source": "import spaces\n\n\n@spaces.GPU\nasync def f():\n    pass\n",
     "expected": [5], "wrong": {"linha_do_decorador": [4]}},
    {"source": "import spaces as sp\n\n\n@sp.GPU(duration=10)\nasync def f(x):\n    return x\n\n\n"
               "@sp.GPU\ndef g(x):\n    return x\n",
     "expected": [5], "wrong": {"sem_apelido": [], "inclui_sincronas": [5, 10]}},
    {"source": "from spaces import GPU\n\n\n@GPU\nasync def a():\n    pass\n\n\nasync def b():\n    pass\n",
     "expected": [5], "wrong": {"sem_apelido": [], "todas_async": [5, 9]}},
    {"source": "import spaces\n\n\nclass Chat:\n    @spaces.GPU\n    async def reply(self, text):\n"
               "        return text\n",
     "expected": [6], "wrong": {"so_no_modulo": []}},
    {"source": "import spaces\nfrom diffusers import DiffusionPipeline\n\n"
               "pipe = DiffusionPipeline.from_pretrained('x')\npipe.to('cuda')\n\n\n"
               "@spaces.GPU\ndef generate(prompt):\n    return pipe(prompt).images\n",
     "expected": [], "wrong": {"inclui_sincronas": [9]}},
]
_ASYNC_HINTS = {
    "linha_do_decorador": "devolva a linha do `async def`, não a do decorador (no Python 3.8+, é o `lineno` da "
                          "função).",
    "sem_apelido": "o decorador pode vir com outro nome: `import spaces as sp` dá `@sp.GPU`, e "
                   "`from spaces import GPU` dá `@GPU`. Resolva os nomes pelos imports.",
    "inclui_sincronas": "só as funções `async def` quebram: o `spaces` embrulha as comuns e as geradoras.",
    "todas_async": "só as `async def` DECORADAS com `@spaces.GPU` interessam; as outras não passam pelo `spaces`.",
    "so_no_modulo": "procure em toda a árvore (métodos de classe também são decorados), não só no corpo do módulo.",
}


@exercise("00.4", "uma regra nova para o linter: @spaces.GPU em async def",
          "uma função acusar_gpu_async(codigo) -> lista ordenada das linhas de cada `async def` decorada")
def _zerogpu_async_rule(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    from ..zerogpu import ast_facts

    for case in ASYNC_CASES:
        with watch_calls(ast_facts.gpu_functions, ast_facts.gpu_decorator, ast_facts.import_aliases,
                         ast_facts.canonical_name) as called:
            got = answer(case["source"])
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva a lista de linhas."
        if isinstance(got, (str, bytes)) or not all(isinstance(x, int) and not isinstance(x, bool)
                                                     for x in _as_list(got)):
            return False, "devolva uma lista de números inteiros (as linhas), por exemplo `[5]` ou `[]`."
        got = list(got)
        if got == case["expected"]:
            continue
        for name, wrong in case["wrong"].items():
            if got == wrong:
                return False, _ASYNC_HINTS[name]
        if sorted(got) != got:
            return False, "devolva as linhas em ordem crescente."
        return False, ("num dos casos públicos a lista não confere. Dica: percorra a árvore com `ast.walk`, ache os "
                       "`ast.AsyncFunctionDef` e olhe o `decorator_list` de cada um.")
    return True, "correto!"


def _as_list(value):
    try:
        return list(value)
    except TypeError:
        return [None]
