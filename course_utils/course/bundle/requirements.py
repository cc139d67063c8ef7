"""Do que a GPU precisa: a lista dela (`pip list`), os requisitos do curso e as wheels que faltam."""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

from .parts import BundleError

# Nunca empacotados: a GPU tem o torch com CUDA e as bibliotecas dele.
NEVER_PACKED = {"torch", "torchvision", "torchaudio", "triton", "pytorch-triton"}


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def never_packed(name: str) -> bool:
    name = canonical(name)
    return name in NEVER_PACKED or name.startswith("nvidia-")


def parse_pip_list(text: str) -> dict:
    """Saída de `pip list --format=freeze` -> {nome canônico: versão}; ignora linhas sem `==`."""
    installed = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            installed[canonical(name.strip())] = version.strip()
    return installed


def read_requirements(path: Path) -> list:
    """Linhas de requisito de um requirements.txt (sem comentários, opções nem linhas vazias)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"Não encontrei {path}: passe --requirements com o caminho de um requirements.txt.")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def parse_requirement(line: str):
    """Requirement do packaging (importado só quando preciso)."""
    from packaging.requirements import Requirement

    return Requirement(line)


def target_environment(python: str) -> dict:
    """Marcadores (PEP 508) da máquina de destino: Linux x86-64, CPython `python`."""
    return {"python_version": python, "python_full_version": f"{python}.0", "implementation_version": f"{python}.0",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def satisfies(version: str, specifier) -> bool:
    from packaging.version import InvalidVersion

    try:
        return specifier.contains(version, prereleases=True)
    except InvalidVersion:
        return False


def missing_requirements(pip_list, requirements, exact: bool = False, python: str = "3.12") -> list:
    """Requisitos (packaging Requirement) que precisam ir no pacote.

    `pip_list`: texto de `pip list --format=freeze` ou o dict de `parse_pip_list`. Fica de fora o torch e
    o que a máquina já tem; um pacote lá em outra versão também fica de fora, a menos que `exact`.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    installed = parse_pip_list(pip_list) if isinstance(pip_list, str) else pip_list
    env = target_environment(python)
    missing = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise BundleError(f"Requisito inválido {line!r}: {exc}. Corrija o requirements.txt.") from exc
        if never_packed(req.name) or (req.marker and not req.marker.evaluate(env)):
            continue
        have = installed.get(canonical(req.name))
        if have is None or (exact and not satisfies(have, req.specifier)):
            missing.append(req)
    return missing


def platform_tags(glibc: str = "2.35") -> list:
    """Etiquetas manylinux x86-64 até a glibc dada (o pip casa cada uma exatamente)."""
    major, minor = (int(x) for x in glibc.split("."))
    if major != 2 or minor < 17:
        raise BundleError(f"--glibc {glibc!r} não serve: use a versão da glibc da GPU (ex.: 2.35; `ldd --version`).")
    tags = [f"manylinux_2_{n}_x86_64" for n in range(minor, 4, -1)]
    return tags + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


def pip_download(specs, dest: Path, python: str, glibc: str, index_args=()) -> None:
    """`pip download --no-deps` de wheels para o Python e a plataforma de destino."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--python-version", python, "--implementation", "cp", "-d", str(dest), *index_args]
    for tag in platform_tags(glibc):
        cmd += ["--platform", tag]
    done = subprocess.run(cmd + list(specs), capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleError(
            f"O pip não conseguiu baixar {', '.join(specs)} para Python {python} (Linux x86-64, glibc até {glibc}).\n"
            f"{(done.stdout + done.stderr)[-1500:]}\nConfira nome e versão; se só existe wheel para uma glibc mais "
            "nova, passe --glibc com a versão da GPU.")


def wheel_requirements(wheel: Path, extras, env: dict) -> list:
    """Requires-Dist da wheel que valem no destino, para a instalação base e os `extras` pedidos."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if not names:
            raise BundleError(f"{wheel.name} não tem METADATA: a wheel está quebrada; apague-a e rode de novo.")
        metadata = Parser().parsestr(zf.read(names[0]).decode("utf-8"))
    wanted = [""] + sorted(extras)
    reqs = []
    for line in metadata.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in wanted):
            reqs.append(req)
    return reqs


