"""Juízes dos exercícios do notebook 06 (ONNX Runtime), registrados com @exercise."""

import math

import torch

from . import _judge_number, exercise


@exercise("06.1", "teto de tokens/s de um 7B em INT4 a 50 GB/s", "um número (tokens/s, float)")
def _decode_bound_int4(answer):
    bits_per_weight = 4 + 16 / 32           # 4 bits + uma escala fp16 por bloco de 32
    bytes_per_token = 7e9 * bits_per_weight / 8
    expected = 50e9 / bytes_per_token
    return _judge_number(answer, expected, 0.01, [
        (50e9 / (7e9 * 4 / 8), "faltou o custo da escala: cada bloco de 32 pesos guarda também 16 bits de escala."),
        (50e9 / (7e9 * bits_per_weight), "cuidado com a unidade: bits por peso viram bytes dividindo por 8."),
        (50e9 / (7e9 * 2), "isso é o teto em fp16 (2 bytes por peso); o modelo está em INT4."),
        (50e9 / (7e9 * 4), "isso é o teto em fp32 (4 bytes por peso); o modelo está em INT4."),
    ])


def _as_numpy(value):
    import numpy as np

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


@exercise("06.2", "DynamicQuantizeLinear (uint8, uma escala por tensor)",
          "uma função f(x) -> (q uint8, escala, ponto_zero)")
def _dynamic_quantize_linear(answer):
    import numpy as np

    from ..ort import dynamic_quantize_uint8

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    rng = np.random.default_rng(6)
    cases = {"misto": rng.standard_normal((4, 16)).astype(np.float32) * 3,
             "só positivos": np.abs(rng.standard_normal((3, 8))).astype(np.float32) + 0.5,
             "só negativos": -np.abs(rng.standard_normal((3, 8))).astype(np.float32) - 0.5,
             "com outlier": np.concatenate([rng.standard_normal(30), [80.0]]).astype(np.float32)}
    for name, x in cases.items():
        got = answer(x.copy())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva (q, escala, ponto_zero)."
        if not (isinstance(got, tuple) and len(got) == 3):
            return False, "a função deve devolver uma tupla com três itens: (q, escala, ponto_zero)."
        q, scale, zero_point = got
        q = _as_numpy(q)
        ref_q, ref_scale, ref_zp = dynamic_quantize_uint8(x)
        if q.shape != x.shape:
            return False, f"q deve ter o formato de x {x.shape}, veio {q.shape}."
        if q.dtype != np.uint8:
            return False, f"q deve ser uint8 (veio {q.dtype}). Dica: .astype(np.uint8) depois de limitar a [0, 255]."
        try:
            scale, zero_point = float(_as_numpy(scale)), int(_as_numpy(zero_point))
        except (TypeError, ValueError):
            return False, "a escala deve ser um número e o ponto-zero um inteiro."
        if name in ("só positivos", "só negativos") and not math.isclose(scale, ref_scale, rel_tol=1e-4):
            return False, (f"no caso '{name}' a escala não confere: a faixa SEMPRE inclui o zero "
                           "(use min(0, x.min()) e max(0, x.max())), para o zero ser representado sem erro.")
        if math.isclose(scale, (max(0, x.max()) - min(0, x.min())) / 256, rel_tol=1e-4):
            return False, "uint8 tem 256 valores, mas 255 degraus entre 0 e 255: divida a faixa por 255."
        if not math.isclose(scale, ref_scale, rel_tol=1e-4):
            return False, f"no caso '{name}' a escala não confere: (max(0, máx) - min(0, mín)) / 255."
        if zero_point != ref_zp:
            return False, f"no caso '{name}' o ponto-zero não confere: é o inteiro mais próximo de -min(0, mín) / escala."
        if np.abs(q.astype(np.int64) - ref_q).max() > 1:
            return False, f"no caso '{name}' os valores de q não conferem: q = round(x / escala) + ponto_zero, limitado a [0, 255]."
        if (q.astype(np.int64) != ref_q).mean() > 0.01:
            return False, "quase lá: arredonde com np.rint (metades vão para o par), como o ONNX manda."
    return True, "correto! Repare no caso com outlier: quase todos os valores caem em poucos degraus."


@exercise("06.3", "um par da instrução VPMADDUBSW (u8 x s8, soma saturada em 16 bits)",
          "uma função f(a1, w1, a2, w2) -> int")
def _vpmaddubsw_pair(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    cases = [(3, 5, 7, -2), (255, 127, 255, 127), (255, -128, 255, -128), (200, 100, 10, 5), (255, 127, 0, 99),
             (130, -90, 250, -120), (0, 0, 0, 0)]
    for a1, w1, a2, w2 in cases:
        got = answer(a1, w1, a2, w2)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o inteiro."
        try:
            got = int(_as_numpy(got))
        except (TypeError, ValueError):
            return False, f"devolva um inteiro (veio {type(got).__name__})."
        raw = a1 * w1 + a2 * w2
        expected = max(-32768, min(32767, raw))
        if got == expected:
            continue
        if got == raw:
            return False, "faltou a saturação: o resultado cabe em 16 bits com sinal, então é limitado a [-32768, 32767]."
        clip16 = lambda v: max(-32768, min(32767, v))
        if got == clip16(clip16(a1 * w1) + clip16(a2 * w2)) and got != expected:
            return False, "a saturação vale para a SOMA do par, não para cada produto separado."
        if got == max(-32767, min(32767, raw)):
            return False, "o piso de um inteiro de 16 bits com sinal é -32768, não -32767."
        return False, f"para a1={a1}, w1={w1}, a2={a2}, w2={w2} o valor não confere: some os dois produtos e limite a 16 bits."
    return True, "correto! É por isso que 2 x 255 x 127 = 64770 vira 32767 e o INT8 por canal quebra."
