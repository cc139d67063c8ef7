"""Juízes dos exercícios do notebook 01 (quantização pós-treinamento), registrados com @exercise."""

import torch

from . import _judge_number, exercise


@exercise("01.1", "bits por peso do Q4_1", "um número (bits por peso, float)")
def _q4_1_bits(answer):
    # 4 bits + escala fp16 + mínimo fp16 por grupo de 32 pesos
    expected = 4 + (16 + 16) / 32
    return _judge_number(answer, expected, 1e-6, [
        (4.0, "4 é só o código de cada peso: some o custo da escala e do mínimo, divididos pelo grupo."),
        (4 + 16 / 32, "faltou um dos dois números de 16 bits guardados por grupo (escala e mínimo)."),
        (4 + 32 / 32 / 8, "cuidado com a unidade: a escala e o mínimo têm 16 bits cada, não 16 bytes nem 1 byte."),
    ])


@exercise("01.2", "absmax INT8 por canal", "uma função f(w) -> (q, escala), com q int8 [linhas, colunas] e escala [linhas, 1]")
def _absmax_int8(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(16, 48, generator=gen) * torch.linspace(0.1, 3, 16)[:, None]
    w[3, 7] = 25.0  # um outlier numa linha só
    out = answer(w.clone())
    if not (isinstance(out, tuple) and len(out) == 2):
        return False, "a função deve devolver uma tupla (q, escala)."
    q, scale = out
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        return False, f"q deve ser um tensor torch.int8 (veio {getattr(q, 'dtype', type(q).__name__)}). Dica: .to(torch.int8) depois de arredondar."
    if tuple(q.shape) != tuple(w.shape):
        return False, f"q deve ter o formato dos pesos {tuple(w.shape)}, veio {tuple(q.shape)}."
    scale = torch.as_tensor(scale, dtype=torch.float32)
    if scale.numel() == 1:
        return False, "uma escala só é quantização por tensor; queremos uma escala por linha (canal de saída)."
    if scale.numel() != w.shape[0]:
        return False, f"esperava {w.shape[0]} escalas (uma por linha), vieram {scale.numel()}."
    scale = scale.reshape(-1, 1)
    if q.abs().max().item() > 127:
        return False, "há valores fora de [-127, 127]."
    if q.abs().amax(dim=1).min().item() < 127:
        return False, "o maior |q| de cada linha deveria ser 127: a escala é max|w| da linha dividido por 127."
    err = (q.float() * scale - w).abs()
    if (err > scale / 2 + 1e-5).any():
        return False, "a reconstrução q*escala erra mais que meia escala: confira o arredondamento (torch.round)."
    return True, "correto! O outlier da linha 3 só estragou a escala da própria linha."


@exercise("01.3", "GiB de um modelo de 1,7 B parâmetros em fp16", "um número (GiB, float)")
def _gib_fp16(answer):
    expected = 1.7e9 * 2 / 2**30
    return _judge_number(answer, expected, 0.01, [
        (1.7e9 * 2 / 1e9, "isso está em GB (10^9 bytes); pedimos GiB (2^30 bytes)."),
        (1.7e9 * 4 / 2**30, "fp16 tem 2 bytes por parâmetro, não 4."),
        (1.7e9 / 2**30, "faltou multiplicar pelos bytes por parâmetro."),
    ])
