"""Regras sobre um arquivo Python (module_cuda, no_gpu_function, spaces_import_order, gpu_duration, gpu_lazy_load)."""

import ast

from .ast_facts import (
    assigned_names,
    canonical_name,
    cuda_helper_functions,
    cuda_placement_reason,
    cuda_query_name,
    function_body_nodes,
    gpu_functions,
    has_duration,
    helper_functions,
    import_aliases,
    import_time_nodes,
    loads_model,
    real_gpu_helper_functions,
    real_gpu_reason,
    source_of,
)
from .findings import EXIT_NOT_PYTHON, EXIT_SYNTAX, WARNING, Finding, LintInputError

# Argumentos que dizem quanto uma geração pode durar, e a partir de quanto ela é "longa" (heurística:
# a 20 tokens/s, 1.024 tokens já levam ~51 s, perto dos 60 s que o @spaces.GPU pede por padrão).
LONG_GENERATION = {"max_new_tokens": 1024, "max_length": 1024, "max_tokens": 1024, "num_inference_steps": 50}
DEFAULT_DURATION_S = 60  # spaces/zero/client.py: DEFAULT_SCHEDULE_DURATION


# ------------------------------------------------------------------ regras sobre um arquivo Python

def parse_python(source: str, filename: str) -> ast.Module:
    """ast.parse com erro de sintaxe vertido em LintInputError (mensagem em pt-BR, sem traceback)."""
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as exc:
        where = f"{filename}:{exc.lineno or 1}" + (f":{exc.offset}" if exc.offset else "")
        raise LintInputError(f"{where}: erro de sintaxe ({exc.msg}). O Python não consegue ler este arquivo; "
                             "corrija-o antes de analisar o Space.", EXIT_SYNTAX) from None
    except ValueError as exc:  # por exemplo, bytes nulos no arquivo
        raise LintInputError(f"{filename}: não é código Python válido ({exc}).", EXIT_NOT_PYTHON) from None


def check_module_cuda(tree, filename, aliases, module_names, gpu) -> list:
    """Regra module_cuda: no código que roda na importação, algo que precisa de uma GPU de verdade.

    Pôr o modelo em "cuda" no escopo do módulo NÃO é achado: no ZeroGPU o `spaces` emula esse posicionamento e o
    refaz na GPU de cada chamada (é o que a documentação recomenda). Achado é ler o estado da GPU, chamar o driver
    ou compilar com torch.compile, direto ou por uma função do módulo chamada na importação.
    """
    helpers = real_gpu_helper_functions(tree, aliases, gpu)
    findings, lines = [], set()
    for node in import_time_nodes(tree):
        reason = None
        if isinstance(node, ast.Call):
            reason = real_gpu_reason(node, aliases)
            if reason is None and isinstance(node.func, ast.Name) and node.func.id in helpers:
                line, why = helpers[node.func.id]
                reason = f"`{node.func.id}()`, que precisa de uma GPU de verdade (linha {line}: {why})"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if canonical_name(target, aliases) == "torch.compile":
                    reason = (f"`@{source_of(target)}` em `{node.name}`: o ZeroGPU não suporta torch.compile (JIT); "
                              "compile antes (AoT, `spaces.aoti_*`)")
        if reason and node.lineno not in lines:
            lines.add(node.lineno)
            findings.append(Finding("module_cuda", filename, node.lineno,
                                    f"no escopo do módulo, {reason}. Faça isso dentro da função decorada com "
                                    "@spaces.GPU, onde a GPU existe de verdade. (Pôr o modelo em \"cuda\" aqui "
                                    "pode: isso o `spaces` emula.)"))
    return findings


