"""Correção em lote (course_utils.grade): testes ocultos, coleta como dado puro, entregas hostis, boletim.

As entregas de teste ficam em tests/fixtures/submissions/ (geradas por gerar.py, descritas no README.md de lá):
`04/` usa os testes ocultos de verdade do notebook 04; `hostis/` usa a tarefa 99 (sem torch, kernel rápido),
com uma entrega para cada caso ruim ou hostil da issue. O lote hostil roda uma vez (com --jobs 2) e cada
teste confere um caso.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils import grade
from course_utils.exercises import EXERCISES, evaluate
from course_utils.grade import (
    Limits,
    Options,
    ValueExercise,
    decode,
    detect_assignment,
    encode,
    encode_cases,
    evaluate_record,
    load_assignment,
    prepare_notebook,
    reference_outputs,
)
from course_utils.grader import cli, orchestrate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
SPEC_DIR = FIXTURES / "grading"
REAL_SPECS = sorted(p.stem for p in (ROOT / "grading").glob("[0-9][0-9]_*.py"))
ISOLATION = grade.probe_isolation("auto")
ISOLATED = ISOLATION["isolation"] == "namespaces"
# limites dos testes: curtos, para os laços infinitos custarem pouco; 1 thread por kernel (2 kernels, 2 núcleos)
# (a célula tem 20 s: importar course_utils.exercises passa de 8 s numa máquina de 2 núcleos ocupada)
TEST_LIMITS = dict(timeout_s=30, cell_timeout_s=20, call_timeout_s=5, memory_mb=2048, threads=1, max_procs=128,
                   scratch_mb=256)
CGROUP = ISOLATION.get("cgroup")


def _options(out, notebooks=("99",), spec_dir=SPEC_DIR, **kw):
    limits = Limits(**{**TEST_LIMITS, **kw.pop("limits", {})})
    return Options(notebooks=list(notebooks), out_dir=Path(out), limits=limits, progress=False,
                   spec_dir=Path(spec_dir), **kw)


def _collected_from_references(assignment):
    """O que a coleta devolveria de um aluno que escreveu exatamente as soluções de referência."""
    answers = {}
    for ex in assignment.exercises:
        if isinstance(ex, ValueExercise):
            answers[ex.id] = {"value": encode(ex.reference)}
        else:
            answers[ex.id] = {"results": [{"output": encode(out)} for out in reference_outputs(ex)]}
    return json.loads(json.dumps(answers))  # como chega do kernel: JSON puro


def _record(assignment, answers):
    return {"assignment": assignment.notebook, "answers": answers, "where": {}}


def _gradebook(out):
    with open(Path(out) / "notas.csv", encoding="utf-8") as f:
        return {row["aluno"]: row for row in csv.DictReader(f)}


# ======================================================================= testes ocultos e soluções de referência

@pytest.mark.parametrize("notebook", REAL_SPECS)
def test_every_reference_solution_gets_full_marks_on_its_hidden_tests(notebook):
    assignment = load_assignment(notebook)
    result = evaluate_record(_record(assignment, _collected_from_references(assignment)), {notebook: assignment})
    for ex_id, entry in result["exercises"].items():
        assert entry["points"] == entry["max"], f"{ex_id}: {entry['lines']}"
    assert result["total"] == assignment.points > 0


@pytest.mark.parametrize("notebook", REAL_SPECS)
def test_reference_solutions_also_pass_the_public_self_check(notebook):
    """Testes ocultos e autocorreção do notebook concordam sobre o que é uma resposta certa."""
    for ex in load_assignment(notebook).exercises:
        assert ex.id in EXERCISES, f"{ex.id} não está registrado em course_utils/exercises/"
        ok, message = evaluate(ex.id, ex.reference)
        assert ok, f"{ex.id}: a autocorreção recusa a referência: {message}"


def _notebook_exercises(nb):
    """{exercício: variável da resposta} pelos metadados da célula ou, sem eles, pela chamada check(...)."""
    found = {}
    for cell in nb.cells:
        meta = cell.metadata.get("curso", {})
        if meta.get("exercicio"):
            found[meta["exercicio"]] = meta.get("resposta")
        for ex_id, name in re.findall(r'check\("(\d\d\.\d+)",\s*(\w+)\)', cell.source):
            found.setdefault(ex_id, name)
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_with_exercises_has_hidden_tests_for_each_of_them(path):
    exercises = _notebook_exercises(nbformat.read(path, as_version=4))
    if not exercises:
        pytest.skip(f"{path.stem} ainda não tem exercícios")
    assert (ROOT / "grading" / f"{path.stem}.py").exists(), f"crie grading/{path.stem}.py (veja grading/README.md)"
    spec = {ex.id: ex.answer for ex in load_assignment(path.stem).exercises}
    assert spec == exercises, f"grading/{path.stem}.py não bate com as células de exercício do notebook"


def test_hidden_cases_are_edge_cases_a_wrong_answer_fails():
    """Os casos ocultos pegam erros que a referência não comete (ex.: o erro de um na janela)."""
    assignment = load_assignment("04")
    mask = next(ex for ex in assignment.exercises if ex.id == "04.2")
    wrong = [{"output": encode(mask.reference(*case.args) | torch.eye(case.args[0], dtype=torch.bool).roll(-1, 0))}
             for case in mask.cases]
    answers = {**_collected_from_references(assignment), "04.2": {"results": wrong}, "04.1": {"value": 4096}}
    result = evaluate_record(_record(assignment, answers), {assignment.notebook: assignment})
    assert result["exercises"]["04.2"]["points"] < mask.points
    assert result["exercises"]["04.1"]["points"] == 0
    text = "\n".join(line for e in result["exercises"].values() for line in e["lines"])
    assert "UMA camada" in text  # a dica da autocorreção aparece no retorno...
    assert "131072" not in text and "131.072" not in text  # ...e a resposta esperada não


def test_collect_cell_carries_hidden_inputs_but_never_expected_outputs():
    assignment = load_assignment("04")
    nb = nbformat.read(FIXTURES / "04" / "certa.ipynb", as_version=4)
    prepared, where = prepare_notebook(nb, assignment, "ab" * 16, 5.0)
    injected = "\n".join(c.source for c in prepared.cells if "curso-coleta" in c.metadata.get("tags", []))
    # uma coleta por exercício da tarefa (o 04.4 não tem célula nesta entrega antiga: a coleta diz que faltou)
    assert injected.count("_curso_coleta.collect(") == len(assignment.exercises) and "abab" in injected
    attention = next(ex for ex in assignment.exercises if ex.id == "04.3")
    assert json.dumps(encode_cases(attention)) in injected  # as entradas ocultas vão para o kernel...
    for expected in reference_outputs(attention):
        assert repr(expected) not in injected  # ...as saídas esperadas, não
    assert "32 * 4096" not in injected and "131072" not in injected
    # coletado logo depois da célula de cada exercício; o que a entrega não tem (04.4) é coletado no fim, sem célula
    assert where == {"04.1": 3, "04.2": 4, "04.3": 5, "04.4": None}


# ======================================================================= peças: dados puros, tarefa, preparação

@pytest.mark.parametrize("value", [
    3, 2.5, float("nan"), float("-inf"), "texto", None, True, [1, (2, 3)], {"a": 1, 2: [3]}, Ellipsis,
    torch.arange(6).reshape(2, 3), torch.tensor([[True, False]]), torch.randn(2, 2).to(torch.bfloat16),
    torch.tensor(0.5, dtype=torch.float64), torch.zeros(0, 3, dtype=torch.int8),
])
def test_codec_round_trip_through_json(value):
    back = decode(json.loads(json.dumps(encode(value))))
    if isinstance(value, torch.Tensor):
        assert back.dtype == value.dtype and back.shape == value.shape and torch.equal(back, value)
    elif isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value and type(back) is type(value)


def test_codec_keeps_only_plain_data():
    import numpy as np

    class Sneaky(int):  # uma subclasse que mentiria numa comparação
        def __eq__(self, other):
            return True

    assert type(decode(json.loads(json.dumps(encode(Sneaky(3)))))) is int
    assert decode(encode(np.float32(1.5))) == 1.5
    back = decode(json.loads(json.dumps(encode(np.arange(4, dtype=np.int16).reshape(2, 2)))))
    assert back.dtype == np.int16 and back.tolist() == [[0, 1], [2, 3]]
    assert repr(decode(encode(object()))) == "<object>"
    assert repr(decode({"__tensor__": "save", "data": [], "shape": []})) == "<objeto>"  # dtype fora da lista
    assert "tensor" in repr(decode(encode(torch.zeros(grade.MAX_ELEMENTS + 1))))  # grande demais: só o nome


def test_code_inputs_run_only_when_they_come_from_the_instructor(tmp_path):
    flag = tmp_path / "executou"
    hostile = {"__code__": f"open({str(flag)!r}, 'w')"}
    assert isinstance(decode(hostile), grade.Opaque) and not flag.exists()  # dado do kernel: nunca avaliado
    module = decode(encode(grade.Code("torch.nn.Linear(2, 3, device='meta')")), trusted=True)
    assert isinstance(module, torch.nn.Linear) and module.weight.device.type == "meta"
    meta = decode(json.loads(json.dumps(encode(torch.empty(2, 5, dtype=torch.float16, device="meta")))))
    assert meta.device.type == "meta" and meta.dtype == torch.float16 and meta.shape == (2, 5)


def test_detect_assignment():
    a99 = load_assignment("99", SPEC_DIR)
    a04 = load_assignment("04")
    both = {a99.notebook: a99, a04.notebook: a04}
    certa = nbformat.read(FIXTURES / "hostis" / "certa.ipynb", as_version=4)
    assert detect_assignment(certa, both, "x.ipynb") == (a99.notebook, None)
    name, why = detect_assignment(certa, {a04.notebook: a04}, "x.ipynb")
    assert name is None and "99.1" in why and "outra tarefa" in why
    blank = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert detect_assignment(blank, {a04.notebook: a04}, "x.ipynb") == (a04.notebook, None)  # uma tarefa só
    assert detect_assignment(blank, both, "04_entrega.ipynb") == (a04.notebook, None)  # pelo nome do arquivo
    name, why = detect_assignment(blank, both, "entrega.ipynb")
    assert name is None and "não deu para saber" in why


def test_prepare_notebook_strips_what_the_student_could_forge():
    assignment = load_assignment("99", SPEC_DIR)
    nb = nbformat.read(FIXTURES / "hostis" / "falso_aprovado.ipynb", as_version=4)
    nb.cells[4].metadata["curso_correcao"] = {"coleta": "99.1"}  # uma célula do aluno se passando por coleta
    nb.cells[4].metadata["tags"] = ["curso-coleta"]
    prepared, _ = prepare_notebook(nb, assignment, "cd" * 16, 5.0)
    student = [c for c in prepared.cells if c.cell_type == "code" and "coleta" not in c.metadata["curso_correcao"]]
    assert all(c.outputs == [] for c in student)
    assert all("curso-coleta" not in c.metadata.get("tags", []) for c in student)
    assert sum("coleta" in c.metadata.get("curso_correcao", {}) for c in prepared.cells) == 3


@pytest.mark.parametrize("text,expected", [("3/4", (3, 4)), ("1/1", (1, 1))])
def test_shard_parsing(text, expected):
    assert cli._parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b"])
def test_shard_parsing_rejects_nonsense(text):
    with pytest.raises(Exception, match="K/N"):
        cli._parse_shard(text)


def test_select_shard_splits_every_submission_exactly_once():
    subs = grade.find_submissions([FIXTURES / "hostis"])
    parts = [grade.select_shard(subs, (k, 3)) for k in (1, 2, 3)]
    names = sorted(s.relpath for part in parts for s in part)
    assert names == sorted(s.relpath for s in subs) and all(parts)


def test_gradebook_and_html_neutralize_student_text(tmp_path):
    assignment = load_assignment("99", SPEC_DIR)
    record = {"file": "=HYPERLINK(x).ipynb", "student": "=HYPERLINK(\"http://x\")<script>", "sha256": "", "key": "",
              "notebooks": [assignment.notebook], "assignment": assignment.notebook, "status": "errors",
              "reason": "<img src=x onerror=alert(1)>", "problems": ["@SUM(1)"], "answers": {}, "where": {},
              "seconds": 0, "graded_at": "2024"}
    grade.write_reports([record], {assignment.notebook: assignment}, tmp_path, {"isolation": "x"})
    row = next(iter(_gradebook(tmp_path).values()))
    assert row["aluno"].startswith("'=HYPERLINK") and row["observacoes"].startswith("'=")  # texto, não fórmula
    page = (tmp_path / "relatorio.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "<img src=x" not in page and "&lt;script&gt;" in page
    assert len(list((tmp_path / "feedback").glob("*.md"))) == 1


# ======================================================================= o sandbox do kernel

@pytest.mark.skipif(not ISOLATED, reason=f"sem namespaces aqui: {ISOLATION['detail']}")
def test_sandbox_hides_folders_cuts_network_and_processes(tmp_path):
    secret = tmp_path / "segredo"
    secret.mkdir()
    (secret / "gabarito.txt").write_text("42")
    code = ("import os, socket\n"
            f"print(os.path.isdir({str(secret)!r}) and os.listdir({str(secret)!r}), os.getpid(), "
            "len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=3)\nexcept OSError as e:\n"
            "    print('sem rede', e.errno)\n"
            "server = socket.create_server(('127.0.0.1', 0))\n"
            "socket.create_connection(server.getsockname(), timeout=3)\nprint('localhost ok')\n"
            f"try:\n    open({str(secret / 'novo.txt')!r}, 'w').write('x')\nexcept OSError as e:\n"
            "    print('não escreveu', e.strerror)\n")
    done = subprocess.run([sys.executable, "-m", "course_utils.grader.sandbox", "--isolate", "--hide", str(secret),
                           "--hide", str(Path.home()), "--expose", sys.base_prefix, "--expose", sys.prefix,
                           "--memory-mb", "1024", "--scratch", str(tmp_path / "k"),
                           "--", sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listing, pid, processes = done.stdout.splitlines()[0].rsplit(" ", 2)
    assert listing in ("[]", "False") and pid == "1" and int(processes) <= 2
    assert "sem rede" in done.stdout and "localhost ok" in done.stdout  # só o loopback do próprio namespace
    assert "não escreveu" in done.stdout
    assert sorted(p.name for p in secret.iterdir()) == ["gabarito.txt"]


def test_sandbox_limits_memory_even_without_isolation():
    code = "blocos = []\ntry:\n    while True:\n        blocos.append(bytearray(2**26))\nexcept MemoryError:\n    " \
           "print('MemoryError com', len(blocos) * 64, 'MiB')"
    done = subprocess.run([sys.executable, "-m", "course_utils.grader.sandbox", "--memory-mb", "512", "--",
                           sys.executable,
                           "-c", code], capture_output=True, text=True, timeout=60)
    assert "MemoryError com" in done.stdout, done.stderr
    assert int(done.stdout.split()[2]) < 512


def test_a_dead_executor_still_keeps_what_was_collected(tmp_path):
    """Se o processo executor morre, o corretor aproveita o notebook salvo e o canal autenticado da coleta."""
    import _hashlib

    from course_utils.grader.wire import cases_digest, seal

    key = b"k" * 32
    cell = nbformat.v4.new_code_cell("# coleta")
    cell.metadata["curso_correcao"] = {"coleta": "99.1"}
    cell.metadata["papermill"] = {"start_time": "2024", "end_time": "2024", "duration": 0.1}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(tmp_path / "saida.ipynb"))
    import marshal

    body = marshal.dumps(("ef" * 16, 1, "99.1", cases_digest(None), {"value": 42}))
    (tmp_path / "coleta.bin").write_bytes(seal(_hashlib.hmac_new(key, digestmod="sha256"), body) + b"falsa\n")
    (tmp_path / "job.json").write_text("{ quebrado", encoding="utf-8")  # o executor vai falhar ao ler
    result, error = orchestrate.run_worker(tmp_path, 120, key, 10)
    assert error.startswith("o executor falhou (código 1)")
    assert [(p["exercise"], p["data"]) for p in result["payloads"]] == [("99.1", '{"value": 42}')]
    assert result["refused"] == 1  # a linha sem assinatura não vale
    assert result["collections"] == [{"exercise": "99.1", "state": "ok", "ename": ""}]


# ======================================================================= o lote hostil (uma execução, vários testes)

HOSTILE_EXPECTED = {
    # entrega: (situação, pontos, trecho do motivo/problemas)
    "certa": ("ok", 8, ""),
    "em_branco": ("ok", 0, ""),
    "parcial": ("ok", 6, ""),
    "nao_json": ("inválida", 0, "não é um JSON válido"),
    "json_nao_notebook": ("inválida", 0, "não é um notebook"),
    "outra_tarefa": ("outra tarefa", 0, "04.1, 04.2, 04.3"),
    "celulas_apagadas": ("ok", 2, ""),
    "erro_de_sintaxe": ("erros nas células", 8, "SyntaxError"),
    "excecao_cedo": ("erros nas células", 8, "falhou logo no começo"),
    "laco_infinito": ("erros nas células", 8, f"passou de {TEST_LIMITS['cell_timeout_s']} s e foi interrompida"),
    "laco_sem_interrupcao": ("interrompida", 2, "tempo total esgotado"),
    "kernel_morre": ("interrompida", 2, "o kernel morreu na célula de código nº 4"),
    "bomba_de_memoria": ("erros nas células", 8, "MemoryError"),
    "saida_50mb": ("ok", 8, "saída cortada"),
    "falso_aprovado": ("coleta forjada", 0, "imitou o corretor"),
    "monkeypatch": ("ok", 0, ""),
    "arquivos_de_fora": ("erros nas células", 0, "Read-only file system"),
    # issue 16: forjar a coleta
    "troca_o_que_a_coleta_usa": ("ok", 0, ""),
    "troca_a_coleta": ("coleta forjada", 0, "terminou sem publicar pelo canal do corretor"),
    "escreve_no_canal": ("coleta forjada", 8, "sem assinatura válida"),
    "chama_a_coleta": ("coleta forjada", 6, "99.1: a coleta apareceu mais de uma vez"),
    "le_o_curso": ("ok", 0, ""),
    # issue 16: entradas estranhas e limites
    "meio_emoji": ("ok", 8, ""),
    "escreve_no_sistema": ("ok", 8, ""),
    "filhos_gulosos": ("ok", 8, "matou"),
    "muitos_processos": ("ok", 8, ""),
    "display_atualizado": ("ok", 8, "saída cortada"),
    "mil_celulas": ("interrompida", 2, "tempo total esgotado"),
}
# só rodam isoladas: sem namespaces (ou sem cgroup) elas de fato leriam o curso, escreveriam no sistema...
NEEDS_ISOLATION = {"arquivos_de_fora", "le_o_curso", "escreve_no_sistema", "filhos_gulosos", "muitos_processos"}
NEEDS_CGROUP = {"filhos_gulosos"}


def _runs_here(name):
    return (name not in NEEDS_ISOLATION or ISOLATED) and (name not in NEEDS_CGROUP or CGROUP)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, monkeypatch_module):
    """Corrige uma cópia de tests/fixtures/submissions/hostis com --jobs 2 e devolve (entregas, saída, resultado)."""
    subs = tmp_path_factory.mktemp("entregas")
    out = tmp_path_factory.mktemp("correcao")
    for path in (FIXTURES / "hostis").glob("*.ipynb"):
        if _runs_here(path.stem):  # sem isolamento, algumas de fato fariam o estrago (veja os testes delas)
            shutil.copy(path, subs / path.name)
    # "arquivos_de_fora" e "le_o_curso" tentam estes caminhos (um aluno que soubesse onde ficam as coisas)
    monkeypatch_module.setenv("CURSO_ALVOS", f"{subs}:{out}:{SPEC_DIR}")
    monkeypatch_module.setenv("CURSO_CHECKOUT", str(ROOT))
    records, evaluations = grade.grade([subs], _options(out, jobs=2))
    return subs, out, {Path(r["file"]).stem: (r, ev) for r, ev in zip(records, evaluations, strict=True)}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("name", sorted(HOSTILE_EXPECTED))
def test_each_bad_submission_becomes_a_clear_row(hostile, name):
    if not _runs_here(name):
        pytest.skip(f"sem namespaces/cgroup aqui ({ISOLATION['detail']}): a entrega faria o estrago de verdade")
    _, out, results = hostile
    status, points, reason = HOSTILE_EXPECTED[name]
    record, evaluation = results[name]
    explained = " ".join([record["reason"], *record["problems"]])
    assert grade.STATUS[record["status"]] == status, explained
    assert evaluation["total"] == points, evaluation
    assert reason in explained
    row = _gradebook(out)[name]
    assert float(row["total"]) == points and row["situacao"] == (status if status not in ("inválida", "outra tarefa")
                                                                 else "sem entrega válida")
    if status != "ok":
        assert reason in row["observacoes"]
    feedback = (out / "feedback" / f"{name}.md").read_text(encoding="utf-8")
    assert f"# Correção: {name}" in feedback


def test_no_submission_is_lost_and_no_score_is_forged(hostile):
    subs, out, results = hostile
    assert sorted(results) == sorted(p.stem for p in subs.glob("*.ipynb"))
    book = _gradebook(out)
    assert sorted(book) == sorted(results)
    honest = {"certa": 8, "parcial": 6, "erro_de_sintaxe": 8, "excecao_cedo": 8, "laco_infinito": 8,
              "bomba_de_memoria": 8, "saida_50mb": 8, "celulas_apagadas": 2, "kernel_morre": 2,
              "laco_sem_interrupcao": 2, "meio_emoji": 8, "escreve_no_sistema": 8, "filhos_gulosos": 8,
              "muitos_processos": 8, "display_atualizado": 8, "mil_celulas": 2, "escreve_no_canal": 8,
              "chama_a_coleta": 8, "troca_a_coleta": 8}
    for name, row in book.items():
        assert float(row["total"]) <= honest.get(name, 0), f"{name} ganhou pontos que não escreveu"


def test_forged_output_and_monkeypatching_do_not_change_the_grade(hostile):
    _, out, results = hostile
    record, _ = results["falso_aprovado"]
    assert all(record["answers"][ex] == {"forged": True} for ex in ("99.1", "99.2", "99.3"))
    executed = nbformat.read(out / results["monkeypatch"][0]["executed"], as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "✅ Exercício 99.1: correto!" in printed  # a autocorreção do aluno foi enganada...
    assert results["monkeypatch"][1]["total"] == 0  # ...a nota não


def test_output_is_truncated_and_the_batch_keeps_going(hostile):
    _, out, results = hostile
    executed = out / results["saida_50mb"][0]["executed"]
    assert executed.stat().st_size < 2 * 2**20  # 50 MB impressos, menos de 2 MB guardados
    assert "saída cortada pelo corretor" in executed.read_text(encoding="utf-8")


@pytest.mark.skipif(not ISOLATED, reason=f"sem namespaces aqui: {ISOLATION['detail']}")
def test_files_outside_the_working_directory_are_out_of_reach(hostile):
    subs, out, results = hostile
    for path in subs.glob("*.ipynb"):  # nenhuma entrega foi apagada ou trocada
        assert path.read_bytes() == (FIXTURES / "hostis" / path.name).read_bytes(), path.name
    assert not (out / "registros" / "forjado.json").exists()
    assert "arquivos_de_fora,100" not in (out / "notas.csv").read_text(encoding="utf-8")
    executed = nbformat.read(out / results["arquivos_de_fora"][0]["executed"], as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "colei" not in printed  # o arquivo de testes ocultos estava escondido
    assert "Read-only file system" in " ".join(results["arquivos_de_fora"][0]["problems"])
    assert not (Path.home() / ".curso-correcao-invasao").exists()
    assert results["arquivos_de_fora"][1]["total"] == 0


def test_html_report_summarizes_the_batch(hostile):
    _, out, results = hostile
    page = (out / "relatorio.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "99.2" in page and "coleta forjada" in page
    assert f"{len(results)} entrega(s)" in page


def _printed(out, record):
    executed = nbformat.read(out / record["executed"], as_version=4)
    return "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def test_tampering_with_what_the_collection_uses_changes_nothing(hostile):
    """Trocar display, encode, marshal e os.write no kernel não muda o que a coleta publica (a variável vazia
    continua vazia); trocar a própria coleta, escrever no canal ou chamar a coleta vira 'coleta forjada'."""
    _, out, results = hostile
    record, evaluation = results["troca_o_que_a_coleta_usa"]
    assert "troquei display" in _printed(out, record)
    assert record["answers"]["99.1"] == {"missing": True} and evaluation["total"] == 0
    for name in ("troca_a_coleta", "escreve_no_canal", "chama_a_coleta"):
        assert results[name][0]["status"] == "forged", name
    assert "linhas falsas escritas: 0" not in _printed(out, results["escreve_no_canal"][0])
    assert all(results["troca_a_coleta"][0]["answers"][ex] == {"forged": True} for ex in ("99.1", "99.2", "99.3"))


@pytest.mark.skipif(not ISOLATED, reason=f"sem namespaces aqui: {ISOLATION['detail']}")
def test_the_kernel_sees_no_part_of_the_course_checkout(hostile):
    _, out, results = hostile
    printed = _printed(out, results["le_o_curso"][0])
    assert "nada do curso" in printed and "colei" not in printed, printed
    assert results["le_o_curso"][1]["total"] == 0


@pytest.mark.skipif(not ISOLATED, reason=f"sem namespaces aqui: {ISOLATION['detail']}")
def test_everything_outside_the_scratch_space_is_read_only_and_tmp_is_private_and_capped(hostile):
    _, out, results = hostile
    printed = _printed(out, results["escreve_no_sistema"][0])
    for target in ("/etc", "/usr/local", "/opt", "/usr/lib", "/var"):
        assert f"{target}/curso-invasao: Read-only file system" in printed, printed
        assert not Path(f"{target}/curso-invasao").exists()
    assert "No space left on device" in printed  # /tmp + /var/tmp + /dev/shm: 256 MB no total
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not Path(folder, "curso-invasao-grande").exists()  # sumiu com a entrega
    assert results["escreve_no_sistema"][0]["sandbox"]["uid"].startswith("uid próprio") or os.getuid() != 0


@pytest.mark.skipif(not (ISOLATED and CGROUP), reason=f"sem cgroup aqui: {ISOLATION.get('cgroup_detail')}")
def test_memory_and_processes_are_limited_for_the_whole_tree(hostile):
    _, out, results = hostile
    greedy, _ = results["filhos_gulosos"]
    assert "-9" in _printed(out, greedy)  # 4 filhos de 700 MB com 2048 MB para a entrega inteira
    assert greedy["sandbox"]["cgroup"] == CGROUP
    many, _ = results["muitos_processos"]
    printed = _printed(out, many)
    assert "fork parou em" in printed and int(printed.split("fork parou em")[1].split()[0]) < 128


def test_display_updates_and_the_whole_notebook_are_capped(hostile):
    _, out, results = hostile
    assert (out / results["display_atualizado"][0]["executed"]).stat().st_size < 2 * 2**20  # eram 19 MB


def test_the_total_time_limit_bounds_wall_time_whatever_the_shape(hostile):
    _, _, results = hostile
    record, _ = results["mil_celulas"]
    assert record["seconds"] <= TEST_LIMITS["timeout_s"] + 15, record["seconds"]


def test_the_report_says_which_limits_applied(hostile):
    _, out, _ = hostile
    page = (out / "relatorio.html").read_text(encoding="utf-8")
    assert "Limites que valeram" in page and "RLIMIT_AS" in page
    assert ("cgroup v" in page) if CGROUP else ("sem cgroup" in page)
    assert "data:image/png;base64," in page and "href='feedback/certa.md'" in page


def _odd_batch(tmp_path):
    """Uma pasta de entregas com um caminho de cada tipo estranho; devolve (pasta, caminhos que viram linha)."""
    subs = tmp_path / "entregas"
    subs.mkdir()
    certa, parcial = FIXTURES / "hostis" / "certa.ipynb", FIXTURES / "hostis" / "parcial.ipynb"
    raw = os.fsencode(subs)
    shutil.copy(certa, os.fsdecode(raw + b"/jos\xe9.ipynb"))  # nome em latin-1 (zip do Windows)
    shutil.copy(parcial, subs / "nova\nlinha.ipynb")
    shutil.copy(certa, subs / "ana b.ipynb")
    (subs / "ana_b").mkdir()
    shutil.copy(parcial, subs / "ana_b" / "entrega.ipynb")
    (subs / "quebrado.ipynb").symlink_to(subs / "nao_existe.ipynb")
    (subs / "copiao.ipynb").symlink_to(subs / "ana b.ipynb")  # o link para a entrega de outra pessoa
    (subs / "caio").mkdir()
    (subs / "caio" / "entrega.ipynb").symlink_to(subs / "ana_b" / "entrega.ipynb")
    os.mkfifo(subs / "fila.ipynb")
    (subs / "eva").symlink_to(tmp_path)  # uma pasta inteira de fora
    (subs / "leia-me.txt").write_text("não é entrega")
    rows = 9
    if os.getuid() != 0:  # como root, chmod 000 não impede a leitura
        shutil.copy(certa, subs / "trancado.ipynb")
        (subs / "trancado.ipynb").chmod(0)
        rows += 1
    return subs, rows


def test_every_path_found_becomes_exactly_one_row(tmp_path):
    subs, rows = _odd_batch(tmp_path)
    out = tmp_path / "saida"
    records, evaluations = grade.grade([subs], _options(out, jobs=2))
    assert len(records) == rows, sorted(r["file"] for r in records)
    by_file = {r["file"]: (r, ev) for r, ev in zip(records, evaluations, strict=True)}
    assert by_file["jos\\xe9.ipynb"][1]["total"] == 8 and by_file["nova\\x0alinha.ipynb"][1]["total"] == 6
    assert by_file["ana b.ipynb"][1]["total"] == 8 and by_file["ana_b/entrega.ipynb"][1]["total"] == 6
    assert "link simbólico quebrado" in by_file["quebrado.ipynb"][0]["reason"]
    for refused in ("copiao.ipynb", "caio/entrega.ipynb", "eva"):
        assert "fora da pasta do aluno" in by_file[refused][0]["reason"], refused
        assert by_file[refused][1]["total"] == 0
    assert "não é um arquivo comum" in by_file["fila.ipynb"][0]["reason"]
    book = _gradebook(out)
    assert len(book) == rows  # uma linha por aluno, e aqui cada caminho é de um aluno
    assert book["ana b"]["identica_a"] == "jos\\xe9" and book["jos\\xe9"]["identica_a"] == "ana b"
    assert float(book["ana b"]["total"]) == 8  # marcada, não zerada
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert "ana_b.md" in feedback and len(feedback) == rows  # "ana b" não toma o arquivo de "ana_b"
    assert "# Correção: ana_b" in (out / "feedback" / "ana_b.md").read_text(encoding="utf-8")
    assert len(list((out / "registros").glob("*.json"))) == rows


def test_unreadable_file_becomes_a_row_not_a_crash(tmp_path, monkeypatch):
    """EIO ao ler (disco ruim): a entrega vira uma linha com o motivo; o resto do lote segue."""
    from course_utils.grader import submissions

    (tmp_path / "ruim.ipynb").write_text("{}")
    shutil.copy(FIXTURES / "hostis" / "certa.ipynb", tmp_path / "boa.ipynb")
    real_read = os.read

    def failing_read(fd, n):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("ruim.ipynb"):
            raise OSError(5, "Input/output error")
        return real_read(fd, n)

    monkeypatch.setattr(submissions.os, "read", failing_read)
    found = {s.relpath: s for s in submissions.find_submissions([tmp_path])}
    assert found["ruim.ipynb"].problem == "não deu para ler o arquivo (erro de entrada e saída do disco)"
    assert found["boa.ipynb"].problem == "" and found["boa.ipynb"].data.startswith(b"{")


# ======================================================================= retomar, --force, --shard e merge

def test_resume_skips_unchanged_submissions_and_force_redoes_them(tmp_path, monkeypatch):
    subs, out = tmp_path / "entregas", tmp_path / "saida"
    subs.mkdir()
    for name in ("certa", "nao_json", "parcial"):
        shutil.copy(FIXTURES / "hostis" / f"{name}.ipynb", subs)
    grade.grade([subs], _options(out, jobs=2))
    calls = []
    original = grade.execute_submission
    monkeypatch.setattr(orchestrate, "execute_submission",
                        lambda sub, *a, **k: calls.append(sub.relpath) or original(sub, *a, **k))
    records, _ = grade.grade([subs], _options(out, jobs=2))
    assert calls == [] and len(records) == 3
    shutil.copy(FIXTURES / "hostis" / "em_branco.ipynb", subs / "parcial.ipynb")  # a aluna reenviou
    records, evaluations = grade.grade([subs], _options(out, jobs=2))
    assert calls == ["parcial.ipynb"]
    assert float(_gradebook(out)["parcial"]["total"]) == 0
    grade.grade([subs], _options(out, force=True, jobs=2))
    assert sorted(calls[1:]) == ["certa.ipynb", "nao_json.ipynb", "parcial.ipynb"]


def test_changing_points_regrades_without_running_again(tmp_path, monkeypatch):
    subs, out, spec_dir = tmp_path / "entregas", tmp_path / "saida", tmp_path / "grading"
    subs.mkdir()
    shutil.copytree(SPEC_DIR, spec_dir)
    shutil.copy(FIXTURES / "hostis" / "certa.ipynb", subs)
    grade.grade([subs], _options(out, spec_dir=spec_dir))
    spec = spec_dir / "99_tarefa_exemplo.py"
    spec.write_text(spec.read_text(encoding="utf-8").replace('Check("valor", 2,', 'Check("valor", 5,'))
    monkeypatch.setattr(orchestrate, "execute_submission", lambda *a, **k: pytest.fail("não precisava executar"))
    grade.grade([subs], _options(out, spec_dir=spec_dir))
    assert float(_gradebook(out)["certa"]["99.1"]) == 5


def test_shards_and_merge_give_the_same_gradebook_as_one_run(tmp_path):
    subs = tmp_path / "entregas"
    subs.mkdir()
    for student, name in (("ana", "certa"), ("bia", "parcial"), ("caio", "nao_json"), ("davi", "em_branco")):
        (subs / student).mkdir()
        shutil.copy(FIXTURES / "hostis" / f"{name}.ipynb", subs / student / "tarefa.ipynb")
    for k in (1, 2):
        grade.grade([subs], _options(tmp_path / f"parte{k}", shard=(k, 2), jobs=2))
    parts = [set(_gradebook(tmp_path / f"parte{k}")) for k in (1, 2)]
    assert parts[0] | parts[1] == {"ana", "bia", "caio", "davi"} and not parts[0] & parts[1]
    assert grade.main(["merge", str(tmp_path / "parte1"), str(tmp_path / "parte2"), "--out",
                       str(tmp_path / "final"), "--spec-dir", str(SPEC_DIR)]) == 0
    book = _gradebook(tmp_path / "final")
    assert {name: float(row["total"]) for name, row in book.items()} == {"ana": 8, "bia": 6, "caio": 0, "davi": 0}
    assert len(list((tmp_path / "final" / "feedback").glob("*.md"))) == 4
    assert len(list((tmp_path / "final" / "executados").glob("*.ipynb"))) == 3


def test_without_isolation_the_limits_still_hold(tmp_path):
    subs = tmp_path / "entregas"
    subs.mkdir()
    for name in ("certa", "bomba_de_memoria"):
        shutil.copy(FIXTURES / "hostis" / f"{name}.ipynb", subs)
    records, evaluations = grade.grade([subs], _options(tmp_path / "saida", jobs=2, limits={"isolation": "nenhum"}))
    by_name = {Path(r["file"]).stem: (r, ev) for r, ev in zip(records, evaluations, strict=True)}
    assert by_name["certa"][1]["total"] == 8
    assert "MemoryError" in " ".join(by_name["bomba_de_memoria"][0]["problems"])
    assert by_name["bomba_de_memoria"][1]["total"] == 8


# ======================================================================= tarefas de verdade, linha de comando

def test_cli_grades_the_mini_04_with_the_real_hidden_tests(tmp_path):
    out = tmp_path / "saida"
    code = grade.main(["run", "-n", "04", str(FIXTURES / "04"), "--out", str(out), "--jobs", "2", "--threads", "1",
                       "--no-progress", "--cell-timeout", "60", "--memory-mb", "4096", "-p", "SEED", "3"])
    assert code == 0
    book = _gradebook(out)
    assert {name: float(row["total"]) for name, row in book.items()} == {"certa": 11, "em_branco": 0, "parcial": 5.5}
    feedback = (out / "feedback" / "parcial.md").read_text(encoding="utf-8")
    assert "erro de um" in feedback  # a dica da autocorreção para a máscara com <= no lugar de <
    executed = nbformat.read(next((out / "executados").glob("*.ipynb")), as_version=4)
    assert "SEED = 3" in "".join(c.source for c in executed.cells)  # o parâmetro injetado chegou


def test_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^curso-corrigir = "course_utils\.(grade|grader\.cli):main"$', text, re.M)


RIGHT_04_4 = """def despejar_em_blocos(keys, values, sinks, window, block, inv_freq):
    import math
    from course_utils.streaming import shift_rotary
    n = keys.shape[-2]
    if n <= sinks + window:
        return keys, values
    removed = min(math.ceil((n - sinks - window) / block) * block, n - sinks)
    kept_keys = shift_rotary(keys[..., sinks + removed:, :], -removed, inv_freq)
    return (torch.cat([keys[..., :sinks, :], kept_keys], dim=-2),
            torch.cat([values[..., :sinks, :], values[..., sinks + removed:, :]], dim=-2))

