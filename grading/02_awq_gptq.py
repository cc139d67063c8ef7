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


def accumulate_masked(H, n, x, mask):
    """Média corrente H = 2/N Σ x xᵀ só sobre os tokens com mask = 1; o H anterior pesa n/(n + m)."""
    x = x.reshape(-1, x.shape[-1]).float()[mask.reshape(-1).bool()]
    m = x.shape[0]
    if H is None:
        H = torch.zeros(x.shape[1], x.shape[1])
    if m == 0:
        return H, n
    return H * (n / (n + m)) + (2 / (n + m)) * (x.T @ x), n + m


def gptq_row(w, U, bits):
    """O laço do GPTQ numa linha, quantizador simétrico com escala max|w|/(2^(b-1)-1) decidida antes do laço."""
    w = w.clone().float()
    qmax = 2 ** (bits - 1) - 1
    s = w.abs().max().clamp(min=1e-12) / qmax
    q = torch.zeros_like(w)
    for j in range(w.numel()):
        q[j] = torch.clamp(torch.round(w[j] / s), -qmax, qmax) * s
        e = (w[j] - q[j]) / U[j, j]
        w[j + 1:] -= e * U[j, j + 1:]
    return q


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


def same_row(got, expected):
    """ŵ igual ao da referência (tolerância de ponto flutuante); dica se for o RTN puro."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False, "devolva um tensor ŵ com o formato de w"
    if torch.allclose(got.float(), expected, atol=1e-4, rtol=1e-4):
        return True, "correto"
    return False, "ŵ não confere: quantize a coluna j e espalhe e_j = (w_j − q_j)/U_jj nas colunas seguintes"


# ---------------------------------------------------------------- entradas ocultas

def _randn(*shape, seed, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _upper(d, seed):
    """Fator U de uma H⁻¹ de verdade (entradas correlacionadas), como o GPTQ usa."""
    x = _randn(4 * d, d, seed=seed) @ _randn(d, d, seed=seed + 1)
    H = 2 * x.T @ x / x.shape[0] + 0.01 * torch.eye(d)
    return torch.linalg.cholesky(torch.linalg.inv(H), upper=True)


def _mask(rows, cols, lengths):
    return (torch.arange(cols)[None, :] < torch.tensor(lengths)[:, None]).long()


_H_START, _N_START = accumulate_masked(None, 0, _randn(2, 3, 4, seed=21), _mask(2, 3, [3, 2]))  # 5 tokens reais

EXERCISES = [
    FunctionExercise("02.1", answer="acumular_com_mascara", reference=accumulate_masked, compare=same_hessian, cases=[
        Case((None, 0, _randn(1, 4, 3, seed=11), _mask(1, 4, [4])), 1, "começo, sem padding"),
        Case((None, 0, _randn(3, 5, 8, seed=12), _mask(3, 5, [5, 2, 1])), 1, "começo: 3 sequências com padding"),
        Case((_H_START, _N_START, _randn(2, 10, 4, seed=13, scale=3.0), _mask(2, 10, [10, 4])), 1,
             "continuando de 5 tokens já vistos"),
        Case((_H_START, _N_START, _randn(2, 3, 4, seed=14), _mask(2, 3, [0, 1])), 1, "uma sequência toda de padding"),
    ]),
    ValueExercise("02.2", answer="resposta_2", reference=LLAMA2_7B_W3G64_GIB, checks=[
        Check("Llama-2-7B em w3g64 (escala fp16 e ponto-zero de 3 bits por grupo), em GiB", 2,
              number(LLAMA2_7B_W3G64_GIB, rel_tol=0.005)),
    ]),
    FunctionExercise("02.3", answer="gptq_linha", reference=gptq_row, compare=same_row, cases=[
        Case((_randn(8, seed=31), _upper(8, seed=32), 3), 1, "d=8, 3 bits"),
        Case((_randn(32, seed=34), _upper(32, seed=35), 4), 1, "d=32, 4 bits"),
        Case((_randn(16, seed=37, scale=0.02), _upper(16, seed=38), 2), 1, "pesos pequenos, 2 bits"),
    ]),
]
