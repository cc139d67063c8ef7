"""Testes ocultos do notebook 01 (quantização pós-treinamento). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number


# ---------------------------------------------------------------- soluções de referência

Q4_1_BITS = 4 + (16 + 16) / 32  # código de 4 bits + escala fp16 + mínimo fp16, por grupo de 32 pesos
GIB_1_7B_FP16 = 1.7e9 * 2 / 2**30  # 2 bytes por parâmetro; GiB = 2^30 bytes


def absmax_int8_per_row(w):
    """Escala por linha = max|w| da linha / 127; q = round(w / escala) em int8."""
    scale = w.abs().amax(dim=1, keepdim=True) / 127
    q = torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8)
    return q, scale


def same_quantization(got, expected):
    """Compara (q, escala): escalas com tolerância; códigos iguais, salvo empates de arredondamento (|dif| <= 1)."""
    q_ref, scale_ref = expected
    if not (isinstance(got, tuple) and len(got) == 2):
        return False, "a função deve devolver uma tupla (q, escala)"
    q, scale = got
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        return False, "q deve ser um tensor torch.int8"
    if q.shape != q_ref.shape:
        return False, f"q deve ter o formato dos pesos, veio {list(q.shape)}"
    scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1)
    if scale.numel() != scale_ref.numel():
        return False, f"esperava uma escala por linha ({scale_ref.numel()}), vieram {scale.numel()}"
    if not torch.allclose(scale, scale_ref.reshape(-1), rtol=1e-5):
        return False, "as escalas não conferem: cada uma é max|w| da linha dividido por 127"
    diff = (q.int() - q_ref.int()).abs()
    if diff.max() > 1 or (diff > 0).float().mean() > 0.01:
        return False, f"{int((diff > 0).sum())} códigos diferentes da referência: confira o arredondamento"
    return True, "correto"


# ---------------------------------------------------------------- entradas ocultas

def weights(rows, cols, seed, outlier=None):
    """Pesos com escalas diferentes por linha e, opcionalmente, um outlier (linha, coluna, valor)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=gen) * torch.linspace(0.05, 2.0, rows)[:, None]
    if outlier:
        w[outlier[0], outlier[1]] = outlier[2]
    return w


EXERCISES = [
    ValueExercise("01.1", answer="resposta_1", reference=Q4_1_BITS, checks=[
        Check("bits por peso do Q4_1 (grupo de 32, escala e mínimo fp16)", 2, number(Q4_1_BITS)),
    ]),
    FunctionExercise("01.2", answer="absmax_int8_por_canal", reference=absmax_int8_per_row,
                     compare=same_quantization, cases=[
        Case((weights(16, 48, seed=101, outlier=(3, 7, 25.0)),), 1, "outlier positivo numa linha"),
        Case((weights(7, 130, seed=102, outlier=(6, 0, -40.0)),), 1, "outlier negativo, linhas longas"),
        Case((weights(1, 9, seed=103),), 1, "uma linha só"),
        Case((weights(33, 16, seed=104),), 1, "muitas linhas curtas"),
    ]),
    ValueExercise("01.3", answer="resposta_3", reference=GIB_1_7B_FP16, checks=[
        Check("GiB de 1,7 B parâmetros em fp16", 2, number(GIB_1_7B_FP16, rel_tol=0.01)),
    ]),
]
