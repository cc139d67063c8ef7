"""Regras sobre um arquivo Python (module_cuda, no_gpu_function, spaces_import_order, gpu_duration)."""

import ast

from .ast_facts import (
    assigned_names,
    canonical_name,
    cuda_call_reason,
    cuda_helper_functions,
    cuda_query_name,
    function_body_nodes,
    gpu_functions,
    has_duration,
    import_aliases,
    import_time_nodes,
    is_cuda_device,
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
    """Regra module_cuda: trabalho CUDA em código que roda na importação."""
    helpers = cuda_helper_functions(tree, aliases, module_names, gpu)
    findings, lines = [], set()
    for node in import_time_nodes(tree):
        reason = None
        if isinstance(node, ast.Call):
            reason = cuda_call_reason(node, module_names, aliases)
            if reason is None and isinstance(node.func, ast.Name) and node.func.id in helpers:
                line, why = helpers[node.func.id]
                reason = f"`{node.func.id}()`, que faz trabalho CUDA (linha {line}: {why})"
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                expr = item.context_expr
                if (isinstance(expr, ast.Call) and canonical_name(expr.func, aliases) == "torch.device"
                        and is_cuda_device(expr, module_names, aliases)):
                    reason = f"`with {source_of(expr)}:`"
        if reason and node.lineno not in lines:
            lines.add(node.lineno)
            findings.append(Finding("module_cuda", filename, node.lineno,
                                    f"{reason} no escopo do módulo. No ZeroGPU o processo principal não tem GPU: "
                                    "carregue/mova o modelo para a GPU dentro da função decorada com @spaces.GPU "
                                    "(ou deixe-o na CPU aqui e mova-o lá dentro)."))
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
        reason = cuda_query_name(node, aliases) or cuda_call_reason(node, module_names, aliases)
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


def python_facts(source: str, filename: str) -> tuple:
    """(achados das regras de arquivo, tem função @spaces.GPU?, usa spaces.aoti_*?) de um arquivo Python."""
    tree = parse_python(source, filename)
    aliases = import_aliases(tree)
    module_names = assigned_names(import_time_nodes(tree))
    gpu = gpu_functions(tree, aliases)
    findings = (check_module_cuda(tree, filename, aliases, module_names, gpu)
                + check_spaces_import(tree, filename, aliases, module_names, gpu)
                + check_gpu_duration(filename, aliases, gpu))
    uses_aoti = any((canonical_name(n, aliases) or "").startswith("spaces.aoti_")
                    for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute)))
    return findings, bool(gpu), uses_aoti


def no_gpu_function_finding(filename: str) -> Finding:
    return Finding("no_gpu_function", filename, 1,
                   "nenhuma função decorada com @spaces.GPU. Num Space ZeroGPU isso derruba a inicialização "
                   "('No @spaces.GPU function detected'): decore com @spaces.GPU a função que usa a GPU.")


def gpu_functions_use_cuda(source: str, filename: str = "app.py") -> bool:
    """Alguma função @spaces.GPU faz trabalho CUDA, direto ou chamando outra função do módulo?

    Serve para conferir que um app "consertado" ainda usa a GPU, em vez de só ter tirado o CUDA.
    """
    tree = parse_python(source, filename)
    aliases = import_aliases(tree)
    gpu = gpu_functions(tree, aliases)
    cuda_functions = cuda_helper_functions(tree, aliases, assigned_names(import_time_nodes(tree)), gpu={})
    return any(name in cuda_functions for name in gpu)


def lint_source(source: str, filename: str = "app.py") -> list:
    """Regras de código (module_cuda, no_gpu_function, spaces_import_order, gpu_duration) num arquivo só."""
    findings, has_gpu, _ = python_facts(source, filename)
    if not has_gpu:
        findings.append(no_gpu_function_finding(filename))
    return sorted(findings, key=lambda f: (f.line, f.rule))
