"""Juízes dos exercícios do notebook 05 (cache KV), registrados com @exercise.

Os casos públicos são dados (entradas e saídas esperadas) e propriedades: a solução não mora no pacote do aluno.
"""

import torch

from . import _judge_number, exercise


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
        return "cada linha do lote tem o seu token mais provável: tome o máximo por linha (dim=-1, keepdim=True)."
    if torch.equal(kept, absolute):
        return "o limite é relativo: p_min vezes a probabilidade do token MAIS provável da linha, não p_min sozinho."
    if torch.equal(kept, logits >= p_min * logits.max(-1, keepdim=True).values):
        return "compare probabilidades (softmax dos logits), não os logits."
    return "o conjunto de tokens mantidos não confere: calcule as probabilidades e compare cada uma com o limite."


@exercise("05.2", "filtro min-p", "uma função f(logits, p_min) -> logits com -inf nos tokens removidos")
def _min_p(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for rows, p_min, mask in _MIN_P_CASES:
        logits = torch.tensor(rows)
        got = answer(logits.clone(), p_min)
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

    def forward(self, input_ids=None, past_key_values=None, **kwargs):
        self.calls.append((None if input_ids is None else input_ids.shape[-1], past_key_values is not None))
        return self.model(input_ids=input_ids, past_key_values=past_key_values, **kwargs)


@exercise("05.3", "um passo de decode com o cache KV",
          "uma função f(model, token, cache) -> logits [1, vocabulário] do próximo token")
def _decode_step(answer):
    from transformers import DynamicCache

    from ..models import tiny_model

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    model = tiny_model(seed=5).eval()
    ids = torch.tensor([[3, 17, 42, 8, 99, 4]])
    with torch.inference_mode():
        full = model(ids).logits[0]                    # logits de cada posição, com o texto inteiro
        cache = DynamicCache(config=model.config)
        model(ids[:, :3], past_key_values=cache, use_cache=True)  # o prompt (3 tokens) já está no cache
        for t in range(3, ids.shape[1]):
            recorder = _CallRecorder(model)
            got = answer(recorder, ids[:, t:t + 1], cache)
            if got is None:
                return False, "a função ainda devolve None: devolva os logits do próximo token."
            if not isinstance(got, torch.Tensor) or got.shape[-1] != full.shape[-1] or got.numel() != full.shape[-1]:
                return False, "devolva os logits da última posição, formato [1, vocabulário]."
            if not recorder.calls:
                return False, "a função não chamou o modelo: um passo de decode é uma passada com o token novo."
            if any(n is not None and n > 1 for n, _ in recorder.calls):
                return False, ("o modelo recebeu mais de um token: com o cache, cada passo só processa o token novo "
                               "(é essa a economia).")
            if not all(with_cache for _, with_cache in recorder.calls):
                return False, "passe o cache ao modelo (past_key_values=cache): sem ele o token novo não vê o contexto."
            if cache.get_seq_length() != t + 1:
                return False, ("o cache deveria ter crescido um token neste passo: passe past_key_values=cache e "
                               "use_cache=True, e não o recrie.")
            if torch.allclose(got.reshape(-1), torch.softmax(full[t], -1), atol=1e-5):
                return False, "devolva logits, não probabilidades (sem softmax)."
            if not torch.allclose(got.reshape(-1).float(), full[t], atol=1e-4):
                return False, ("os logits não conferem com os do texto inteiro: confira a posição do token novo "
                               "(ela é o comprimento do cache; deixe o transformers deduzi-la ou passe-a certa).")
    return True, "correto! É o passo que se repete a cada token gerado."
