"""INT8 e INT4 por dentro, num MatMul só: o DynamicQuantizeLinear do ONNX, a soma saturada da instrução VPMADDUBSW
sem VNNI, e os arrays que o MatMulNBits (int4 em blocos) lê."""

from pathlib import Path

import numpy as np

from .files import scratch_path

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


def cpu_int8_instructions(cpuinfo="/proc/cpuinfo") -> dict:
    """Que instruções de produto inteiro esta CPU x86 tem, lidas das flags de /proc/cpuinfo (Linux).

    {"avx2", "avx512": AVX-512F, "vnni": alguma forma de VNNI (AVX512_VNNI, AVX_VNNI) ou AMX-INT8}. Sem VNNI, o
    produto u8 x s8 do MLAS usa o VPMADDUBSW (soma dos pares em 16 bits com saturação), com AVX2 ou com AVX-512.
    Fora do Linux (sem o arquivo), tudo False.
    """
    path = Path(cpuinfo)
    flags = set(path.read_text().split()) if path.exists() else set()
    return {"avx2": "avx2" in flags, "avx512": "avx512f" in flags,
            "vnni": bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})}


def compare_with_simulations(x, w, workdir=None, name: str = "matmul") -> dict:
    """Uma camada isolada no INT8 dinâmico do ORT (por tensor e por canal) contra duas simulações em numpy.

    x: ativação [tokens, K] (fp32); w: peso [K, N] como no MatMul. Para cada granularidade: erro relativo da
    saída do ORT (err_*), fração de pares que saturariam em 16 bits (sat_frac_*), e a distância do ORT à conta
    exata (ort_vs_exact_*) e à que satura os pares (ort_vs_sat_*), ambas relativas ao maior |x @ w|.
    workdir: onde gravar os grafos de uma camada só (None: uma pasta de passagem, `scratch_dir`).
    """
    import onnx
    from onnx import numpy_helper

    from .quantization import quantize_dynamic_int8
    from .sessions import create_session

    workdir = Path(workdir) if workdir is not None else scratch_path(name).parent
    ref = x @ w
    mm_path = single_matmul_model(w, workdir / f"{name}.onnx")
    a_q, a_scale, a_zp = dynamic_quantize_uint8(x)
    row = {"zero_point": a_zp}
    for tag, per_channel in (("tensor", False), ("canal", True)):
        q_path = quantize_dynamic_int8(mm_path, workdir / f"{name}_{tag}.onnx", per_channel=per_channel)
        inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(q_path)).graph.initializer}
        if inits["W_zero_point"].any():
            raise AssertionError("esperava pesos int8 simétricos (ponto-zero 0)")
        w_q, w_scale = inits["W_quantized"], inits["W_scale"].astype(np.float64)
        y_ort = create_session(q_path).run(None, {"X": x})[0]
        exact, _ = u8s8_matmul(a_q, a_zp, w_q)
        saturated, frac = u8s8_matmul(a_q, a_zp, w_q, saturate_pairs=True)
        scale = float(np.abs(ref).max())
        row[f"err_{tag}"] = float(np.abs(y_ort - ref).mean() / np.abs(ref).mean())
        row[f"sat_frac_{tag}"] = frac
        row[f"ort_vs_exact_{tag}"] = float(np.abs(y_ort - exact * (a_scale * w_scale)).max() / scale)
        row[f"ort_vs_sat_{tag}"] = float(np.abs(y_ort - saturated * (a_scale * w_scale)).max() / scale)
    return row


def saturation_verdict(rows) -> dict:
    """O que as camadas testadas dizem: o kernel do ORT satura os pares (como o VPMADDUBSW sem VNNI) ou não?

    rows: saídas de `compare_with_simulations`. "saturates" exige as três coisas: o ORT se afasta da conta
    exata em alguma camada (> 1% do maior valor), fica 10x mais perto da simulação saturada que da exata em
    todas (ou a <= 0,5% dela: a ordem das somas do MLAS não é a do modelo de pares), e algum par satura.
    "exact": o ORT bate com a conta exata em todas (<= 1%). Fora disso, "unexplained".
    """
    rows = list(rows)
    if not rows:
        raise ValueError("nenhuma camada testada")
    tags = ("tensor", "canal")
    deviates = any(r[f"ort_vs_exact_{t}"] > 1e-2 for r in rows for t in tags)
    near_sat = all(r[f"ort_vs_sat_{t}"] <= max(0.1 * r[f"ort_vs_exact_{t}"], 5e-3) for r in rows for t in tags)
    worst = max(rows, key=lambda r: r["sat_frac_canal"])
    if deviates and near_sat and worst["sat_frac_canal"] > 0:
        kind = "saturates"
    elif not deviates:
        kind = "exact"
    else:
        kind = "unexplained"
    return {"kind": kind, "worst": worst}


# ---------------------------------------------------------------- INT4 em blocos (MatMulNBits) num MatMul só

def matmulnbits_model(packed, scales, zero_points, path=None, bits: int = 4) -> Path:
    """Um grafo com um único Y = X @ dequant(B), o operador `MatMulNBits` do ORT, com os arrays que você passar.

    packed: uint8 [N, blocos, bytes_por_bloco]; scales: float32 [N, blocos] (ou achatado); zero_points: uint8
    [N, ceil(blocos * bits / 8)] ou None (sem ponto-zero: o ORT usa 2^(bits-1)). K = blocos x tamanho do bloco.
    path: onde gravar o grafo (None: um arquivo de passagem, em `scratch_dir`).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    n, blocks, blob = packed.shape
    block_size = blob * 8 // bits
    k = blocks * block_size
    inits = [numpy_helper.from_array(packed, "B"),
             numpy_helper.from_array(np.ascontiguousarray(scales, dtype=np.float32).reshape(-1), "scales")]
    inputs = ["X", "B", "scales"]
    if zero_points is not None:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(zero_points, dtype=np.uint8).reshape(-1), "zp"))
        inputs.append("zp")
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block_size)
    graph = helper.make_graph([node], "matmulnbits", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["m", k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", n])], inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    path = Path(path) if path is not None else scratch_path("matmulnbits.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def ort_int4_blocks(weight, workdir=None, block_size: int = 32, symmetric: bool = False) -> dict:
    """Quantiza UM peso [K, N] com o MatMulNBitsQuantizer do ORT e devolve os arrays que ele gravou:
    {"B": uint8 [N, blocos, bloco/2], "scales": [N, blocos], "zero_points": uint8 ou None, "path": grafo}.
    workdir: onde gravar os grafos (None: uma pasta de passagem, `scratch_dir`)."""
    import onnx
    from onnx import numpy_helper

    from .quantization import quantize_weight_only

    workdir = Path(workdir) if workdir is not None else scratch_path("peso_fp32.onnx").parent
    src = single_matmul_model(weight, workdir / "peso_fp32.onnx")
    dst = quantize_weight_only(src, workdir / "peso_int4.onnx", bits=4, block_size=block_size, symmetric=symmetric)
    model = onnx.load(str(dst))
    node = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    n, k = weight.shape[1], weight.shape[0]
    blocks = k // block_size
    zero = inits.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    return {"B": inits[node.input[1]].reshape(n, blocks, block_size // 2),
            "scales": inits[node.input[2]].reshape(n, blocks).astype(np.float32),
            "zero_points": None if zero is None else zero.reshape(n, -1), "path": dst}
