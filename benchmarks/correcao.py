"""Custo da correção em lote: sobrecarga sobre o papermill puro e ganho do --jobs 2.

    .venv/bin/python benchmarks/correcao.py [--submissions 4] [--repeats 3] [--work-tokens 1024]
    .venv/bin/python benchmarks/correcao.py --real 04_janela_deslizante --repeats 1   # um notebook do curso

O notebook medido é a tarefa 04 em miniatura dos testes (tests/fixtures/submissions/04/certa.ipynb) com uma
célula de trabalho típica do curso: carrega o modelo de referência e mede a perplexidade de WORK_TOKENS tokens.
- sobrecarga = tempo de `python -m course_utils.grade run` com UMA entrega (tudo: partida do corretor, kernel
  isolado, coleta, julgamento, relatórios) / tempo de `papermill` puro do MESMO notebook; as duas medidas usam
  1 thread (OMP_NUM_THREADS=1) e se alternam, e vale a mediana de --repeats;
- vazão = tempo do lote de --submissions entregas com --jobs 1 / tempo com --jobs 2 (--threads 1 nos dois).
Com --real, a sobrecarga é medida num notebook do curso inteiro, com SMOKE=True nos dois lados (para o 04, as
respostas dos exercícios são preenchidas como as de uma aluna). Grava build/benchmarks/correcao.json.
Os números dependem da máquina estar quieta: o JSON guarda a carga média (loadavg) antes e depois.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "submissions" / "04" / "certa.ipynb"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
WORK_CELL = """from course_utils.data import text_token_ids
from course_utils.measure import perplexity
from course_utils.models import load_model, load_tokenizer
tokenizer = load_tokenizer()
model = load_model(device="cpu")
ids = text_token_ids(tokenizer, "en", WORK_TOKENS)
print(f"perplexidade em {WORK_TOKENS} tokens: {perplexity(model, ids, window=256, stride=128, progress=False):.2f}")"""


def bench_notebook(work_tokens: int):
    """A tarefa 04 em miniatura, com as respostas certas e uma célula de trabalho depois das importações."""
    nb = nbformat.read(FIXTURE, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nWORK_TOKENS = {work_tokens}"
    imports = nb.cells.index(params) + 1
    nb.cells.insert(imports + 1, new_code_cell(WORK_CELL))
    return nb


def real_notebook(name: str):
    """Um notebook do curso como uma aluna entregaria (04: com as respostas; os outros: o esqueleto)."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    if name.startswith("04"):
        sys.path.insert(0, str(FIXTURE.parent.parent))
        from gerar import RIGHT_04

        for cell in nb.cells:
            ex_id = cell.metadata.get("curso", {}).get("exercicio")
            if ex_id in RIGHT_04:
                cell.source = RIGHT_04[ex_id]
    return nb


def timed(cmd) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"falhou: {' '.join(map(str, cmd))}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def grade_cmd(notebook: str, folder: Path, out: Path, jobs: int, smoke: bool) -> list:
    cmd = [sys.executable, "-m", "course_utils.grade", "run", "-n", notebook, str(folder), "--out", str(out),
           "--force", "--jobs", str(jobs), "--threads", "1", "--no-progress"]
    return cmd + (["--smoke"] if smoke else [])


def worker_seconds(out: Path) -> list:
    return [json.loads(p.read_text())["seconds"] for p in (out / "registros").glob("*.json")]


def overhead(nb, notebook: str, repeats: int, smoke: bool, tmp: Path) -> dict:
    """Medianas de papermill puro x corretor (uma entrega), alternados."""
    single = tmp / "uma"
    single.mkdir()
    nbformat.write(nb, str(single / "aluna.ipynb"))
    bare_cmd = [sys.executable, "-m", "papermill", str(single / "aluna.ipynb"), str(tmp / "puro.ipynb"),
                "--no-progress-bar", "--cwd", str(tmp)] + (["-p", "SMOKE", "True"] if smoke else [])
    bare, graded, inside = [], [], []
    timed(bare_cmd)  # aquecimento: cache de disco, conversão do modelo offline
    for r in range(repeats):
        bare.append(timed(bare_cmd))
        graded.append(timed(grade_cmd(notebook, single, tmp / f"saida{r}", 1, smoke)))
        inside += worker_seconds(tmp / f"saida{r}")
        print(f"  repetição {r + 1}: papermill {bare[-1]:.1f} s, corretor {graded[-1]:.1f} s "
              f"(executor {inside[-1]:.1f} s)")
    b, g = statistics.median(bare), statistics.median(graded)
    return {"papermill_s": round(b, 2), "grade_s": round(g, 2), "worker_s": round(statistics.median(inside), 2),
            "overhead": round(g / b, 3), "runs_papermill_s": [round(x, 2) for x in bare],
            "runs_grade_s": [round(x, 2) for x in graded]}


def throughput(nb, submissions: int, tmp: Path) -> dict:
    batch = tmp / "lote"
    batch.mkdir()
    for k in range(submissions):
        nbformat.write(nb, str(batch / f"aluno{k + 1}.ipynb"))
    seconds = {}
    for jobs in (1, 2):
        seconds[jobs] = timed(grade_cmd("04", batch, tmp / f"lote_jobs{jobs}", jobs, False))
        print(f"  --jobs {jobs}: {submissions} entregas em {seconds[jobs]:.1f} s")
    return {"submissions": submissions, "jobs1_s": round(seconds[1], 2), "jobs2_s": round(seconds[2], 2),
            "speedup": round(seconds[1] / seconds[2], 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=4, help="entregas no teste de vazão (padrão: 4)")
    parser.add_argument("--repeats", type=int, default=3, help="repetições da sobrecarga (padrão: 3)")
    parser.add_argument("--work-tokens", type=int, default=1024, help="tokens da célula de trabalho (1024)")
    parser.add_argument("--real", help="mede a sobrecarga neste notebook do curso (SMOKE=True), não na miniatura")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from course_utils.environment import environment_info
    from course_utils.grade import probe_isolation

    result = {"environment": environment_info(), "isolation": probe_isolation("auto")["isolation"],
              "loadavg_before": os.getloadavg()}
    tmp = Path(tempfile.mkdtemp(prefix="bench-correcao-"))
    try:
        if args.real:
            print(f"sobrecarga no notebook {args.real} (SMOKE=True), {args.repeats} repetição(ões):")
            result["real"] = {"notebook": args.real, **overhead(real_notebook(args.real), args.real, args.repeats,
                                                               True, tmp)}
        else:
            nb = bench_notebook(args.work_tokens)
            print(f"sobrecarga na tarefa 04 em miniatura + perplexidade de {args.work_tokens} tokens:")
            result["overhead"] = {"work_tokens": args.work_tokens, **overhead(nb, "04", args.repeats, False, tmp)}
            print(f"vazão com {args.submissions} entregas:")
            result["throughput"] = throughput(nb, args.submissions, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_after"] = os.getloadavg()
    for key in ("overhead", "real"):
        if key in result:
            r = result[key]
            print(f"sobrecarga: corretor {r['grade_s']} s / papermill {r['papermill_s']} s = {r['overhead']} "
                  f"(meta <= 1,3)")
    if "throughput" in result:
        print(f"vazão: --jobs 2 = {result['throughput']['speedup']}x o --jobs 1 (meta >= 1,6)")
    print(f"carga média antes/depois: {result['loadavg_before'][0]:.1f} / {result['loadavg_after'][0]:.1f}")
    out = ROOT / "build" / "benchmarks" / ("correcao_real.json" if args.real else "correcao.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print("gravado em", out)


if __name__ == "__main__":
    main()