def check_spaces_import(tree, filename, aliases, module_names, gpu) -> list:
    """Regra spaces_import_order: `import spaces` antes de qualquer coisa que inicialize CUDA."""
    imports = [n for n in import_time_nodes(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
               and any(m == "spaces" or m.startswith("spaces.") for m in _imported_modules(n))]
    if not imports:
        if gpu:
            line = min(func.lineno for func, _ in gpu.values())
            return [Finding("spaces_import_order", filename, line,
                            "usa @spaces.GPU, mas o pacote `spaces` não é importado: ponha `import spaces` "
                            "na primeira linha do app.")]
        return []
    first_import = min(n.lineno for n in imports)
    for node in import_time_nodes(tree):
        if not isinstance(node, ast.Call) or node.lineno >= first_import:
            continue
        reason = (cuda_query_name(node, aliases) or cuda_placement_reason(node, module_names, aliases)
                  or real_gpu_reason(node, aliases))
        if reason:
            return [Finding("spaces_import_order", filename, first_import,
                            f"`import spaces` vem depois da linha {node.lineno}, onde {reason} já inicializa CUDA. "
                            "No ZeroGPU isso derruba o Space ('CUDA has been initialized before importing the "
                            "`spaces` package'): ponha `import spaces` antes de tudo.")]
    return []


def _imported_modules(node) -> list:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [node.module] if node.module and not node.level else []


def long_generation(func, aliases) -> tuple | None:
    """Primeira chamada no corpo com max_new_tokens/num_inference_steps grande ou vindo da entrada."""
    for node in function_body_nodes(func):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            limit = LONG_GENERATION.get(keyword.arg)
            if limit is None:
                continue
            value = keyword.value
            small = (isinstance(value, ast.Constant) and isinstance(value.value, (int, float))
                     and value.value < limit)
            if not small:
                return node.lineno, f"{keyword.arg}={source_of(value)}"
    return None


def check_gpu_duration(filename, aliases, gpu) -> list:
    """Regra gpu_duration (aviso): geração longa numa função @spaces.GPU sem `duration=`."""
    findings = []
    for name, (func, decorator) in sorted(gpu.items(), key=lambda item: item[1][0].lineno):
        if has_duration(decorator):
            continue
        found = long_generation(func, aliases)
        if found:
            line, what = found
            findings.append(Finding("gpu_duration", filename, line,
                                    f"`{name}` pede a GPU sem `duration=` (o padrão é {DEFAULT_DURATION_S} s) e gera "
                                    f"com {what}, que pode passar disso e ser abortado. Passe `duration=` a "
                                    "@spaces.GPU: um número de segundos, ou uma função dos mesmos argumentos que "
                                    "estima o tempo (durações menores também sobem na fila).", WARNING))
    return findings


def check_gpu_lazy_load(tree, filename, aliases, gpu) -> list:
    """Regra gpu_lazy_load (aviso): a função @spaces.GPU carrega o modelo (direto ou por uma função do módulo).

    A documentação do ZeroGPU desaconselha: as cópias para a GPU são otimizadas para o que foi posto em "cuda" na
    inicialização; carregar dentro da função gasta o tempo (e a cota) de GPU de cada processo novo.
    """
    loaders = helper_functions(tree, lambda call, names: "carrega pesos" if loads_model(call, aliases) else None,
                               skip=gpu)
    # nomes do módulo que guardam um modelo carregado (`model = AutoModel.from_pretrained(...)`)
    loaded = {name for name, value in assigned_names(import_time_nodes(tree)).items()
              if any(isinstance(n, ast.Call) and loads_model(n, aliases) for n in ast.walk(value))}
    findings = []
    for name, (func, _) in sorted(gpu.items(), key=lambda item: item[1][0].lineno):
        for node in function_body_nodes(func):
            if not isinstance(node, ast.Call):
                continue
            direct = loads_model(node, aliases)
            via = isinstance(node.func, ast.Name) and node.func.id in loaders
            moves = (isinstance(node.func, ast.Attribute) and node.func.attr in ("to", "cuda")
                     and isinstance(node.func.value, ast.Name) and node.func.value.id in loaded)
            if direct or via or moves:
                what = f"`{source_of(node.func)}(...)`" + ("" if not via else f" (que carrega o modelo, linha "
                                                                             f"{loaders[node.func.id][0]})")
                findings.append(Finding("gpu_lazy_load", filename, node.lineno,
                                        f"`{name}` (@spaces.GPU) carrega ou move o modelo com {what} a cada "
                                        "processo com GPU. A documentação do ZeroGPU desaconselha: carregue no "
                                        "escopo do módulo e ponha em \"cuda\" ali (o `spaces` emula e refaz a "
                                        "cópia, otimizada, na GPU de cada chamada).", WARNING))
                break
    return findings


def python_facts(source: str, filename: str) -> tuple:
    """(achados das regras de arquivo, tem função @spaces.GPU?, usa spaces.aoti_*?) de um arquivo Python."""
    tree = parse_python(source, filename)
    aliases = import_aliases(tree)
    module_names = assigned_names(import_time_nodes(tree))
    gpu = gpu_functions(tree, aliases)
    findings = (check_module_cuda(tree, filename, aliases, module_names, gpu)
                + check_spaces_import(tree, filename, aliases, module_names, gpu)
                + check_gpu_duration(filename, aliases, gpu)
                + check_gpu_lazy_load(tree, filename, aliases, gpu))
    uses_aoti = any((canonical_name(n, aliases) or "").startswith("spaces.aoti_")
                    for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute)))
    return findings, bool(gpu), uses_aoti


def no_gpu_function_finding(filename: str) -> Finding:
    return Finding("no_gpu_function", filename, 1,
                   "nenhuma função decorada com @spaces.GPU. Num Space ZeroGPU isso derruba a inicialização "
                   "('No @spaces.GPU function detected'): decore com @spaces.GPU a função que usa a GPU.")


def gpu_functions_use_cuda(source: str, filename: str = "app.py") -> bool:
    """Alguma função @spaces.GPU põe algo em CUDA, direto ou chamando outra função do módulo?"""
    tree = parse_python(source, filename)
    aliases = import_aliases(tree)
    gpu = gpu_functions(tree, aliases)
    cuda_functions = cuda_helper_functions(tree, aliases, assigned_names(import_time_nodes(tree)), gpu={})
    return any(name in cuda_functions for name in gpu)


def module_cuda_placements(source: str, filename: str = "app.py") -> list:
    """Linhas em que o código da importação põe algo em "cuda" (emulado pelo `spaces` no ZeroGPU).

    Conta as chamadas diretas e as funções do módulo chamadas na importação que fazem isso.
    """
    tree = parse_python(source, filename)
    aliases = import_aliases(tree)
    module_names = assigned_names(import_time_nodes(tree))
    helpers = cuda_helper_functions(tree, aliases, module_names, gpu_functions(tree, aliases))
    lines = []
    for node in import_time_nodes(tree):
        if isinstance(node, ast.Call) and (cuda_placement_reason(node, module_names, aliases)
                                           or (isinstance(node.func, ast.Name) and node.func.id in helpers)):
            canonical = canonical_name(node.func, aliases) or ""
            if not canonical.startswith("torch.cuda."):
                lines.append(node.lineno)
    return sorted(set(lines))


def lint_source(source: str, filename: str = "app.py") -> list:
    """Regras de código (module_cuda, no_gpu_function, spaces_import_order, gpu_duration, gpu_lazy_load) num arquivo."""
    findings, has_gpu, _ = python_facts(source, filename)
    if not has_gpu:
        findings.append(no_gpu_function_finding(filename))
    return sorted(findings, key=lambda f: (f.line, f.rule))