def _download_wave(wave: dict, pins: dict, download, dest: Path) -> dict:
    """Baixa uma leva {nome: SpecifierSet}; devolve {nome: (versão, caminho)}."""
    from packaging.utils import parse_wheel_filename

    specs = []
    for name, spec in sorted(wave.items()):
        pin = pins.get(name)
        specs.append(f"{name}=={pin}" if pin and satisfies(pin, spec) else f"{name}{spec}")
    with tempfile.TemporaryDirectory() as tmp:
        download(specs, Path(tmp))
        got = {}
        for path in Path(tmp).glob("*.whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
            got[canonical(name)] = (str(version), Path(shutil.move(str(path), dest / path.name)))
    lost = sorted(set(wave) - set(got))
    if lost:
        raise BundleError(f"O pip terminou sem baixar {', '.join(lost)}: confira os nomes em requirements.txt.")
    return got


def _decide(req, chosen: dict, installed: dict, forced: set) -> str:
    """O que fazer com um requisito: "torch" (nunca vai), "chosen" (já no pacote), "kept" (a GPU tem) ou "pack"."""
    name = canonical(req.name)
    if never_packed(name):
        return "torch"
    if name in chosen:
        return "chosen"
    if name not in forced and name in installed and satisfies(installed[name], req.specifier):
        return "kept"
    return "pack"


def _more_extras(req, chosen: dict, extras_done: dict, env: dict) -> list:
    """Confere a versão já escolhida contra `req`; devolve as dependências de extras ainda não vistos."""
    name = canonical(req.name)
    version, wheel = chosen[name]
    if not satisfies(version, req.specifier):
        raise BundleError(f"Conflito: {name} {version} já está no pacote, mas outro pacote pede {req}. "
                          "Ajuste as versões em requirements.txt.")
    new = set(req.extras) - extras_done[name]
    extras_done[name] |= new
    return wheel_requirements(wheel, new, env) if new else []


def resolve_wheels(roots, installed: dict, download, dest: Path, python: str = "3.12", pins=None,
                   log=print, needs=()) -> dict:
    """Baixa `roots` e as dependências que a GPU não satisfaz; devolve {nome: (versão, wheel)}.

    Resolve leva a leva, sem voltar atrás: um conflito vira erro explicado. `roots` vão sempre; `needs`
    e as dependências só quando a versão instalada na GPU não serve; o torch nunca vai.
    """
    env, pins = target_environment(python), pins or {}
    forced = {canonical(r.name) for r in roots}
    chosen, extras_done, pending = {}, {}, list(roots) + list(needs)
    while pending:
        wave, extras, later = {}, {}, []
        for req in pending:
            name, action = canonical(req.name), _decide(req, chosen, installed, forced)
            if action == "torch":
                _check_kept(name, req, installed, log)
            elif action == "chosen":
                later += _more_extras(req, chosen, extras_done, env)
            elif action == "pack":
                if name in installed and name not in forced and name not in wave:
                    log(f"aviso: a GPU tem {name} {installed[name]}, mas é preciso {req}: vai no pacote e a substitui.")
                wave[name] = wave[name] & req.specifier if name in wave else req.specifier
                extras[name] = extras.get(name, set()) | set(req.extras)
        got = _download_wave(wave, pins, download, dest) if wave else {}
        for name, (version, wheel) in got.items():
            chosen[name], extras_done[name] = (version, wheel), extras[name]
            later += wheel_requirements(wheel, extras[name], env)
        pending = later
    return chosen


def _check_kept(name: str, req, installed: dict, log) -> None:
    """Avisa quando o torch (ou parente) da GPU falta ou não satisfaz `req`: ele nunca vai no pacote."""
    have = installed.get(name)
    if have is None:
        log(f"aviso: {req} é preciso, mas {name} não está na lista da GPU e nunca vai no pacote.")
    elif not satisfies(have, req.specifier):
        log(f"aviso: a GPU tem {name} {have}, mas algo pede {req}; {name} nunca vai no pacote, fica o de lá.")
