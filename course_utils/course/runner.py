"""Executa os notebooks do curso com papermill, num perfil de hardware, e guarda o resumo.

    python -m course_utils.course run --profile offline            # `make course`: build/
    python -m course_utils.course run --profile gpu                # GPU de verdade: results/gpu/
    python -m course_utils.course run --profile t4 --only 08_colab_7b
    python -m course_utils.course run --profile offline --smoke    # cargas pequenas (SMOKE=True)

Perfis:
- `offline`: sem o Hub (HF_HUB_OFFLINE=1), DEVICE="auto"; escreve `build/` (não versionado).
- `gpu`: DEVICE="cuda" numa GPU qualquer; escreve `results/gpu/` (evidência versionada).
- `t4`: uma GPU grande fazendo as vezes da T4 do Colab, em memória e tipos (não em velocidade): cada kernel limita a
  memória CUDA a 15 GiB (`torch.cuda.set_per_process_memory_fraction`, aplicado por um script de inicialização do
  IPython; o ONNX Runtime recebe `gpu_mem_limit` pela variável COURSE_CUDA_MEMORY_GIB), o planejador vê o hardware
  `colab_t4` (COURSE_HARDWARE) e os notebooks recebem ALLOW_BF16=False; escreve `results/t4/`.

O resumo (`resultados.json` e `resultados.md`) tem o mesmo formato em todo perfil: por notebook, o status, os
segundos, os resultados de `record`, as afirmações de `claim`, o erro, os parâmetros, a data, o ambiente (Python,
torch, GPU, driver), as versões das bibliotecas e o hash da fonte (`notebooks/src/NOME.py`) que rodou: evidência de
uma fonte mais antiga aparece como desatualizada. Um notebook que falha é relatado com a célula que falhou e a
execução segue; o código de saída é 0 só se nenhum falhou. Rodar com `--only` mantém os outros notebooks do resumo.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from ..config import HEADLESS_ENV
from ..environment import environment_info
from ..planner.hardware import T4_CUDA_TOTAL_GIB
from ..results import read_claims, read_results

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
T4_MEMORY_GIB = T4_CUDA_TOTAL_GIB   # o que o CUDA vê numa T4 do Colab (docs/referencias.md#colab-t4)

PROFILES = {
    "offline": {"out": ROOT / "build", "parameters": {}, "env": {}},
    "gpu": {"out": ROOT / "results" / "gpu", "parameters": {"DEVICE": "cuda"}, "env": {}},
    "t4": {"out": ROOT / "results" / "t4", "parameters": {"DEVICE": "cuda", "ALLOW_BF16": False},
           "env": {"COURSE_CUDA_MEMORY_GIB": str(T4_MEMORY_GIB), "COURSE_HARDWARE": "colab_t4"}},
}
GPU_PROFILES = {"gpu", "t4"}
CELL_TIMEOUT_S = 1800   # nenhuma célula do curso chega perto (a mais longa, numa CPU de 2 núcleos, leva ~6 min)

LIBRARIES = ["torch", "transformers", "accelerate", "bitsandbytes", "torchao", "onnx", "onnxruntime", "onnxruntime-gpu",
             "onnxruntime-genai", "onnxruntime-genai-cuda", "tensorrt", "torch-tensorrt", "gptqmodel", "gradio",
             "spaces", "papermill"]

# Roda no início de cada kernel do perfil t4 (IPYTHONDIR/profile_default/startup): limita a memória CUDA do processo.
CUDA_CAP_STARTUP = """\
import os as _os
_gib = float(_os.environ.get("COURSE_CUDA_MEMORY_GIB") or 0)
if _gib:
    import torch as _torch
    if _torch.cuda.is_available():
        _total = _torch.cuda.get_device_properties(0).total_memory
        _torch.cuda.set_per_process_memory_fraction(min(1.0, _gib * 2**30 / _total))
    del _torch
del _os, _gib
"""


def library_versions() -> dict:
    """Versão instalada de cada biblioteca que os notebooks usam (None se não estiver instalada)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def gpu_info() -> dict:
    """Nome da GPU, memória, driver e CUDA do torch; {} sem GPU."""
    import torch

    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    info = {"gpu_name": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "gpu_count": torch.cuda.device_count(), "cuda_torch": torch.version.cuda,
            "compute_capability": f"{props.major}.{props.minor}"}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        info["driver"] = None
    return info


def source_hash(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> str | None:
    """sha256 da fonte em texto do notebook (ou do .ipynb, se não houver fonte)."""
    for path in (Path(notebooks_dir) / "src" / f"{name}.py", Path(notebooks_dir) / f"{name}.ipynb"):
        if path.exists():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


def declared_parameters(nb) -> set:
    """Os nomes atribuídos na célula `parameters` do notebook."""
    import ast

    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                return set()
            return {t.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)}
    return set()


