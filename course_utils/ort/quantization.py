"""Quantização pelo ONNX Runtime: INT8 dinâmico e INT8/INT4 só nos pesos (MatMulNBits), com cache em disco."""

import hashlib
import json
from pathlib import Path

from ..onnx_export import cached_build, onnx_cache_dir
from .files import dir_fingerprint, package_version
from .sessions import quiet_onnxruntime

# ---------------------------------------------------------------- quantização

def quantize_dynamic_int8(src, dst, per_channel: bool = False, reduce_range: bool = False) -> Path:
    """INT8 dinâmico do ORT: pesos int8 simétricos (por tensor, ou por canal), ativações uint8 quantizadas a
    cada execução com UMA escala por tensor (min/max do tensor inteiro naquele momento).

    reduce_range=True usa só 7 bits nos pesos ([-64, 64], como o `get_qmin_qmax_for_qType` do ORT): evita a
    saturação da instrução u8 x s8 das CPUs x86 sem VNNI (veja `u8s8_matmul`).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with quiet_onnxruntime():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         reduce_range=reduce_range,
                         use_external_data_format=True)
    return dst


def quantize_weight_only(src, dst, bits: int = 4, block_size: int = 32, symmetric: bool = True,
                         accuracy_level: int | None = None) -> Path:
    """Quantização só dos pesos em blocos (MatMulNBits): cada bloco de `block_size` pesos de uma coluna
    ganha a sua escala (e o seu ponto-zero, se symmetric=False). As ativações continuam em fp32.

    accuracy_level=4 deixa o kernel da CPU converter a ativação para int8 na hora da conta (mais rápido,
    um pouco menos preciso); None usa o padrão (fp32).
    """
    import onnx

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {} if accuracy_level is None else {"accuracy_level": accuracy_level}
    with quiet_onnxruntime():  # importar o quantizador chama logging.basicConfig(INFO); o with desfaz
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), bits=bits, block_size=block_size,
                                         is_symmetric=symmetric, **kwargs)
        quantizer.process()
        for stale in (dst, dst.with_name(dst.name + ".data")):
            stale.unlink(missing_ok=True)
        quantizer.model.save_model_to_file(str(dst), use_external_data_format=True)
    return dst


# ---------------------------------------------------------------- artefatos em cache

def cached_quantization(src, kind: str, refresh: bool = False, **options) -> tuple[Path, bool]:
    """Quantiza `src` uma vez e guarda no cache do curso; devolve (caminho, veio_do_cache).

    kind: "int8_dynamic" (quantize_dynamic_int8), "weight_only" (quantize_weight_only) ou
    "int8_dynamic_weights_fp32" (weights_of_dynamic_int8, com int8_src=caminho do INT8 dinâmico).
    A chave junta o diretório de origem (que já carrega a chave dele), o tipo, as opções e a versão do ORT.
    """
    builders = {"int8_dynamic": quantize_dynamic_int8, "weight_only": quantize_weight_only,
                "int8_dynamic_weights_fp32": weights_of_dynamic_int8}
    if kind not in builders:
        raise ValueError(f"kind deve ser um de {list(builders)}; recebi {kind!r}.")
    src = Path(src)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    key_src = json.dumps({"src": str(src.resolve()), "fp": dir_fingerprint(src.parent), "k": kind, "o": options,
                          "v": package_version("onnxruntime")}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    return cached_build(onnx_cache_dir() / f"{src.parent.name}-{kind}-{key}",
                        lambda path: builders[kind](src, path, **options), refresh)


def weights_of_dynamic_int8(fp32_src, dst, int8_src) -> Path:
    """Cópia do grafo fp32 com os pesos EXATOS do INT8 dinâmico (q - ponto-zero) x escala, em fp32.

    Separa os dois efeitos do `quantize_dynamic`: rodar esta cópia mede só o arredondamento dos pesos
    (mesma granularidade, mesma escala); a diferença para o INT8 dinâmico é a das ativações quantizadas.
    O quantizador guarda cada peso W como W_quantized, W_scale e W_zero_point.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    quantized = {t.name: t for t in onnx.load(str(int8_src)).graph.initializer}
    model = onnx.load(str(fp32_src))
    replaced = 0
    for tensor in model.graph.initializer:
        q = quantized.get(f"{tensor.name}_quantized")
        if q is None:
            continue
        scale = numpy_helper.to_array(quantized[f"{tensor.name}_scale"]).astype(np.float32)
        zero = numpy_helper.to_array(quantized[f"{tensor.name}_zero_point"]).astype(np.float32)
        q = numpy_helper.to_array(q).astype(np.float32)
        axis_shape = (1, -1) if scale.ndim and q.ndim == 2 else ()
        w = (q - zero.reshape(axis_shape)) * scale.reshape(axis_shape) if axis_shape else (q - zero) * scale
        tensor.CopyFrom(numpy_helper.from_array(w.astype(np.float32), tensor.name))
        replaced += 1
    if not replaced:
        raise ValueError("nenhum peso do grafo fp32 aparece no INT8 dinâmico (nomes W_quantized/W_scale ausentes).")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    for stale in (dst, dst.with_name(dst.name + ".data")):
        stale.unlink(missing_ok=True)
    onnx.save(model, str(dst), save_as_external_data=True, location=dst.name + ".data")
    return dst


# ---------------------------------------------------------------- nomes das variantes nos resultados

VARIANT_KEYS = {  # nome da variante no notebook 06 (tabelas, gráficos) -> sufixo da chave em resultados.json
    "fp32": "fp32",
    "int8 dinâmico": "int8_dynamic",
    "pesos do dinâmico": "int8_dynamic_weights_fp32",
    "int8 só pesos": "int8_weight_only",
    "int4 só pesos": "int4_weight_only",
    "int4 só pesos, ativ. int8": "int4_act_int8",
    "int4 do builder": "int4_builder",
}


def variant_results(prefix: str, values: dict) -> dict:
    """{f"{prefix}_{sufixo}": valor} para cada variante de `values` (nome do notebook -> valor), com o sufixo em
    inglês de VARIANT_KEYS: variant_results("ppl_ort", {"int8 dinâmico": 52.0}) == {"ppl_ort_int8_dynamic": 52.0}."""
    unknown = set(values) - set(VARIANT_KEYS)
    if unknown:
        raise KeyError(f"variantes sem chave em VARIANT_KEYS: {sorted(unknown)}")
    return {f"{prefix}_{VARIANT_KEYS[name]}": value for name, value in values.items()}
