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


def test_min_p_e_cache_de_prefixo_nao_passam_com_funcoes_do_pacote():
    for fn in (generation.top_p_filter, generation.top_k_filter, generation.apply_repetition_penalty,
               generation.sample_next_token):
        assert not evaluate("05.2", fn)[0], fn.__name__
    for fn in (generation.generate, generation.sample_next_token, generation.apply_repetition_penalty):
        assert not evaluate("05.3", fn)[0], fn.__name__


def test_min_p_delegado_a_biblioteca_e_recusado():
    from transformers.generation.logits_process import MinPLogitsWarper as Filtro

    def delega(logits, p_min):
        return Filtro(p_min)(None, logits.clone())

    assert torch.equal(torch.isfinite(delega(torch.tensor([[0.3, 0.1, 0.8]]), 0.9)),
                       torch.isfinite(_grading().min_p(torch.tensor([[0.3, 0.1, 0.8]]), 0.9)))  # ela resolve mesmo
    ok, msg = evaluate("05.2", delega)
    assert not ok and "MinPLogitsWarper" in msg and "você mesmo" in msg


def _escrita(model, cache_do_prefixo, sufixo, n, copiar=True, so_sufixo=True, ultima=True):
    import copy

    cache = copy.deepcopy(cache_do_prefixo) if copiar else cache_do_prefixo
    ids = sufixo
    if not so_sufixo:   # erro realista: o texto inteiro de novo a cada pedido (ignora o cache)
        return _sem_cache(model, sufixo, n)
    out = model(ids, past_key_values=cache, use_cache=True)
    novos = []
    for _ in range(n):
        token = (out.logits[:, -1:] if ultima else out.logits[:, :1]).argmax(-1)
        novos.append(int(token))
        out = model(token, past_key_values=cache, use_cache=True)
    return novos


def _sem_cache(model, sufixo, n):
    ids = torch.cat([torch.tensor([[3, 17, 42]]), sufixo], -1)
    for _ in range(n):
        ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], -1)
    return ids[0, -n:]


def test_cache_de_prefixo_erros_realistas_e_delegacao():
    from course_utils.generation import generate as gerar

    assert evaluate("05.3", _escrita)[0]
    for kwargs, hint in (({"copiar": False}, "copy.deepcopy"), ({"so_sufixo": False}, "prefixo de novo"),
                         ({"ultima": False}, "ÚLTIMA posição")):
        ok, msg = evaluate("05.3", lambda m, c, s, n, kw=kwargs: _escrita(m, c, s, n, **kw))
        assert not ok and hint in msg, msg

    def delega(model, cache, sufixo, n):
        import copy
        return gerar(model.model, sufixo, max_new_tokens=n, eos_token_id=None, past_key_values=copy.deepcopy(cache))

    ok, msg = evaluate("05.3", delega)
    assert not ok and "generate" in msg


def test_referencia_do_cache_de_prefixo_passa_no_juiz():
    assert evaluate("05.3", _grading().prefix_continuation)[0]
