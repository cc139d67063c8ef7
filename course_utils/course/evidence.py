"""A evidência de GPU versionada (`results/gpu/`, `results/t4/`) e a tabela do README gerada a partir dela.

Cada `results/<perfil>/resultados.json` é escrito pelo runner (`python -m course_utils.course run --profile ...`).
Uma entrada é **atual** quando o hash da fonte que rodou é o da fonte de hoje (`notebooks/src/NOME.py`); senão é
evidência de uma versão anterior do notebook e aparece assim na tabela e nos testes.
"""

import json
from pathlib import Path

from .runner import GPU_PROFILES, ROOT, source_hash

RESULTS_DIR = ROOT / "results"
README_START = "<!-- evidencia-gpu:início (gerado por `make notebooks` a partir de results/; não edite à mão) -->"
README_END = "<!-- evidencia-gpu:fim -->"


def load_summaries(results_dir: Path = RESULTS_DIR) -> dict:
    """perfil -> resumo, para cada perfil de GPU com `resultados.json` em `results_dir`."""
    summaries = {}
    for profile in sorted(GPU_PROFILES):
        path = Path(results_dir) / profile / "resultados.json"
        if path.exists():
            summaries[profile] = json.loads(path.read_text(encoding="utf-8"))
    return summaries


def is_current(name: str, entry: dict, notebooks_dir: Path = ROOT / "notebooks") -> bool:
    """A entrada veio da fonte de hoje do notebook?"""
    return entry.get("source_sha256") is not None and entry["source_sha256"] == source_hash(name, notebooks_dir)


def _claims_cell(entry: dict) -> str:
    claims = entry.get("claims")
    if not claims:
        return "não gravadas"
    ok = sum(c["status"] == "ok" for c in claims.values())
    skipped = sum(c["status"] == "skipped" for c in claims.values())
    failed = len(claims) - ok - skipped
    return f"{ok} ok, {skipped} puladas" + (f", {failed} falsas" if failed else "")


def gpu_table(summaries: dict, notebooks_dir: Path = ROOT / "notebooks") -> str:
    """A tabela em markdown: uma linha por perfil e notebook."""
    lines = ["| perfil | notebook | status | afirmações | data | GPU, driver | torch, transformers | fonte |",
             "|---|---|---|---|---|---|---|---|"]
    for profile, summary in summaries.items():
        for name, entry in sorted(summary.get("notebooks", {}).items()):
            env = entry.get("environment") or summary.get("environment", {})
            libs = entry.get("libraries") or summary.get("libraries", {})
            date = entry.get("date") or "?"
            gpu = f"{env.get('gpu_name', '?')}, {env.get('driver', '?')}"
            stack = f"{env.get('torch', '?')}, {libs.get('transformers') or env.get('transformers', '?')}"
            fresh = "atual" if is_current(name, entry, notebooks_dir) else "versão anterior"
            status = entry["status"] + (f" ({entry['error']})" if entry.get("error") else "")
            lines.append(f"| {profile} | `{name}` | {status} | {_claims_cell(entry)} | {date} | {gpu} | {stack} | "
                         f"{fresh} |")
    if len(lines) == 2:
        lines.append("| — | — | nenhuma execução em GPU gravada | | | | | |")
    return "\n".join(lines)


def readme_with_table(readme: str, table: str) -> str:
    """O README com a tabela entre os marcadores (que precisam existir, uma vez cada)."""
    if readme.count(README_START) != 1 or readme.count(README_END) != 1:
        raise ValueError("README.md precisa ter os marcadores da tabela de evidência de GPU, uma vez cada.")
    head, rest = readme.split(README_START)
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{table}\n{README_END}{tail}"
