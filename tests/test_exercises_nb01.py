"""Exercícios do notebook 01: respostas erradas realistas são recusadas com a dica e sem a resposta; as funções do
pacote de assinatura compatível tiram zero na autocorreção e nos testes ocultos."""

import importlib.util
import inspect
from pathlib import Path

import pytest
import torch

from course_utils import quantization
from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _grading():
    spec = importlib.util.spec_from_file_location("grading_01", ROOT / "grading" / "01_quantizacao_ptq.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hidden_score(ex_id, fn):
    ex = next(e for e in _grading().EXERCISES if e.id == ex_id)
    passed = 0
    for case in ex.cases:
        try:
            passed += ex.compare(fn(*case.args), ex.reference(*case.args))[0]
        except Exception:
            pass
    return passed


def _package_functions(n_args):
    """As funções públicas de course_utils.quantization que aceitam `n_args` argumentos posicionais."""
    out = []
    for name, fn in inspect.getmembers(quantization, inspect.isfunction):
        if name.startswith("_") or fn.__module__ != quantization.__name__:
            continue
        params = inspect.signature(fn).parameters.values()
        required = sum(p.default is p.empty for p in params)
        if required <= n_args <= len(params):
            out.append(fn)
    return out


def _sem_recorte(w, p):  # esquece o p: o absmax por canal da seção 2
    scale = w.abs().amax(dim=1, keepdim=True) / 127
    return torch.round(w / scale).to(torch.int8), scale


def _sem_clamp(w, p):  # recorta a escala mas não limita os códigos (int8 dá a volta)
    scale = torch.quantile(w.abs(), p, dim=1, keepdim=True) / 127
    return torch.round(w / scale).to(torch.int8), scale


def _nivel_de_baixo(w, niveis, bloco):  # o primeiro nível abaixo, não o mais próximo
    g = w.reshape(-1, bloco)
    absmax = g.abs().amax(dim=1)
    idx = torch.searchsorted(niveis, (g / absmax[:, None]).contiguous(), right=True) - 1
    return idx.clamp(min=0).reshape(w.shape).to(torch.uint8), absmax


def _absmax_do_tensor(w, niveis, bloco):  # um absmax só para o tensor inteiro
    absmax = w.abs().max()
    idx = (w.reshape(-1, 1) / absmax - niveis).abs().argmin(-1)
    return idx.reshape(w.shape).to(torch.uint8), absmax.repeat(w.numel() // bloco)


@pytest.mark.parametrize("ex_id, wrong, hint", [
    ("01.2", _sem_recorte, "quantil p"),
    ("01.2", _sem_clamp, "[-127, 127]"),
    ("01.3", _nivel_de_baixo, "MAIS PRÓXIMO"),
    ("01.3", _absmax_do_tensor, "DO BLOCO"),
])
def test_01_respostas_erradas_recebem_dica_sem_a_resposta(ex_id, wrong, hint):
    ok, msg = evaluate(ex_id, wrong)
    assert not ok and hint in msg, msg
    assert "0.0629" not in msg and "[2, 0, 3" not in msg and "0.0188" not in msg, "a dica não pode trazer a resposta"
    assert _hidden_score(ex_id, wrong) < len(next(e for e in _grading().EXERCISES if e.id == ex_id).cases)


@pytest.mark.parametrize("ex_id, n_args", [("01.2", 2), ("01.3", 3)])
def test_01_funcoes_do_pacote_tiram_zero(ex_id, n_args):
    functions = _package_functions(n_args)
    assert functions, "nenhuma função do pacote com assinatura compatível: o teste não testaria nada"
    for fn in functions:
        assert not evaluate(ex_id, fn)[0], fn.__name__
        assert _hidden_score(ex_id, fn) == 0, fn.__name__
