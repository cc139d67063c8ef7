"""Linter de Spaces ZeroGPU: análise estática (AST, sem executar nada) de uma pasta de Space.

    python -m course_utils.zerogpu lint PASTA_DO_SPACE   (ou um arquivo .py)

No ZeroGPU o processo principal do Space roda sem GPU; uma GPU é emprestada a cada chamada de uma
função decorada com `@spaces.GPU`, num processo filho. Daí as regras (nome -> o que acusa):
- `module_cuda`: trabalho CUDA no escopo do módulo: `.cuda()`, `.to("cuda")`, `device="cuda"` ou
  `device=0`, `device_map` para a GPU, chamadas `torch.cuda.*`, funções que fazem isso;
- `no_gpu_function`: nenhuma função decorada com `@spaces.GPU`;
- `spaces_import_order`: `import spaces` depois de algo que já inicializou CUDA (ou ausente);
- `gpu_duration` (aviso): geração possivelmente longa numa função `@spaces.GPU` sem `duration=`;
- `requirements_torch`: `requirements.txt` ausente, sem torch, com torch < 2.1 ou só-CPU, ou < 2.8 com AoT;
- `gradio_version`: gradio < 4 (`sdk_version` do README ou `requirements.txt`);
- `readme_front_matter`: README.md sem front matter YAML válido (sdk, sdk_version, app_file, python_version).

Códigos de saída: 0 sem erros (avisos só contam com --strict), 1 com erros, 2 uso errado da linha de comando,
3 caminho inexistente, 4 erro de sintaxe num .py, 5 arquivo que não é Python (ou ilegível),
6 pasta vazia ou sem nenhum .py.
"""

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

RULES = {
    "module_cuda": "trabalho CUDA no escopo do módulo (fora de uma função @spaces.GPU)",
    "no_gpu_function": "nenhuma função decorada com @spaces.GPU",
    "spaces_import_order": "`import spaces` depois de inicializar CUDA (ou ausente)",
    "gpu_duration": "geração possivelmente longa sem `duration=` no @spaces.GPU",
    "requirements_torch": "requirements.txt sem torch ou com versão incompatível",
    "gradio_version": "gradio anterior ao 4 (o ZeroGPU exige Gradio 4+)",
    "readme_front_matter": "README.md sem front matter YAML válido",
}

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_NOT_FOUND, EXIT_SYNTAX, EXIT_NOT_PYTHON, EXIT_EMPTY = 3, 4, 5, 6

ERROR, WARNING = "erro", "aviso"

# torch.cuda.* que só consultam o driver: o `spaces` os substitui depois de importado, mas antes
# disso eles já chamam cuInit (torch 2.13: is_available usa cudaGetDeviceCount).
CUDA_QUERIES = {"is_available", "device_count"}
# device_map que o accelerate espalha pelas GPUs (e que consultam a memória da GPU ao carregar).
GPU_DEVICE_MAPS = {"auto", "balanced", "balanced_low_0", "sequential"}
# Argumentos que dizem quanto uma geração pode durar, e a partir de quanto ela é "longa" (heurística:
# a 20 tokens/s, 1.024 tokens já levam ~51 s, perto dos 60 s que o @spaces.GPU pede por padrão).
LONG_GENERATION = {"max_new_tokens": 1024, "max_length": 1024, "max_tokens": 1024, "num_inference_steps": 50}
DEFAULT_DURATION_S = 60  # spaces/zero/client.py: DEFAULT_SCHEDULE_DURATION
MIN_TORCH, MIN_TORCH_AOTI, MIN_GRADIO = "2.1", "2.8", "4"
# Versões usadas para decidir se um especificador (==, <, ~=, ...) admite alguma versão boa.
TORCH_RELEASES = ["2.1.0", "2.1.2", "2.2.2", "2.3.1", "2.4.1", "2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1",
                  "2.10.0", "2.11.0", "2.12.0", "2.13.0", "2.14.1", "999"]
