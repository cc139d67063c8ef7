"""A célula de configuração do Colab, provada contra a lista de pacotes do próprio Colab.

Duas partes:
- testes rápidos (sem rede) da lógica que a célula chama: restrições tiradas do ambiente, torchao escolhido pelo
  torch, versão carimbada na célula;
- testes com o resolvedor do pip (marcados `colab_resolver`; precisam do PyPI e levam uns minutos; pule-os com
  `-m "not colab_resolver"`). Para cada runtime de tests/fixtures/colab/ (o atual e o anterior que o Colab deixa fixar)
  e cada notebook, o teste monta um ambiente falso com os pacotes do Colab "instalados" (só os metadados de nome e
  versão) e pede ao pip, contra esse ambiente, exatamente o que a célula pediria: `pip install --dry-run --report`,
  com o Python e a plataforma do Colab, só rodas (`--only-binary=:all:`) e as restrições que
  `colab.build_constraints` monta. Assim o pip se comporta como no Colab: mantém o que já está instalado e só troca o
  que precisa. Como no Colab, o resolvedor não olha os requisitos dos pacotes já instalados; por isso, depois, o teste
  confere os requisitos dos pacotes do Colab que dependem do que a célula troca (gradio, diffusers, grpcio-status...)
  contra o estado final — é essa conferência que pega o huggingface_hub 2.x e o protobuf 6 da célula antiga.

O TensorRT (notebook 07) fica de fora: as bibliotecas dele não têm rodas no PyPI. A escolha da build fica em
course_utils/tensorrt.py, com os testes dela.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

import course_utils
from course_utils import config
from course_utils.course import colab

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "colab"
RUNTIMES = json.loads((FIXTURES / "runtimes.json").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PIP_TIMEOUT_S = 300

# Pacotes do Colab cujos requisitos o teste confere depois da instalação: os que dependem do que a célula instala ou
# troca (huggingface_hub, transformers, tokenizers, accelerate, torchao, protobuf, torch). Conferido à mão nos
# metadados deles em 2026-12; ao atualizar as listas do Colab, veja se algum pacote novo depende desses.
COLAB_DEPENDENTS = ["gradio", "gradio_client", "diffusers", "peft", "sentence-transformers", "timm", "datasets",
                    "grpcio-status", "googleapis-common-protos", "torchtune", "torchvision", "torchaudio"]

# Imports que não entram na instalação do Colab, com o motivo.
OPTIONAL_IMPORTS = {
    "tensorrt": "o TensorRT não tem rodas no PyPI; o notebook 07 o instala à parte (course_utils/tensorrt.py)",
    "torch_tensorrt": "idem: build escolhida por course_utils/tensorrt.py",
}
# O que a lição usa sem um `import` no nível do módulo: no notebook 00, o app.py do Space é texto (importa o gradio) e
# course_utils.zerogpu.local_space importa o gradio_client dentro da função que chama o servidor local.
# No notebook 02, course_utils.library_quant importa o auto_round dentro das funções que a seção 8 chama.
EXTRA_IMPORTS = {"00_zerogpu_spaces": {"gradio", "gradio_client"}, "02_awq_gptq": {"auto_round"}}

# A célula de antes desta (issue 20): pinos fixos, pacote do curso com dependências, sem restrições; 06 e 07 ainda
# pediam o onnx 1.23.2 na célula deles.
OLD_CELL_PINS = ["transformers==5.23.0", "accelerate==1.15.0", "bitsandbytes==0.50.2", "torchao==0.18.0"]
OLD_ONNX_CELL = ["onnx==1.23.2", "onnxscript==0.7.2", "onnxruntime==1.32.0", "onnxruntime-genai==0.18.0"]


# ---------------------------------------------------------------------------------------------------------------------
# Os runtimes do Colab (fixtures)


@dataclass(frozen=True)
class Runtime:
    name: str
    python: str           # "3.13.15"
    glibc: str            # "2.35"
    installed: dict       # {nome como o pip freeze escreve: versão}

    @property
    def python_short(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def version_of(self, package: str) -> str | None:
        return {colab.canonical(n): v for n, v in self.installed.items()}.get(colab.canonical(package))

    def marker_environment(self) -> dict:
        return {"python_version": self.python_short, "python_full_version": self.python, "sys_platform": "linux",
                "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}

    def pip_target_args(self) -> list[str]:
        """O Python e a plataforma do Colab para o pip: manylinux até a glibc dele, só rodas."""
        glibc_minor = int(self.glibc.split(".")[1])
        platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 16, -1)] + ["manylinux2014_x86_64"]
        return ["--only-binary=:all:", f"--python-version={self.python_short}",
                *[f"--platform={p}" for p in platforms]]


def parse_freeze(text: str) -> dict[str, str]:
    """`pip freeze` -> {nome: versão}; linhas `nome @ url` (instaladas de um endereço) ficam de fora."""
    installed = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "==" in line and " @ " not in line:
            name, version = line.split("==", 1)
            installed[name] = version
    return installed


@cache
def load_runtime(name: str) -> Runtime:
    folder = FIXTURES / name
    os_info = (folder / "os-info-gpu.txt").read_text(encoding="utf-8")
    python = re.search(r"^Python (\d+\.\d+\.\d+)", os_info, re.M).group(1)
    installed = parse_freeze((folder / "pip-freeze.gpu.txt").read_text(encoding="utf-8"))
    return Runtime(name, python, RUNTIMES[name]["glibc"], installed)


def course_requirements() -> list[str]:
    """As dependências do pacote do curso (pyproject), como o pip as leria do pacote instalado."""
    return list(PYPROJECT["project"]["dependencies"])


# ---------------------------------------------------------------------------------------------------------------------
# Testes rápidos (sem rede)


def test_fixtures_record_their_source_and_date():
    assert len(RUNTIMES) >= 2, "precisa do runtime atual e do anterior (tests/fixtures/colab/runtimes.json)"
    for name, info in RUNTIMES.items():
        assert re.fullmatch(r"https://github\.com/googlecolab/backend-info/tree/[0-9a-f]{40}", info["source"]), name
        assert info["source"].endswith(info["commit"]) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["date"]), name
        runtime = load_runtime(name)
        assert runtime.version_of("torch") and runtime.version_of("gradio"), f"{name}: lista de pacotes incompleta"
    pythons = {load_runtime(n).python_short for n in RUNTIMES}
    assert len(pythons) == len(RUNTIMES), f"os runtimes deveriam ter Pythons diferentes (têm {pythons})"


def test_setup_cell_installs_the_course_at_the_stamped_commit_without_deps():
    version = PYPROJECT["project"]["version"]
    assert course_utils.__version__ == version, "course_utils.__version__ e o pyproject discordam"
    ref = "0123456789abcdef0123456789abcdef01234567"
    for name in config.NOTEBOOKS:
        cell = colab.setup_cell_source(name, ref)
        assert f"@{ref}\"" in cell, f"{name}: a célula não instala o commit carimbado"
        assert f"git+https://github.com/{config.GITHUB_REPO}@" in cell
        assert '"--no-deps", COURSE' in cell, "o pacote do curso tem de entrar sem dependências (antes das restrições)"
        assert f'install_for_notebook("{name}")' in cell
        compile(cell, name, "exec")
    with pytest.raises(ValueError, match="desconhecido"):
        colab.setup_cell_source("99_nao_existe", ref)


def test_the_setup_cell_does_nothing_outside_colab(capsys):
    namespace = {}
    exec(colab.setup_cell_source("01_quantizacao_ptq", "main"), namespace)  # noqa: S102 (a célula só age com google.colab)
    assert "COURSE" not in namespace and capsys.readouterr().out == ""


@pytest.mark.parametrize("torch_version, expected", [
    ("2.11.0+cu128", "torchao==0.18.0"),    # Colab 2026-07 e 2026-08
    ("2.13.0+cpu", "torchao==0.18.0"),      # o ambiente do curso fora do Colab
    ("2.14.1", "torchao==0.18.0"),
    ("2.10.0+cu126", "torchao==0.16.0"),    # Colab 2026.04
    ("2.9.1", "torchao==0.15.0"),
    ("2.9.0+cu126", "torchao==0.14.1"),     # Colab 2026.01
    ("2.8.0+cu126", "torchao==0.13.0"),
    ("2.6.0+cu124", "torchao==0.12.0"),
])
def test_torchao_follows_the_running_torch(torch_version, expected):
    assert colab.torchao_requirement(torch_version) == expected


def test_torchao_for_a_torch_too_old_says_what_to_do():
    with pytest.raises(colab.ColabSetupError, match="runtime do Colab mais novo"):
        colab.torchao_requirement("2.4.1+cu121")
    with pytest.raises(colab.ColabSetupError, match="ilegível"):
        colab.torchao_requirement("abc")


def test_constraints_keep_torch_and_protobuf_and_follow_declared_hub_ranges():
    installed = {"torch": "2.11.0+cu128", "torchvision": "0.26.0+cu128", "protobuf": "5.29.6",
                 "gradio": "6.24.0", "diffusers": "0.39.0", "transformers": "5.15.0", "huggingface_hub": "1.27.0"}
    requires = {"gradio": ["huggingface-hub<2.0,>=1.16.0", "numpy<3.0,>=1.0"],
                "diffusers": ["huggingface-hub<2.0,>=0.34.0", "pytest; extra == 'test'"],
                "transformers": ["huggingface-hub<2.0,>=1.3.0"],     # vai ser trocado: não conta
                "old-tool": ["huggingface_hub<1.0; python_version < '3.8'"],  # marcador falso: não conta
                "torchvision": ["torch==2.11.0"]}
    lines = colab.build_constraints(installed, requires, ["transformers==5.23.0", "torchao"])
    assert lines[:3] == ["torch==2.11.0+cu128", "torchvision==0.26.0+cu128", "protobuf==5.29.6"]
    hub = next(line for line in lines if line.startswith("huggingface_hub"))
    specifier = Requirement(hub).specifier
    assert specifier.contains("1.33.0") and not specifier.contains("2.0.0") and not specifier.contains("1.15.0")
    assert "torchao==0.18.0" in lines


def test_without_installed_dependents_the_hub_is_not_limited():
    lines = colab.build_constraints({"torch": "2.10.0"}, {"gradio": ["huggingface-hub<2.0"]},
                                    ["gradio==6.31.0"])  # o próprio gradio vai ser trocado
    assert lines == ["torch==2.10.0", "torchao==0.16.0"]


def test_replaced_packages_are_the_missing_and_the_unsatisfied():
    installed = {"transformers": "5.15.0", "gradio": "6.24.0", "torchao": "0.10.0"}
    replaced = colab.replaced_packages(installed, ["transformers==5.23.0", "gradio>=6,<7", "spaces==0.51.3",
                                                   "torchao"])
    assert replaced == {"transformers", "spaces"}


def test_notebook_requirements_combine_course_pins_and_lesson():
    reqs = colab.notebook_requirements("06_onnx_runtime", course_requirements=["torch>=2.4"])
    assert reqs[0] == "torch>=2.4" and set(config.COLAB_PINS) <= set(reqs)
    assert {"onnx", "onnxruntime", "onnxruntime-genai"} <= {colab.canonical(Requirement(r).name) for r in reqs}
    with pytest.raises(colab.ColabSetupError, match="desconhecido"):
        colab.notebook_requirements("99_nao_existe", course_requirements=[])


def test_the_02_cell_installs_the_autoround_the_lesson_names():
    from course_utils import library_quant

    reqs = colab.notebook_requirements("02_awq_gptq", course_requirements=[])
    assert library_quant.AUTOROUND_REQUIREMENT in reqs
    assert library_quant.AUTOROUND_REQUIREMENT in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()


def test_notebooks_that_need_a_gpu_ask_colab_for_a_t4():
    assert {"01_quantizacao_ptq", "07_tensorrt", "08_colab_7b"} <= config.COLAB_T4 <= set(config.NOTEBOOKS)


def test_every_notebook_says_what_happens_on_a_cpu_runtime():
    for name in config.NOTEBOOKS:
        source = (ROOT / "notebooks" / "src" / f"{name}.py").read_text(encoding="utf-8")
        paragraph = re.search(r"\*\*Hardware\.\*\*(.*?)(?:\n#\s*\n|\n\n)", source, re.S)
        assert paragraph, f"{name}: falta o parágrafo **Hardware.** na primeira célula"
        assert re.search(r"\bCPU\b", paragraph.group(1)), f"{name}: o parágrafo Hardware não diz o que acontece na CPU"


# ---------------------------------------------------------------------------------------------------------------------
# O que cada notebook importa


def _module_file(module: str) -> Path | None:
    path = ROOT / Path(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """Os módulos que `path` importa (absolutos). Nos módulos do curso valem só os do nível do módulo: um import
    dentro de função só roda se a lição chamar a função."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")}
    return found


