"""O processo executor de uma entrega: papermill com o kernel no sandbox, saídas e tempo limitados.

    python -m course_utils.grader _execute <job_dir>      # a chave da coleta chega pela entrada padrão

Limites que valem aqui, seja qual for o formato do notebook:
- saída: cada mensagem que acrescenta algo a uma célula (stream, display_data, execute_result, error,
  update_display_data num display compartilhado, mensagens de widgets) é contada contra o limite da célula e o
  do notebook inteiro; o que passa é descartado na hora;
- tempo: o tempo total conta do início do executor; no fim dele o kernel é morto e, se o papermill não parar
  em seguida, o executor grava o que tem e sai. O notebook executado é salvo no máximo a cada SAVE_EVERY_S
  segundos (o papermill reescreve o notebook inteiro a cada célula: com 1.000 células, isso sozinho estourava
  o tempo).
"""

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import HEADLESS_ENV
from . import sandbox
from .prepare import KERNEL_NAME
from .wire import COLLECT_MIME, read_channel

SAVE_EVERY_S = 2.0
HARD_STOP_GRACE_S = 20  # depois do tempo total, quanto o executor espera o papermill parar


@dataclass
class Limits:
    timeout_s: int = 1800  # o notebook inteiro (tempo de relógio, da partida do kernel ao fim)
    cell_timeout_s: int = 600  # cada célula (ao passar, o kernel é interrompido e a execução segue)
    call_timeout_s: float = 10.0  # cada chamada da função do aluno numa entrada oculta
    memory_mb: int = 8192  # memória: RLIMIT_AS de cada processo e o total da árvore (cgroup, quando dá)
    max_procs: int = 512  # processos e threads da árvore (cgroup pids, ou RLIMIT_NPROC)
    file_mb: int = 512  # maior arquivo que o kernel pode escrever
    scratch_mb: int = 1024  # pasta de trabalho + /tmp + /var/tmp + /dev/shm (um tmpfs só, quando isolado)
    max_output_kb: int = 256  # saída guardada por célula; o resto é cortado
    max_notebook_mb: int = 16  # saída guardada no notebook inteiro
    threads: int = 1  # threads de CPU por kernel (OMP_NUM_THREADS)
    isolation: str = "auto"  # auto | namespaces | nenhum

    def execution_key(self) -> dict:
        """O que muda o resultado da execução (threads e isolamento não mudam a nota)."""
        keep = ("timeout_s", "cell_timeout_s", "call_timeout_s", "memory_mb", "max_procs", "file_mb", "scratch_mb",
                "max_output_kb", "max_notebook_mb")
        return {k: getattr(self, k) for k in keep}


_SECRET_WORDS = ("TOKEN", "SECRET", "PASSW", "CREDENTIAL", "API_KEY", "ACCESS_KEY", "PRIVATE_KEY", "AUTH")
DEAD_PROXY = "http://127.0.0.1:9"  # porta "discard": nenhuma conexão por proxy chega a lugar nenhum


def kernel_environment(threads: int, scratch: Path, package_dir=None) -> dict:
    """Ambiente do kernel: sem segredos, offline, proxies mortos, N threads, caches na pasta de trabalho e a
    cópia só leitura do pacote do curso na frente do caminho de importação."""
    env = {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in _SECRET_WORDS)}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[name] = DEAD_PROXY
    local = "localhost,127.0.0.1,::1"  # o servidor de teste de um notebook (ex.: o 00) roda no próprio kernel
    env.update(NO_PROXY=local, no_proxy=local, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PIP_NO_INDEX="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", TOKENIZERS_PARALLELISM="false",
               **{HEADLESS_ENV: "1"},
               TMPDIR=str(scratch), MPLCONFIGDIR=str(scratch / ".matplotlib"), IPYTHONDIR=str(scratch / ".ipython"),
               JUPYTER_RUNTIME_DIR=str(scratch / ".jupyter"), TRITON_CACHE_DIR=str(scratch / ".triton"),
               HF_MODULES_CACHE=str(scratch / ".hf_modules"), PYTHONNOUSERSITE="1")
    if package_dir:
        env["PYTHONPATH"] = str(package_dir)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _content_size(content: dict) -> int:
    return len(json.dumps(content, default=str))


