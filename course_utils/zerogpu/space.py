"""A pasta do Space inteira (ou um .py solto): junta as regras de código e as de arquivo."""

from pathlib import Path

from .code_rules import lint_source, no_gpu_function_finding, python_facts
from .file_rules import front_matter, lint_readme, lint_requirements
from .findings import EXIT_EMPTY, EXIT_NOT_FOUND, EXIT_NOT_PYTHON, Finding, LintInputError

SKIPPED_DIRS = {"__pycache__", "venv", ".venv", "node_modules"}


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
        block = front_matter(readme_text)
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
