"""Testes ocultos do notebook 07 (TensorRT). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

from collections import Counter

import torch

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number

# ---------------------------------------------------------------- soluções de referência

FP16_SQUARE_LIMIT = ((2 - 2**-10) * 2**15) ** 0.5  # o maior |x| com x² finito em fp16: sqrt(65504)


def rmsnorm_fp16(x, weight, eps=1e-5):
    """RMSNorm só em fp16: divide a linha pelo seu max|x| antes de elevar ao quadrado (nada estoura nem some)."""
    x, weight = x.half(), weight.half()
    m = x.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(torch.float16).tiny)
    scaled = x / m
    rms = m * torch.sqrt(scaled.pow(2).mean(-1, keepdim=True) + eps / m / m)  # eps / (m*m): 1/m² estoura
    return x / rms * weight


def profile_for(shapes):
    """Perfil de otimização: min e max por eixo, opt = o formato mais frequente (empate: o primeiro)."""
    shapes = [tuple(int(v) for v in s) for s in shapes]
    counts = Counter(shapes)
    best = max(counts.values())
    opt = next(s for s in shapes if counts[s] == best)
    axes = list(zip(*shapes, strict=True))
    return {"min": tuple(min(a) for a in axes), "opt": opt, "max": tuple(max(a) for a in axes)}


def same_rmsnorm(got, expected):
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False, "devolva um tensor com o formato de x"
    if got.dtype != torch.float16:
        return False, f"a saída deve ser fp16 (veio {got.dtype})"
    if not torch.isfinite(got).all():
        return False, "a saída tem inf/NaN"
    err = ((got.double() - expected.double()).abs().amax(-1) / expected.double().abs().amax(-1)).max()
    return (True, "correto") if err < 1e-2 else (False, f"erro relativo {float(err):.1e} por linha")


def same_profile(got, expected):
    if not isinstance(got, dict) or set(got) != {"min", "opt", "max"}:
        return False, "devolva um dict com as chaves 'min', 'opt' e 'max'"
    try:
        got = {k: tuple(int(v) for v in got[k]) for k in got}
    except (TypeError, ValueError):
        return False, "cada valor deve ser um par (lote, tokens) de inteiros"
    wrong = [k for k in ("min", "opt", "max") if got[k] != expected[k]]
    return (True, "correto") if not wrong else (False, f"{', '.join(wrong)} não confere(m)")


# ---------------------------------------------------------------- entradas ocultas

def rows(seed, shape, scale, big=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen) * scale
    if big is not None:
        x[..., 3] = big
    w = 1 + 0.1 * torch.randn(shape[-1], generator=gen)
    return x.half(), w.half()


EXERCISES = [
    ValueExercise("07.1", answer="resposta_1", reference=FP16_SQUARE_LIMIT, checks=[
        Check("maior |x| com x² finito em fp16", 1, number(FP16_SQUARE_LIMIT, rel_tol=1e-3)),
    ]),
    FunctionExercise("07.2", answer="minha_rmsnorm_fp16", reference=rmsnorm_fp16, compare=same_rmsnorm, cases=[
        Case(rows(701, (4, 64), 1.0), 1, "valores comuns"),
        Case(rows(702, (3, 64), 2.0, big=30000.0), 1, "um valor de 30 mil (x² estoura em fp16)"),
        Case(rows(703, (2, 5, 32), 1e-3), 1, "valores minúsculos (x² some em fp16), lote 3D"),
        Case(rows(704, (2, 48), 50.0, big=-20000.0), 1, "outlier negativo", kwargs={"eps": 1e-6}),
    ]),
    FunctionExercise("07.3", answer="meu_perfil", reference=profile_for, compare=same_profile, cases=[
        Case(([(1, 128), (1, 128), (4, 32), (2, 512), (1, 128)],), 1, "o mais frequente é (1, 128)"),
        Case(([(8, 16), (1, 1024), (8, 16), (1, 1024)],), 1, "empate: vale o primeiro; min e max por eixo"),
        Case(([(3, 77)],), 0.5, "um formato só"),
        Case(([[2, 64], [1, 256], [2, 64]],), 0.5, "formatos como listas"),
    ]),
]
