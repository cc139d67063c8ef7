"""Compilação antecipada (AoT: `torch.export` + AOTInductor) num processo filho, do jeito que o ZeroGPU a usa.

O filho compila, carrega e chama o pacote uma vez: se o compilador ou o driver derrubarem o processo, só o filho
morre, e o erro diz em que etapa foi. Só depois disso o pacote é carregado no processo do notebook.
"""

import subprocess
import sys
from pathlib import Path

import torch

_COMPILE_CHILD = """
import sys, time, torch
start = time.perf_counter()
exported = torch.export.load(sys.argv[1])
torch._inductor.aoti_compile_and_package(exported, package_path=sys.argv[2])
print(f"compilado {time.perf_counter() - start:.3f}", flush=True)
compiled = torch._inductor.aoti_load_package(sys.argv[2])
with torch.no_grad():
    compiled(torch.load(sys.argv[3]))
print("carregado", flush=True)
"""

# O caminho do próprio `spaces`: capturar os argumentos, exportar, compilar e trocar o forward do módulo.
_SPACES_CHILD = """
import sys, time, torch
import spaces
module = torch.export.load(sys.argv[1]).module()
example = torch.load(sys.argv[2])
with torch.no_grad():
    reference = module(example)
with spaces.aoti_capture(module) as call:
    module(example)
print("capturado", flush=True)
exported = torch.export.export(module, args=call.args, kwargs=call.kwargs)
start = time.perf_counter()
compiled = spaces.aoti_compile(exported)
print(f"compilado {time.perf_counter() - start:.3f}", flush=True)
spaces.aoti_apply(compiled, module)
with torch.no_grad():
    diff = (module(example) - reference).abs().max().item()
print(f"diferenca {diff:.3e}", flush=True)
"""


class AotError(RuntimeError):
    """A compilação AoT falhou; a mensagem diz em que etapa e como o processo filho terminou."""


def _run_child(script: str, args: list, stages: list) -> list:
    child = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                           timeout=900)
    words = child.stdout.split()
    if child.returncode != 0:
        done = [s for s in stages if s in words]
        stage = f"depois de '{done[-1]}'" if done else f"antes de '{stages[0]}'"
        died = (f"o processo morreu com o sinal {-child.returncode}" if child.returncode < 0
                else f"código de saída {child.returncode}")
        errors = [line.strip() for line in (child.stderr or "").splitlines() if "Error" in line][-1:]
        raise AotError(f"{died} {stage}" + (f" ({errors[0][:200]})" if errors else ""))
    return words


def _export(block, example, work_dir: Path) -> tuple:
    with torch.no_grad():
        exported = torch.export.export(block, (example,))
    program, sample = work_dir / "bloco_exportado.pt2", work_dir / "exemplo.pt"
    torch.export.save(exported, program)
    torch.save(example, sample)
    return program, sample


def compile_aot(block, example, work_dir) -> tuple:
    """(módulo compilado carregado aqui, segundos de export+compilação no filho, caminho do pacote .pt2).

    Levanta AotError se o filho falhar (na compilação, no carregamento ou na primeira chamada).
    """
    work_dir = Path(work_dir)
    program, sample = _export(block, example, work_dir)
    package = work_dir / f"bloco_{example.device.type}.pt2"
    words = _run_child(_COMPILE_CHILD, [program, package, sample], ["compilado", "carregado"])
    seconds = float(words[words.index("compilado") + 1])
    return torch._inductor.aoti_load_package(str(package)), seconds, package


def spaces_aoti_in_child(block, example, work_dir) -> dict:
    """Roda spaces.aoti_capture/aoti_compile/aoti_apply num filho; devolve compile_s e max_diff para o eager.

    O `spaces` 0.51.3 só importa o AoT com um torch compilado com CUDA (`zero/torch/static.py` lê
    `torch.version.cuda`); com um torch só-CPU, a importação falha e isto levanta AotError.
    """
    program, sample = _export(block, example, Path(work_dir))
    words = _run_child(_SPACES_CHILD, [program, sample], ["capturado", "compilado", "diferenca"])
    return {"compile_s": float(words[words.index("compilado") + 1]),
            "max_diff": float(words[words.index("diferenca") + 1])}
