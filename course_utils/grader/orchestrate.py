"""O lote, no processo do professor: o que executar, em paralelo, com que isolamento, e o que cada entrega deu.

Para cada entrega: lida uma vez (`submissions`), atribuída a uma tarefa (`assignments`), preparada (`prepare`),
executada num processo executor próprio (`execute`, com o kernel no `sandbox`) e registrada em
`registros/<id>.json`; as notas (`judge`) e os relatórios (`report`) saem dos registros, sem executar nada.
"""

import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .assignments import GRADING_DIR, detect_assignment, load_assignment
from .execute import DEAD_PROXY, HARD_STOP_GRACE_S, Limits, read_sandbox_report, summarize_execution
from .judge import evaluate_record
from .prepare import prepare_notebook
from .report import STATUS, fmt, write_reports
from .sandbox import remove_cgroup
from .spec import FunctionExercise
from .submissions import Submission, find_submissions, parse_notebook, select_shard
from .wire import cases_digest, encode_cases

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # course_utils (o que o kernel vê, numa cópia)


@dataclass
class Options:
    notebooks: list
    out_dir: Path
    parameters: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    jobs: int = 1
    shard: tuple = (1, 1)
    force: bool = False
    progress: bool = True
    spec_dir: Path = GRADING_DIR
    keep_jobs: bool = False  # mantém os diretórios temporários (para depurar o corretor)


def probe_isolation(requested: str) -> dict:
    """Qual isolamento e quais limites o kernel vai ter aqui; 'namespaces' exigido e indisponível é erro."""
    if requested == "nenhum":
        return {"isolation": "nenhum", "detail": "desligado com --isolation nenhum", "cgroup": None}
    done = subprocess.run([sys.executable, "-m", "course_utils.grader.sandbox", "--probe"], capture_output=True,
                          text=True, timeout=60)
    try:
        info = json.loads(done.stdout)
    except ValueError:
        info = {"isolation": "nenhum", "detail": f"o teste do isolamento falhou: {done.stderr[-300:]}", "cgroup": None}
    if requested == "namespaces" and info["isolation"] != "namespaces":
        raise SystemExit(f"Isolamento por namespaces indisponível aqui: {info['detail']}.")
    return info


def checkout_dir() -> Path | None:
    """A cópia de trabalho do curso (o pacote instalado em modo editável), que o kernel nunca pode ver;
    None quando o pacote foi instalado normalmente (em site-packages)."""
    root = PACKAGE_DIR.parent
    return root if any((root / m).exists() for m in (".git", "pyproject.toml", "grading", "tests")) else None