check("04.4", despejar_em_blocos)"""


@pytest.mark.notebook
def test_a_real_course_notebook_filled_in_by_a_student_gets_full_marks(tmp_path):
    """O notebook 04 inteiro, com as respostas preenchidas, corrigido com cargas pequenas (injetadas)."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from gerar import RIGHT_04
    finally:
        sys.path.remove(str(FIXTURES))
    nb = nbformat.read(ROOT / "notebooks" / "04_janela_deslizante.ipynb", as_version=4)
    answers = {**RIGHT_04, "04.4": RIGHT_04_4}
    filled = 0
    for cell in nb.cells:
        ex_id = cell.metadata.get("curso", {}).get("exercicio")
        if ex_id:
            cell.source, filled = answers[ex_id], filled + 1
    assert filled == len(answers)
    (tmp_path / "entregas").mkdir()
    nbformat.write(nb, str(tmp_path / "entregas" / "aluna.ipynb"))
    # as cargas pequenas do próprio notebook (SMOKE): com outras, as afirmações dele não precisam valer
    opts = _options(tmp_path / "saida", notebooks=["04"], spec_dir=ROOT / "grading", parameters={"SMOKE": True},
                    limits={"timeout_s": 900, "cell_timeout_s": 600, "memory_mb": 8192})
    records, evaluations = grade.grade([tmp_path / "entregas"], opts)
    assert records[0]["status"] == "ok", (records[0]["reason"], records[0]["problems"])
    assert evaluations[0]["total"] == evaluations[0]["max"] == sum(ex.points for ex in load_assignment("04").exercises)