def _register_engine():
    """Um engine do papermill igual ao padrão, mas com a saída limitada e o notebook salvo com moderação."""
    from nbformat.v4 import new_output
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class CappedClient(PapermillNotebookClient):
        max_output_bytes = 256 * 1024
        max_total_bytes = 16 * 2**20
        counted = ("stream", "display_data", "execute_result", "error", "update_display_data")

        def _budget(self):
            if not hasattr(self, "_used"):
                self._used, self._total, self._display_sizes = {}, 0, {}
            return self._used

        def _cut(self, cell_index):
            meta = self.nb.cells[cell_index].metadata.setdefault("curso_correcao", {})
            if not meta.get("cortada"):
                meta["cortada"] = True
                self.nb.cells[cell_index].outputs.append(new_output(
                    "stream", name="stderr", text="\n[... saída cortada pelo corretor: passou do limite ...]\n"))

        def process_message(self, msg, cell, cell_index):
            used = self._budget()
            msg_type, content = msg["msg_type"], msg.get("content", {})
            if msg_type == "clear_output":
                self._total -= used.get(cell_index, 0)
                used[cell_index] = 0
            elif msg_type in self.counted or msg_type.startswith("comm"):
                if msg_type == "error":  # um erro sempre fica (é o que diz que a célula falhou), mas curto
                    content["traceback"] = [str(line)[:4000] for line in (content.get("traceback") or [])[-30:]]
                    content["evalue"] = str(content.get("evalue", ""))[:4000]
                size = _content_size(content)
                display_id = (content.get("transient") or {}).get("display_id")
                cost = size
                if display_id and msg_type != "stream":
                    copies = sum(len(v) for v in self._display_id_map.get(display_id, {}).values())
                    previous = self._display_sizes.get(display_id, 0)
                    cost = (size - previous) * copies + (size if msg_type != "update_display_data" else 0)
                over = (used.get(cell_index, 0) + cost > self.max_output_bytes
                        or self._total + cost > self.max_total_bytes)
                if over and msg_type != "error":
                    self._cut(cell_index)
                    return None
                if display_id:
                    self._display_sizes[display_id] = size
                used[cell_index] = used.get(cell_index, 0) + cost
                self._total += cost
            return super().process_message(msg, cell, cell_index)

    class CappedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None,
                                     max_output_bytes=256 * 1024, max_total_bytes=16 * 2**20, **kwargs):
            kwargs.pop("input_path", None)
            client = CappedClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                  kernel_name=kernel_name, log_output=log_output, **kwargs)
            client.max_output_bytes, client.max_total_bytes = max_output_bytes, max_total_bytes
            save, last = nb_man.save, [0.0]

            def save_now_and_then(**kw):
                if time.monotonic() - last[0] >= SAVE_EVERY_S:
                    last[0] = time.monotonic()
                    save(**kw)

            nb_man.save = save_now_and_then
            try:
                return client.execute()
            finally:
                nb_man.save = save  # o fim (notebook_complete) salva de verdade

    papermill_engines.register(KERNEL_NAME, CappedEngine)


def sandbox_command(job: dict) -> list:
    """O argv do kernel: o sandbox (limites, isolamento) lançando o kernel que arma a coleta."""
    limits = job["limits"]
    cmd = [sys.executable, "-m", "course_utils.grader.sandbox", "--memory-mb", str(limits["memory_mb"]),
           "--max-procs", str(limits["max_procs"]), "--cgroup", job["cgroup"],
           "--cpu-s", str(int(limits["timeout_s"] * max(1, limits["threads"]) + 60)),
           "--file-mb", str(limits["file_mb"]), "--scratch", job["kernel_dir"],
           "--scratch-mb", str(limits["scratch_mb"]), "--key-file", job["key_file"], "--channel", job["channel"],
           "--report", job["sandbox_report"]]
    if job["isolate"]:
        cmd.append("--isolate")
        cmd += [a for path in job["hide"] for a in ("--hide", path)]
        cmd += [a for path in job["expose"] for a in ("--expose", path)]
        cmd += ["--share", job["ipc_dir"]]
    return cmd + ["--", sys.executable, "-m", "course_utils.grader.kernel", "--key-fd", "{key_fd}",
                  "--channel-fd", "{channel_fd}", "-f", "{connection_file}"]