def copy_package(work_root: Path) -> Path:
    """Uma cópia só leitura e não editável de course_utils (com os dados), sem caches de bytecode: é a única
    coisa do curso que o kernel importa. Devolve a pasta que vai no PYTHONPATH do kernel."""
    import compileall

    target = work_root / "pacote"
    shutil.copytree(PACKAGE_DIR, target / "course_utils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(target, quiet=2)  # o kernel não grava bytecode: compilado uma vez por lote
    for folder, _, files in os.walk(target):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    return target


def _cache_paths() -> list:
    home = Path.home()
    return [Path(os.environ.get("COURSE_CACHE_DIR", home / ".cache" / "curso-llm-rapido")),
            Path(os.environ.get("HF_HOME", home / ".cache" / "huggingface"))]


def kernel_view(work_root: Path, package_dir: Path, out_dir: Path, spec_dir: Path, submission_roots) -> tuple:
    """(escondidas, visíveis só leitura) para o kernel: some a cópia de trabalho do curso inteira (.git, tests/,
    grading/), a pasta pessoal, as entregas, a saída, os testes ocultos e o diretório do lote; reaparecem o
    ambiente Python, a cópia do pacote e os caches do modelo."""
    hidden = [Path.home(), work_root, out_dir, spec_dir, *submission_roots]
    checkout = checkout_dir()
    if checkout is not None:
        hidden.append(checkout)
    expose = [Path(sys.prefix), Path(sys.base_prefix), package_dir, *_cache_paths()]
    resolved = lambda paths: list(dict.fromkeys(str(Path(p).resolve()) for p in paths if Path(p).exists()))  # noqa
    hidden, expose = resolved(hidden), resolved(expose)
    hidden = [h for h in hidden if h != "/" and h not in expose]
    return hidden, expose


def prepare_model_cache() -> None:
    """Converte o modelo offline do curso AGORA, se preciso: no kernel isolado o cache é só leitura."""
    from ..models import REFERENCE_MODEL_ID, ModelNotAvailableError, offline_model_dir, readable_by_all

    try:
        # o kernel roda com outro uid: o cache convertido (de uma versão que gravava com 0600) precisa ser legível
        readable_by_all(offline_model_dir(REFERENCE_MODEL_ID))
    except ModelNotAvailableError:
        pass  # sem a cópia offline (ex.: só Hub): cada notebook resolve do jeito dele
    except OSError as exc:
        print(f"⚠️  não consegui dar leitura ao cache do modelo ({exc}): o kernel da entrega pode não conseguir lê-lo.")


def execution_key(sub: Submission, opts: Options, assignments: dict) -> str:
    key = {"file": sub.sha256, "parameters": opts.parameters, "limits": opts.limits.execution_key(),
           "collection": {name: a.collection_digest for name, a in sorted(assignments.items())}}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _base_record(sub: Submission, key: str, opts: Options) -> dict:
    return {"file": sub.relpath, "student": sub.student, "sha256": sub.sha256, "key": key,
            "notebooks": list(opts.notebooks), "assignment": None, "status": "invalid", "reason": "",
            "problems": [], "answers": {}, "where": {}, "seconds": 0.0, "executed": None,
            "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def run_worker(job_dir: Path, timeout_s: float, key: bytes, cell_timeout_s: float) -> tuple:
    """Roda o executor num processo (e sessão) próprio; devolve (resultado ou None, mensagem de erro).

    A chave da coleta vai pela entrada padrão (nunca num arquivo que o kernel leia). Se o executor morrer ou
    travar, aproveita o que o papermill já tinha salvo do notebook executado e o canal da coleta.
    """
    log_path = job_dir / "executor.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.grader", "_execute", str(job_dir)],
                                cwd=job_dir, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.stdin.write(key.hex().encode() + b"\n")
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout_s)
            error = None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # o kernel morre junto (PR_SET_PDEATHSIG no sandbox)
            proc.wait()
            error = "o executor não terminou no tempo total e foi encerrado"
    result_path = job_dir / "resultado.json"
    if result_path.exists() and result_path.stat().st_size < 64 * 2**20:
        result = json.loads(result_path.read_text(encoding="utf-8"))
        if error is None or result.get("error") == "deadline":
            return result, result.get("error")
    if error is None:
        tail = log_path.read_bytes()[-400:].decode("utf-8", "replace").strip()
        error = f"o executor falhou (código {proc.returncode})" + (f": {tail}" if tail else "")
    try:
        job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
        channel = Path(job["channel"])
    except (OSError, ValueError, KeyError):
        job, channel = {}, job_dir / "coleta.bin"
    remove_cgroup(read_sandbox_report(job).get("paths") if job else None)
    partial = job_dir / "saida.ipynb"
    if partial.exists() and partial.stat().st_size < 64 * 2**20:
        try:
            return {**summarize_execution(partial, channel, key, cell_timeout_s), "error": error}, error
        except Exception:  # noqa: BLE001 - notebook salvo pela metade
            pass
    return None, error


def _describe_cell(entry: dict) -> str:
    return f"célula de código nº {entry['cell']} (`{entry['head']}`)"


