"""Testes do registro de resultados (course_utils.results) e da autocorreção (course_utils.exercises)."""

import nbformat
import numpy as np
import pytest
import torch

from course_utils import exercises, results
from course_utils.exercises import EXERCISES, check, evaluate
from course_utils.results import RESULT_MIME, read_results, record, recorded


@pytest.fixture
def fresh_results(monkeypatch):
    """Cada teste começa com o registro vazio (ele é global no processo)."""
    monkeypatch.setattr(results, "_RESULTS", {})


# ---------------------------------------------------------------- record / recorded


@pytest.mark.parametrize(
    "value,expected,kind",
    [
        (np.float32(1.5), 1.5, float),
        (np.float64(2.25), 2.25, float),
        (np.int64(3), 3, int),
        (torch.tensor(2.5), 2.5, float),
        (torch.tensor(7), 7, int),
        (np.bool_(True), True, bool),
        (False, False, bool),
        (12, 12, int),
        ("int8", "int8", str),
    ],
    ids=["np.float32", "np.float64", "np.int64", "torch float", "torch int", "np.bool_", "bool", "int", "str"],
)
def test_record_converte_escalares_para_tipos_do_python(fresh_results, value, expected, kind):
    assert record("chave", value) is None
    stored = recorded()["chave"]
    assert stored == expected and type(stored) is kind


def test_recorded_devolve_tudo_e_o_ultimo_valor_vence(fresh_results, capsys):
    record("ppl_fp32", 10.5)
    record("ppl_int8", np.float32(10.75))
    record("ppl_fp32", 11.0)
    assert recorded() == {"ppl_fp32": 11.0, "ppl_int8": 10.75}
    snapshot = recorded()
    snapshot["outra"] = 1  # é uma cópia: mexer nela não muda o registro
    assert "outra" not in recorded()
    assert "registrado: ppl_fp32 = 11" in capsys.readouterr().out  # fora do Jupyter, imprime


@pytest.mark.parametrize(
    "value", [float("nan"), np.nan, float("inf"), torch.tensor(float("-inf"))],
    ids=["nan", "np.nan", "inf", "torch -inf"],
)
def test_record_rejeita_valores_nao_finitos(fresh_results, value):
    with pytest.raises(ValueError, match="não finito"):
        record("ppl", value)
    assert "ppl" not in recorded()


@pytest.mark.parametrize(
    "value,type_name", [([1, 2], "list"), ({"a": 1}, "dict"), (None, "NoneType"), ((1.0,), "tuple")]
)
def test_record_rejeita_listas_e_outros_tipos_com_mensagem_clara(fresh_results, value, type_name):
    with pytest.raises(TypeError, match=f"record aceita número, bool ou texto; recebeu {type_name}"):
        record("x", value)
    assert recorded() == {}


@pytest.mark.parametrize("key", ["", None, 3])
def test_record_exige_chave_de_texto(fresh_results, key):
    with pytest.raises(TypeError, match="chave"):
        record(key, 1.0)


# ---------------------------------------------------------------- read_results


def _result_output(key, value):
    return nbformat.v4.new_output(
        "display_data",
        data={"text/plain": f"📌 registrado: {key} = {value}", RESULT_MIME: {"key": key, "value": value}},
    )


def _notebook():
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("record('ppl', ...)")
    first.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="carregando...\n"),
        _result_output("ppl", 35.4),
        _result_output("tok_s", 12),
    ]
    plain = nbformat.v4.new_code_cell("print(1)")
    plain.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=2)]
    last = nbformat.v4.new_code_cell("record('ppl', ...)")
    last.outputs = [_result_output("ppl", 36.0), _result_output("ok", True)]
    nb.cells = [nbformat.v4.new_markdown_cell("# Título"), first, plain, last]
    return nb


def test_read_results_de_um_objeto_notebook_ultimo_valor_vence():
    nb = _notebook()
    nbformat.validate(nb)
    assert read_results(nb) == {"ppl": 36.0, "tok_s": 12, "ok": True}


def test_read_results_de_um_arquivo(tmp_path):
    path = tmp_path / "executado.ipynb"
    nbformat.write(_notebook(), str(path))
    assert read_results(path) == {"ppl": 36.0, "tok_s": 12, "ok": True}


def test_notebook_sem_resultados_da_dicionario_vazio():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("texto")]
    assert read_results(nb) == {}


