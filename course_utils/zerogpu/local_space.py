"""Escrever um Space numa pasta, variar os arquivos dele, rodar o linter pela linha de comando e subir o app
localmente num processo à parte (servidor Gradio de verdade), chamando-o com o `gradio_client`."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SPACE_FILES = {"app": "app.py", "requirements": "requirements.txt", "readme": "README.md"}
SPACE_PACKAGES = [("gradio==6.31.0", "gradio"), ("gradio_client==2.7.2", "gradio_client"), ("spaces==0.51.3", "spaces")]


def ensure_space_packages() -> None:
    """gradio, gradio_client e spaces vêm do requirements.txt do curso; no Colab, instala os que faltam."""
    import importlib.util

    missing = [pin for pin, module in SPACE_PACKAGES if importlib.util.find_spec(module) is None]
    if missing and "google.colab" in sys.modules:
        from ..course.colab import constraints_path  # as restrições que a célula de configuração escreveu

        constraints = ["-c", str(constraints_path())] if constraints_path().exists() else []
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *constraints, *missing], check=True)
    elif missing:
        raise ModuleNotFoundError(f"Faltam {missing}: rode `make env` (ou pip install -r requirements.txt).")


def write_space(folder, files: dict) -> Path:
    """Escreve os arquivos de um Space ({"app": texto, "requirements": ..., "readme": ...}) e devolve a pasta."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, text in files.items():
        (folder / SPACE_FILES[key]).write_text(text, encoding="utf-8")
    return folder


def edit(key: str, old: str, new: str):
    """Uma alteração: devolve uma função que troca `old` por `new` no arquivo `key` (e confere que `old` existe)."""
    def apply(files):
        if old not in files[key]:
            raise ValueError(f"trecho não encontrado em {SPACE_FILES[key]}: {old!r}")
        return {**files, key: files[key].replace(old, new, 1)}
    return apply


def lint_cli(*args) -> tuple:
    """`python -m course_utils.zerogpu lint ...` num processo novo: (código de saída, saída)."""
    done = subprocess.run([sys.executable, "-m", "course_utils.zerogpu", "lint", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, (done.stdout + done.stderr).strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url, process, timeout_s, log_path) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if process.poll() is not None:
            raise RuntimeError("o app morreu ao iniciar; fim do log:\n" + log_path.read_text(encoding="utf-8")[-2000:])
        try:
            urllib.request.urlopen(url, timeout=2)
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"o servidor não respondeu em {timeout_s} s; fim do log:\n"
                       + log_path.read_text(encoding="utf-8")[-2000:])


def run_local_space(space_dir, calls: list, env: dict | None = None, timeout_s: float = 180,
                    headers: dict | None = None, api_name: str = "/generate") -> dict:
    """Sobe `python app.py` em `space_dir` (na CPU: CUDA_VISIBLE_DEVICES=""), faz as chamadas e desliga.

    `calls` é uma lista de tuplas de argumentos para `client.predict`. Devolve startup_s, answers, call_seconds,
    log (o texto que o app imprimiu) e returncode (o servidor sempre termina antes de a função voltar).
    """
    from gradio_client import Client

    space_dir = Path(space_dir)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = space_dir.parent / f"{space_dir.name}.log"
    env = {**os.environ, **(env or {}), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "CUDA_VISIBLE_DEVICES": ""}
    answers, call_seconds = [], []
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=space_dir, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            startup_s = _wait_for_server(url, server, timeout_s, log_path)
            client = Client(url, headers=headers, verbose=False, analytics_enabled=False)
            for args in calls:
                start = time.perf_counter()
                answers.append(client.predict(*args, api_name=api_name))
                call_seconds.append(time.perf_counter() - start)
            client.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return {"url": url, "startup_s": startup_s, "answers": answers, "call_seconds": call_seconds,
            "log": log_path.read_text(encoding="utf-8"), "returncode": server.returncode}