def _problems(result: dict, limits: dict) -> list:
    problems = []
    for entry in result["cells"]:
        where = _describe_cell(entry)
        if entry.get("timeout"):
            problems.append(f"{where}: passou de {limits['cell_timeout_s']} s e foi interrompida")
        elif entry.get("ename"):
            problems.append(f"{where}: {entry['ename']}: {entry['evalue']}".rstrip(": "))
        if entry.get("truncated"):
            problems.append(f"{where}: saída cortada (passou de {limits['max_output_kb']} KB na célula ou "
                            f"{limits['max_notebook_mb']} MB no notebook)")
    for cell in sorted({f["cell"] for f in result["foreign_payloads"] if f.get("cell")}):
        problems.append(f"célula de código nº {cell} imitou a saída do corretor: ignorada")
    events = result.get("cgroup_events") or {}
    if events.get("oom_kills"):
        problems.append(f"o limite de memória da entrega inteira ({limits['memory_mb']} MB, todos os processos) "
                        f"matou {events['oom_kills']} processo(s)")
    return problems


_HONEST_COLLECTION_ERRORS = {"KeyboardInterrupt", "MemoryError"}


def verify_collections(result: dict, assignment) -> tuple:
    """({exercício: dado JSON}, {exercício: motivo de forjada}, motivos gerais): confere o canal da coleta.

    Vale só o registro autêntico (HMAC) de cada exercício, com a ordem, o nonce e as entradas ocultas certas.
    Forjada: imitação da saída do corretor, registro a mais ou fora de ordem, linha sem assinatura no canal,
    ou uma célula de coleta que terminou (ou falhou por um erro que o corretor não causa) sem registro."""
    expected = {ex.id: cases_digest(json.dumps(encode_cases(ex)) if isinstance(ex, FunctionExercise) else None)
                for ex in assignment.exercises}
    answers, forged, general = {}, {}, []
    records = result.get("payloads", [])
    if [r.get("seq") for r in records] != list(range(1, len(records) + 1)):
        general.append("os registros da coleta vieram fora de ordem")
    if len({r.get("nonce") for r in records}) > 1:
        general.append("registros da coleta de outra execução")
    if result.get("refused"):
        general.append(f"{result['refused']} linha(s) sem assinatura válida no canal da coleta")
    by_exercise = {}
    for record in records:
        by_exercise.setdefault(record["exercise"], []).append(record)
    for ex_id in sorted(set(by_exercise) - set(expected)):
        general.append(f"coleta de um exercício que não é desta tarefa ({str(ex_id)[:20]})")
    for ex_id, found in by_exercise.items():
        if ex_id not in expected:
            continue
        if len(found) > 1:
            forged[ex_id] = "a coleta apareceu mais de uma vez"
        elif found[0]["cases"] != expected[ex_id]:
            forged[ex_id] = "a coleta recebeu entradas que não são as do corretor"
        else:
            answers[ex_id] = found[0]["data"]
    for state in result.get("collections", []):
        ex_id = state["exercise"]
        if ex_id in by_exercise or ex_id not in expected:
            continue
        if state["state"] == "ok":
            forged[ex_id] = "a célula de coleta terminou sem publicar pelo canal do corretor"
        elif state["state"] == "error" and state["ename"] not in _HONEST_COLLECTION_ERRORS:
            forged[ex_id] = f"a célula de coleta falhou com {state['ename']} (alguém mexeu na coleta)"
    for imitation in result.get("foreign_payloads", []):
        ex_id = imitation.get("in_collection") or imitation.get("exercise")
        if ex_id in expected:
            forged[ex_id] = "uma célula imitou o corretor"
        else:
            general.append("uma célula imitou o corretor")
    return answers, forged, general


