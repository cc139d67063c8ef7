"""Executa os notebooks do curso com papermill e junta os resultados (`make course`).

    python -m course_utils.runner                 # todos, carga padrão, perfil offline
    python -m course_utils.runner --smoke         # cargas de CI (SMOKE=True)
    python -m course_utils.runner --only 01_quantizacao_ptq

Grava as cópias executadas em build/notebooks/ e o resumo em build/resultados.json e
build/resultados.md. Um notebook que falha é relatado com a célula que falhou e a
execução segue para o próximo; o código de saída é 0 só se nenhum falhou.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from .environment import environment_info
from .results import read_results

ROOT = Path(__file__).resolve().parent.parent


def _cell_error(exc) -> str:
    """Mensagem curta com a célula que falhou, a partir do erro do papermill."""
    cell = getattr(exc, "exec_count", None) or getattr(exc, "cell_index", None)
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    where = f"célula {cell}" if cell is not None else "execução"
    return f"{where}: {ename}: {evalue}".strip()


def _skip_reason(nb) -> str | None:
    """Notebooks podem declarar em metadata.curso.requires o que precisam (hoje: "cuda")."""
    requires = nb.metadata.get("curso", {}).get("requires")
    if requires == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "precisa de GPU CUDA, e não há nenhuma aqui"
    return None


def run_notebook(path: Path, out_dir: Path, parameters: dict, kernel_name: str = "python3",
                 progress: bool = True) -> dict:
    """Executa um notebook e devolve {"status", "seconds", "results", "error"}; nunca levanta exceção."""
    import nbformat
    import papermill as pm

    path = Path(path)
    out_path = Path(out_dir) / path.name
    start = time.time()
    entry = {"status": "failed", "seconds": 0.0, "results": {}, "error": None}
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        entry["error"] = f"notebook inválido ({type(exc).__name__}: {str(exc)[:300]}); abra-o no Jupyter e salve de novo"
        return entry
    reason = _skip_reason(nb)
    if reason:
        entry.update(status="skipped", error=reason)
        return entry
    try:
        pm.execute_notebook(str(path), str(out_path), parameters=parameters, kernel_name=kernel_name,
                            cwd=str(path.parent), progress_bar=progress, log_output=False)
        entry["status"] = "ok"
    except pm.PapermillExecutionError as exc:
        entry["error"] = _cell_error(exc)
    except Exception as exc:  # kernel morreu, tempo esgotado, parâmetro inválido...
        entry["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    entry["seconds"] = round(time.time() - start, 1)
    if out_path.exists():
        try:
            entry["results"] = read_results(out_path)
        except Exception as exc:
            entry["error"] = (entry["error"] or "") + f" (resultados ilegíveis: {exc})"
    return entry


def write_markdown(summary: dict, path: Path) -> None:
    env = summary["environment"]
    lines = ["# Resultados do curso", "",
             f"Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, "
             f"dispositivo {env['device']}, {env['cpu_count']} CPUs.", "",
             "| Notebook | Status | Segundos | Erro |", "|---|---|---|---|"]
    for name, entry in summary["notebooks"].items():
        lines.append(f"| `{name}` | {entry['status']} | {entry['seconds']} | {entry['error'] or ''} |")
    for name, entry in summary["notebooks"].items():
        if entry["results"]:
            lines += ["", f"## {name}", "", "| Chave | Valor |", "|---|---|"]
            for key, value in entry["results"].items():
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                lines.append(f"| `{key}` | {shown} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_course(notebooks_dir=ROOT / "notebooks", out_dir=ROOT / "build", only=None, parameters=None,
               offline: bool = True, progress: bool = True) -> dict:
    """Executa os notebooks em ordem e grava resultados.json/.md; devolve o resumo."""
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    # O kernel "python3" é resolvido pelo PATH: garanta que é o Python deste ambiente.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    paths = sorted(notebooks_dir.glob("*.ipynb"))
    if only:
        paths = [p for p in paths if p.stem in only]
        missing = set(only) - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"Notebook(s) não encontrado(s) em {notebooks_dir}: {', '.join(sorted(missing))}")
    summary = {"environment": environment_info(), "notebooks": {}}
    bar = tqdm(paths, desc="notebooks", unit="nb", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.stem)
        entry = run_notebook(path, out_dir / "notebooks", parameters or {}, progress=progress)
        summary["notebooks"][path.stem] = entry
        mark = {"ok": "✅", "skipped": "⏭️", "failed": "❌"}[entry["status"]]
        tqdm.write(f"{mark} {path.stem}: {entry['status']} em {entry['seconds']} s"
                   + (f" — {entry['error']}" if entry["error"] else ""))
        (out_dir / "resultados.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    write_markdown(summary, out_dir / "resultados.md")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Executa os notebooks do curso com papermill.")
    parser.add_argument("--smoke", action="store_true", help="cargas pequenas de CI (SMOKE=True)")
    parser.add_argument("--only", action="append", help="só este notebook (nome sem .ipynb); repita para vários")
    parser.add_argument("--notebooks", default=str(ROOT / "notebooks"), help="diretório dos notebooks (padrão: notebooks/)")
    parser.add_argument("--out", default=str(ROOT / "build"), help="diretório de saída (padrão: build/)")
    parser.add_argument("--online", action="store_true", help="não força HF_HUB_OFFLINE=1")
    args = parser.parse_args(argv)
    params = {"SMOKE": True} if args.smoke else {}
    summary = run_course(notebooks_dir=args.notebooks, out_dir=args.out, only=args.only, parameters=params, offline=not args.online)
    failed = [n for n, e in summary["notebooks"].items() if e["status"] == "failed"]
    print(f"\n{len(summary['notebooks']) - len(failed)} de {len(summary['notebooks'])} notebooks sem falha. "
          f"Resumo em {Path(args.out) / 'resultados.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
