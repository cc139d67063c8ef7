"""Juízes dos exercícios do notebook 05 (cache KV), registrados com @exercise.

Os casos públicos são dados (entradas e saídas esperadas) e propriedades: a solução não mora no pacote do aluno.
"""

import torch

from . import _judge_number, delegation_message, exercise, watch_calls


@exercise("05.1", "GiB do cache KV de um modelo com GQA, em lote", "um número (GiB, float)")
def _kv_gqa_batch(answer):
    # 32 camadas, 8 cabeças KV, dimensão 128, fp16, lote 4, 8.192 tokens (conferido à mão: 4,0 GiB)
    expected = 4.0
    return _judge_number(answer, expected, 0.01, [
        (expected / 2, "faltou o fator 2: o cache guarda as chaves E os valores."),
        (expected * 2, "fp16 tem 2 bytes por elemento, não 4."),
        (expected / 4, "o lote multiplica o cache: cada uma das 4 sequências tem o seu."),
        (expected * 4, "o cache depende das cabeças KV (8), não das de consulta (32)."),
        (expected * 2**30 / 1e9, "isso está em GB (10^9 bytes); pedimos GiB (2^30 bytes)."),
    ])


# casos públicos do 05.2: (logits, p_min, máscara dos tokens que ficam)
_MIN_P_CASES = [
    ([[0.30, 0.11, 0.76, 0.31, -0.30], [0.43, 0.38, -0.28, -0.35, 0.05]], 0.9, [[0, 0, 1, 0, 0], [1, 1, 0, 0, 0]]),
    ([[-1.64, 0.79, 1.80, -2.78, -0.33, 0.57, -1.28, -1.79], [1.85, -1.07, -2.32, -0.92, 1.42, 2.03, 0.46, 2.18]], 0.1,
     [[0, 1, 1, 0, 1, 1, 0, 0], [1, 0, 0, 0, 1, 1, 1, 1]]),
    ([[-1.58, -0.32, 0.17, 2.30, 0.96, -0.66], [-0.83, -0.61, -0.14, 0.75, 1.64, -1.06],
      [-0.26, -0.25, 0.50, 0.26, -1.64, 0.16]], 0.5, [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]]),
    ([[-1.16, -9.69, 1.17, -1.85, 4.75, -1.29, 4.88, 3.04, -0.74, -3.59]], 0.05, [[0, 0, 0, 0, 1, 0, 1, 1, 0, 0]]),
]


def _min_p_hint(logits, p_min, kept):
    probs = torch.softmax(logits, -1)
    absolute, global_max = probs >= p_min, probs >= p_min * probs.max()
    if torch.equal(kept, global_max) and not torch.equal(kept, absolute):
        return "o limite é por linha: cada linha do lote tem o seu token mais provável."
    if torch.equal(kept, absolute):
        return "o limite é relativo: p_min vezes a probabilidade do token MAIS provável da linha, não p_min sozinho."
    if torch.equal(kept, logits >= p_min * logits.max(-1, keepdim=True).values):
        return "compare probabilidades (softmax dos logits), não os logits."
    return "o conjunto de tokens mantidos não confere: calcule as probabilidades e compare cada uma com o limite."


@exercise("05.2", "filtro min-p", "uma função f(logits, p_min) -> logits com -inf nos tokens removidos")
def _min_p(answer):
    from transformers.generation.logits_process import MinPLogitsWarper

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for rows, p_min, mask in _MIN_P_CASES:
        logits = torch.tensor(rows)
        with watch_calls(MinPLogitsWarper) as called:
            got = answer(logits.clone(), p_min)
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: devolva os logits filtrados."
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            return False, "a função deve devolver um tensor com o mesmo formato dos logits."
        kept = torch.isfinite(got)
        if not torch.equal(kept, torch.tensor(mask, dtype=torch.bool)):
            hint = _min_p_hint(logits, p_min, kept)
            if hint.startswith("o conjunto") and not kept.any(dim=-1).all():
                return False, "alguma linha ficou sem nenhum token: o mais provável sempre passa no limite."
            return False, hint
        if not torch.allclose(got[kept], logits[kept]):
            return False, "os logits mantidos não devem mudar de valor (nem ser trocados por probabilidades)."
        if not bool((got[~kept] == float("-inf")).all()):
            return False, "os tokens removidos devem virar -inf (assim o softmax lhes dá probabilidade 0)."
    return True, "correto!"


