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


# ---------------------------------------------------------------- delegar não passa (autocorreção e testes ocultos)

def _mascara_delegada(n, w):
    from transformers.masking_utils import sliding_window_causal_mask_function as outro_nome

    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return outro_nome(w)(0, 0, i, j)


def _mascara_escrita(n, w):
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return (j <= i) & (i - j < w)


class _Layer:
    def __init__(self, keys, values):
        self.keys, self.values = keys, values


class _Cache:
    def __init__(self, keys, values):
        self.layers = [_Layer(keys, values)]


def _despejo_delegado(keys, values, sinks, window, block, inv_freq):
    from course_utils.streaming import evict_to_sinks_and_window as despeja

    n = keys.shape[-2]
    removed = max(0, math.ceil((n - sinks - window) / block) * block)
    cache = _Cache(keys, values)
    despeja(cache, sinks, n - removed, inv_freq)
    return cache.layers[0].keys, cache.layers[0].values


def _despejo_escrito(keys, values, sinks, window, block, inv_freq):
    return _evict(keys, values, sinks, window, block, inv_freq)


def test_delegar_ao_transformers_ou_ao_pacote_e_recusado_na_autocorrecao():
    # as respostas delegadas dão a saída certa: só a vigilância das chamadas as recusa
    assert torch.equal(_mascara_delegada(7, 3), _mascara_escrita(7, 3))
    for exercise_id, delegated, written, name in (("04.2", _mascara_delegada, _mascara_escrita, "sliding_window"),
                                                   ("04.4", _despejo_delegado, _despejo_escrito, "evict_to_sinks")):
        ok, msg = evaluate(exercise_id, delegated)
        assert not ok and name in msg and "Escreva a regra" in msg, msg
        ok, msg = evaluate(exercise_id, written)
        assert ok, msg


def _hidden_test(exercise_id, function):
    """O caminho do corretor: entradas codificadas, a função chamada como no kernel do aluno, o julgamento."""
    import json
    import sys

    from course_utils.grader import collect
    from course_utils.grader.judge import judge_function
    from course_utils.grader.wire import encode_cases

    exercise = next(ex for ex in _grading().EXERCISES if ex.id == exercise_id)
    data = collect._answer_data({"resposta": function}, "resposta", json.dumps(encode_cases(exercise)), 10.0)
    assert sys.getprofile() is None, "a vigilância deve terminar com a chamada"
    points, lines = judge_function(exercise, data)
    return points, exercise.points, "\n".join(lines)


def test_testes_ocultos_recusam_a_delegacao_e_aceitam_a_funcao_escrita():
    for exercise_id, delegated, written in (("04.2", _mascara_delegada, _mascara_escrita),
                                            ("04.4", _despejo_delegado, _despejo_escrito)):
        points, total, lines = _hidden_test(exercise_id, delegated)
        assert points == 0 and "escreva a regra" in lines and "já resolve o exercício" in lines, lines
        points, total, lines = _hidden_test(exercise_id, written)
        assert points == total, lines


def test_04_1_alcance_e_l_vezes_w_menos_1_e_l_vezes_w_recebe_dica():
    assert evaluate("04.1", 32 * 4095)[0]
    ok, msg = evaluate("04.1", 32 * 4096)
    assert not ok and "W-1" in msg and "131" not in msg
    assert _grading().MISTRAL_RECEPTIVE_FIELD == 32 * 4095
