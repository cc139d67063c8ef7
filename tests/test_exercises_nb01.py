"""Exercícios do notebook 01: a resposta certa passa; respostas erradas realistas são recusadas com a dica e sem a
resposta; uma resposta que delega a uma função de quantização pronta é recusada mesmo dando a saída certa.

(Que nenhuma função do pacote passa sozinha em um exercício de função é conferido para todos os notebooks em
tests/test_exercise_standard.py.)"""

import importlib.util
from pathlib import Path

import pytest
import torch

from course_utils.exercises import evaluate
from course_utils.quantization import absmax_quantize as quantizar_pronto

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


def _recorte_delegado(w, p):  # recorta à mão, mas arredonda com a função do pacote: a saída está certa
    limite = torch.quantile(w.abs(), p, dim=1, keepdim=True)
    q, escala = quantizar_pronto(torch.maximum(torch.minimum(w, limite), -limite), 8, "channel")
    return q, escala


def _tabela_com_absmax_do_pacote(w, niveis, bloco):  # pega o absmax do bloco de absmax_quantize
    _, escala = quantizar_pronto(w.reshape(1, -1), 8, "group", bloco)
    absmax = escala.reshape(-1) * 127
    idx = (w.reshape(-1, bloco)[:, :, None] / absmax[:, None, None] - niveis).abs().argmin(-1)
    return idx.reshape(w.shape).to(torch.uint8), absmax


def _tabela_com_bitsandbytes(w, niveis, bloco):  # chama o quantizador do bitsandbytes e depois faz a conta certa
    import bitsandbytes.functional as F

    F.quantize_4bit(w.reshape(1, -1).float().contiguous(), blocksize=64)
    return _grading().table_quantize(w, niveis, bloco)


@pytest.mark.parametrize("ex_id", ["01.2", "01.3"])
def test_01_a_referencia_passa_na_autocorrecao_e_nos_casos_ocultos(ex_id):
    ex = next(e for e in _grading().EXERCISES if e.id == ex_id)
    ok, msg = evaluate(ex_id, ex.reference)
    assert ok, msg
    assert _hidden_score(ex_id, ex.reference) == len(ex.cases)


@pytest.mark.parametrize("ex_id, delegating, called", [
    ("01.2", _recorte_delegado, "absmax_quantize"),
    ("01.3", _tabela_com_absmax_do_pacote, "absmax_quantize"),
    ("01.3", _tabela_com_bitsandbytes, "quantize_4bit"),
])
def test_01_resposta_que_delega_e_recusada_mesmo_certa(ex_id, delegating, called):
    import bitsandbytes.functional  # noqa: F401 - como no notebook, que já o importou na seção 5

    ok, msg = evaluate(ex_id, delegating)
    assert not ok
    assert called in msg and "implementar, não delegar" in msg, msg


def test_01_2_delegacao_daria_a_saida_certa():
    """A resposta delegada do teste acima tem a saída da referência: só a vigilância das chamadas a recusa."""
    reference = _grading().absmax_clipped
    w = _grading().weights(16, 48, seed=101, outlier=(3, 7, 25.0))
    assert _grading().same_quantization(_recorte_delegado(w, 0.99), reference(w, 0.99))[0]
