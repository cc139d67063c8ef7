"""Exercício 04.4 (despejo em blocos): a referência passa; respostas erradas realistas recebem a dica; o pacote não."""

import importlib.util
import math
from pathlib import Path

import torch

from course_utils import streaming
from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _grading():
    spec = importlib.util.spec_from_file_location("grading_04", ROOT / "grading" / "04_janela_deslizante.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _evict(keys, values, sinks, window, block, inv_freq, rotate=-1, in_blocks=True, keep_sinks=True):
    n = keys.shape[-2]
    if n <= sinks + window:
        return keys, values
    excess = n - sinks - window
    removed = math.ceil(excess / block) * block if in_blocks else excess
    s = sinks if keep_sinks else 0
    recent = slice(sinks + removed, None)
    k = keys[..., recent, :]
    if rotate:
        k = streaming.shift_rotary(k, rotate * removed, inv_freq)
    return torch.cat([keys[..., :s, :], k], -2), torch.cat([values[..., :s, :], values[..., recent, :]], -2)


def test_referencia_oculta_passa_na_autocorrecao():
    assert evaluate("04.4", _grading().evict_in_blocks)[0]


def test_04_4_respostas_erradas_recebem_dica():
    cases = [
        (dict(rotate=0), "gire-as"),
        (dict(rotate=+1), "sentido errado"),
        (dict(in_blocks=False), "em blocos"),
        (dict(keep_sinks=False), "sinks"),
    ]
    for kwargs, hint in cases:
        ok, msg = evaluate("04.4", lambda *a, kw=kwargs: _evict(*a, **kw))
        assert not ok and hint in msg, (kwargs, msg)


def test_04_4_funcoes_do_pacote_nao_passam():
    for fn in (streaming.evict_to_sinks_and_window, streaming.shift_rotary, streaming.stepwise_nll):
        assert not evaluate("04.4", fn)[0], fn.__name__