def interpret(record: dict, result: dict, error: str, limits: dict, assignment) -> dict:
    """Junta o resultado do executor ao registro da entrega."""
    if result is None:
        record.update(status="stopped", reason=error)
        return record
    record["seconds"] = result.get("seconds", 0.0)
    record["problems"] = _problems(result, limits)
    record["sandbox"] = result.get("sandbox") or {}
    answers, forged, general = verify_collections(result, assignment)
    for ex_id, text in answers.items():
        try:
            record["answers"][ex_id] = json.loads(text)
        except (ValueError, RecursionError):
            record["answers"][ex_id] = {"error": ["RespostaIlegível", ""]}
    for ex_id in forged:
        record["answers"][ex_id] = {"forged": True}
    last = f"na célula de código nº {result['last_cell']}" if result.get("last_cell") else "ao iniciar"
    if error == "deadline":
        record.update(status="stopped", reason=f"tempo total esgotado ({limits['timeout_s']} s) {last}")
    elif error and ("DeadKernel" in error or "Kernel died" in error):
        record.update(status="stopped", reason=f"o kernel morreu {last} (memória, os._exit ou falha nativa)")
    elif error:
        record.update(status="stopped", reason=f"a execução parou {last}: {error}")
    elif not result["ran_to_end"]:
        record.update(status="stopped", reason=f"a execução parou {last}")
    elif any(e.get("ename") for e in result["cells"]):
        record.update(status="errors", reason=f"{sum(bool(e.get('ename')) for e in result['cells'])} célula(s) "
                                              f"com erro; a execução seguiu até o fim")
    else:
        record.update(status="ok", reason="")
    if forged or general:
        details = [f"{ex_id}: {why}" for ex_id, why in sorted(forged.items())] + list(dict.fromkeys(general))
        why = (f"coleta forjada ou adulterada ({'; '.join(details)})"
               + (f"; {', '.join(sorted(forged))} vale(m) zero" if forged else ""))
        record.update(status="forged", reason=why + (f"; {record['reason']}" if record["reason"] else ""))
    return record


def _job(job_dir: Path, nonce: str, opts: Options, isolation: dict, view: tuple, package_dir: Path) -> dict:
    return {"nonce": nonce, "parameters": opts.parameters, "limits": asdict(opts.limits),
            "kernel_dir": str(job_dir / "kernel"), "ipc_dir": str(job_dir / "ipc"),
            "key_file": str(job_dir / "chave"), "channel": str(job_dir / "coleta.bin"),
            "sandbox_report": str(job_dir / "sandbox.json"), "cgroup": f"curso-correcao-{job_dir.name}",
            "isolate": isolation["isolation"] == "namespaces", "hide": view[0], "expose": view[1],
            "package_dir": str(package_dir)}


