"""Exercícios do notebook 02: respostas erradas realistas são recusadas com a dica e sem a resposta; as funções do
pacote de assinatura compatível (calibração, GPTQ, AWQ) tiram zero na autocorreção e nos testes ocultos."""

import importlib.util
import inspect
from pathlib import Path

import pytest
import torch

from course_utils import awq, calibration, gptq, quantization
from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _grading():
    spec = importlib.util.spec_from_file_location("grading_02", ROOT / "grading" / "02_awq_gptq.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exercise(ex_id):
    return next(e for e in _grading().EXERCISES if e.id == ex_id)


def _hidden_score(ex_id, fn):
    ex, passed = _exercise(ex_id), 0
    for case in ex.cases:
        try:
            passed += ex.compare(fn(*case.args), ex.reference(*case.args))[0]
        except Exception:
            pass
    return passed


def _package_functions(n_args):
    out = []
    for module in (awq, calibration, gptq, quantization):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = list(inspect.signature(fn).parameters.values())
            required = sum(p.default is p.empty and p.kind <= p.POSITIONAL_OR_KEYWORD for p in params)
            if required <= n_args <= len(params):
                out.append(fn)
    return out


def _com_padding(H, n, x, mascara):  # ignora a máscara: o acúmulo do Hessiano de sempre
    return calibration.accumulate_hessian(H, n, x)


def _soma(H, n, x, mascara):  # filtra o padding mas soma em vez de tirar a média
    x = x.reshape(-1, x.shape[-1]).float()[mascara.reshape(-1).bool()]
    H = torch.zeros(x.shape[1], x.shape[1]) if H is None else H
    return H + 2 * x.T @ x, n + x.shape[0]


def _rtn(w, U, bits):  # quantiza cada coluna sem espalhar o erro
    s = w.abs().max() / (2 ** (bits - 1) - 1)
    return torch.round(w / s) * s


def _multiplica(w, U, bits):  # e_j = (w_j − q_j) · U_jj em vez de dividir
    w, qmax = w.clone(), 2 ** (bits - 1) - 1
    s, q = w.abs().max() / qmax, torch.zeros_like(w)
    for j in range(w.numel()):
        q[j] = torch.clamp(torch.round(w[j] / s), -qmax, qmax) * s
        w[j + 1:] -= (w[j] - q[j]) * U[j, j] * U[j, j + 1:]
    return q


@pytest.mark.parametrize("ex_id, wrong, hint", [
    ("02.1", _com_padding, "padding"),
    ("02.1", _soma, "MÉDIA"),
    ("02.3", _rtn, "isso é o RTN"),
    ("02.3", _multiplica, "divide, não multiplica"),
])
def test_02_respostas_erradas_recebem_dica_sem_a_resposta(ex_id, wrong, hint):
    ok, msg = evaluate(ex_id, wrong)
    assert not ok and hint in msg, msg
    assert "0.6" not in msg and "[[" not in msg, "a dica não pode trazer a resposta"
    assert _hidden_score(ex_id, wrong) < len(_exercise(ex_id).cases)


@pytest.mark.parametrize("ex_id, n_args", [("02.1", 4), ("02.3", 3)])
def test_02_funcoes_do_pacote_tiram_zero(ex_id, n_args):
    functions = _package_functions(n_args)
    assert functions, "nenhuma função do pacote com assinatura compatível: o teste não testaria nada"
    for fn in functions:
        assert not evaluate(ex_id, fn)[0], fn.__name__
        assert _hidden_score(ex_id, fn) == 0, fn.__name__
