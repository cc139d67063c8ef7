"""A bibliografia do curso mora no repositório: nada aponta para fora dele, e todo link para ela existe."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "docs" / "referencias.md"
REFERENCES_URL = "https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md"
# o que um aluno ou quem mantém lê: documentação, fontes dos notebooks, o pacote, os testes ocultos, benchmarks
SCANNED = ["*.md", "docs/**/*.md", "notebooks/src/*.py", "course_utils/**/*.py", "grading/*", "benchmarks/*.py",
           "Makefile", "requirements*.txt", "pyproject.toml", ".ci/*"]
RELATIVE = re.compile(r"(?<![\w/.:])((?:\.\./)+[\w.\-/]+)")


def scanned_files():
    seen = set()
    for pattern in SCANNED:
        for path in ROOT.glob(pattern):
            if path.is_file() and path not in seen:
                seen.add(path)
                yield path


def points_outside(path: Path, relative: str) -> bool:
    """O caminho relativo sai do repositório, ou não existe nele (nem a partir do arquivo, nem da raiz)?"""
    candidates = [(path.parent / relative).resolve(), (ROOT / relative).resolve()]
    return not any(c.is_relative_to(ROOT) and c.exists() for c in candidates)


def anchors() -> set:
    return set(re.findall(r'<a id="([\w-]+)"></a>', REFERENCES.read_text(encoding="utf-8")))


def test_no_project_file_points_outside_the_repository():
    outside = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        if "REFERENCIAS.md" in text:
            outside.append(f"{path.relative_to(ROOT)}: cita REFERENCIAS.md (use docs/referencias.md)")
        for match in RELATIVE.finditer(text):
            if points_outside(path, match.group(1)):
                outside.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert not outside, "caminhos que não existem num clone do repositório:\n" + "\n".join(outside)


def test_the_check_above_catches_a_pointer_outside(tmp_path):
    match = RELATIVE.search("veja ../shared/REFERENCIAS.md")
    assert match and points_outside(ROOT / "notebooks" / "src" / "x.py", match.group(1))
    assert points_outside(ROOT / "README.md", "../../etc/passwd")
    assert not points_outside(ROOT / "notebooks" / "src" / "x.py", "../00_zerogpu_spaces.ipynb")
    assert not RELATIVE.search("https://example.com/../x")  # URLs ficam de fora


def test_every_link_to_the_references_has_its_anchor():
    known = anchors()
    assert {"gptq", "awq", "zerogpu", "colab"} <= known
    broken = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for anchor in re.findall(r"referencias\.md#([\w-]+)", text):
            if anchor not in known:
                broken.append(f"{path.relative_to(ROOT)}: #{anchor}")
        for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+/blob/[\w.-]+/docs/referencias\.md", text):
            if url != REFERENCES_URL:
                broken.append(f"{path.relative_to(ROOT)}: {url}")
    assert not broken, "links para âncoras que docs/referencias.md não tem:\n" + "\n".join(broken)