def execute_submission(sub: Submission, assignments: dict, opts: Options, key: str, isolation: dict,
                       view: tuple, work_root: Path, package_dir: Path) -> dict:
    """Uma entrega do começo ao fim (nunca levanta exceção por causa dela): devolve o registro."""
    record = _base_record(sub, key, opts)
    if sub.problem:
        record["reason"] = sub.problem
        return record
    nb, why = parse_notebook(sub.data)
    if nb is None:
        record["reason"] = why
        return record
    name, why = detect_assignment(nb, assignments, Path(sub.relpath).name)
    if name is None:
        record.update(status="wrong", reason=why)
        return record
    record["assignment"] = name
    nonce = secrets.token_hex(16)
    nb, record["where"] = prepare_notebook(nb, assignments[name], nonce, opts.limits.call_timeout_s)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=work_root))
    try:
        import nbformat

        (job_dir / "kernel").mkdir()
        (job_dir / "ipc").mkdir()
        nbformat.write(nb, str(job_dir / "entrada.ipynb"))
        job = _job(job_dir, nonce, opts, isolation, view, package_dir)
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        deadline = opts.limits.timeout_s + HARD_STOP_GRACE_S + 40
        # a chave HMAC da coleta: só na memória do corretor e (pela entrada padrão) do executor
        result, error = run_worker(job_dir, deadline, secrets.token_bytes(32), opts.limits.cell_timeout_s)
        record = interpret(record, result, error, asdict(opts.limits), assignments[name])
        executed = job_dir / "saida.ipynb"
        if executed.exists() and executed.stat().st_size < 64 * 2**20:
            target = opts.out_dir / "executados" / f"{sub.record_name}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, target)
            record["executed"] = f"executados/{target.name}"
    finally:
        remove_cgroup(read_sandbox_report({"sandbox_report": str(job_dir / "sandbox.json")}).get("paths"))
        if not opts.keep_jobs:
            shutil.rmtree(job_dir, ignore_errors=True)
    return record


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=True, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def load_records(out_dir: Path) -> dict:
    """{arquivo relativo: registro} de out/registros; arquivos ilegíveis são ignorados."""
    records = {}
    for path in sorted((Path(out_dir) / "registros").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            previous = records.get(record["file"])
            if previous is None or record["graded_at"] >= previous["graded_at"]:
                records[record["file"]] = record
        except (ValueError, KeyError, TypeError, OSError):
            continue
    return records


def _progress_line(sub: Submission, record: dict, evaluation: dict) -> str:
    return (f"{'✅' if record['status'] == 'ok' else '⚠️ '} {sub.relpath}: "
            f"{fmt(evaluation['total'])}/{fmt(evaluation['max'])} ({STATUS[record['status']]}"
            f"{', ' + record['reason'] if record['reason'] else ''}) em {record['seconds']} s")


def _execute_pending(todo: list, keys: dict, assignments: dict, opts: Options, isolation: dict,
                     submission_paths) -> dict:
    """Executa as entregas de `todo` (--jobs em paralelo), gravando o registro de cada uma assim que termina."""
    from tqdm.auto import tqdm

    out_dir = Path(opts.out_dir)
    work_root = Path(tempfile.mkdtemp(prefix="curso-correcao-"))
    os.chmod(work_root, 0o755)  # os kernels (uid próprio) atravessam até a cópia do pacote e aos sockets
    records = {}
    bar = tqdm(total=len(todo), desc="entregas", unit="entrega", disable=not opts.progress)
    try:
        package_dir = copy_package(work_root)
        roots = {Path(p).resolve() if Path(p).is_dir() else Path(p).resolve().parent for p in submission_paths}
        view = kernel_view(work_root, package_dir, out_dir, Path(opts.spec_dir), roots)
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            futures = {pool.submit(execute_submission, s, assignments, opts, keys[s.relpath], isolation, view,
                                   work_root, package_dir): s for s in todo}
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # noqa: BLE001 - falha do corretor: a entrega não se perde
                    record = _base_record(sub, "", opts)
                    record.update(status="stopped", reason=f"erro do corretor: {type(exc).__name__}: {exc}")
                record["isolation"] = isolation["isolation"]
                write_json(out_dir / "registros" / f"{sub.record_name}.json", record)
                records[sub.relpath] = record
                bar.update(1)
                tqdm.write(_progress_line(sub, record, evaluate_record(record, assignments)))
    finally:
        bar.close()
        if opts.keep_jobs:
            tqdm.write(f"diretórios dos jobs mantidos em {work_root}")
        else:
            _remove_tree(work_root)
    return records


def _remove_tree(path: Path) -> None:
    """Apaga o diretório do lote, inclusive a cópia só leitura do pacote."""
    def unlock(func, target, _):
        os.chmod(os.path.dirname(target), stat.S_IRWXU)
        func(target)
    shutil.rmtree(path, onerror=unlock)


def _changed_during_grading(submissions: list) -> list:
    """Entregas cujo arquivo mudou desde a leitura (sem isolamento, um kernel hostil poderia fazer isso)."""
    changed = []
    for s in submissions:
        if s.problem or not s.path.is_file():
            continue
        try:
            if hashlib.sha256(s.path.read_bytes()).hexdigest() != s.sha256:
                changed.append(s.relpath)
        except OSError:
            continue
    return changed


def grade(submission_paths, opts: Options) -> tuple:
    """Corrige as entregas; devolve (registros, avaliações), em ordem de caminho, e grava os relatórios."""
    from tqdm.auto import tqdm

    assignments = {a.notebook: a for a in (load_assignment(n, opts.spec_dir) for n in opts.notebooks)}
    opts.notebooks = list(assignments)
    from .. import exercises  # noqa: F401 - juízes carregados antes de qualquer kernel rodar

    submissions = sorted(select_shard(find_submissions(submission_paths), opts.shard), key=lambda s: s.relpath)
    if not submissions:
        raise SystemExit(f"Nenhuma entrega (.ipynb) em {', '.join(map(str, submission_paths))} "
                         f"(parte {opts.shard[0]}/{opts.shard[1]}).")
    out_dir = Path(opts.out_dir)
    (out_dir / "registros").mkdir(parents=True, exist_ok=True)
    isolation = probe_isolation(opts.limits.isolation)
    if isolation["isolation"] == "namespaces":
        prepare_model_cache()
    else:
        tqdm.write(f"⚠️  sem isolamento de rede e de arquivos ({isolation['detail']}): só limites de recursos, "
                   f"proxies apontando para {DEAD_PROXY} e HF_HUB_OFFLINE=1. Rode num container ou com um "
                   f"usuário que não enxergue as outras entregas (veja docs/correcao_em_lote.md).")
    previous = {} if opts.force else load_records(out_dir)
    keys = {s.relpath: execution_key(s, opts, assignments) for s in submissions}
    todo = [s for s in submissions if previous.get(s.relpath, {}).get("key") != keys[s.relpath]]
    records = {s.relpath: previous[s.relpath] for s in submissions if s not in todo}
    if records:
        tqdm.write(f"{len(records)} entrega(s) já corrigida(s) e sem mudança: puladas (use --force para refazer)")
    records.update(_execute_pending(todo, keys, assignments, opts, isolation, submission_paths))
    changed = _changed_during_grading(submissions)
    if changed:
        tqdm.write(f"⚠️  entregas alteradas durante a correção (valeu o conteúdo lido no início): "
                   f"{', '.join(changed)}")
    ordered = [records[s.relpath] for s in submissions]
    info = {**isolation, "parameters": opts.parameters, "limits": asdict(opts.limits)}
    return ordered, write_reports(ordered, assignments, out_dir, info)


def merge(inputs, out_dir: Path, spec_dir=GRADING_DIR) -> tuple:
    """Junta os registros de várias pastas de saída (--shard) e escreve os relatórios de todos."""
    out_dir = Path(out_dir)
    (out_dir / "registros").mkdir(parents=True, exist_ok=True)
    records = {}
    for folder in inputs:
        folder = Path(folder)
        if not (folder / "registros").is_dir():
            raise SystemExit(f"{folder} não tem a pasta registros/: é mesmo uma saída de `curso-corrigir run`?")
        for rel, record in load_records(folder).items():
            if rel not in records or record["graded_at"] >= records[rel]["graded_at"]:
                records[rel] = record
                executed = record.get("executed")
                if executed and (folder / executed).exists() and folder.resolve() != out_dir.resolve():
                    (out_dir / "executados").mkdir(exist_ok=True)
                    shutil.copyfile(folder / executed, out_dir / executed)
    names = sorted({n for r in records.values() for n in r.get("notebooks", [])})
    assignments = {a.notebook: a for a in (load_assignment(n, spec_dir) for n in names)}
    for rel, record in records.items():
        write_json(out_dir / "registros" / f"{hashlib.sha1(rel.encode()).hexdigest()[:16]}.json", record)
    ordered = [records[rel] for rel in sorted(records)]
    isolation = sorted({r.get("isolation", "?") for r in ordered})
    return ordered, write_reports(ordered, assignments, out_dir, {"isolation": ", ".join(isolation) or "?",
                                                                  "detail": f"junção de {len(inputs)} parte(s)"})
