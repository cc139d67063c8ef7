"""Quantização escrita à mão: os primitivos que o notebook 01 ensina (e que o 02 reutiliza).

Notação: w é um tensor de pesos [saídas, entradas]; b é o número de bits.
Granularidade = quantos pesos dividem uma mesma escala:
  "tensor"  -> uma escala para o tensor inteiro;
  "channel" -> uma escala por linha (canal de saída);
  "group"   -> uma escala por grupo de `group_size` pesos consecutivos de uma linha.

Quanto ocupa um modelo inteiro com `bits_per_weight(...)` bits por peso: `planner.weight_gib(config, bits)`.
"""

import torch


def _grouped(w: torch.Tensor, granularity: str, group_size: int) -> torch.Tensor:
    """Vista 2D em que cada linha compartilha uma escala."""
    if granularity == "tensor":
        return w.reshape(1, -1)
    if granularity == "channel":
        return w.reshape(w.shape[0], -1)
    if granularity == "group":
        if w.shape[-1] % group_size:
            raise ValueError(
                f"A última dimensão ({w.shape[-1]}) não é divisível por group_size={group_size}. "
                "No modelo de referência (hidden 576, intermediate 1536) use 32 ou 64; 128 não divide 576."
            )
        return w.reshape(-1, group_size)
    raise ValueError(f"granularity deve ser 'tensor', 'channel' ou 'group', não {granularity!r}.")


def absmax_quantize(w, bits=8, granularity="channel", group_size=64):
    """Quantização simétrica (absmax): s = max|w| / (2^(b-1) - 1);  q = round(w / s) em [-(2^(b-1)-1), 2^(b-1)-1].

    Devolve (q, s) na vista agrupada; o zero real vira exatamente o inteiro 0.
    """
    g = _grouped(w.float(), granularity, group_size)
    qmax = 2 ** (bits - 1) - 1
    scale = g.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / qmax
    q = torch.clamp(torch.round(g / scale), -qmax, qmax).to(torch.int8 if bits <= 8 else torch.int32)
    return q, scale


def absmax_dequantize(q, scale, shape):
    """w ≈ q * s, de volta ao formato original."""
    return (q.float() * scale).reshape(shape)


def zeropoint_quantize(w, bits=8, granularity="channel", group_size=64):
    """Quantização assimétrica com ponto-zero inteiro:
    s = (max - min) / (2^b - 1);  z = round(-min / s);  q = clamp(round(w / s) + z, 0, 2^b - 1).

    Usa todos os 2^b níveis mesmo quando os pesos não são centrados em zero. A faixa [min, max]
    é estendida para conter o 0 (senão z sairia de [0, 2^b - 1]): o zero real continua exato.
    Devolve (q, s, z).
    """
    g = _grouped(w.float(), granularity, group_size)
    scale, zero = zeropoint_params(g, bits)
    q = torch.clamp(torch.round(g / scale) + zero, 0, 2**bits - 1).to(torch.uint8 if bits <= 8 else torch.int32)
    return q, scale, zero


def zeropoint_params(g, bits=4):
    """Escala e ponto-zero de cada linha de g [linhas, colunas] (cada linha = um grupo):
    s = (max - min) / (2^b - 1) e z = round(-min / s), com a faixa estendida para conter o 0.

    Devolve (s, z), ambos [linhas, 1]. É o "quantizador" que o GPTQ e o AWQ reutilizam.
    """
    qmax = 2**bits - 1
    lo = g.amin(dim=1, keepdim=True).clamp(max=0)
    hi = g.amax(dim=1, keepdim=True).clamp(min=0)
    scale = (hi - lo).clamp(min=1e-12) / qmax
    zero = torch.clamp(torch.round(-lo / scale), 0, qmax)
    return scale, zero


def zeropoint_fake_quantize(g, scale, zero, bits=4):
    """Quantiza e desquantiza com escala e ponto-zero já escolhidos: ŵ = (clamp(round(w/s) + z, 0, 2^b - 1) - z) * s."""
    q = torch.clamp(torch.round(g / scale) + zero, 0, 2**bits - 1)
    return (q - zero) * scale


def zeropoint_dequantize(q, scale, zero, shape):
    """w ≈ (q - z) * s."""
    return ((q.float() - zero) * scale).reshape(shape)


def minmax_quantize(w, bits=4, granularity="group", group_size=32):
    """Assimétrica com mínimo em ponto flutuante (o formato Q4_1 do GGUF):
    s = (max - min) / (2^b - 1);  q = round((w - min) / s);  w ≈ q * s + min.

    Diferente do ponto-zero inteiro, o mínimo de cada grupo é guardado exato. Devolve (q, s, min).
    """
    g = _grouped(w.float(), granularity, group_size)
    qmax = 2**bits - 1
    lo, hi = g.amin(dim=1, keepdim=True), g.amax(dim=1, keepdim=True)
    scale = (hi - lo).clamp(min=1e-12) / qmax
    q = torch.clamp(torch.round((g - lo) / scale), 0, qmax).to(torch.uint8 if bits <= 8 else torch.int32)
    return q, scale, lo


