"""Testes ocultos do notebook 02 (AWQ e GPTQ). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number
from course_utils.models import LLAMA2_7B_CONFIG
from course_utils.planner import weight_gib
from course_utils.quantization import bits_per_weight

# ---------------------------------------------------------------- soluções de referência

LLAMA2_7B_W3G64_GIB = weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3))


def accumulate(H, n, x):
    """Média corrente H = 2/N Σ x xᵀ: o H anterior pesa n/(n + m), o lote novo entra com 2/(n + m)."""
    x = x.reshape(-1, x.shape[-1]).float()
    m = x.shape[0]
    if H is None:
        H = torch.zeros(x.shape[1], x.shape[1])
    return H * (n / (n + m)) + (2 / (n + m)) * (x.T @ x), n + m


def fold(g, W, s):
    """Dobra da escala: a norma divide por s, as colunas de W multiplicam por s."""
    return g / s, W * s[None, :]


def same_hessian(got, expected):
    """(H, n): n exato (tokens), H com tolerância de ponto flutuante; dicas para os erros típicos."""
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return False, "devolva uma tupla (H, n)"
    H, n = got
    H_ref, n_ref = expected
    if isinstance(n, torch.Tensor) and n.numel() == 1:
        n = n.item()
    if not isinstance(n, (int, float)) or n != n_ref:
        return False, "n deve ser o total de TOKENS vistos (lote x tokens, somado ao n anterior)"
    if not isinstance(H, torch.Tensor) or H.shape != H_ref.shape:
        return False, "H deve ser um tensor [entradas, entradas]"
    H = H.double()
    H_ref = H_ref.double()
    if torch.allclose(H, H_ref, rtol=1e-4, atol=1e-5):
        return True, "correto"
    if torch.allclose(H, H_ref / 2, rtol=1e-4, atol=1e-5):
        return False, "faltou o fator 2 de H = 2XᵀX"
    return False, "H não confere: é a média por token de 2 x xᵀ sobre todos os tokens vistos"


def same_fold(got, expected):
    """(g_novo, W_novo) iguais aos da referência, com tolerância; dica se a escala estiver invertida."""
    if not (isinstance(got, (tuple, list)) and len(got) == 2) or not all(isinstance(t, torch.Tensor) for t in got):
        return False, "devolva uma tupla de dois tensores (g_novo, W_novo)"
    (g, W), (g_ref, W_ref) = got, expected
    if g.shape != g_ref.shape or W.shape != W_ref.shape:
        return False, "os formatos devem ser os de g e de W"
    if torch.allclose(g, g_ref, rtol=1e-5) and torch.allclose(W, W_ref, rtol=1e-5):
        return True, "correto"
    return False, "não confere: a saída deve ficar igual e os canais com s > 1 maiores em W_novo"


# ---------------------------------------------------------------- entradas ocultas

def _randn(*shape, seed, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


_H_START, _N_START = accumulate(None, 0, _randn(2, 3, 4, seed=21))   # um estado já acumulado (6 tokens)

EXERCISES = [
    FunctionExercise("02.1", answer="acumular", reference=accumulate, compare=same_hessian, cases=[
        Case((None, 0, _randn(1, 4, 3, seed=11)), 1, "começo: H=None, um lote com uma sequência"),
        Case((None, 0, _randn(3, 5, 8, seed=12)), 1, "começo: lote de 3 sequências"),
        Case((_H_START, _N_START, _randn(1, 10, 4, seed=13, scale=3.0)), 1, "continuando de 6 tokens já vistos"),
        Case((_H_START, _N_START, _randn(4, 1, 4, seed=14)), 1, "lote de sequências de um token"),
    ]),
    ValueExercise("02.2", answer="resposta_2", reference=LLAMA2_7B_W3G64_GIB, checks=[
        Check("Llama-2-7B em w3g64 (escala fp16 e ponto-zero de 3 bits por grupo), em GiB", 2,
              number(LLAMA2_7B_W3G64_GIB, rel_tol=0.005)),
    ]),
    FunctionExercise("02.3", answer="dobrar", reference=fold, compare=same_fold, cases=[
        Case((_randn(6, seed=31).abs() + 0.5, _randn(4, 6, seed=32), _randn(6, seed=33).abs() * 2 + 0.1), 1,
             "d=6, 4 saídas"),
        Case((_randn(16, seed=34).abs() + 0.5, _randn(16, 16, seed=35), _randn(16, seed=36).abs() * 2 + 0.1), 1,
             "W quadrada (d=16)"),
        Case((torch.ones(3), _randn(2, 3, seed=37), torch.ones(3)), 1, "s = 1: nada muda"),
    ]),
]
