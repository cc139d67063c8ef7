"""INT8 por dentro, num MatMul só: o DynamicQuantizeLinear do ONNX e a soma saturada da instrução VPMADDUBSW."""

from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- INT8 por dentro (um MatMul só)

def single_matmul_model(weight, path) -> Path:
    """Um grafo ONNX com um único Y = X @ W (W: [K, N], fp32), para estudar a quantização de uma camada."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.ascontiguousarray(np.asarray(weight, dtype=np.float32))
    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])], "matmul",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["tokens", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["tokens", n])],
        [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def dynamic_quantize_uint8(x):
    """DynamicQuantizeLinear do ONNX: uint8 assimétrico com UMA escala para o tensor inteiro.

    escala = (max(0, max x) - min(0, min x)) / 255;  ponto-zero = round(-min(0, min x) / escala);
    q = clip(round(x / escala) + ponto-zero, 0, 255), arredondando metades para o par.
    Devolve (q como int64, escala, ponto-zero).
    """
    x = np.asarray(x, dtype=np.float32)
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = np.float32((hi - lo) / 255) if hi > lo else np.float32(1.0)
    zero_point = int(np.clip(np.rint(-lo / scale), 0, 255))
    q = np.clip(np.rint(x / scale) + zero_point, 0, 255).astype(np.int64)
    return q, float(scale), zero_point


def u8s8_matmul(a_q, a_zero_point: int, w_q, saturate_pairs: bool = False, chunk: int = 32):
    """Acumulador inteiro de (a_q - a_zp) @ w_q, com a_q uint8 [M, K] e w_q int8 simétrico [K, N].

    saturate_pairs=True imita a instrução VPMADDUBSW do AVX2 (sem VNNI): ela multiplica u8 x s8 e soma
    os produtos DOIS A DOIS num inteiro de 16 bits com saturação (teto 32767, piso -32768) antes de
    acumular em 32 bits. Se a soma de um par passa do teto, a conta sai errada sem aviso.
    Devolve (acumulador int64 [M, N], fração dos pares que saturaram).
    """
    a_q = np.asarray(a_q, dtype=np.int64)
    w_q = np.asarray(w_q, dtype=np.int64)
    k = a_q.shape[1]
    correction = a_zero_point * w_q.sum(axis=0)  # o kernel soma a*w com a cru e desconta o ponto-zero depois
    if not saturate_pairs:
        exact = a_q.astype(np.float64) @ w_q.astype(np.float64)  # inteiros < 2^53: a conta em float64 é exata
        return np.rint(exact).astype(np.int64) - correction, 0.0
    if k % 2:
        a_q = np.pad(a_q, ((0, 0), (0, 1)))
        w_q = np.pad(w_q, ((0, 1), (0, 0)))
    out = np.empty((a_q.shape[0], w_q.shape[1]), dtype=np.int64)
    saturated = 0
    w_even, w_odd = w_q[0::2].astype(np.int32), w_q[1::2].astype(np.int32)
    for start in range(0, a_q.shape[0], chunk):
        a = a_q[start:start + chunk].astype(np.int32)
        pairs = a[:, 0::2, None] * w_even[None] + a[:, 1::2, None] * w_odd[None]   # [m, K/2, N]
        clipped = np.clip(pairs, -32768, 32767)
        saturated += int((clipped != pairs).sum())
        out[start:start + chunk] = clipped.sum(axis=1, dtype=np.int64)
    total_pairs = a_q.shape[0] * (a_q.shape[1] // 2) * w_q.shape[1]
    return out - correction, saturated / total_pairs