@cache
def notebook_distributions(name: str) -> frozenset[str]:
    """As distribuições de terceiros que o notebook usa: os imports da fonte e dos módulos do curso que ela importa."""
    to_visit, seen, third_party = [(ROOT / "notebooks" / "src" / f"{name}.py", False)], set(), set()
    while to_visit:
        path, module_level_only = to_visit.pop()
        for module in _imports(path, module_level_only):
            top = module.split(".")[0]
            if top == "course_utils":
                found = _module_file(module)
                if found and found not in seen:
                    seen.add(found)
                    to_visit.append((found, True))
                    if found.name != "__init__.py" and (init := found.parent / "__init__.py") not in seen:
                        seen.add(init)
                        to_visit.append((init, True))
            elif top and top not in sys.stdlib_module_names and top not in OPTIONAL_IMPORTS:
                third_party.add(top)
    third_party |= EXTRA_IMPORTS.get(name, set())
    providers = metadata.packages_distributions()
    missing = sorted(m for m in third_party if m not in providers)
    assert not missing, f"{name}: não sei de que pacote vêm {missing} (instale-os no ambiente do curso)"
    return frozenset(colab.canonical(providers[m][0]) for m in third_party)


def test_the_import_scan_sees_the_lesson_packages():
    assert {"onnx", "onnxruntime", "onnxruntime-genai"} <= notebook_distributions("06_onnx_runtime")
    assert "auto-round" in notebook_distributions("02_awq_gptq")
    assert {"spaces", "gradio", "gradio-client"} <= notebook_distributions("00_zerogpu_spaces")
    assert "torchao" in notebook_distributions("01_quantizacao_ptq")
    assert "torchao" not in notebook_distributions("04_janela_deslizante")


