"""A vigia de delegação da coleta: um caso em que a função do aluno chama uma função proibida vale zero."""

import json
import sys
import textwrap

from course_utils.grade import Case, FunctionExercise, same_value
from course_utils.grader import collect, judge
from course_utils.grader.wire import encode, encode_cases


def _exercise():
    return FunctionExercise("99.9", answer="recuo", reference=textwrap.dedent, compare=same_value,
                            cases=[Case(("  a\n  b",), 1)], forbidden=("textwrap:dedent",))


def _run(namespace):
    cases_json = json.dumps(encode_cases(_exercise()))
    return collect._answer_data(namespace, "recuo", cases_json, 5.0)["results"]


def _escrita(texto):
    linhas = texto.split("\n")
    corte = min(len(x) - len(x.lstrip()) for x in linhas if x.strip())
    return "\n".join(x[corte:] for x in linhas)


def test_delegar_por_qualquer_nome_vale_zero_e_escrever_vale():
    from textwrap import dedent as outro_nome

    [escrita] = _run({"recuo": _escrita})
    assert escrita == {"output": encode("a\nb")}
    [delegou] = _run({"recuo": lambda t: outro_nome(t)})
    assert delegou == {"delegated": ["dedent"]}
    ok, message = judge._judge_case(_exercise(), delegou, "a\nb")
    assert not ok and "dedent" in message and "escreva a regra" in message
    assert judge._judge_case(_exercise(), escrita, "a\nb")[0]


def test_desligar_a_vigia_conta_como_delegar():
    def desliga(texto):
        sys.setprofile(None)
        return textwrap.dedent(texto)

    [result] = _run({"recuo": desliga})
    assert result == {"delegated": ["sys.setprofile"]}
    assert sys.getprofile() is None


def test_trocar_a_funcao_proibida_antes_da_coleta_conta_como_delegar(monkeypatch):
    original = textwrap.dedent
    monkeypatch.setattr(textwrap, "dedent", lambda t: original(t))   # o aluno esconde a original atrás de um embrulho
    [result] = _run({"recuo": lambda t: original(t)})
    assert result == {"delegated": ["dedent"]}


def test_sem_funcoes_proibidas_os_casos_nao_mudam():
    ex = FunctionExercise("99.9", answer="recuo", reference=textwrap.dedent, cases=[Case(("x",), 1)])
    assert encode_cases(ex) == [{"args": encode(("x",)), "kwargs": encode({})}]