def notebook_parameters(profile: str, nb, smoke: bool) -> dict:
    """Os parâmetros do perfil que este notebook declara (mais SMOKE=True com --smoke)."""
    params = dict(PROFILES[profile]["parameters"])
    if smoke:
        params["SMOKE"] = True
    declared = declared_parameters(nb)
    return {k: v for k, v in params.items() if k in declared}


def _cell_error(exc) -> str:
    """Mensagem curta com a célula que falhou, a partir do erro do papermill."""
    cell = getattr(exc, "exec_count", None) or getattr(exc, "cell_index", None)
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    where = f"célula {cell}" if cell is not None else "execução"
    return f"{where}: {ename}: {evalue}".strip()


def _skip_reason(nb) -> str | None:
    """Notebooks podem declarar em metadata.curso.requires o que precisam (hoje: "cuda")."""
    if nb.metadata.get("curso", {}).get("requires") == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "precisa de GPU CUDA, e não há nenhuma aqui"
    return None


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, profile: str = "offline",
                 smoke: bool = False, kernel_name: str = "python3", progress: bool = True,
                 cell_timeout: int = CELL_TIMEOUT_S) -> dict:
    """Executa um notebook e devolve a entrada do resumo; nunca levanta exceção.

    `parameters`, se dado, é usado como está; senão, vêm do perfil (só os que o notebook declara). Uma célula que
    passa de `cell_timeout` segundos (um kernel travado) vira falha com o motivo, em vez de segurar o curso inteiro.
    """
    import nbformat
    import papermill as pm

    path, out_path = Path(path), Path(out_dir) / Path(path).name
    entry = {"status": "failed", "seconds": 0.0, "results": {}, "claims": {}, "error": None, "parameters": {},
             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             "source_sha256": source_hash(path.stem, path.parent)}
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        entry["error"] = (f"notebook inválido ({type(exc).__name__}: {str(exc)[:300]}); "
                          "abra-o no Jupyter e salve de novo")
        return entry
    entry["parameters"] = parameters if parameters is not None else notebook_parameters(profile, nb, smoke)
    reason = _skip_reason(nb)
    if reason:
        entry.update(status="skipped", error=reason)
        return entry
    start = time.time()
    previous = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"   # o kernel herda: sem controles ipywidgets numa execução sem navegador
    try:
        pm.execute_notebook(str(path), str(out_path), parameters=entry["parameters"], kernel_name=kernel_name,
                            cwd=str(path.parent), progress_bar=progress, log_output=False,
                            execution_timeout=cell_timeout)
        entry["status"] = "ok"
    except pm.PapermillExecutionError as exc:
        entry["error"] = _cell_error(exc)
    except Exception as exc:  # kernel morreu, tempo esgotado, parâmetro inválido...
        entry["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
        if type(exc).__name__ == "CellTimeoutError":
            entry["error"] = (f"uma célula passou de {cell_timeout} s (kernel travado?); rode o notebook no Jupyter para "
                              f"ver em qual ({str(exc)[:300]})")
    finally:
        if previous is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = previous
    entry["seconds"] = round(time.time() - start, 1)
    if out_path.exists():
        try:
            entry["results"], entry["claims"] = read_results(out_path), read_claims(out_path)
        except Exception as exc:
            entry["error"] = (entry["error"] or "") + f" (resultados ilegíveis: {exc})"
    return entry


def write_markdown(summary: dict, path: Path) -> None:
    smoke = " (SMOKE)" if summary["smoke"] else ""
    lines = ["# Resultados do curso", "", f"Perfil `{summary['profile']}`{smoke}.", "",
             "| Notebook | Status | Segundos | Data | Ambiente | Afirmações | Erro |", "|---|---|---|---|---|---|---|"]
    for name, entry in summary["notebooks"].items():
        env = entry.get("environment", {})
        where = f"{env.get('device', '?')}, torch {env.get('torch', '?')}"
        claims = entry.get("claims", {})
        counts = {s: sum(c["status"] == s for c in claims.values()) for s in ("ok", "skipped", "failed")}
        shown = f"{counts['ok']} ok, {counts['skipped']} puladas, {counts['failed']} falsas"
        lines.append(f"| `{name}` | {entry['status']} | {entry['seconds']} | {entry.get('date', '')} | {where} | "
                     f"{shown} | {entry['error'] or ''} |")
    for name, entry in summary["notebooks"].items():
        if entry["results"] or entry.get("claims"):
            lines += ["", f"## {name}", "", "| Chave | Valor |", "|---|---|"]
            for key, value in entry["results"].items():
                lines.append(f"| `{key}` | {f'{value:.4g}' if isinstance(value, float) else value} |")
            for claim, info in entry.get("claims", {}).items():
                detail = info.get("reason") or ("" if info.get("measured") is None else f"medido {info['measured']}")
                lines.append(f"| afirmação: {claim} | {info['status']} {detail} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _prepare_environment(profile: str) -> None:
    """Variáveis de ambiente que os kernels do perfil herdam."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    # O kernel "python3" é resolvido pelo PATH: garanta que é o Python deste ambiente.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ.update(PROFILES[profile]["env"])
    if PROFILES[profile]["env"].get("COURSE_CUDA_MEMORY_GIB"):
        ipython_dir = Path(tempfile.mkdtemp(prefix="curso-ipython-"))
        startup = ipython_dir / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-limite-cuda.py").write_text(CUDA_CAP_STARTUP, encoding="utf-8")
        os.environ["IPYTHONDIR"] = str(ipython_dir)


def run_course(profile: str = "offline", smoke: bool = False, only=None, out_dir=None,
               notebooks_dir=NOTEBOOKS_DIR, progress: bool = True) -> dict:
    """Executa os notebooks do perfil em ordem e grava resultados.json/.md; devolve o resumo."""
    from tqdm.auto import tqdm

    if profile not in PROFILES:
        raise SystemExit(f"Perfil desconhecido {profile!r}; use um de: {', '.join(PROFILES)}.")
    if profile in GPU_PROFILES and not gpu_info():
        raise SystemExit(f"O perfil {profile} precisa de uma GPU CUDA visível ao torch, e não há nenhuma aqui. "
                         "Rode numa máquina com GPU (ou use --profile offline).")
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir or PROFILES[profile]["out"])
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    _prepare_environment(profile)
    paths = sorted(notebooks_dir.glob("*.ipynb"))
    if only:
        missing = set(only) - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"Notebook(s) não encontrado(s) em {notebooks_dir}: {', '.join(sorted(missing))}. "
                             f"Os nomes são os dos arquivos, sem .ipynb (ex.: 01_quantizacao_ptq).")
        paths = [p for p in paths if p.stem in only]
    environment = {**environment_info(), **gpu_info()}
    summary = {"profile": profile, "smoke": smoke, "environment": environment, "libraries": library_versions(),
               "notebooks": {}}
    json_path = out_dir / "resultados.json"
    if only and json_path.exists():  # rodar só alguns notebooks não apaga os outros do resumo
        try:
            previous = json.loads(json_path.read_text(encoding="utf-8"))
            summary["notebooks"] = {k: v for k, v in previous.get("notebooks", {}).items() if k not in only}
        except (OSError, ValueError):
            print(f"⚠️  {json_path} ilegível: o resumo recomeça só com os notebooks desta execução.")
    bar = tqdm(paths, desc=f"perfil {profile}", unit="nb", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.stem)
        entry = run_notebook(path, out_dir / "notebooks", profile=profile, smoke=smoke, progress=False)
        entry["environment"], entry["libraries"] = environment, summary["libraries"]
        summary["notebooks"][path.stem] = entry
        summary["notebooks"] = dict(sorted(summary["notebooks"].items()))
        mark = {"ok": "✅", "skipped": "⏭️", "failed": "❌"}[entry["status"]]
        tqdm.write(f"{mark} {path.stem}: {entry['status']} em {entry['seconds']} s"
                   + (f" — {entry['error']}" if entry["error"] else ""))
        json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_markdown(summary, out_dir / "resultados.md")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course run",
                                     description="Executa os notebooks do curso com papermill num perfil.")
    parser.add_argument("--profile", default="offline", choices=list(PROFILES))
    parser.add_argument("--smoke", action="store_true", help="cargas pequenas (SMOKE=True)")
    parser.add_argument("--only", action="append", help="só este notebook (nome sem .ipynb); repita para vários")
    parser.add_argument("--notebooks", default=str(NOTEBOOKS_DIR), help="diretório dos notebooks")
    parser.add_argument("--out", default=None, help="diretório de saída (padrão: o do perfil)")
    args = parser.parse_args(argv)
    summary = run_course(args.profile, smoke=args.smoke, only=args.only, out_dir=args.out,
                         notebooks_dir=args.notebooks)
    ran = {n: e for n, e in summary["notebooks"].items() if not args.only or n in args.only}
    failed = [n for n, e in ran.items() if e["status"] == "failed"]
    out = Path(args.out or PROFILES[args.profile]["out"])
    print(f"\n{len(ran) - len(failed)} de {len(ran)} notebooks sem falha. "
          f"Resumo em {out / 'resultados.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
