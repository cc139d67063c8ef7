"""Testes ocultos do notebook 06 (ONNX Runtime). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.
"""

import math

import numpy as np

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, as_number, number


# ---------------------------------------------------------------- soluções de referência

INT4_BITS = 4 + 16 / 32  # 4 bits + uma escala fp16 por bloco de 32
DECODE_CEILING = 50e9 / (7e9 * INT4_BITS / 8)  # tokens/s: banda / bytes lidos por token


def dynamic_quantize(x):
    """DynamicQuantizeLinear do ONNX: faixa que inclui o zero, 255 degraus, arredondamento para o par."""
    low, high = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = (high - low) / 255
    zero_point = int(np.clip(np.rint(-low / scale), 0, 255))
    q = np.clip(np.rint(x / scale) + zero_point, 0, 255).astype(np.uint8)
    return q, scale, zero_point


def saturated_pair(a1, w1, a2, w2):
    """Um par do VPMADDUBSW: u8 x s8 + u8 x s8, a SOMA limitada a 16 bits com sinal."""
    return max(-32768, min(32767, a1 * w1 + a2 * w2))


def same_quantization(got, expected):
    q_ref, scale_ref, zero_ref = expected
    if not (isinstance(got, (tuple, list)) and len(got) == 3):
        return False, "a função deve devolver uma tupla (q, escala, ponto_zero)"
    q, scale, zero_point = got
    q = np.asarray(q)
    if q.dtype != np.uint8 or q.shape != q_ref.shape:
        return False, f"q deve ser uint8 com o formato de x (veio {q.dtype} {list(q.shape)})"
    try:
        scale, zero_point = float(np.asarray(scale)), int(np.asarray(zero_point))
    except (TypeError, ValueError):
        return False, "a escala deve ser um número e o ponto-zero um inteiro"
    if not math.isclose(scale, scale_ref, rel_tol=1e-4):
        return False, "a escala não confere: a faixa inclui o zero e tem 255 degraus"
    if zero_point != zero_ref:
        return False, "o ponto-zero não confere"
    diff = np.abs(q.astype(np.int64) - q_ref.astype(np.int64))
    if diff.max() > 1 or (diff > 0).mean() > 0.01:
        return False, f"{int((diff > 0).sum())} valores de q diferentes da referência"
    return True, "correto"


def same_int(got, expected):
    try:
        value = as_number(got)  # aceita int, escalar numpy e tensor de um elemento
    except TypeError as exc:
        return False, f"tipo errado: {exc}"
    if value != int(value):
        return False, "devolva um inteiro"
    return (True, "correto") if int(value) == expected else (False, "valor diferente do esperado")


# ---------------------------------------------------------------- entradas ocultas

def activations(seed, shape, kind="misto"):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 2
    if kind == "positivo":
        return np.abs(x) + 0.25
    if kind == "negativo":
        return -np.abs(x) - 0.25
    if kind == "outlier":
        x.flat[3] = -60.0
    return x


EXERCISES = [
    ValueExercise("06.1", answer="resposta_1", reference=DECODE_CEILING, checks=[
        Check("teto de tokens/s do 7B em INT4 (Q4_0) a 50 GB/s", 2, number(DECODE_CEILING, rel_tol=0.01)),
    ]),
    FunctionExercise("06.2", answer="meu_dql", reference=dynamic_quantize, compare=same_quantization, cases=[
        Case((activations(601, (5, 12)),), 1, "valores mistos"),
        Case((activations(602, (2, 9), "positivo"),), 1, "só positivos: a faixa ainda inclui o zero"),
        Case((activations(603, (7,), "negativo"),), 1, "só negativos, uma dimensão"),
        Case((activations(604, (3, 20), "outlier"),), 1, "um outlier negativo"),
    ]),
    FunctionExercise("06.3", answer="meu_par", reference=saturated_pair, compare=same_int, cases=[
        Case((255, 127, 255, 126), 1, "satura para cima"),
        Case((255, -128, 255, -127), 1, "satura para baixo"),
        Case((255, 127, 1, -128), 0.5, "cabe: sem saturação"),
        Case((100, -100, 50, 50), 0.5, "negativo sem saturar"),
        Case((0, -128, 255, 127), 0.5, "um produto nulo"),
        Case((), 0.5, "por nome", kwargs={"a1": 200, "w1": 127, "a2": 200, "w2": 127}),
    ]),
]
