"""Testes ocultos do notebook 02 (AWQ e GPTQ). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import torch

from course_utils.grade import Case, FunctionExercise
from course_utils.quantization import rtn_quantize

# o que já resolve cada exercício no pacote do aluno: chamá-lo vale zero no caso
HESSIAN_FUNCTIONS = ("course_utils.calibration:accumulate_hessian",)
AWQ_FUNCTIONS = ("course_utils.awq:awq_search_scale", "course_utils.awq:awq_scale", "course_utils.awq:awq_layer_errors")
GPTQ_FUNCTIONS = ("course_utils.gptq:gptq_quantize_weight",)

# ---------------------------------------------------------------- soluções de referência


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


def awq_duo_search(W, x, bits, group_size, n_grid):
    """Busca do AWQ com a escala s = mean|x|^α / mean|w|^(1−α) (duo scaling), normalizada por √(max s · min s);
    erro da saída ‖x Wᵀ − (x/s) Q(W·s)ᵀ‖² com o RTN por grupos; devolve (s, α) do menor erro."""
    W, x = W.float(), x.float()
    x_mean = x.abs().mean(0).clamp(min=1e-8)
    w_mean = W.abs().mean(0).clamp(min=1e-8)
    y = x @ W.T
    best = (float("inf"), None, None)
    for k in range(n_grid):
        alpha = k / n_grid
        s = x_mean.pow(alpha) / w_mean.pow(1 - alpha)
        s = s / (s.max() * s.min()).sqrt()
        loss = ((x / s) @ rtn_quantize(W * s, bits, group_size).T - y).pow(2).sum().item()
        if loss < best[0]:
            best = (loss, s, alpha)
    return best[1], best[2]


def same_search(got, expected):
    """(s, α): α igual ao da referência e s igual (tolerância de ponto flutuante); dica se só falta normalizar."""
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return False, "devolva uma tupla (s, alfa)"
    s, alpha = got
    s_ref, alpha_ref = expected
    if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or abs(alpha - alpha_ref) > 1e-6:
        return False, "α diferente: a perda é o erro da SAÍDA, ‖x Wᵀ − (x/s) Q(W·s)ᵀ‖², com s = mean|x|^α / mean|w|^(1−α)"
    if not isinstance(s, torch.Tensor) or s.shape != s_ref.shape:
        return False, "s deve ser um tensor [entradas]"
    if torch.allclose(s.double(), s_ref.double(), rtol=1e-4, atol=1e-6):
        return True, "correto"
    return False, "α certo, mas s não confere: normalize por √(max s · min s) e devolva o s desse α"


def same_hessian(got, expected):
    """(H, n): n exato (tokens), H com tolerância de ponto flutuante; dicas para os erros típicos."""
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return False, "devolva uma tupla (H, n)"
    H, n = got
    H_ref, n_ref = expected
    if isinstance(n, torch.Tensor) and n.numel() == 1:
        n = n.item()
    if not isinstance(n, (int, float)) or n != n_ref:
        return False, "n deve ser o total de tokens REAIS (mascara = 1), somado ao n anterior"
    if not isinstance(H, torch.Tensor) or H.shape != H_ref.shape:
        return False, "H deve ser um tensor [entradas, entradas]"
    H = H.double()
    H_ref = H_ref.double()
    if torch.allclose(H, H_ref, rtol=1e-4, atol=1e-5):
        return True, "correto"
    if torch.allclose(H, H_ref / 2, rtol=1e-4, atol=1e-5):
        return False, "faltou o fator 2 de H = 2XᵀX"
    return False, "H não confere: é a média de 2 x xᵀ só sobre os tokens reais (mascara = 1) vistos até agora"


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


def _salient(n, d, seed, n_salient=3):
    """Entradas [n, d] com `n_salient` canais de ativação grande, como as que o AWQ protege."""
    x = _randn(n, d, seed=seed)
    x[:, torch.randperm(d, generator=torch.Generator().manual_seed(seed + 100))[:n_salient]] *= 8
    return x


def _mask(rows, cols, lengths):
    return (torch.arange(cols)[None, :] < torch.tensor(lengths)[:, None]).long()


_H_START, _N_START = accumulate_masked(None, 0, _randn(2, 3, 4, seed=21), _mask(2, 3, [3, 2]))  # 5 tokens reais

EXERCISES = [
    FunctionExercise("02.1", answer="acumular_com_mascara", reference=accumulate_masked, compare=same_hessian,
                     forbidden=HESSIAN_FUNCTIONS, cases=[
        Case((None, 0, _randn(1, 4, 3, seed=11), _mask(1, 4, [4])), 1, "começo, sem padding"),
        Case((None, 0, _randn(3, 5, 8, seed=12), _mask(3, 5, [5, 2, 1])), 1, "começo: 3 sequências com padding"),
        Case((_H_START, _N_START, _randn(2, 10, 4, seed=13, scale=3.0), _mask(2, 10, [10, 4])), 1,
             "continuando de 5 tokens já vistos"),
        Case((_H_START, _N_START, _randn(2, 3, 4, seed=14), _mask(2, 3, [0, 1])), 1, "uma sequência toda de padding"),
    ]),
    FunctionExercise("02.2", answer="busca_awq_duo", reference=awq_duo_search, compare=same_search,
                     forbidden=AWQ_FUNCTIONS, cases=[
        Case((_randn(16, 64, seed=51, scale=0.05), _salient(256, 64, seed=52), 3, 32, 10), 1, "3 bits, grupos de 32"),
        Case((_randn(24, 128, seed=57, scale=0.05), _salient(128, 128, seed=58), 4, 64, 20), 1,
             "4 bits, grade de 20"),
        Case((_randn(8, 32, seed=55, scale=0.05), _salient(64, 32, seed=56, n_salient=1), 2, 16, 5), 1,
             "2 bits, um canal saliente"),
    ]),
    FunctionExercise("02.3", answer="gptq_linha", reference=gptq_row, compare=same_row,
                     forbidden=GPTQ_FUNCTIONS, cases=[
        Case((_randn(8, seed=31), _upper(8, seed=32), 3), 1, "d=8, 3 bits"),
        Case((_randn(32, seed=34), _upper(32, seed=35), 4), 1, "d=32, 4 bits"),
        Case((_randn(16, seed=37, scale=0.02), _upper(16, seed=38), 2), 1, "pesos pequenos, 2 bits"),
    ]),
]
