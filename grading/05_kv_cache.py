"""Testes ocultos do notebook 05 (cache KV). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import copy

import torch

from course_utils.grade import Case, Check, Code, FunctionExercise, ValueExercise, number

# ---------------------------------------------------------------- soluções de referência

# K e V x 32 camadas x 8 cabeças KV x dimensão 128 x 2 bytes (fp16) x 8.192 tokens x lote 4, em GiB
KV_GQA_BATCH_GIB = 2 * 32 * 8 * 128 * 2 * 8192 * 4 / 2**30


def min_p(logits, p_min):
    """Min-p: fica o token cuja probabilidade é >= p_min vezes a do mais provável da sua linha; o resto vira -inf."""
    probs = torch.softmax(logits.float(), dim=-1)
    keep = probs >= p_min * probs.max(dim=-1, keepdim=True).values
    return logits.masked_fill(~keep, float("-inf"))


@torch.inference_mode()
def prefix_continuation(model, prefix_cache, suffix, n):
    """Cache de prefixo: numa cópia do cache, o sufixo numa passada e depois um token por passo (guloso)."""
    cache = copy.deepcopy(prefix_cache)
    out = model(suffix, past_key_values=cache, use_cache=True)
    tokens = []
    for _ in range(n):
        token = out.logits[:, -1:].argmax(-1)
        tokens.append(int(token))
        out = model(token, past_key_values=cache, use_cache=True)
    return torch.tensor([tokens])


def same_tokens(got, expected):
    if isinstance(got, (list, tuple)):
        got = torch.tensor([list(got)]) if all(isinstance(t, int) for t in got) else None
    if not isinstance(got, torch.Tensor) or got.numel() != expected.numel():
        return False, f"devolva os {expected.numel()} tokens novos (tensor [1, n] ou lista)"
    if not torch.equal(got.reshape(-1).long(), expected.reshape(-1)):
        return False, "os tokens não conferem com a geração gulosa do texto inteiro"
    return True, "correto"


def same_filter(got, expected):
    """Mesmos tokens mantidos, logits mantidos intactos, removidos em -inf."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False, "devolva um tensor com o formato dos logits"
    kept, ref = torch.isfinite(got), torch.isfinite(expected)
    if not torch.equal(kept, ref):
        rows = int((kept != ref).any(dim=-1).sum())
        return False, f"o conjunto de tokens mantidos não confere em {rows} de {kept.shape[0]} linha(s)"
    if not torch.allclose(got[kept], expected[kept]):
        return False, "os logits mantidos não devem mudar de valor"
    if not bool((got[~kept] == float("-inf")).all()):
        return False, "os tokens removidos devem virar -inf"
    return True, "correto"


# ---------------------------------------------------------------- entradas ocultas

def logits(rows, vocab, seed, temperature=3.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=gen) * temperature


TINY = "__import__('course_utils.models', fromlist=['tiny_model']).tiny_model(seed={seed})"
PREFILLED = ("(lambda m, ids: torch.no_grad()(lambda: m(ids, past_key_values=__import__('transformers')"
             ".DynamicCache(config=m.config), use_cache=True).past_key_values)())(" + TINY + ", torch.tensor([{ids}]))")

EXERCISES = [
    ValueExercise("05.1", answer="resposta_1", reference=KV_GQA_BATCH_GIB, checks=[
        Check("GiB do cache KV (32 camadas, 8 cabeças KV, lote 4, 8.192 tokens)", 2,
              number(KV_GQA_BATCH_GIB, rel_tol=0.01)),
    ]),
    FunctionExercise("05.2", answer="meu_min_p", reference=min_p, compare=same_filter,
                     forbidden=("transformers.generation.logits_process:MinPLogitsWarper",), cases=[
        Case((logits(3, 50, seed=201), 0.1), 1, "p_min=0,1"),
        Case((logits(2, 100, seed=202), 0.02), 1, "p_min pequeno, vocabulário maior"),
        Case((logits(5, 20, seed=203, temperature=1.0), 0.5), 1, "distribuição achatada"),
        Case((logits(1, 10, seed=204), 1.0), 1, "p_min=1: só o mais provável"),
    ]),
    FunctionExercise("05.3", answer="gerar_com_prefixo", reference=prefix_continuation, compare=same_tokens,
                     forbidden=("course_utils.generation:generate", "transformers.generation.utils:GenerationMixin.generate"),
                     cases=[
        Case((Code(TINY.format(seed=11)), Code(PREFILLED.format(seed=11, ids=[5, 9, 200, 31])), torch.tensor([[7, 12]]),
              5), 1.5, "prefixo de 4 tokens, sufixo de 2"),
        Case((Code(TINY.format(seed=12)), Code(PREFILLED.format(seed=12, ids=[1])), torch.tensor([[250]]), 3),
             1.5, "prefixo de 1 token, sufixo de 1"),
    ]),
]
