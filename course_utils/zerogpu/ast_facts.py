"""O que a AST de um app diz, sem executar nada: nomes e imports, o que roda na importação, o que é CUDA
e quais funções pedem a GPU com `@spaces.GPU`.

Duas famílias de "CUDA" importam no ZeroGPU (spaces 0.51.3, `spaces/zero/torch/patching.py`):
- **posicionamento** (`.to("cuda")`, `.cuda()`, `device="cuda"`, `device_map`): depois do `import spaces`, o
  processo principal roda num modo que *emula* o CUDA; o pacote registra cada tensor posto em "cuda" e o copia para a
  GPU de verdade no processo que atende cada chamada. É o que a documentação recomenda, no escopo do módulo;
- **o que precisa de uma GPU de verdade**: ler o estado da GPU (`torch.cuda.get_device_properties`, `mem_get_info`,
  `memory_allocated`..., que ali respondem valores fixos do pacote, não os da fatia que a chamada recebe), chamar o
  driver (`Stream`, `set_device`, `empty_cache`...) e compilar com `torch.compile` (JIT, não suportado). A emulação
  troca `torch.cuda.synchronize` por uma função que não faz nada e `current_device` por `lambda: 0`: as duas são
  inofensivas no módulo.
"""

import ast

# torch.cuda.* que a emulação do `spaces` responde de um jeito útil no processo principal (is_available -> True,
# device_count -> 1) ou que não tocam no driver (sementes ficam na fila até o CUDA iniciar). Antes do
# `import spaces` elas já chamam o driver (no PyTorch 2.x, is_available usa cudaGetDeviceCount).
CUDA_QUERIES = {"is_available", "device_count", "is_bf16_supported"}
CUDA_HARMLESS = CUDA_QUERIES | {"manual_seed", "manual_seed_all", "synchronize", "current_device"}
# torch.cuda.* que leem o estado da GPU: no processo principal a emulação devolve constantes do pacote
# (spaces/zero/configs.json: o modelo e a memória da GPU inteira), não a GPU que a chamada vai receber.
CUDA_STATE_READS = {"get_device_properties", "get_device_name", "get_device_capability", "mem_get_info",
                    "memory_allocated", "max_memory_allocated", "memory_reserved", "max_memory_reserved",
                    "memory_stats", "memory_stats_as_nested_dict", "memory_summary", "utilization",
                    "temperature", "power_draw", "clock_rate", "list_gpu_processes"}
# device_map que o accelerate espalha pelas GPUs.
GPU_DEVICE_MAPS = {"auto", "balanced", "balanced_low_0", "sequential"}
# Chamadas que carregam pesos (para a regra gpu_lazy_load).
MODEL_LOADERS = {"from_pretrained", "pipeline", "from_single_file"}


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


def cuda_placement_reason(call: ast.Call, names: dict, aliases: dict) -> str | None:
    """Se a chamada põe tensores em CUDA (ou chama `torch.cuda.*`), diz qual (para a mensagem); senão None.

    Antes do `import spaces` isso inicializa o CUDA de verdade; depois dele, no ZeroGPU, é emulado.
    """
    func = call.func
    canonical = canonical_name(func, aliases) or ""
    if canonical.startswith("torch.cuda."):
        attr = canonical.split(".")[-1]
        return None if attr in CUDA_HARMLESS else f"`{source_of(func)}()`"
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


def real_gpu_reason(call: ast.Call, aliases: dict) -> str | None:
    """Se a chamada precisa de uma GPU de verdade (não emulada), diz por quê; senão None.

    `torch.cuda.*` que lê o estado da GPU ou chama o driver, e `torch.compile` / `modulo.compile()`.
    """
    func = call.func
    canonical = canonical_name(func, aliases) or ""
    if canonical.startswith("torch.cuda."):
        attr = canonical.split(".")[-1]
        if attr in CUDA_HARMLESS:
            return None
        if attr in CUDA_STATE_READS:
            return (f"`{source_of(func)}()` lê o estado da GPU, mas o processo principal não tem GPU: ali o `spaces` "
                    "responde valores fixos do pacote (o modelo e a memória da GPU inteira), não os da GPU que a "
                    "chamada vai receber")
        return f"`{source_of(func)}()` chama o driver CUDA, que o processo principal não tem"
    if canonical == "torch.compile" or (isinstance(func, ast.Attribute) and func.attr == "compile"
                                        and canonical.split(".")[0] not in aliases):
        return (f"`{source_of(func)}` compila na hora (JIT) para a GPU, e o ZeroGPU não suporta `torch.compile`: "
                "compile antes (AoT, `spaces.aoti_*`)")
    return None


def loads_model(call: ast.Call, aliases: dict) -> bool:
    """`X.from_pretrained(...)`, `pipeline(...)`: a chamada carrega pesos."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else (canonical_name(func, aliases) or "").split(".")[-1]
    return name in MODEL_LOADERS


def cuda_query_name(call: ast.Call, aliases: dict) -> str | None:
    """`torch.cuda.is_available()`/`device_count()`: consultas que, antes do `import spaces`, já chamam o driver."""
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


def helper_functions(tree: ast.Module, reason, skip=()) -> dict:
    """Funções do módulo (menos as de `skip`) com alguma chamada para a qual `reason(call, names)` dá um motivo,
    direta ou indiretamente (chamando outra dessas funções). Nome -> (linha, motivo)."""
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    helpers = {}
    for name, func in functions.items():
        if name in skip:
            continue
        names = assigned_names(function_body_nodes(func))
        for node in function_body_nodes(func):
            if isinstance(node, ast.Call) and (why := reason(node, names)):
                helpers[name] = (node.lineno, why)
                break
    changed = True
    while changed:  # quem chama uma dessas funções também conta
        changed = False
        for name, func in functions.items():
            if name in helpers or name in skip:
                continue
            for node in function_body_nodes(func):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
                    helpers[name] = (node.lineno, f"chama `{node.func.id}()`")
                    changed = True
                    break
    return helpers


def cuda_helper_functions(tree: ast.Module, aliases: dict, module_names: dict, gpu: dict) -> dict:
    """Funções do módulo (menos as de `gpu`) que põem algo em CUDA, direta ou indiretamente. Nome -> (linha, motivo)."""
    return helper_functions(tree, lambda call, names: cuda_placement_reason(call, {**module_names, **names}, aliases),
                            skip=gpu)


def real_gpu_helper_functions(tree: ast.Module, aliases: dict, gpu: dict) -> dict:
    """Funções do módulo (menos as de `gpu`) que precisam de uma GPU de verdade. Nome -> (linha, motivo)."""
    return helper_functions(tree, lambda call, names: real_gpu_reason(call, aliases), skip=gpu)
