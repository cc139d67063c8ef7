"""Testes ocultos do notebook 06 (ONNX Runtime). Arquivo do professor.

Edite à vontade os pontos (de cada teste) e os casos. Mudar pontos, nomes ou as soluções de referência só
recalcula as notas; mudar as entradas dos casos faz o corretor executar as entregas de novo.

06.2: no corretor em lote só as saídas voltam, então a delegação ao próprio kernel (montar um MatMulNBits com
`course_utils.ort.matmulnbits_model` e rodá-lo numa sessão do ORT com X = identidade) é reprovada pelos casos: mais da
metade dos pontos vem de blocos de 8 e de 24 pesos, que a regra escrita à mão desempacota e que o MatMulNBits do ORT
recusa (ele só aceita blocos de potência de 2, de 16 ou mais). A autocorreção do notebook também vê a chamada
(`watch_calls`).
"""


import numpy as np

from course_utils.grade import Case, Check, FunctionExercise, ValueExercise, number

# ---------------------------------------------------------------- soluções de referência

INT4_BITS = 4 + 16 / 32  # 4 bits + uma escala fp16 por bloco de 32
DECODE_CEILING = 50e9 / (7e9 * INT4_BITS / 8)  # tokens/s: banda / bytes lidos por token


def unpack_int4_blocks(packed, scales, zero_points):
    """MatMulNBits (4 bits) de volta: nibble baixo = índice par; ponto-zero 8 quando não há; W [K, N] float32."""
    packed = np.asarray(packed, dtype=np.uint8)
    n, blocks, blob = packed.shape
    q = np.empty((n, blocks, 2 * blob), dtype=np.float32)
    q[..., 0::2], q[..., 1::2] = packed & 15, packed >> 4
    if zero_points is None:
        zero = np.full((n, blocks), 8, dtype=np.float32)
    else:
        zp = np.asarray(zero_points, dtype=np.uint8).reshape(n, -1)
        zero = np.stack([zp & 15, zp >> 4], -1).reshape(n, -1)[:, :blocks].astype(np.float32)
    w = (q - zero[..., None]) * np.asarray(scales, dtype=np.float32).reshape(n, blocks)[..., None]
    return w.reshape(n, -1).T.copy()


def _absmax_rows(v):
    scale = np.abs(v).max(axis=1, keepdims=True) / 127
    scale = np.where(scale > 0, scale, 1.0)
    return np.rint(v / scale), scale


def llm_int8_matmul(x, w, limiar=6.0):
    """LLM.int8: colunas de x com |x| > limiar em ponto flutuante; o resto em int8 por linha de x e coluna de w."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    outliers = np.abs(x).max(axis=0) > limiar
    y = x[:, outliers] @ w[outliers]
    if outliers.all():
        return y.astype(np.float32)
    qx, sx = _absmax_rows(x[:, ~outliers])
    qw, sw = _absmax_rows(w[~outliers].T)
    return (y + (qx @ qw.T) * sx * sw.T).astype(np.float32)


def same_weights(got, expected):
    got = np.asarray(got)
    if got.shape != expected.shape:
        return False, f"formato {list(got.shape)}; esperava [K, N] = {list(expected.shape)}"
    if not np.allclose(got.astype(np.float64), expected, rtol=1e-5, atol=1e-6):
        return False, "pesos reconstruídos diferentes dos do MatMulNBits"
    return True, "correto"


def same_product(got, expected):
    got = np.asarray(got)
    if got.shape != expected.shape:
        return False, f"formato {list(got.shape)}; esperava [M, N] = {list(expected.shape)}"
    if not np.allclose(got.astype(np.float64), expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max())):
        return False, "o produto não confere com a decomposição do LLM.int8"
    return True, "correto"


# ---------------------------------------------------------------- entradas ocultas

def packed_case(seed, k, n, with_zero=True, blob=16):
    """Arrays de um MatMulNBits válido: códigos, escalas e (opcionalmente) pontos-zero aleatórios."""
    rng = np.random.default_rng(seed)
    blocks = k // (2 * blob)
    packed = rng.integers(0, 256, (n, blocks, blob), dtype=np.uint8)
    scales = (rng.random((n, blocks)) * 0.05 + 0.001).astype(np.float32)
    zero = rng.integers(0, 256, (n, (blocks + 1) // 2), dtype=np.uint8) if with_zero else None
    return packed, scales, zero


def int8_case(seed, m, k, n, outlier_cols=(), big=20.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(np.float32)
    for c in outlier_cols:
        x[rng.integers(0, m), c] = big
    return x, (rng.standard_normal((k, n)) * 0.1).astype(np.float32)


EXERCISES = [
    ValueExercise("06.1", answer="resposta_1", reference=DECODE_CEILING, checks=[
        Check("teto de tokens/s do 7B em INT4 (Q4_0) a 50 GB/s", 2, number(DECODE_CEILING, rel_tol=0.01)),
    ]),
    FunctionExercise("06.2", answer="meu_desempacotar", reference=unpack_int4_blocks, compare=same_weights, cases=[
        Case(packed_case(601, 64, 3), 1, "dois blocos, com pontos-zero"),
        Case(packed_case(602, 96, 2), 1, "número ímpar de blocos (ponto-zero com nibble de sobra)"),
        Case(packed_case(603, 64, 4, with_zero=False), 1, "sem pontos-zero guardados (vale 8)"),
        Case(packed_case(604, 32, 5, blob=8), 1, "blocos de 16 pesos"),
        Case(packed_case(605, 48, 3, blob=4), 2.5, "blocos de 8 pesos (o MatMulNBits do ORT não aceita)"),
        Case(packed_case(606, 96, 2, with_zero=False, blob=12), 2.5, "blocos de 24 pesos, sem pontos-zero"),
    ]),
    FunctionExercise("06.3", answer="meu_llm_int8", reference=llm_int8_matmul, compare=same_product, cases=[
        Case(int8_case(611, 6, 16, 5, outlier_cols=(3,)), 1, "uma coluna de outliers"),
        Case(int8_case(612, 4, 12, 3), 1, "sem outliers: só int8 vetor a vetor"),
        Case(int8_case(613, 5, 10, 4, outlier_cols=(0, 7)), 1, "duas colunas de outliers"),
        Case(int8_case(614, 3, 8, 2, outlier_cols=(2,)), 0.5, "limiar por nome", kwargs={"limiar": 1.5}),
    ]),
]