def test_record_dentro_do_jupyter_publica_o_mime_que_read_results_le(fresh_results, monkeypatch):
    """record -> saída display_data no notebook -> read_results, com um IPython falso."""
    import IPython
    import IPython.display

    published = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: published.append((data, raw)))
    record("ppl_int8", np.float64(24.77))
    record("passou", True)
    assert len(published) == 2 and all(raw for _, raw in published)
    assert "24.77" in published[0][0]["text/plain"]

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("...")
    cell.outputs = [nbformat.v4.new_output("display_data", data=data) for data, _ in published]
    nb.cells = [cell]
    nbformat.validate(nb)
    assert read_results(nb) == {"ppl_int8": 24.77, "passou": True}


# ---------------------------------------------------------------- exercícios: respostas certas independentes
# O registro, o check e o evaluate valem para todo exercício; os do notebook 01 servem de exemplo. As respostas
# certas das funções vêm dos testes ocultos (grading/), e as erradas típicas de cada uma ficam em
# tests/test_exercises_nb01.py.

from course_utils.grade import load_assignment  # noqa: E402

Q4_1_BITS = 4 + (16 + 16) / 32  # código de 4 bits + escala fp16 + mínimo fp16, por grupo de 32
REFERENCES_01 = {ex.id: ex.reference for ex in load_assignment("01_quantizacao_ptq").exercises}


def raises_inside(*args):
    scales = {}
    return args, scales["linha 0"]  # KeyError, como um erro de digitação do aluno


CORRECT = {"01.1": Q4_1_BITS, "01.2": REFERENCES_01["01.2"], "01.3": REFERENCES_01["01.3"]}


def test_os_exercicios_do_notebook_01_estao_registrados():
    assert {"01.1", "01.2", "01.3"} <= set(EXERCISES)
    for ex in EXERCISES.values():
        assert ex.title and ex.expects and callable(ex.judge)


@pytest.mark.parametrize("id", ["01.1", "01.2", "01.3"])
def test_resposta_certa_passa(id):
    ok, message = evaluate(id, CORRECT[id])
    assert ok, message
    assert "correto" in message


def test_respostas_numericas_aceitam_numpy_e_int():
    assert evaluate("01.1", np.float32(5.0))[0]
    assert evaluate("01.1", 5)[0]
    assert evaluate("01.1", np.float64(Q4_1_BITS))[0]


@pytest.mark.parametrize(
    "id,answer,hint",
    [
        ("01.1", 4.0, "escala"),
        ("01.1", 4 + 16 / 32, "faltou"),
        ("01.1", 7.25, "Refaça a conta"),
    ],
)
def test_resposta_errada_falha_com_dica_sem_revelar_a_resposta(id, answer, hint):
    ok, message = evaluate(id, answer)
    assert not ok
    assert hint in message
    assert "correto" not in message
    for revealed in ("5.0", "3.16", "3.17"):
        assert revealed not in message


@pytest.mark.parametrize(
    "id,answer",
    [("01.1", "5"), ("01.1", [5.0]), ("01.1", True)],
)
def test_tipo_errado_falha_com_mensagem_e_nao_levanta(id, answer):
    ok, message = evaluate(id, answer)
    assert not ok
    assert message.startswith("Tipo errado")


class ExplodingNumber(float):
    """Passa por número, mas explode quando convertido (simula código do aluno que falha)."""

    def __float__(self):
        raise ArithmeticError("conta quebrada")


@pytest.mark.parametrize("id,answer,exc_name", [
    ("01.2", raises_inside, "KeyError"),
    ("01.3", lambda *args: 1 / 0, "ZeroDivisionError"),
    ("01.1", ExplodingNumber(5.0), "ArithmeticError"),
])
def test_excecao_no_codigo_do_aluno_vira_mensagem_e_nao_levanta(id, answer, exc_name):
    ok, message = evaluate(id, answer)
    assert not ok
    assert f"Sua resposta levantou {exc_name}" in message
    assert EXERCISES[id].expects in message


@pytest.mark.parametrize("id", ["01.1", "01.2", "01.3"])
@pytest.mark.parametrize("answer", [None, Ellipsis], ids=["None", "..."])
def test_sem_resposta(id, answer):
    ok, message = evaluate(id, answer)
    assert not ok
    assert message.startswith("Ainda sem resposta")
    assert EXERCISES[id].expects in message


@pytest.mark.parametrize("id", sorted(EXERCISES))
def test_nenhuma_resposta_estranha_quebra_o_corretor(id):
    odd = [None, "", [], {}, (), object(), lambda: None, lambda w: None,
           float("nan"), torch.tensor(1.0), torch.zeros(3), -1]
    for answer in odd:
        ok, message = evaluate(id, answer)
        assert ok is False and isinstance(message, str) and message


