"""A célula de configuração do Colab (gerada em todo notebook por `make notebooks`) e o que ela chama.

A célula faz duas coisas, nesta ordem:
1. instala o pacote do curso **sem dependências** (`--no-deps`), na versão em que o notebook foi escrito: o commit
   do GitHub carimbado na célula quando o notebook é gerado (`make notebooks` carimba o último commit que mudou o
   pacote; um teste confere que o pacote desse commit é o de hoje);
2. chama `install_for_notebook(nome)`, que lê o que o Colab já tem instalado, escreve um arquivo de restrições
   (`pip -c`) e só então instala o que a lição usa.

Por que nessa ordem: instalar o pacote com as dependências antes das restrições já puxaria o `huggingface_hub` 2.x
(pelo `transformers`), e o gradio, o gradio_client e o diffusers do Colab exigem `huggingface_hub<2`.

As restrições vêm do ambiente em que a célula roda, não de uma lista escrita à mão:
- `config.COLAB_KEEP` (torch, torchvision, torchaudio, protobuf, ipywidgets) ficam na versão instalada;
- para cada pacote de `config.COLAB_GUARDED` (o `huggingface_hub`), valem as faixas que os pacotes instalados
  declaram sobre ele (ex.: `huggingface-hub<2.0,>=1.16.0` do gradio);
- o torchao é escolhido pelo torch que está rodando (`torchao_requirement`).
O arquivo de restrições fica em `constraints_path()`, para as instalações seguintes da lição (ex.: o TensorRT do
notebook 07, escolhido por `course_utils.tensorrt`) usarem as mesmas restrições.

`tests/test_colab_setup.py` resolve essa instalação, com o resolvedor do pip, contra cópias da lista de pacotes do
Colab (tests/fixtures/colab/).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config import (
    COLAB_GUARDED,
    COLAB_KEEP,
    COLAB_NOTEBOOK_PACKAGES,
    COLAB_PINS,
    COLAB_TORCHAO_BY_TORCH,
    GITHUB_REPO,
    NOTEBOOKS,
)

DIST_NAME = "curso-llm-rapido"


class ColabSetupError(RuntimeError):
    """A instalação no Colab não pôde ser montada ou falhou (a mensagem diz o que fazer)."""


def course_install_target(ref: str) -> str:
    """O que o pip instala: o pacote do curso no commit (ou tag) `ref` do repositório do GitHub."""
    return f"{DIST_NAME} @ git+https://github.com/{GITHUB_REPO}@{ref}"


def setup_cell_source(name: str, ref: str) -> str:
    """A célula de configuração do notebook `name`: instala só no Colab, sem trocar o torch que o Colab já tem.

    `ref`: o commit do pacote para o qual o notebook foi escrito (o gerador passa o último que mudou o pacote).
    """
    if name not in NOTEBOOKS:
        raise ValueError(f"notebook desconhecido: {name!r}; acrescente-o a course_utils.config.NOTEBOOKS.")
    return (
        "# Configuração (só no Colab; fora dele o requirements.txt do curso já instalou tudo).\n"
        "# 1) o pacote do curso na versão deste notebook, sem dependências;\n"
        "# 2) install_for_notebook fixa o que o Colab já tem (torch, protobuf, huggingface_hub<2 por causa do gradio...)\n"
        "#    num arquivo de restrições e só então instala o que esta lição usa.\n"
        "import subprocess, sys\n"
        'if "google.colab" in sys.modules:\n'
        f'    COURSE = "{course_install_target(ref)}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", COURSE], check=True)\n'
        "    from course_utils.course.colab import install_for_notebook\n"
        f'    install_for_notebook("{name}")'
    )


# ---------------------------------------------------------------------------------------------------------------------
# Nomes e versões


def canonical(name: str) -> str:
    """O nome normalizado de um pacote (PEP 503): `Huggingface_Hub` e `huggingface-hub` são o mesmo."""
    return re.sub(r"[-_.]+", "-", name).lower()


def base_version(version: str) -> str:
    """`2.11.0+cu128` -> `2.11.0` (sem a versão local)."""
    return version.split("+", 1)[0]


def _release(version: str) -> tuple[int, ...]:
    from packaging.version import Version

    return Version(base_version(version)).release


def torchao_requirement(torch_version: str) -> str:
    """O torchao cujos kernels compilados casam com este torch (tabela em `config.COLAB_TORCHAO_BY_TORCH`)."""
    from packaging.version import InvalidVersion

    try:
        torch_release = _release(torch_version)
    except InvalidVersion:
        raise ColabSetupError(f"versão do torch ilegível: {torch_version!r}.") from None
    for minimum_torch, torchao_version in COLAB_TORCHAO_BY_TORCH:
        if torch_release >= _release(minimum_torch):
            return f"torchao=={torchao_version}"
    oldest = COLAB_TORCHAO_BY_TORCH[-1][0]
    raise ColabSetupError(f"o torch {torch_version} é anterior ao {oldest}, o mais antigo com um torchao que o curso "
                          "conhece; escolha um runtime do Colab mais novo (Ambiente de execução > Alterar tipo).")


# ---------------------------------------------------------------------------------------------------------------------
# O que a célula instala e as restrições


def notebook_requirements(name: str, course_requirements: list[str] | None = None) -> list[str]:
    """Os pacotes que a célula de `name` pede ao pip: as dependências do pacote do curso, os pinos do curso no Colab
    e os extras da lição (ver `config.COLAB_NOTEBOOK_PACKAGES`).

    `course_requirements`: as dependências do pacote do curso; por padrão, as do pacote instalado
    (`importlib.metadata`), que a célula instalou com `--no-deps`.
    """
    if name not in NOTEBOOKS:
        raise ColabSetupError(f"notebook desconhecido: {name!r} (os do curso: {', '.join(NOTEBOOKS)}).")
    if course_requirements is None:
        course_requirements = installed_course_requirements()
    return [*course_requirements, *COLAB_PINS, *COLAB_NOTEBOOK_PACKAGES.get(name, [])]


def installed_course_requirements() -> list[str]:
    """As dependências obrigatórias (sem extras) do pacote do curso instalado (a célula o instalou com --no-deps)."""
    from importlib import metadata

    try:
        declared = metadata.requires(DIST_NAME) or []
    except metadata.PackageNotFoundError:
        raise ColabSetupError(f"o pacote {DIST_NAME} não está instalado: rode a célula de configuração inteira "
                              "(ela o instala antes de chamar install_for_notebook).") from None
    return [r for r in declared if _applies(r)]


def _applies(requirement: str, environment: dict | None = None) -> bool:
    """Se o requisito vale aqui: sem extra e com o marcador (ex.: python_version) verdadeiro neste ambiente."""
    from packaging.requirements import Requirement

    marker = Requirement(requirement).marker
    return marker is None or marker.evaluate({"extra": "", **(environment or {})})


def replaced_packages(installed: dict[str, str], to_install: list[str]) -> set[str]:
    """Os pacotes de `to_install` que o pip vai trocar ou acrescentar: os ausentes e os que a versão instalada não
    satisfaz (nomes normalizados)."""
    from packaging.requirements import Requirement

    versions = {canonical(name): version for name, version in installed.items()}
    replaced = set()
    for text in to_install:
        req = Requirement(text)
        name = canonical(req.name)
        if name not in versions or not req.specifier.contains(versions[name], prereleases=True):
            replaced.add(name)
    return replaced


def declared_ranges(requires: dict[str, list[str]], package: str, ignore: set[str] = frozenset(),
                    environment: dict | None = None) -> dict[str, str]:
    """O que cada pacote instalado exige de `package`: {quem exige: especificador}, só os requisitos que valem aqui.

    `requires`: {pacote instalado: requisitos declarados (Requires-Dist)}. Ficam de fora os requisitos de extras, os
    de marcadores falsos neste ambiente (`environment` muda o Python avaliado) e os dos pacotes de `ignore` (os que a
    célula vai trocar).
    """
    from packaging.requirements import InvalidRequirement, Requirement

    target = canonical(package)
    ranges = {}
    for owner, declared in requires.items():
        if canonical(owner) in ignore:
            continue
        for text in declared or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if canonical(req.name) == target and str(req.specifier) and _applies(text, environment):
                ranges[owner] = str(req.specifier)
    return ranges


def build_constraints(installed: dict[str, str], requires: dict[str, list[str]], to_install: list[str],
                      environment: dict | None = None) -> list[str]:
    """As linhas do arquivo de restrições (`pip -c`) para instalar `to_install` sem quebrar o que está instalado.

    `installed`: {pacote: versão instalada}; `requires`: {pacote: requisitos declarados}; `to_install`: os requisitos
    que a célula vai pedir; `environment`: marcadores (ex.: {"python_version": "3.13"}) se não forem os deste Python.
    """
    from packaging.specifiers import SpecifierSet

    versions = {canonical(name): version for name, version in installed.items()}
    lines = [f"{name}=={versions[canonical(name)]}" for name in COLAB_KEEP if canonical(name) in versions]
    replaced = replaced_packages(installed, to_install)
    for package in COLAB_GUARDED:
        ranges = declared_ranges(requires, package, ignore=replaced, environment=environment)
        if ranges:
            combined = SpecifierSet(",".join(ranges.values()))
            lines.append(package + ",".join(sorted({str(spec) for spec in combined})))
    if "torch" in versions:
        lines.append(torchao_requirement(versions["torch"]))
    return lines


def installed_environment() -> tuple[dict[str, str], dict[str, list[str]]]:
    """O que está instalado neste Python: ({pacote: versão}, {pacote: requisitos declarados})."""
    from importlib import metadata

    installed, requires = {}, {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        installed[name] = dist.version
        requires[name] = list(dist.requires or [])
    return installed, requires


def _pip_install(args: list[str], constraints: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints), *args])


def constraints_path() -> Path:
    """Onde a célula escreve o arquivo de restrições (`pip install -c ...`)."""
    return Path(tempfile.gettempdir()) / "curso-llm-rapido-restricoes.txt"


def install_for_notebook(name: str) -> Path:
    """Instala o que o notebook `name` usa, com restrições tiradas do ambiente; devolve o arquivo de restrições."""
    to_install = notebook_requirements(name)
    installed, requires = installed_environment()
    constraints = build_constraints(installed, requires, to_install)
    path = constraints_path()
    path.write_text("\n".join(constraints) + "\n", encoding="utf-8")
    print("Mantidos/limitados:", ", ".join(constraints))
    print("Instalando:", ", ".join(to_install))
    if _pip_install(to_install, path).returncode != 0:
        raise ColabSetupError(f"o pip não conseguiu instalar {to_install} com as restrições de {path}. Leia o erro "
                              "acima; se o Colab mudou de versão, avise no repositório do curso (issue) com esse erro.")
    return path

