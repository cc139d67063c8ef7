"""Do outro lado, sem internet: `python -m course_utils.course install-bundle` instala o pacote.

Só biblioteca padrão: roda antes de qualquer wheel do pacote estar instalada.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .parts import ROOT, BundleError, check_part, join_parts, read_manifest

# O que o executor do curso importa; conferido depois da instalação.
RUNNER_MODULES = ("papermill", "ipykernel", "nbformat", "course_utils")


def assemble(bundle: Path, manifest: dict) -> dict:
    """Confere cada parte e remonta os arquivos cortados; devolve {kind: [caminhos]}."""
    found = {}
    for entry in manifest["files"]:
        parts = [bundle / info["path"] for info in entry["parts"]]
        for part, info in zip(parts, entry["parts"], strict=True):
            check_part(part, info)
        path = parts[0] if len(parts) == 1 else join_parts(parts, bundle / "montado" / entry["file"],
                                                           entry["sha256"], entry["size"])
        found.setdefault(entry["kind"], []).append(path)
    return found


def install_wheels(wheels: list, target: Path) -> None:
    """Instala as wheels em `target`, sem índice e sem resolver (o pacote já traz o conjunto certo)."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--upgrade",
           "--disable-pip-version-check", "-q", "--target", str(target), *map(str, wheels)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleError(f"O pip não instalou as wheels em {target}:\n{(done.stdout + done.stderr)[-1500:]}\n"
                          "Se fala de plataforma, refaça o pacote com o --python e a --glibc desta máquina.")


def install_model(gguf: Path, target: Path, module: str) -> Path:
    """Põe o GGUF em `target/module/`, onde `course_utils.models.offline_gguf_path` o procura."""
    package = target / module
    package.mkdir(parents=True, exist_ok=True)
    init = package / "__init__.py"
    if not init.exists():
        init.write_text('"""GGUF do modelo de referência do curso, instalado por install-bundle."""\n')
    dest = package / Path(gguf).name
    shutil.copyfile(gguf, dest)
    return dest


def kernel_env(target: Path, cache: Path) -> dict:
    """Ambiente do kernel: a árvore de trabalho antes de `target` (o código editado vence a wheel do projeto)."""
    paths = ([str(ROOT)] if (ROOT / "pyproject.toml").exists() else []) + [str(target)]
    return {"PYTHONPATH": os.pathsep.join(paths), "COURSE_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}


def register_kernel(name: str, env: dict) -> Path:
    """Escreve kernels/NOME/kernel.json na pasta de dados do Jupyter do usuário (JUPYTER_DATA_DIR)."""
    if not name or not all(c.isalnum() or c in "._-" for c in name):
        raise BundleError(f"--kernel-name {name!r}: use só letras, dígitos, '.', '_' e '-'.")
    data = Path(os.environ.get("JUPYTER_DATA_DIR") or Path.home() / ".local" / "share" / "jupyter")
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Curso LLM rápido ({name})", "language": "python", "env": env}
    path = data / "kernels" / name.lower() / "kernel.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_imports(env: dict, with_model: bool) -> str:
    """Importa o que o executor precisa com o ambiente do kernel; devolve onde o GGUF foi achado."""
    code = f"import {', '.join(RUNNER_MODULES)}\n"
    if with_model:
        code += ("from course_utils.config import REFERENCE_MODEL_ID\n"
                 "from course_utils.models import offline_gguf_path\n"
                 "print(offline_gguf_path(REFERENCE_MODEL_ID))\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleError(f"Instalado, mas o ambiente do kernel não importa o que o curso precisa:\n"
                          f"{done.stderr[-1500:]}\n"
                          "Refaça o pacote com --have = o `pip list --format=freeze` desta máquina.")
    return done.stdout.strip()


def install(bundle: Path, target: Path, cache: Path, kernel_name: str) -> None:
    manifest = read_manifest(bundle)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if manifest["python"] != here:
        raise BundleError(f"O pacote foi feito para Python {manifest['python']}, e este é {here}: "
                          f"refaça-o com `bundle --python {here}`.")
    found = assemble(bundle, manifest)
    install_wheels(found.get("wheel", []) + found.get("project", []), target)
    for gguf in found.get("model", []):
        install_model(gguf, target, manifest["model_module"])
    env = kernel_env(target, cache)
    kernel = register_kernel(kernel_name, env)
    where = check_imports(env, bool(found.get("model")))
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    print(f"Instalado em {target}.\nKernel Jupyter {kernel_name!r}: {kernel}")
    if where:
        print(f"Modelo offline: {where}")
    print("Próximo passo, na raiz do repositório (o kernel python3 herda estas variáveis):\n"
          f"  {shown} python3 -m course_utils.course run --profile t4\n"
          f"  {shown} python3 -m course_utils.course run --profile gpu\n"
          "Os resultados ficam em results/<perfil>/: traga-os de volta e faça commit.")


def main_install(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course install-bundle",
                                     description="Instala, sem internet, o pacote feito por `bundle`.")
    parser.add_argument("bundle", help="pasta do pacote (com manifest.json e os lotes)")
    parser.add_argument("--target", help="onde instalar as wheels (padrão: BUNDLE/site)")
    parser.add_argument("--cache-dir", help="COURSE_CACHE_DIR do curso (padrão: BUNDLE/cache)")
    parser.add_argument("--kernel-name", default="curso-llm-gpu", help="nome do kernel Jupyter (padrão: curso-llm-gpu)")
    args = parser.parse_args(argv)
    bundle = Path(args.bundle).resolve()
    target = Path(args.target or bundle / "site").resolve()
    cache = Path(args.cache_dir or bundle / "cache").resolve()
    try:
        install(bundle, target, cache, args.kernel_name)
    except BundleError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 1
    return 0