def minmax_dequantize(q, scale, minimum, shape):
    """w ≈ q * s + min."""
    return (q.float() * scale + minimum).reshape(shape)


def fake_quantize(w, bits=8, scheme="absmax", granularity="channel", group_size=64):
    """Quantiza e desquantiza: o peso que o modelo "vê" depois da quantização, no dtype original."""
    if scheme == "absmax":
        q, s = absmax_quantize(w, bits, granularity, group_size)
        w_hat = absmax_dequantize(q, s, w.shape)
    elif scheme == "zeropoint":
        q, s, z = zeropoint_quantize(w, bits, granularity, group_size)
        w_hat = zeropoint_dequantize(q, s, z, w.shape)
    elif scheme == "minmax":
        q, s, m = minmax_quantize(w, bits, granularity, group_size)
        w_hat = minmax_dequantize(q, s, m, w.shape)
    else:
        raise ValueError(f"scheme deve ser 'absmax', 'zeropoint' ou 'minmax', não {scheme!r}.")
    return w_hat.to(w.dtype)


def rtn_quantize(w, bits=4, group_size=64):
    """RTN (round-to-nearest) por grupos: a linha de base do GPTQ e do AWQ.

    Cada grupo de `group_size` pesos consecutivos de uma linha ganha escala e ponto-zero inteiro
    (assimétrica) e cada peso vai para o nível mais próximo, sem olhar para os dados.
    group_size=None usa uma escala por linha. Devolve o peso quantizado-desquantizado, no dtype original.
    """
    if bits < 2 or bits > 8:
        raise ValueError(f"bits deve ficar entre 2 e 8 para RTN por grupos, não {bits}.")
    g = _grouped(w.float(), "channel" if group_size is None else "group", group_size)
    scale, zero = zeropoint_params(g, bits)
    # o mesmo que fake_quantize(w, bits, "zeropoint", ...), sem passar por inteiros: GPTQ e AWQ chamam isto muitas vezes
    return zeropoint_fake_quantize(g, scale, zero, bits).reshape(w.shape).to(w.dtype)


def quantization_error(w, w_hat) -> dict:
    """Erro de reconstrução: relativo (||w - ŵ|| / ||w||), RMS e máximo absoluto."""
    diff = (w.float() - w_hat.float())
    return {
        "relative": (diff.norm() / w.float().norm()).item(),
        "rmse": diff.pow(2).mean().sqrt().item(),
        "max_abs": diff.abs().max().item(),
    }


def bits_per_weight(bits, group_size=None, scale_bits=16, zero_bits=0) -> float:
    """Custo real por peso: b + (bits da escala + bits do ponto-zero) / tamanho do grupo.

    group_size=None significa uma escala para muitos pesos (tensor inteiro): custo extra ~0.
    Ex.: 4 bits, grupos de 64, escala fp16 e ponto-zero de 4 bits -> 4 + 20/64 = 4.31 bits.
    """
    if group_size is None:
        return float(bits)
    return bits + (scale_bits + zero_bits) / group_size


def group_tradeoff(w, bits=4, group_size=64, scheme="absmax") -> dict:
    """O dilema da granularidade num número só: erro relativo de w com `bits` bits em grupos de `group_size` pesos,
    e quanto cada peso custa com a escala fp16 do grupo (e o ponto-zero de `bits` bits, no esquema "zeropoint").

    É a função por trás do controle de bits e tamanho de grupo do notebook 01. Devolve
    {"relative_error", "bits_per_weight"}.
    """
    if scheme not in ("absmax", "zeropoint"):
        raise ValueError(f"scheme deve ser 'absmax' ou 'zeropoint', não {scheme!r}.")
    w_hat = fake_quantize(w, bits, scheme, "group", group_size)
    zero_bits = bits if scheme == "zeropoint" else 0
    return {"relative_error": quantization_error(w, w_hat)["relative"],
            "bits_per_weight": bits_per_weight(bits, group_size, 16, zero_bits)}


def fake_quantize_model_(model, bits=4, scheme="zeropoint", granularity="group", group_size=64, skip=("lm_head",)) -> int:
    """Substitui, no lugar, o peso de cada nn.Linear (menos os de `skip`) pela sua versão quantizada-desquantizada.

    Serve para medir o efeito de um formato na qualidade sem precisar de kernels próprios.
    Devolve quantas camadas foram quantizadas.
    """
    count = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and not any(s in name for s in skip):
                module.weight.copy_(fake_quantize(module.weight, bits, scheme, granularity, group_size))
                count += 1
    return count