GRADIO_RELEASES = ["4.0.0", "4.44.1", "5.0.0", "5.49.1", "6.0.0", "6.31.0", "999"]
SKIPPED_DIRS = {"__pycache__", "venv", ".venv", "node_modules"}


@dataclass(frozen=True)
class Finding:
    """Um problema encontrado: regra, arquivo (relativo à pasta do Space), linha e mensagem em pt-BR."""

    rule: str
    path: str
    line: int
    message: str
    severity: str = ERROR

    def __str__(self):
        return f"{self.path}:{self.line}: {self.severity} [{self.rule}] {self.message}"


class LintInputError(Exception):
    """Entrada que o linter não consegue analisar; `exit_code` diz qual caso é."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# ------------------------------------------------------------------ nomes e imports

def import_aliases(tree: ast.Module) -> dict:
    """Nome local -> nome canônico, a partir dos imports (`import torch as t` dá {"t": "torch"})."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def dotted_name(node) -> str | None:
    """`torch.cuda.empty_cache` -> "torch.cuda.empty_cache"; None se não for nome com pontos."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def canonical_name(node, aliases: dict) -> str | None:
    """Nome com pontos com o primeiro pedaço trocado pelo import (`t.cuda` -> `torch.cuda`)."""
    name = dotted_name(node)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    head = aliases.get(head, head)
    return f"{head}.{rest}" if rest else head


def source_of(node) -> str:
    """O trecho de código de um nó, curto o bastante para uma mensagem."""
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ o que roda na importação

def import_time_nodes(tree: ast.Module):
    """Nós executados quando o módulo é importado, em ordem de código.

    Entra em if/for/while/with/try e em corpos de classe; não entra no corpo de funções nem de
    lambdas (mas visita decoradores e valores padrão dos argumentos, que rodam na importação).
    """
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            children = [*getattr(node, "decorator_list", []), *args.defaults, *[d for d in args.kw_defaults if d]]
        else:
            children = list(ast.iter_child_nodes(node))
        stack.extend(reversed(children))


def function_body_nodes(func):
    """Todos os nós do corpo de uma função (inclusive funções aninhadas)."""
    for stmt in func.body:
        yield from ast.walk(stmt)


def assigned_names(nodes) -> dict:
    """Nome -> expressão atribuída, para atribuições simples (`device = "cuda"`)."""
    names = {}
    for node in nodes:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names[node.target.id] = node.value
    return names


# ------------------------------------------------------------------ o que é "CUDA"

def is_cuda_device(node, names: dict, aliases: dict, _seen=None) -> bool:
    """A expressão pode valer um dispositivo CUDA? ("cuda", "cuda:0", 0, torch.device("cuda"), x if c else "cuda")."""
    seen = _seen or set()
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return node.value.strip().lower().startswith("cuda")
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, ast.Name) and node.id in names and node.id not in seen:
        return is_cuda_device(names[node.id], names, aliases, seen | {node.id})
    if isinstance(node, ast.IfExp):
        return any(is_cuda_device(n, names, aliases, seen) for n in (node.body, node.orelse))
    if isinstance(node, ast.BoolOp):
        return any(is_cuda_device(n, names, aliases, seen) for n in node.values)
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        return isinstance(first, ast.Constant) and str(first.value).lower().startswith("cuda")
    if isinstance(node, ast.Call) and canonical_name(node.func, aliases) == "torch.device" and node.args:
        return is_cuda_device(node.args[0], names, aliases, seen)
    return False


def is_gpu_device_map(node, names: dict, aliases: dict) -> bool:
    """`device_map` que põe pesos na GPU: "auto"/"balanced"/..., "cuda", 0, ou um dict com algum desses."""
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in GPU_DEVICE_MAPS:
        return True
    if isinstance(node, ast.Dict):
        return any(v is not None and is_cuda_device(v, names, aliases) for v in node.values)
    return is_cuda_device(node, names, aliases)


def cuda_call_reason(call: ast.Call, names: dict, aliases: dict) -> str | None:
    """Se a chamada faz trabalho CUDA, diz qual (para a mensagem); senão None."""
    func = call.func
    canonical = canonical_name(func, aliases) or ""
    if canonical.startswith("torch.cuda."):
        attr = canonical.split(".")[-1]
        return None if attr in CUDA_QUERIES else f"`{source_of(func)}()`"
    if isinstance(func, ast.Attribute) and func.attr == "cuda":
        return f"`{source_of(call)}`"
    if isinstance(func, ast.Attribute) and func.attr == "to":
        targets = [*call.args, *[k.value for k in call.keywords if k.arg == "device"]]
        if any(is_cuda_device(t, names, aliases) for t in targets):
            return f"`{source_of(call)}`"
    if canonical == "torch.set_default_device" and call.args and is_cuda_device(call.args[0], names, aliases):
        return f"`{source_of(call)}`"
    for keyword in call.keywords:
        if keyword.arg == "device" and is_cuda_device(keyword.value, names, aliases):
            return f"`{source_of(func)}(..., device={source_of(keyword.value)})`"
        if keyword.arg == "device_map" and is_gpu_device_map(keyword.value, names, aliases):
            return f"`{source_of(func)}(..., device_map={source_of(keyword.value)})`"
    return None


def cuda_query_name(call: ast.Call, aliases: dict) -> str | None:
    """`torch.cuda.is_available()`/`device_count()`: consultas que já chamam o driver."""
    canonical = canonical_name(call.func, aliases) or ""
    if canonical.startswith("torch.cuda.") and canonical.split(".")[-1] in CUDA_QUERIES:
        return f"`{source_of(call.func)}()`"
    return None


# ------------------------------------------------------------------ @spaces.GPU

def gpu_decorator(decorator, aliases: dict):
    """Se o decorador é `@spaces.GPU` ou `@spaces.GPU(...)`, devolve-o (nó); senão None."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return decorator if canonical_name(target, aliases) == "spaces.GPU" else None


