"""Testes ocultos do notebook 04 (janela deslizante e attention sinks). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, close, number, same_tensor

# ---------------------------------------------------------------- soluções de referência

# o que já resolve o 04.2 e o 04.4 (a coleta zera o caso em que a função do aluno chama uma delas)
MASK_FUNCTIONS = tuple(f"transformers.masking_utils:{name}" for name in (
    "sliding_window_causal_mask_function", "sliding_window_overlay", "sliding_window_bidirectional_overlay",
    "sliding_window_bidirectional_mask_function", "create_sliding_window_causal_mask"))
EVICTION_FUNCTIONS = ("course_utils.streaming:evict_to_sinks_and_window", "course_utils.streaming:stepwise_nll")

MISTRAL_RECEPTIVE_FIELD = 32 * (4096 - 1)  # L camadas, cada uma anda W-1 tokens para trás (seção 2 do notebook)


def sliding_window_mask(n, w):
    """Consulta i vê as chaves i-w+1 .. i (causal, janela de w tokens contando o próprio)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return (j <= i) & (i - j < w)


def same_mask(got, expected):
    """same_tensor com dicas para os erros típicos (futuro visível, diagonal, erro de um na janela)."""
    ok, message = same_tensor(got, expected)
    if ok or not isinstance(got, torch.Tensor) or got.shape != expected.shape or got.dtype != torch.bool:
        return ok, message
    n = expected.shape[0]
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    if (got & (j > i)).any():
        return False, "a consulta está olhando chaves do futuro (j > i): a máscara também é causal"
    if not got.diagonal().all():
        return False, "cada token deve poder olhar a si mesmo (diagonal True)"
    w = int(expected[-1].sum())  # tamanho da janela (limitado por n)
    if torch.equal(got, (j <= i) & (i - j <= w)):
        return False, "erro de um: a janela tem w tokens contando o próprio (i - j < w)"
    return False, message


def attention_mass_on_first(attn):
    """Média de attn[..., q, 0] sobre lote, cabeças e consultas q >= 1."""
    return attn[:, :, 1:, 0].mean().item()


# ---------------------------------------------------------------- entradas ocultas

def causal_attention(batch, heads, n, seed, sink=3.0):
    """Uma atenção causal sintética (softmax por linha) com um sumidouro de força `sink` na chave 0."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, heads, n, n, generator=gen) * 2
    scores[..., 0] += sink
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1)


EXERCISES = [
    ValueExercise("04.1", answer="resposta_1", reference=MISTRAL_RECEPTIVE_FIELD, checks=[
        Check("alcance de 32 camadas com janela de 4.096", 2, number(MISTRAL_RECEPTIVE_FIELD, rel_tol=1e-6)),
    ]),
    FunctionExercise("04.2", answer="minha_mascara", reference=sliding_window_mask, compare=same_mask,
                     forbidden=MASK_FUNCTIONS, cases=[
        Case((9, 2), 1, "n=9, w=2"),
        Case((12, 5), 1, "n=12, w=5"),
        Case((3, 1), 1, "w=1: só a diagonal"),
        Case((8, 8), 1, "w=n: causal comum"),
        Case((5, 9), 1, "w maior que n"),
        Case((1, 1), 0.5, "um token só"),
        Case((16, 3), 0.5, "n=16, w=3"),
    ]),
    FunctionExercise("04.3", answer="massa_no_primeiro", reference=attention_mass_on_first,
                     compare=close(rel_tol=1e-4), cases=[
        Case((causal_attention(1, 2, 6, seed=41),), 1, "lote 1, 2 cabeças, 6 tokens"),
        Case((causal_attention(3, 5, 10, seed=42),), 1, "lote 3, 5 cabeças, 10 tokens"),
        Case((causal_attention(2, 1, 20, seed=43, sink=0.0),), 1, "sem sumidouro"),
    ]),
]


# ---------------------------------------------------------------- 04.4 (despejo em blocos)

def evict_in_blocks(keys, values, sinks, window, block, inv_freq):
    """Tira o menor múltiplo de `block` tokens (depois dos sinks) que deixa o cache com <= sinks + window; as chaves
    que ficam giram -removidos posições pelo RoPE; os valores só são cortados."""
    import math

    from course_utils.streaming import shift_rotary

    n = keys.shape[-2]
    if n <= sinks + window:
        return keys, values
    removed = min(math.ceil((n - sinks - window) / block) * block, n - sinks)
    recent = slice(sinks + removed, None)
    return (torch.cat([keys[..., :sinks, :], shift_rotary(keys[..., recent, :], -removed, inv_freq)], dim=-2),
            torch.cat([values[..., :sinks, :], values[..., recent, :]], dim=-2))


def same_kv(got, expected):
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        return False, "devolva uma tupla (keys, values) de tensores"
    for name, g, e in (("keys", got[0], expected[0]), ("values", got[1], expected[1])):
        if g.shape != e.shape:
            return False, f"{name} com formato {list(g.shape)}, diferente do esperado"
        if not torch.allclose(g.float(), e.float(), atol=1e-4):
            return False, f"{name} com valores diferentes do esperado"
    return True, "correto"


def kv_inputs(seed, n, dim=8, heads=2):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, heads, n, dim, generator=gen), torch.randn(1, heads, n, dim, generator=gen)


FREQ8 = 1.0 / (10000 ** (torch.arange(0, 8, 2, dtype=torch.float32) / 8))

EXERCISES.append(
    FunctionExercise("04.4", answer="despejar_em_blocos", reference=evict_in_blocks, compare=same_kv,
                     forbidden=EVICTION_FUNCTIONS, cases=[
        Case((*kv_inputs(401, 20), 4, 8, 4, FREQ8), 1, "S=4, janela 8, bloco 4"),
        Case((*kv_inputs(402, 11), 1, 6, 3, FREQ8), 1, "bloco que não divide o excesso"),
        Case((*kv_inputs(403, 7), 2, 6, 2, FREQ8), 0.5, "cabe: nada sai"),
        Case((*kv_inputs(404, 12), 0, 5, 2, FREQ8), 1, "sem sinks"),
    ]))
