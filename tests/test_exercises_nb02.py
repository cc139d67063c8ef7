"""Exercícios do notebook 02: respostas erradas realistas são recusadas com a dica e sem a resposta; as funções do
pacote de assinatura compatível (calibração, GPTQ, AWQ) tiram zero na autocorreção e nos testes ocultos."""

import importlib
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


def _com_padding(H, n, x, mascara):  # escreve a média corrente certa, mas ignora a máscara
    x = x.reshape(-1, x.shape[-1]).float()
    m = x.shape[0]
    H = torch.zeros(x.shape[1], x.shape[1]) if H is None else H
    return H * (n / (n + m)) + (2 / (n + m)) * (x.T @ x), n + m


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


def _erro_dos_pesos(W, x, bits, group_size, n_grid):  # mede o erro dos pesos, não o da saída
    xm, wm = x.abs().mean(0).clamp(min=1e-8), W.abs().mean(0).clamp(min=1e-8)
    best = None
    for k in range(n_grid):
        s = xm.pow(k / n_grid) / wm.pow(1 - k / n_grid)
        s = s / (s.max() * s.min()).sqrt()
        loss = (W - quantization.rtn_quantize(W * s, bits, group_size) / s).pow(2).sum().item()
        if best is None or loss < best[0]:
            best = (loss, s, k / n_grid)
    return best[1], best[2]


def _sem_normalizar(W, x, bits, group_size, n_grid):  # α certo, mas s sem a normalização por √(max s · min s)
    xm, wm = x.abs().mean(0).clamp(min=1e-8), W.abs().mean(0).clamp(min=1e-8)
    y, best = x @ W.T, None
    for k in range(n_grid):
        s = xm.pow(k / n_grid) / wm.pow(1 - k / n_grid)
        loss = ((x / s) @ quantization.rtn_quantize(W * s, bits, group_size).T - y).pow(2).sum().item()
        if best is None or loss < best[0]:
            best = (loss, s * 3.0, k / n_grid)      # e ainda multiplica por uma constante qualquer
    return best[1], best[2]


@pytest.mark.parametrize("ex_id, wrong, hint", [
    ("02.2", _erro_dos_pesos, "erro dos PESOS"),
    ("02.2", _sem_normalizar, "não foi normalizado"),
    ("02.1", _com_padding, "padding"),
    ("02.1", _soma, "MÉDIA"),
    ("02.3", _rtn, "isso é o RTN"),
    ("02.3", _multiplica, "divide, não multiplica"),
])
def test_02_respostas_erradas_recebem_dica_sem_a_resposta(ex_id, wrong, hint):
    ok, msg = evaluate(ex_id, wrong)
    assert not ok and hint in msg, msg
    assert not any(v in msg for v in ("0.6", "0.3", "0.4", "[[")), "a dica não pode trazer a resposta"
    assert _hidden_score(ex_id, wrong) < len(_exercise(ex_id).cases)


@pytest.mark.parametrize("ex_id, n_args", [("02.1", 4), ("02.2", 5), ("02.3", 3)])
def test_02_funcoes_do_pacote_tiram_zero(ex_id, n_args):
    functions = _package_functions(n_args)
    assert functions, "nenhuma função do pacote com assinatura compatível: o teste não testaria nada"
    for fn in functions:
        assert not evaluate(ex_id, fn)[0], fn.__name__
        assert _hidden_score(ex_id, fn) == 0, fn.__name__


def _delega_o_hessiano(H, n, x, mascara):  # filtra o padding e entrega o resto ao pacote
    return calibration.accumulate_hessian(H, n, x.reshape(-1, x.shape[-1])[mascara.reshape(-1).bool()])


def _delega_a_busca(W, x, bits, group_size, n_grid):  # a busca da seção 4 com W/mean|w| e x·mean|w| dá a mesma perda
    wm = W.abs().mean(0).clamp(min=1e-8)
    xm = x.abs().mean(0).clamp(min=1e-8)
    s, alpha, _ = awq.awq_search_scale([W / wm], x * wm, xm * wm, bits, group_size, n_grid)
    s = s / wm
    return s / (s.max() * s.min()).sqrt(), alpha


def _delega_o_laco(w, U, bits):  # o GPTQ do pacote, com H = (UᵀU)⁻¹, numa linha
    return gptq.gptq_quantize_weight(w[None], torch.linalg.inv(U.T @ U), bits, None, damp=0.0)[0]


@pytest.mark.parametrize("ex_id, delegating, called", [
    ("02.1", _delega_o_hessiano, "accumulate_hessian"),
    ("02.2", _delega_a_busca, "awq_search_scale"),
    ("02.3", _delega_o_laco, "gptq_quantize_weight"),
])
def test_02_delegar_ao_pacote_e_recusado_na_autocorrecao_e_listado_nos_testes_ocultos(ex_id, delegating, called):
    ok, msg = evaluate(ex_id, delegating)
    assert not ok and called in msg and "Escreva a regra" in msg, msg
    forbidden = _exercise(ex_id).forbidden
    assert any(f.endswith(f":{called}") for f in forbidden), forbidden
    for target in forbidden:   # cada nome proibido existe mesmo (um erro de digitação desligaria a vigia)
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name)), target


def test_02_delegar_a_busca_daria_a_resposta_certa():
    # a vigia importa: sem ela, o truque de _delega_a_busca passaria nos casos ocultos do 02.2
    assert _hidden_score("02.2", _delega_a_busca) == len(_exercise("02.2").cases)