def has_duration(decorator) -> bool:
    """`@spaces.GPU(duration=...)` ou `@spaces.GPU(45)`: a duração foi dada."""
    if not isinstance(decorator, ast.Call):
        return False
    if any(k.arg == "duration" for k in decorator.keywords):
        return True
    return any(not (isinstance(a, ast.Constant) and isinstance(a.value, str)) for a in decorator.args)


def gpu_functions(tree: ast.Module, aliases: dict) -> dict:
    """Nome -> (nó da função, nó do decorador) para cada função que roda com GPU.

    Vale `@spaces.GPU` (com ou sem argumentos) e o embrulho `spaces.GPU(fn)` / `spaces.GPU(duration=...)(fn)`.
    """
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    found = {}
    for func in functions.values():
        for decorator in func.decorator_list:
            if gpu_decorator(decorator, aliases) is not None:
                found[func.name] = (func, decorator)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Name):
            continue
        wrapper = node.func
        if gpu_decorator(wrapper, aliases) is not None and node.args[0].id in functions:
            if isinstance(wrapper, ast.Call):  # spaces.GPU(duration=...)(fn)
                decorator = wrapper
            else:  # spaces.GPU(fn, duration=...): os argumentos estão na própria chamada
                decorator = ast.Call(func=wrapper, args=node.args[1:], keywords=node.keywords)
            found[node.args[0].id] = (functions[node.args[0].id], decorator)
    return found


def cuda_helper_functions(tree: ast.Module, aliases: dict, module_names: dict, gpu: dict) -> dict:
    """Funções do módulo (menos as de `gpu`) que fazem trabalho CUDA, direta ou indiretamente.

    Nome -> (linha, motivo). Chamá-las no escopo do módulo é trabalho CUDA no escopo do módulo.
    """
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    helpers = {}
    for name, func in functions.items():
        if name in gpu:
            continue
        names = {**module_names, **assigned_names(function_body_nodes(func))}
        for node in function_body_nodes(func):
            if isinstance(node, ast.Call) and (reason := cuda_call_reason(node, names, aliases)):
                helpers[name] = (node.lineno, reason)
                break
    changed = True
    while changed:  # quem chama uma função CUDA também faz trabalho CUDA
        changed = False
        for name, func in functions.items():
            if name in helpers or name in gpu:
                continue
            for node in function_body_nodes(func):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
                    helpers[name] = (node.lineno, f"chama `{node.func.id}()`")
                    changed = True
                    break
    return helpers


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


