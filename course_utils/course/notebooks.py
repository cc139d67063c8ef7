"""Os notebooks são escritos como texto: `notebooks/src/NN_nome.py` (formato "percent" do jupytext).

`python -m course_utils.course notebooks` (ou `make notebooks`) escreve cada `notebooks/NN_nome.ipynb` a partir da
sua fonte e reescreve `colab_badges.md` e a tabela de evidência de GPU do README (de `results/`). O gerador acrescenta
o que é igual em todos os notebooks e não se edita à mão:
- o badge do Colab, como primeira linha da primeira célula (markdown, o título);
- a célula de configuração do Colab (tag `setup`), logo depois dela;
- os metadados do notebook (kernel, e a GPU T4 no Colab para os notebooks de `config.COLAB_T4`).

Cada célula ganha um id estável: o `id` escrito no cabeçalho da célula (`# %% id="meu-id"`), ou, sem ele, um hash
do tipo e do conteúdo da célula. Inserir uma célula não muda o id das outras. Os `.ipynb` saem sem saídas.
`--check` não escreve nada: lista o que está desatualizado e sai com código 1.
"""

import hashlib
from pathlib import Path

from ..config import COLAB_T4, GITHUB_BRANCH, GITHUB_REPO, NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
SOURCES_DIR = NOTEBOOKS_DIR / "src"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
JUPYTEXT_FORMAT = "py:percent"
GENERATED_TAGS = {"setup"}


class NotebookSourceError(ValueError):
    """Uma fonte de notebook que o gerador não sabe transformar (a mensagem diz o que corrigir)."""


def colab_url(name: str, repo: str = GITHUB_REPO, branch: str = GITHUB_BRANCH) -> str:
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{name}.ipynb"


def badge_markdown(name: str) -> str:
    return f"[![Abrir no Colab]({BADGE_IMAGE})]({colab_url(name)})"


PACKAGE_PATHS = ("course_utils", "pyproject.toml")


def package_commit(root: Path = ROOT) -> str:
    """O último commit que mudou o pacote do curso: é nele que a célula de configuração do Colab instala o pacote.

    Fluxo de quem mantém: faça commit das mudanças do pacote, rode `make notebooks` e faça commit dos notebooks.
    """
    import subprocess

    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H", "--", *PACKAGE_PATHS], cwd=root,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotebookSourceError(f"não consegui rodar o git ({exc}); os notebooks são gerados num clone do "
                                  "repositório, com o git instalado.") from exc
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        raise NotebookSourceError("não achei o commit do pacote no git: gere os notebooks num clone do repositório "
                                  "(com o histórico) depois de fazer commit do pacote.")
    return commit


def setup_cell_source(name: str) -> str:
    """A célula de configuração do notebook `name` (a mesma lógica em todos; ver course_utils/course/colab.py)."""
    from .colab import setup_cell_source as colab_setup_cell

    return colab_setup_cell(name, package_commit())


def badges_file() -> str:
    lines = ["# Notebooks no Colab", "",
             f"Gerado por `make notebooks` a partir de `{GITHUB_REPO}` (ramo `{GITHUB_BRANCH}`).", "",
             "| Notebook | Tema | Colab |", "|---|---|---|"]
    for name, title in NOTEBOOKS.items():
        status = badge_markdown(name) if source_path(name).exists() else "em preparação"
        lines.append(f"| `{name}` | {title} | {status} |")
    return "\n".join(lines) + "\n"


def source_path(name: str) -> Path:
    return SOURCES_DIR / f"{name}.py"


def notebook_metadata(name: str) -> dict:
    meta = {"colab": {"provenance": []},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}
    if name in COLAB_T4:
        meta["accelerator"] = "GPU"
        meta["colab"]["gpuType"] = "T4"
    return meta


def content_id(cell_type: str, source: str) -> str:
    return hashlib.sha1(f"{cell_type}\n{source}".encode()).hexdigest()[:12]


