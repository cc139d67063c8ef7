"""Testes ocultos do notebook 01 (quantização pós-treinamento). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.

As referências abaixo são a única cópia das soluções de 01.2 e 01.3 (o pacote do aluno não as tem). Delegar a uma
função de quantização pronta (`absmax_quantize` sobre os pesos já recortados, `bitsandbytes.functional.quantize_4bit`)
é recusado pela autocorreção do notebook (`course_utils/exercises/nb01.py`, com `watch_calls`); aqui só chegam as
saídas de cada caso, que não dizem o que a função chamou.
"""

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number

# ---------------------------------------------------------------- soluções de referência

Q4_1_BITS = 4 + (16 + 16) / 32  # código de 4 bits + escala fp16 + mínimo fp16, por grupo de 32 pesos


def absmax_clipped(w, p):
    """Escala por linha = (quantil p de |w| da linha) / 127; q = round(w / escala) limitado a [-127, 127], int8."""
    scale = torch.quantile(w.abs().float(), p, dim=1, keepdim=True).clamp(min=1e-12) / 127
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8), scale


def table_quantize(w, levels, block):
    """absmax por bloco de `block` pesos; cada peso normalizado vai para o índice do nível mais próximo."""
    g = w.reshape(-1, block)
    absmax = g.abs().amax(dim=1).clamp(min=1e-12)
    idx = (g[:, :, None] / absmax[:, None, None] - levels).abs().argmin(dim=-1)
    return idx.reshape(w.shape).to(torch.uint8), absmax


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
    if not torch.allclose(scale, scale_ref.reshape(-1), rtol=1e-4):
        return False, "as escalas não conferem: cada uma é o quantil p de |w| da linha dividido por 127"
    diff = (q.int() - q_ref.int()).abs()
    if diff.max() > 1 or (diff > 0).float().mean() > 0.01:
        return False, f"{int((diff > 0).sum())} códigos diferentes da referência: confira o arredondamento e o limite"
    return True, "correto"


def same_table(got, expected):
    """(índices, absmax): absmax com tolerância; índices iguais em pelo menos 99% dos pesos (empates)."""
    idx_ref, absmax_ref = expected
    if not (isinstance(got, tuple) and len(got) == 2):
        return False, "devolva uma tupla (indices, absmax)"
    idx, absmax = got
    if not isinstance(idx, torch.Tensor) or idx.dtype != torch.uint8 or idx.shape != idx_ref.shape:
        return False, "os índices devem ser um tensor uint8 no formato de w"
    absmax = torch.as_tensor(absmax, dtype=torch.float32).reshape(-1)
    if absmax.shape != absmax_ref.shape or not torch.allclose(absmax, absmax_ref, rtol=1e-5):
        return False, "o absmax de cada bloco não confere: max|w| dos pesos do bloco"
    if (idx != idx_ref).float().mean() > 0.01:
        return False, "muitos índices diferentes: cada peso normalizado vai para o nível mais próximo"
    return True, "correto"


NF4_LEVELS = torch.tensor([-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0,
                           0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0])


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
    FunctionExercise("01.2", answer="absmax_recortado", reference=absmax_clipped,
                     compare=same_quantization, cases=[
        Case((weights(16, 48, seed=101, outlier=(3, 7, 25.0)), 0.99), 1, "outlier positivo, p=0.99"),
        Case((weights(7, 130, seed=102, outlier=(6, 0, -40.0)), 0.9), 1, "outlier negativo, linhas longas, p=0.9"),
        Case((weights(1, 9, seed=103), 1.0), 1, "uma linha só, sem recorte"),
        Case((weights(33, 16, seed=104), 0.75), 1, "muitas linhas curtas, p=0.75"),
    ]),
    FunctionExercise("01.3", answer="quantizar_por_tabela", reference=table_quantize, compare=same_table, cases=[
        Case((weights(1, 256, seed=105).reshape(-1), NF4_LEVELS, 64), 1, "os 16 níveis do NF4, blocos de 64"),
        Case((weights(4, 96, seed=106, outlier=(2, 5, 9.0)), NF4_LEVELS, 32), 1, "matriz com outlier, blocos de 32"),
        Case((weights(1, 30, seed=107).reshape(-1), torch.tensor([-1.0, -0.25, 0.0, 0.6, 1.0]), 10), 1,
             "níveis assimétricos"),
    ]),
]