# ------------------------------------------------------------------ requirements.txt

def _spec_allows(specifier, candidates, minimum: str) -> bool:
    """O especificador admite alguma versão >= minimum? (testa candidatas conhecidas e as citadas nele)."""
    from packaging.version import InvalidVersion, Version

    pool = set(candidates)
    for spec in specifier:
        pool.add(spec.version.replace(".*", ".0"))
    versions = []
    for text in pool:
        try:
            versions.append(Version(text))
        except InvalidVersion:
            continue
    return any(v >= Version(minimum) and specifier.contains(v, prereleases=True) for v in versions)


def lint_requirements(text: str, filename: str = "requirements.txt", uses_aoti: bool = False) -> list:
    """Regras requirements_torch e gradio_version sobre o texto de um requirements.txt."""
    from packaging.requirements import InvalidRequirement, Requirement

    findings, torch_line = [], None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            if "index-url" in line and "/whl/cpu" in line:
                findings.append(Finding("requirements_torch", filename, lineno,
                                        "índice de wheels só-CPU do PyTorch: no ZeroGPU o torch precisa ter CUDA. "
                                        "Tire esta linha (o torch do PyPI já vem com CUDA)."))
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        name = req.name.lower().replace("_", "-")
        if name == "torch":
            torch_line = lineno
            findings += _torch_pin_findings(req, filename, lineno, uses_aoti)
        elif name == "gradio" and req.specifier and not _spec_allows(req.specifier, GRADIO_RELEASES, MIN_GRADIO):
            findings.append(Finding("gradio_version", filename, lineno,
                                    f"`{line}` só admite gradio < {MIN_GRADIO}; o ZeroGPU exige Gradio 4+. "
                                    "Atualize o pino (e o sdk_version do README)."))
    if torch_line is None:
        findings.append(Finding("requirements_torch", filename, 1,
                                "o requirements.txt não lista o torch: um Space ZeroGPU precisa do PyTorch "
                                "(com CUDA, o do PyPI). Acrescente uma linha `torch==<versão>`."))
    return findings


def _torch_pin_findings(req, filename: str, lineno: int, uses_aoti: bool) -> list:
    if req.url:
        return []
    if any("+cpu" in spec.version for spec in req.specifier):
        return [Finding("requirements_torch", filename, lineno,
                        f"`{req}` é uma build só-CPU do torch; no ZeroGPU use a do PyPI (com CUDA).")]
    if req.specifier and not _spec_allows(req.specifier, TORCH_RELEASES, MIN_TORCH):
        return [Finding("requirements_torch", filename, lineno,
                        f"`{req}` só admite torch < {MIN_TORCH}; o ZeroGPU suporta torch {MIN_TORCH} ou mais novo.")]
    if uses_aoti and req.specifier and not _spec_allows(req.specifier, TORCH_RELEASES, MIN_TORCH_AOTI):
        return [Finding("requirements_torch", filename, lineno,
                        f"o código usa spaces.aoti_*, que exige torch >= {MIN_TORCH_AOTI}, mas `{req}` não admite.")]
    return []


# ------------------------------------------------------------------ README.md (front matter)