# ---------------------------------------------------------------------------------------------------------------------
# O resolvedor do pip contra os pacotes do Colab


@cache
def pypi_reachable() -> str | None:
    """None se o PyPI responde; senão, o motivo."""
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=15).close()
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def run_pip(args: list[str], python: Path | None = None) -> subprocess.CompletedProcess:
    """O pip deste Python, isolado da configuração da máquina (índices locais, restrições globais)."""
    reason = pypi_reachable()
    if reason:
        pytest.skip(f"PyPI inacessível ({reason}): a resolução da instalação no Colab precisa do índice de pacotes.")
    command = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check"]
    if python:
        command += ["--python", str(python)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    try:
        return subprocess.run(command + args, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"o pip passou de {PIP_TIMEOUT_S} s resolvendo {args[-3:]}... (rede lenta?)")


def fake_colab_environment(runtime: Runtime, folder: Path) -> Path:
    """Um ambiente virtual sem nada além dos metadados (nome e versão) dos pacotes do Colab; devolve o Python dele."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next(folder.glob("lib/python*/site-packages"))
    for name, version in runtime.installed.items():
        info = site / f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
        (info / "INSTALLER").write_text("fixture do Colab\n", encoding="utf-8")
        (info / "RECORD").write_text("", encoding="utf-8")
    return folder / "bin" / "python"


@cache
def dependents_metadata(runtime_name: str) -> dict[str, list[str]]:
    """Os requisitos declarados (Requires-Dist) dos pacotes de COLAB_DEPENDENTS, nas versões do Colab."""
    runtime = load_runtime(runtime_name)
    pins = [f"{p}=={runtime.version_of(p).split('+')[0]}" for p in COLAB_DEPENDENTS if runtime.version_of(p)]
    done = run_pip(["install", "--dry-run", "--ignore-installed", "--no-deps", "-q", "--report", "-",
                    *runtime.pip_target_args(), *pins])
    assert done.returncode == 0, f"não consegui ler os metadados de {pins}:\n{done.stderr[-3000:]}"
    return {item["metadata"]["name"]: item["metadata"].get("requires_dist", [])
            for item in json.loads(done.stdout)["install"]}


@dataclass
class Outcome:
    returncode: int
    stderr: str
    changed: dict     # {nome normalizado: versão nova} do que o pip instalaria ou trocaria
    final: dict       # {nome normalizado: versão} depois da instalação
    broken: list      # requisitos de pacotes do Colab que a instalação deixaria de satisfazer


def broken_requirements(runtime: Runtime, changed: dict, final: dict) -> list[str]:
    """Os requisitos dos pacotes do Colab (não trocados) sobre algo que mudou, e que o estado final não satisfaz."""
    environment = runtime.marker_environment()
    broken = []
    for owner, declared in dependents_metadata(runtime.name).items():
        if colab.canonical(owner) in changed:
            continue  # reinstalado: o resolvedor conferiu os requisitos dele
        for text in declared:
            req = Requirement(text)
            name = colab.canonical(req.name)
            if name not in changed or (req.marker and not req.marker.evaluate(environment)):
                continue
            if not req.specifier.contains(final[name], prereleases=True):
                broken.append(f"{owner} {runtime.version_of(owner)} exige {req.name}{req.specifier}, "
                              f"e ficaria {req.name} {final[name]}")
    return broken


def resolve_on_colab(runtime: Runtime, to_install: list[str], constraints: list[str], folder: Path) -> Outcome:
    """O que `pip install -c constraints to_install` faria no Colab `runtime` (sem instalar nada)."""
    python = fake_colab_environment(runtime, folder / "colab")
    args = ["install", "--dry-run", "-q", "--report", "-", *runtime.pip_target_args()]
    if constraints:
        path = folder / "restricoes.txt"
        path.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        args += ["-c", str(path)]
    done = run_pip(args + to_install, python=python)
    changed = {}
    if done.returncode == 0:
        changed = {colab.canonical(item["metadata"]["name"]): item["metadata"]["version"]
                   for item in json.loads(done.stdout)["install"]}
    final = {colab.canonical(n): v for n, v in runtime.installed.items()} | changed
    return Outcome(done.returncode, done.stderr, changed, final, broken_requirements(runtime, changed, final))


def cell_install(runtime: Runtime, name: str) -> tuple[list[str], list[str]]:
    """O que a célula de `name` pediria ao pip nesse runtime: (requisitos, restrições)."""
    to_install = colab.notebook_requirements(name, course_requirements=course_requirements())
    requires = dependents_metadata(runtime.name)
    constraints = colab.build_constraints(runtime.installed, requires, to_install,
                                          environment=runtime.marker_environment())
    return to_install, constraints


_outcomes: dict = {}


def colab_outcome(runtime: Runtime, to_install: list[str], constraints: list[str], tmp_path_factory) -> Outcome:
    """A mesma instalação só é resolvida uma vez (vários notebooks pedem o mesmo)."""
    key = (runtime.name, tuple(to_install), tuple(constraints))
    if key not in _outcomes:
        _outcomes[key] = resolve_on_colab(runtime, to_install, constraints, tmp_path_factory.mktemp("colab"))
    return _outcomes[key]


@pytest.mark.colab_resolver
@pytest.mark.parametrize("runtime_name", sorted(RUNTIMES))
@pytest.mark.parametrize("name", sorted(config.NOTEBOOKS))
def test_the_setup_cell_resolves_on_colab(runtime_name, name, tmp_path_factory):
    runtime = load_runtime(runtime_name)
    to_install, constraints = cell_install(runtime, name)
    outcome = colab_outcome(runtime, to_install, constraints, tmp_path_factory)
    assert outcome.returncode == 0, f"conflito no resolvedor do pip:\n{outcome.stderr[-4000:]}"
    assert not outcome.broken, "a instalação quebraria pacotes do Colab:\n" + "\n".join(outcome.broken)
    for package in ("torch", "torchvision", "torchaudio"):
        assert package not in outcome.changed, f"o pip trocaria o {package} do Colab: {outcome.changed[package]}"
    missing = sorted(notebook_distributions(name) - set(outcome.final))
    assert not missing, f"{name}: depois da instalação ainda faltariam {missing}"
    assert outcome.final["huggingface-hub"].split(".")[0] == "1"
    if "torchao" in notebook_distributions(name):
        assert outcome.final["torchao"] == colab.torchao_requirement(runtime.version_of("torch")).split("==")[1]


@pytest.mark.colab_resolver
def test_the_old_cell_breaks_colab_hub_and_protobuf(tmp_path_factory):
    """A célula de antes (pinos fixos, sem restrições, onnx 1.23.2): o teste acima tem de pegar os dois problemas."""
    runtime = load_runtime("2026-08-19_py313")
    outcome = colab_outcome(runtime, [*OLD_CELL_PINS, *course_requirements(), *OLD_ONNX_CELL], [], tmp_path_factory)
    assert outcome.returncode == 0  # o pip não reclama: é isso que deixava o gradio quebrado sem aviso
    assert outcome.final["huggingface-hub"].split(".")[0] != "1" and int(outcome.final["protobuf"].split(".")[0]) >= 6
    joined = "\n".join(outcome.broken)
    assert re.search(r"^gradio .* exige huggingface-hub<2", joined, re.M), joined
    assert re.search(r"^grpcio-status .* exige protobuf.*<6", joined, re.M), joined
