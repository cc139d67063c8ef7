"""Executa o curso inteiro num perfil de hardware e guarda a evidência.

    python -m course_utils.run_course --profile gpu            # DEVICE="cuda", tamanhos de GPU
    python -m course_utils.run_course --profile gpu --smoke    # idem, com as cargas de CI
    python -m course_utils.run_course --profile cpu            # o mesmo que `make course`

Cada notebook roda com papermill (course_utils.runner.run_notebook) com os parâmetros do
perfil; o resumo vai para results/<perfil>/resultados.json (mesmo formato de
build/resultados.json, mais a GPU, o driver e as versões das bibliotecas) e resultados.md.
"""

import argparse
import json
import os
import subprocess
import time
import sys
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from .environment import environment_info
from .runner import ROOT, run_notebook, write_markdown

# Parâmetros por perfil: "*" vale para todos os notebooks; uma chave com o nome do notebook
# acrescenta (ou troca) parâmetros só dele.
PROFILES = {
    "cpu": {"*": {"DEVICE": "cpu"}},
    "gpu": {"*": {"DEVICE": "cuda"}},
}

LIBRARIES = ["torch", "transformers", "accelerate", "bitsandbytes", "torchao", "onnxruntime", "onnxruntime-gpu",
             "onnxruntime-genai", "onnxruntime-genai-cuda", "tensorrt", "torch-tensorrt", "gradio", "spaces", "papermill"]


def library_versions() -> dict:
    """Versão instalada de cada biblioteca que os notebooks usam (None se não estiver instalada)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def gpu_info() -> dict:
    """Nome da GPU, memória, driver e CUDA do torch; {} sem GPU."""
    import torch

    if not torch.cuda.is_available():
        return {}
    props = torch.cuda.get_device_properties(0)
    info = {"gpu_name": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "gpu_count": torch.cuda.device_count(), "cuda_torch": torch.version.cuda,
            "compute_capability": f"{props.major}.{props.minor}"}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        info["driver"] = None
    return info


def notebook_parameters(profile: str, name: str, smoke: bool) -> dict:
    table = PROFILES[profile]
    params = {**table.get("*", {}), **table.get(name, {})}
    if smoke:
        params["SMOKE"] = True
    return params


def run_profile(profile: str, smoke: bool = False, only=None, out_dir=None, notebooks_dir=ROOT / "notebooks",
                progress: bool = True) -> dict:
    """Executa os notebooks no perfil e grava results/<perfil>/resultados.{json,md}; devolve o resumo."""
    if profile not in PROFILES:
        raise SystemExit(f"Perfil desconhecido {profile!r}; use um de: {', '.join(PROFILES)}.")
    if profile == "gpu" and not gpu_info():
        raise SystemExit("O perfil gpu precisa de uma GPU CUDA visível ao torch, e não há nenhuma aqui. "
                         "Rode numa máquina com GPU (ou use --profile cpu).")
    out_dir = Path(out_dir or ROOT / "results" / profile)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    paths = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if only:
        missing = set(only) - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"Notebook(s) não encontrado(s): {', '.join(sorted(missing))}")
        paths = [p for p in paths if p.stem in only]
    summary = {"profile": profile, "smoke": smoke, "environment": {**environment_info(), **gpu_info()},
               "libraries": library_versions(), "notebooks": {}}
    json_path = out_dir / "resultados.json"
    if only and json_path.exists():  # rodar só alguns notebooks não apaga os outros do resumo
        previous = json.loads(json_path.read_text(encoding="utf-8"))
        summary["notebooks"] = {k: v for k, v in previous.get("notebooks", {}).items() if k not in only}
    for path in tqdm(paths, desc=f"perfil {profile}", unit="nb", disable=not progress):
        params = notebook_parameters(profile, path.stem, smoke)
        entry = run_notebook(path, out_dir / "notebooks", params, progress=False)
        entry["parameters"] = params
        # o resumo junta execuções de dias/máquinas diferentes (--only): cada notebook guarda quando e com o quê rodou
        entry["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        entry["libraries"] = summary["libraries"]
        summary["notebooks"][path.stem] = entry
        tqdm.write(f"{path.stem}: {entry['status']} em {entry['seconds']} s"
                   + (f" — {entry['error']}" if entry["error"] else ""))
        summary["notebooks"] = dict(sorted(summary["notebooks"].items()))
        json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    write_markdown(summary, out_dir / "resultados.md")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Executa o curso num perfil de hardware (cpu ou gpu).")
    parser.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    parser.add_argument("--smoke", action="store_true", help="cargas pequenas (SMOKE=True)")
    parser.add_argument("--only", action="append", help="só este notebook (nome sem .ipynb); repita para vários")
    parser.add_argument("--out", default=None, help="diretório de saída (padrão: results/<perfil>/)")
    args = parser.parse_args(argv)
    summary = run_profile(args.profile, smoke=args.smoke, only=args.only, out_dir=args.out)
    failed = [n for n, e in summary["notebooks"].items() if e["status"] == "failed"]
    print(f"{len(summary['notebooks']) - len(failed)} de {len(summary['notebooks'])} notebooks sem falha.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