def _front_matter(text: str):
    """(texto YAML, linha onde ele começa) ou None se o README não começa com um bloco `---`."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "\n".join(lines[1:i]), 2
    return None


def lint_readme(text: str, filename: str = "README.md", folder: Path | None = None) -> list:
    """Regras readme_front_matter e gradio_version sobre o README.md de um Space."""
    import yaml

    def finding(line, message, rule="readme_front_matter"):
        return Finding(rule, filename, line, message)

    block = _front_matter(text)
    if block is None:
        return [finding(1, "o README.md não começa com o front matter YAML entre linhas `---` (sdk: gradio, "
                           "sdk_version, app_file, python_version); sem ele o Hub não sabe como rodar o Space.")]
    yaml_text, first_line = block
    try:
        root = yaml.compose(yaml_text)
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + (mark.line if mark else 0)
        problem = getattr(exc, "problem", None) or "YAML inválido"
        return [finding(line, f"front matter com YAML inválido ({problem}); confira a indentação e os `:`.")]
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        return [finding(first_line, "o front matter deve ser um mapeamento `chave: valor`.")]
    key_lines = {k.value: first_line + k.start_mark.line for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
    return _front_matter_findings(data, key_lines, first_line, folder, finding)


def _front_matter_findings(data, key_lines, first_line, folder, finding) -> list:
    """Chaves obrigatórias e valores que o Hub não aceita (ou que o YAML lê diferente do esperado)."""
    def line(key):
        return key_lines.get(key, first_line)

    out = [finding(first_line, f"falta `{key}` no front matter.")
           for key in ("sdk", "sdk_version", "app_file") if key not in data]
    if "sdk" in data and data["sdk"] != "gradio":
        out.append(finding(line("sdk"), f"sdk: {data['sdk']!r}; o ZeroGPU só funciona com `sdk: gradio`."))
    if "sdk_version" in data:
        out += _sdk_version_findings(data["sdk_version"], line("sdk_version"), finding)
    if "app_file" in data and folder is not None and not (Path(folder) / str(data["app_file"])).is_file():
        out.append(finding(line("app_file"), f"app_file {data['app_file']!r} não existe na pasta do Space."))
    if "python_version" in data and not isinstance(data["python_version"], str):
        out.append(finding(line("python_version"),
                           f"python_version sem aspas virou o número {data['python_version']!r} no YAML "
                           "(3.10 vira 3.1): escreva entre aspas, como \"3.10\"."))
    return out


def _sdk_version_findings(version, line: int, finding) -> list:
    from packaging.version import InvalidVersion, Version

    if not isinstance(version, str):
        return [finding(line, f"sdk_version {version!r} não é texto: escreva a versão completa, como \"5.49.1\".")]
    try:
        parsed = Version(version)
    except InvalidVersion:
        return [finding(line, f"sdk_version {version!r} não é uma versão válida do Gradio.")]
    if parsed < Version(MIN_GRADIO):
        return [finding(line, f"sdk_version {version}: o ZeroGPU exige Gradio 4+ (\"ZeroGPU is only compatible "
                              "with Gradio 4+\"). Suba o sdk_version.", "gradio_version")]
    return []


# ------------------------------------------------------------------ pasta do Space

def _read_text(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LintInputError(f"{shown}: não é texto UTF-8 (é um arquivo binário?).", EXIT_NOT_PYTHON) from None
    except OSError as exc:
        raise LintInputError(f"{shown}: não consegui ler o arquivo ({exc.strerror}).", EXIT_NOT_PYTHON) from None


def python_files(folder: Path) -> list:
    """Os .py da pasta do Space, recursivamente, sem pastas ocultas, de cache ou de ambientes virtuais."""
    files = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).parts[:-1]
        if any(p.startswith(".") or p in SKIPPED_DIRS for p in parts):
            continue
        files.append(path)
    return files


def lint_folder(folder: Path) -> list:
    """Todas as regras sobre uma pasta de Space (app, requirements.txt e README.md)."""
    if not any(folder.iterdir()):
        raise LintInputError(f"a pasta {folder} está vazia: nada para analisar. Passe a pasta do Space "
                             "(com app.py, requirements.txt e README.md).", EXIT_EMPTY)
    sources = python_files(folder)
    if not sources:
        raise LintInputError(f"a pasta {folder} não tem nenhum arquivo .py: não parece um Space Gradio.", EXIT_EMPTY)
    findings, has_gpu, uses_aoti = [], False, False
    for path in sources:
        shown = path.relative_to(folder).as_posix()
        file_findings, file_gpu, file_aoti = python_facts(_read_text(path, shown), shown)
        findings += file_findings
        has_gpu, uses_aoti = has_gpu or file_gpu, uses_aoti or file_aoti
    readme = folder / "README.md"
    app_file = "app.py"
    if readme.is_file():
        readme_text = _read_text(readme, "README.md")
        findings += lint_readme(readme_text, "README.md", folder)
        block = _front_matter(readme_text)
        app_file = _app_file(block[0]) if block else app_file
    else:
        findings.append(Finding("readme_front_matter", "README.md", 1,
                                "a pasta não tem README.md: é nele que vai o front matter YAML do Space."))
    if not has_gpu:
        findings.append(no_gpu_function_finding(app_file))
    requirements = folder / "requirements.txt"
    if requirements.is_file():
        findings += lint_requirements(_read_text(requirements, "requirements.txt"), "requirements.txt", uses_aoti)
    else:
        findings.append(Finding("requirements_torch", "requirements.txt", 1,
                                "a pasta não tem requirements.txt: o Space precisa dele para instalar o torch."))
    return sorted(findings, key=lambda f: (f.path, f.line, f.rule))


def _app_file(yaml_text: str) -> str:
    import yaml

    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError:
        return "app.py"
    return str(data.get("app_file", "app.py")) if isinstance(data, dict) else "app.py"


def lint_path(path) -> list:
    """Analisa uma pasta de Space ou um arquivo .py; devolve a lista de achados (Finding).

    Levanta LintInputError (com a mensagem em pt-BR e o código de saída) para entradas que não dá
    para analisar: caminho inexistente, erro de sintaxe, arquivo que não é Python, pasta vazia.
    """
    path = Path(path)
    if not path.exists():
        raise LintInputError(f"o caminho {str(path)!r} não existe. Passe a pasta do Space ou um arquivo .py.",
                             EXIT_NOT_FOUND)
    if path.is_dir():
        return lint_folder(path)
    if path.suffix != ".py":
        raise LintInputError(f"{path.name} não é um arquivo Python (.py). Passe a pasta do Space inteira para "
                             "conferir também requirements.txt e README.md.", EXIT_NOT_PYTHON)
    return lint_source(_read_text(path, path.name), path.name)


# ------------------------------------------------------------------ linha de comando

def format_report(findings: list, target: str = "") -> str:
    """Um achado por linha (arquivo:linha) e um resumo no fim, em pt-BR."""
    errors = sum(f.severity == ERROR for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return f"Nenhum problema encontrado{' em ' + target if target else ''}."
    lines = [str(f) for f in findings]
    lines.append(f"{errors} erro(s), {warnings} aviso(s).")
    return "\n".join(lines)


def exit_code(findings: list, strict: bool = False) -> int:
    """1 se houver algum erro (com strict=True, também algum aviso); 0 caso contrário."""
    failing = findings if strict else [f for f in findings if f.severity == ERROR]
    return EXIT_FINDINGS if failing else EXIT_OK


# Mensagens do argparse que aparecem no uso errado mais comum, em pt-BR.
_ARGPARSE_PT = {
    "the following arguments are required": "faltam os argumentos",
    "invalid choice": "opção inválida",
    "unrecognized arguments": "argumentos não reconhecidos",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        for english, portuguese in _ARGPARSE_PT.items():
            message = message.replace(english, portuguese)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"erro de uso: {message}\n")


def main(argv=None) -> int:
    parser = _Parser(prog="python -m course_utils.zerogpu",
                     description="Confere uma pasta de Space (ou um app.py) contra as regras do ZeroGPU.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="lint")
    lint = sub.add_parser("lint", help="analisa a pasta do Space (ou um arquivo .py)")
    lint.add_argument("path", metavar="CAMINHO", help="pasta do Space ou arquivo .py")
    lint.add_argument("--strict", action="store_true", help="avisos também fazem o código de saída ser 1")
    args = parser.parse_args(argv)
    try:
        findings = lint_path(args.path)
    except LintInputError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_report(findings, args.path))
    return exit_code(findings, args.strict)


if __name__ == "__main__":
    sys.exit(main())