def test_exercicio_desconhecido_lista_os_disponiveis(capsys):
    ok, message = evaluate("99.9", 1.0)
    assert not ok
    assert "'99.9'" in message
    for id in ("01.1", "01.2", "01.3"):
        assert id in message
    assert check("99.9", 1.0) is None
    assert capsys.readouterr().out.startswith("❌")


# ---------------------------------------------------------------- check imprime


@pytest.mark.parametrize("id", ["01.1", "01.2", "01.3"])
def test_check_imprime_uma_linha_com_resultado(capsys, id):
    assert check(id, CORRECT[id]) is None
    out = capsys.readouterr().out
    assert out.startswith(f"✅ Exercício {id} ({EXERCISES[id].title}):")
    assert out.count("\n") == 1

    assert check(id, None) is None
    out = capsys.readouterr().out
    assert out.startswith(f"❌ Exercício {id}") and "Ainda sem resposta" in out


def test_check_com_resposta_que_levanta_nao_quebra_a_celula(capsys):
    assert check("01.2", lambda *args: args[0].nao_existe()) is None
    out = capsys.readouterr().out
    assert out.startswith("❌") and "AttributeError" in out


def test_exercicio_novo_registrado_funciona_com_check(monkeypatch, capsys):
    monkeypatch.setattr(exercises, "EXERCISES", dict(EXERCISES))

    @exercises.exercise("99.1", "teste", "o número 42")
    def _judge(answer):
        return exercises._judge_number(answer, 42, 1e-9, [(24, "inverteu os dígitos")])

    assert exercises.evaluate("99.1", 24) == (False, "inverteu os dígitos")
    assert exercises.check("99.1", 42.0) is None
    assert capsys.readouterr().out.startswith("✅ Exercício 99.1 (teste)")


def test_escalares_torch_e_numpy_valem_como_numero():
    import numpy as np

    from course_utils.exercises import evaluate

    assert evaluate("01.1", torch.tensor(5.0))[0]
    assert evaluate("01.1", np.float64(5.0))[0]
    ok, message = evaluate("01.1", torch.tensor([5.0, 1.0]))
    assert not ok and message.startswith("Tipo errado")


def test_record_rejeita_array_com_varios_elementos():
    import numpy as np

    with pytest.raises(TypeError, match="um valor só"):
        record("varios", np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="um valor só"):
        record("varios", torch.ones(3))


def test_exercicios_do_notebook_05():
    # os casos de cada exercício do 05 estão em tests/test_exercises_nb05.py
    assert evaluate("05.1", 4.0)[0]
    ok, msg = evaluate("05.1", 2.0)
    assert not ok and "fator 2" in msg
    ok, msg = evaluate("05.2", lambda logits, p: 1 / 0)
    assert not ok and "ZeroDivisionError" in msg


# ---------------------------------------------------------------- notebook 04

def _window_mask(n, w):
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return (j <= i) & (i - j < w)


def test_exercicios_do_notebook_04():
    assert evaluate("04.1", 32 * 4095)[0]   # cada camada anda W-1 tokens para trás
    ok, msg = evaluate("04.1", 32 * 4096)
    assert not ok and "W-1" in msg
    ok, msg = evaluate("04.1", 4096)
    assert not ok and "UMA camada" in msg and "131" not in msg
    assert evaluate("04.2", _window_mask)[0]
    ok, msg = evaluate("04.2", lambda n, w: torch.ones(n, n, dtype=torch.bool).tril())
    assert not ok and "não confere" in msg
    ok, msg = evaluate("04.2", lambda n, w: _window_mask(n, w + 1))
    assert not ok and "erro de um" in msg
    ok, msg = evaluate("04.2", lambda n, w: torch.ones(n, n, dtype=torch.bool))
    assert not ok and "futuro" in msg
    ok, msg = evaluate("04.2", lambda n, w: _window_mask(n, w).float())
    assert not ok and "bool" in msg
    assert evaluate("04.3", lambda a: a[:, :, 1:, 0].mean())[0]
    assert evaluate("04.3", lambda a: float(a[:, :, 1:, 0].mean()))[0]
    ok, msg = evaluate("04.3", lambda a: a[..., 0].mean())
    assert not ok and "primeira consulta" in msg
    ok, msg = evaluate("04.3", lambda a: a[:, :, 1:, 0].sum())
    assert not ok
    for id, answer in (("04.1", "131k"), ("04.2", 3), ("04.3", [0.5]), ("04.2", lambda n, w: 1 / 0)):
        ok, msg = evaluate(id, answer)
        assert not ok and msg
