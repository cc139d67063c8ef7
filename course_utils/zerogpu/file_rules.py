"""Regras sobre os arquivos do Space que não são Python: requirements.txt (torch, gradio) e o front matter do README."""

from pathlib import Path

from .findings import Finding

# A documentação do ZeroGPU (hub-docs, docs/hub/spaces-zerogpu.md, 13/05/2026) lista como suportados os torch
# 2.8.0, 2.9.1, 2.10.0 e 2.11.0 ("almost all versions from 2.8.0 to latest"); o AoT do `spaces` exige 2.8+.
MIN_TORCH, MIN_TORCH_AOTI, MIN_GRADIO = "2.8", "2.8", "4"
# Versões usadas para decidir se um especificador (==, <, ~=, ...) admite alguma versão boa.
TORCH_RELEASES = ["2.1.0", "2.1.2", "2.2.2", "2.3.1", "2.4.1", "2.5.1", "2.6.0", "2.7.1", "2.8.0", "2.9.1",
                  "2.10.0", "2.11.0", "2.12.0", "2.13.0", "2.14.1", "999"]
GRADIO_RELEASES = ["4.0.0", "4.44.1", "5.0.0", "5.49.1", "6.0.0", "6.31.0", "999"]


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
                        f"`{req}` só admite torch < {MIN_TORCH}; a documentação do ZeroGPU lista como suportados "
                        f"os torch a partir do {MIN_TORCH}.0 (2.8.0, 2.9.1, 2.10.0, 2.11.0).")]
    if uses_aoti and req.specifier and not _spec_allows(req.specifier, TORCH_RELEASES, MIN_TORCH_AOTI):
        return [Finding("requirements_torch", filename, lineno,
                        f"o código usa spaces.aoti_*, que exige torch >= {MIN_TORCH_AOTI}, mas `{req}` não admite.")]
    return []


# ------------------------------------------------------------------ README.md (front matter)

def front_matter(text: str):
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

    block = front_matter(text)
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
