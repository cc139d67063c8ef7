"""Exercícios do notebook 05: respostas erradas realistas recebem a dica sem a resposta; o pacote não passa."""

import importlib.util
from pathlib import Path

import torch

from course_utils import generation
from course_utils.exercises import evaluate

ROOT = Path(__file__).resolve().parent.parent


def _grading():
    spec = importlib.util.spec_from_file_location("grading_05", ROOT / "grading" / "05_kv_cache.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_referencias_passam_e_erros_de_conta_recebem_dica():
    g = _grading()
    assert evaluate("05.1", g.KV_GQA_BATCH_GIB)[0]
    ok, msg = evaluate("05.1", g.KV_GQA_BATCH_GIB * 4)   # 32 cabeças KV em vez de 8
    assert not ok and "cabeças KV" in msg and "4" not in msg.replace("4 sequências", "")
    ok, msg = evaluate("05.1", g.KV_GQA_BATCH_GIB / 4)   # esqueceu o lote
    assert not ok and "lote" in msg


def test_min_p_erros_realistas():
    def absoluto(logits, p_min):   # limite absoluto, não relativo ao máximo
        probs = torch.softmax(logits, -1)
        return logits.masked_fill(probs < p_min, float("-inf"))

    def maximo_global(logits, p_min):   # um máximo para o lote inteiro
        probs = torch.softmax(logits, -1)
        return logits.masked_fill(probs < p_min * probs.max(), float("-inf"))

    def devolve_probs(logits, p_min):
        probs = torch.softmax(logits, -1)
        return probs.masked_fill(probs < p_min * probs.max(-1, keepdim=True).values, float("-inf"))

    for wrong, hint in ((absoluto, "relativo"), (maximo_global, "por linha"), (devolve_probs, "não devem mudar")):
        ok, msg = evaluate("05.2", wrong)
        assert not ok and hint in msg, msg
    assert evaluate("05.2", _grading().min_p)[0]


def test_min_p_e_passo_de_decode_nao_passam_com_funcoes_do_pacote():
    for fn in (generation.top_p_filter, generation.top_k_filter, generation.apply_repetition_penalty,
               generation.sample_next_token):
        assert not evaluate("05.2", fn)[0], fn.__name__
    for fn in (generation.generate, generation.sample_next_token, generation.apply_repetition_penalty):
        assert not evaluate("05.3", fn)[0], fn.__name__


def test_passo_de_decode_erros_realistas():
    def sem_cache(model, token, cache):
        return model(token).logits[:, -1]

    def posicao_zero(model, token, cache):
        return model(token, past_key_values=cache, use_cache=True, position_ids=torch.zeros_like(token)).logits[:, -1]

    def probabilidades(model, token, cache):
        return torch.softmax(model(token, past_key_values=cache, use_cache=True).logits[:, -1], -1)

    for wrong, hint in ((sem_cache, "past_key_values"), (posicao_zero, "posição"), (probabilidades, "não probab")):
        ok, msg = evaluate("05.3", wrong)
        assert not ok and hint in msg, msg
    assert evaluate("05.3", _grading().decode_step)[0]