def _assign_ids(cells) -> None:
    seen: dict[str, int] = {}
    for cell in cells:
        explicit = cell.metadata.pop("id", None)
        base = str(explicit) if explicit else content_id(cell.cell_type, cell.source)
        seen[base] = seen.get(base, 0) + 1
        cell["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"
    if len({c["id"] for c in cells}) != len(cells):
        raise NotebookSourceError("ids de célula repetidos: dê um `id` diferente a cada célula no cabeçalho `# %%`.")


def build_notebook(name: str, text: str):
    """O notebook (objeto nbformat) que a fonte `text` do notebook `name` gera."""
    import jupytext
    import nbformat

    nb = jupytext.reads(text, fmt=JUPYTEXT_FORMAT)
    cells = list(nb.cells)
    if not cells or cells[0].cell_type != "markdown":
        raise NotebookSourceError(f"{name}: a primeira célula da fonte precisa ser markdown (o título da lição).")
    for cell in cells:
        generated = GENERATED_TAGS & set(cell.metadata.get("tags", []))
        if generated:
            raise NotebookSourceError(f"{name}: a célula com a tag {sorted(generated)} é gerada; tire-a da fonte.")
    if not any("parameters" in c.metadata.get("tags", []) for c in cells):
        raise NotebookSourceError(f"{name}: falta a célula com a tag `parameters` (o papermill precisa dela).")
    cells[0] = nbformat.v4.new_markdown_cell(badge_markdown(name) + "\n" + cells[0].source,
                                             metadata=dict(cells[0].metadata))
    setup = nbformat.v4.new_code_cell(setup_cell_source(name), metadata={"tags": ["setup"]})
    cells.insert(1, setup)
    out = nbformat.v4.new_notebook(metadata=notebook_metadata(name))
    for cell in cells:
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=dict(cell.metadata))
        else:
            new = nbformat.v4.new_raw_cell(cell.source, metadata=dict(cell.metadata))
        out.cells.append(new)
    _assign_ids(out.cells)
    out.nbformat, out.nbformat_minor = 4, 5
    nbformat.validate(out)
    return out


def notebook_json(nb) -> str:
    """O texto exato que vai para o `.ipynb` (o mesmo que o nbformat escreve)."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def generated_files() -> dict[Path, str]:
    """Cada arquivo gerado -> o texto que ele deve ter."""
    from .evidence import gpu_table, load_summaries, readme_with_table

    readme = ROOT / "README.md"
    files = {ROOT / "colab_badges.md": badges_file()}
    if readme.exists():
        files[readme] = readme_with_table(readme.read_text(encoding="utf-8"),
                                          gpu_table(load_summaries(ROOT / "results"), NOTEBOOKS_DIR))
    for name in NOTEBOOKS:
        src = source_path(name)
        if src.exists():
            nb = build_notebook(name, src.read_text(encoding="utf-8"))
            files[NOTEBOOKS_DIR / f"{name}.ipynb"] = notebook_json(nb)
    strays = sorted(p.stem for p in SOURCES_DIR.glob("*.py") if p.stem not in NOTEBOOKS)
    if strays:
        raise NotebookSourceError(f"fontes fora de config.NOTEBOOKS: {', '.join(strays)}; acrescente-as lá.")
    return files


def stale_files() -> list[Path]:
    return [path for path, text in generated_files().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def write_all() -> list[Path]:
    changed = stale_files()
    for path, text in generated_files().items():
        if path in changed:
            path.write_text(text, encoding="utf-8")
    return changed


def source_from_notebook(nb) -> str:
    """A fonte de texto de um `.ipynb` (usada uma vez, para converter os notebooks antigos)."""
    import copy

    import jupytext

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not GENERATED_TAGS & set(c.metadata.get("tags", []))]
    first = nb.cells[0]
    if first.source.startswith("[![Abrir no Colab]"):
        first.source = first.source.split("\n", 1)[1] if "\n" in first.source else ""
    for cell in nb.cells:
        cell.pop("id", None)
    nb.metadata = {"jupytext": {"notebook_metadata_filter": "-all"}}
    return jupytext.writes(nb, fmt=JUPYTEXT_FORMAT)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course_utils.course notebooks",
                                     description="Gera notebooks/*.ipynb e colab_badges.md a partir de notebooks/src/.")
    parser.add_argument("--check", action="store_true", help="só confere; sai com 1 se algo estiver desatualizado")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files()
            for path in stale:
                print(f"desatualizado: {path.relative_to(ROOT)} (rode `make notebooks`)")
            return 1 if stale else 0
        changed = write_all()
    except NotebookSourceError as exc:
        print(f"❌ {exc}")
        return 2
    print(f"{len(changed)} arquivo(s) reescrito(s)" + (": " + ", ".join(str(p.relative_to(ROOT)) for p in changed)
                                                       if changed else "; tudo em dia."))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
