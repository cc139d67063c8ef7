"""Badges do Colab e célula de instalação, gerados a partir de config.GITHUB_REPO/GITHUB_BRANCH.

`python -m course_utils.badges` reescreve `colab_badges.md` e, em cada notebook, a linha do
badge (primeira linha da primeira célula) e a célula marcada com a tag "setup".
"""

from pathlib import Path

from .config import COLAB_PINS, GITHUB_BRANCH, GITHUB_REPO, NOTEBOOKS

ROOT = Path(__file__).resolve().parent.parent
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(name: str, repo: str = GITHUB_REPO, branch: str = GITHUB_BRANCH) -> str:
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{name}.ipynb"


def badge_markdown(name: str) -> str:
    return f"[![Abrir no Colab]({BADGE_IMAGE})]({colab_url(name)})"


def setup_cell_source() -> str:
    """A célula de configuração: instala só no Colab, sem trocar o torch que o Colab já tem."""
    pins = ", ".join(f'"{p}"' for p in COLAB_PINS)
    return (
        "# Configuração: no Colab instala o pacote do curso (mantendo o torch do Colab); fora dele não faz nada.\n"
        "import subprocess, sys\n"
        f'REPO, BRANCH = "{GITHUB_REPO}", "{GITHUB_BRANCH}"\n'
        'if "google.colab" in sys.modules:\n'
        f"    pins = [{pins}]\n"
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pins,\n'
        '                    f"curso-llm-rapido @ git+https://github.com/{REPO}@{BRANCH}"], check=True)'
    )


def badges_file() -> str:
    lines = ["# Notebooks no Colab", "",
             f"Gerado por `python -m course_utils.badges` a partir de `{GITHUB_REPO}` (ramo `{GITHUB_BRANCH}`).", "",
             "| Notebook | Tema | Colab |", "|---|---|---|"]
    for name, title in NOTEBOOKS.items():
        status = badge_markdown(name) if (ROOT / "notebooks" / f"{name}.ipynb").exists() else "em preparação"
        lines.append(f"| `{name}` | {title} | {status} |")
    return "\n".join(lines) + "\n"


def main():
    import nbformat

    (ROOT / "colab_badges.md").write_text(badges_file(), encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        rest = first.source.split("\n", 1)[1] if "\n" in first.source else ""
        first.source = badge_markdown(path.stem) + "\n" + rest
        for cell in nb.cells:
            if "setup" in cell.metadata.get("tags", []):
                cell.source = setup_cell_source()
        nbformat.write(nb, path)
    print("colab_badges.md e notebooks atualizados.")


if __name__ == "__main__":
    main()