def read_sandbox_report(job: dict) -> dict:
    try:
        return json.loads(Path(job["sandbox_report"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def execute_job(job_dir: Path, key: bytes) -> dict:
    """Executa o notebook preparado de um job com papermill; devolve (e grava) o que foi coletado."""
    import papermill as pm
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    limits = job["limits"]
    spec_dir = job_dir / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": sandbox_command(job), "display_name": "Python 3 (correção)", "language": "python"}))
    key_file = Path(job["key_file"])
    key_file.touch(mode=0o600)
    key_file.write_bytes(key)  # o sandbox abre e apaga este arquivo antes de o kernel existir
    Path(job["channel"]).touch(mode=0o600)
    env = kernel_environment(limits["threads"], Path(job["kernel_dir"]), job.get("package_dir"))
    os.environ.clear()
    os.environ.update(env)
    os.environ["JUPYTER_PATH"] = str(job_dir / "jupyter")
    _register_engine()
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc",
                            connection_file=str(Path(job["ipc_dir"]) / "conexao.json"))
    state = {"deadline": False}
    start = time.time()

    def kill_kernel():
        state["deadline"] = True
        pgid = getattr(km.provisioner, "pgid", None) if km.provisioner else None
        if pgid:
            try:
                os.killpg(pgid, 9)
            except OSError:
                pass

    def hard_stop():  # o papermill não parou depois do tempo total: grava o que há e sai
        kill_kernel()
        _finish(job_dir, job, key, "deadline", start)
        os._exit(3)

    timers = [threading.Timer(limits["timeout_s"], kill_kernel),
              threading.Timer(limits["timeout_s"] + HARD_STOP_GRACE_S, hard_stop)]
    for timer in timers:
        timer.daemon = True
        timer.start()
    error = None
    try:
        pm.execute_notebook(str(job_dir / "entrada.ipynb"), str(job_dir / "saida.ipynb"),
                            parameters=job["parameters"], engine_name=KERNEL_NAME, kernel_name=KERNEL_NAME,
                            km=km, cwd=job["kernel_dir"], progress_bar=False, log_output=False,
                            start_timeout=60, execution_timeout=limits["cell_timeout_s"], allow_errors=True,
                            interrupt_on_timeout=True, max_output_bytes=limits["max_output_kb"] * 1024,
                            max_total_bytes=limits["max_notebook_mb"] * 2**20)
    except pm.PapermillExecutionError:
        pass  # erros de célula: lidos do notebook executado
    except Exception as exc:  # noqa: BLE001 - kernel morto, tempo esgotado, kernel que não sobe...
        error = "deadline" if state["deadline"] else f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        timers[0].cancel()
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001
            kill_kernel()
    if state["deadline"] and error is None:
        error = "deadline"
    result = _finish(job_dir, job, key, error, start)
    timers[1].cancel()
    return result


def _finish(job_dir: Path, job: dict, key: bytes, error, start: float) -> dict:
    report = read_sandbox_report(job)
    events = sandbox.cgroup_events(report.get("paths"))  # antes de apagar o cgroup
    sandbox.remove_cgroup(report.get("paths"))
    result = summarize_execution(job_dir / "saida.ipynb", Path(job["channel"]), key, job["limits"]["cell_timeout_s"])
    result.update(error=error, seconds=round(time.time() - start, 1), sandbox=report, cgroup_events=events)
    tmp = job_dir / "resultado.tmp"
    tmp.write_text(json.dumps(result, ensure_ascii=True), encoding="utf-8")
    os.replace(tmp, job_dir / "resultado.json")
    return result


def _first_line(source: str) -> str:
    line = next((t.strip() for t in source.splitlines() if t.strip()), "").replace("`", "'")
    return line[:60] + ("…" if len(line) > 60 else "")


def _collection_state(cell) -> dict:
    """Como terminou uma célula de coleta: não rodou, ok, ou erro (qual)."""
    pm_meta = cell.metadata.get("papermill", {})
    errors = [o for o in cell.outputs if o.output_type == "error"]
    if not pm_meta.get("start_time"):
        state = "not_run"
    elif errors:
        state = "error"
    elif pm_meta.get("end_time"):
        state = "ok"
    else:
        state = "not_run"  # começou e não terminou: o kernel morreu ou o tempo acabou
    return {"exercise": cell.metadata["curso_correcao"]["coleta"], "state": state,
            "ename": str(errors[0].ename)[:80] if errors else ""}


def summarize_execution(executed_path: Path, channel_path: Path, key: bytes, cell_timeout_s: float) -> dict:
    """Do notebook executado e do canal: coletas autênticas, imitações, estado das coletas e problemas."""
    import nbformat

    payloads, refused = read_channel(channel_path, key) if key else ([], 0)
    result = {"payloads": payloads, "refused": refused, "foreign_payloads": [], "collections": [], "cells": [],
              "last_cell": None, "ran_to_end": False}
    if not executed_path.exists():
        return result
    nb = nbformat.read(str(executed_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("curso_correcao", {})
        pm_meta = cell.metadata.get("papermill", {})
        if pm_meta.get("start_time"):
            result["last_cell"] = meta.get("celula", result["last_cell"])
        if "coleta" in meta:
            result["collections"].append(_collection_state(cell))
        for out in cell.outputs:
            payload = (out.get("data") or {}).get(COLLECT_MIME)
            if payload is not None:  # ninguém do corretor publica assim: é uma imitação
                claimed = payload.get("exercise") if isinstance(payload, dict) else None
                result["foreign_payloads"].append({"cell": meta.get("celula"), "exercise": str(claimed)[:20],
                                                   "in_collection": meta.get("coleta")})
        errors = [o for o in cell.outputs if o.output_type == "error"]
        duration = pm_meta.get("duration") or 0
        if "celula" in meta and (errors or meta.get("cortada")):
            entry = {"cell": meta["celula"], "head": _first_line(cell.source), "truncated": bool(meta.get("cortada"))}
            if errors:
                entry.update(ename=str(errors[0].ename)[:80], evalue=" ".join(str(errors[0].evalue).split())[:300],
                             timeout=errors[0].ename == "KeyboardInterrupt" and duration >= 0.9 * cell_timeout_s)
            result["cells"].append(entry)
    result["ran_to_end"] = bool(nb.cells) and bool(nb.cells[-1].metadata.get("papermill", {}).get("end_time"))
    return result


def main(job_dir: str) -> int:
    """Ponto de entrada do processo executor (a chave, em hexadecimal, vem pela entrada padrão)."""
    key = bytes.fromhex(sys.stdin.readline().strip() or "")
    execute_job(Path(job_dir), key)
    return 0