class _CallRecorder(torch.nn.Module):
    """Embrulha o modelo e anota quantos tokens cada chamada recebeu e se veio com cache."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.calls = model, model.config, []

    @property
    def device(self):  # `model.device` e `model.dtype` funcionam como no modelo de verdade
        return self.model.device

    @property
    def dtype(self):
        return self.model.dtype

    def forward(self, input_ids=None, past_key_values=None, **kwargs):
        self.calls.append((None if input_ids is None else input_ids.shape[-1], past_key_values is not None))
        return self.model(input_ids=input_ids, past_key_values=past_key_values, **kwargs)


# 05.3: o prefixo (3 tokens) já no cache; duas continuações gulosas de 4 tokens, cada uma com o seu sufixo
_PREFIX, _SUFFIXES, _NEW = [3, 17, 42], ([8, 99], [250, 4, 61]), 4


def _greedy_tokens(model, ids, n):
    """Referência por força bruta, sem cache: o texto inteiro a cada passo (não é a resposta do exercício)."""
    ids = ids.clone()
    for _ in range(n):
        ids = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], -1)
    return ids[0, -n:].tolist()


def _token_list(got):
    if isinstance(got, torch.Tensor):
        return got.reshape(-1).tolist()
    if isinstance(got, (list, tuple)):
        return [int(t) for t in got]
    raise TypeError


@exercise("05.3", "reaproveitar o cache de um prefixo",
          "uma função f(model, cache_do_prefixo, sufixo, n) -> os n tokens novos (tensor [1, n] ou lista)")
def _prefix_continuation(answer):
    import copy

    from transformers import DynamicCache

    from ..generation import generate as course_generate
    from ..models import tiny_model

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    model = tiny_model(seed=5).eval()
    with torch.inference_mode():
        prefix_cache = DynamicCache(config=model.config)
        model(torch.tensor([_PREFIX]), past_key_values=prefix_cache, use_cache=True)
        pristine = copy.deepcopy(prefix_cache)
        for suffix in _SUFFIXES:
            expected = _greedy_tokens(model, torch.tensor([_PREFIX + suffix]), _NEW)
            recorder = _CallRecorder(model)
            with watch_calls(course_generate, type(model).generate) as called:
                got = answer(recorder, prefix_cache, torch.tensor([suffix]), _NEW)
            if called:
                return False, delegation_message(called)
            if got is None:
                return False, "a função ainda devolve None: devolva os n tokens novos."
            try:
                tokens = _token_list(got)
            except (TypeError, ValueError):
                return False, "devolva os tokens novos como tensor [1, n] ou lista de inteiros."
            if prefix_cache.get_seq_length() != len(_PREFIX) or not torch.equal(
                    prefix_cache.layers[0].keys, pristine.layers[0].keys):
                return False, ("o cache do prefixo mudou: ele tem de servir também à próxima continuação. Trabalhe "
                               "numa cópia (copy.deepcopy) e deixe o original como veio.")
            fed = sum(n or 0 for n, _ in recorder.calls)
            if fed >= len(_PREFIX) + len(suffix) + _NEW - 1:
                return False, ("o modelo recebeu o prefixo de novo: ele já está no cache; passe só o sufixo e, depois, "
                               "um token por passo.")
            if len(tokens) != _NEW:
                return False, f"pedi {_NEW} tokens novos e vieram {len(tokens)} (só os novos, sem o sufixo)."
            if tokens != expected:
                return False, ("os tokens não conferem com a geração gulosa do texto inteiro: o 1º token novo sai dos "
                               "logits da ÚLTIMA posição do sufixo, e cada passo seguinte entra com o cache.")
    return True, "correto! É o cache de prefixo que servidores como o vLLM usam para um prompt de sistema comum."
