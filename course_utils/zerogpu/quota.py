"""Quanto uma chamada `@spaces.GPU` pede ao ZeroGPU e quantas chamadas cabem numa cota diária.

As regras são as do pacote `spaces` 0.51.3 (`spaces/zero/client.py`) e da documentação do Hub
(docs/referencias.md, seções `zerogpu` e `zerogpu-spaces`):

- o **pedido** é `round(duration × duration_factor)` da GPU (`spaces/zero/configs.json`), exceto no tamanho `xlarge`,
  que pede a própria `duration`;
- no `xlarge` a cota conta em dobro: o pedido comparado com a cota e o tempo efetivo descontado dela;
- uma chamada só é aceita se o pedido cabe na cota que resta; a cota desconta o tempo que a função de fato usou.
"""

SIZES = ("large", "xlarge")


def requested_seconds(duration_s: float, size: str, duration_factor: float) -> int:
    """Os segundos que o agendador recebe de `@spaces.GPU(duration=duration_s, size=size)` numa GPU com esse fator."""
    if size not in SIZES:
        raise ValueError(f"size deve ser um de {SIZES}; recebeu {size!r}.")
    if duration_s <= 0 or duration_factor <= 0:
        raise ValueError("duration_s e duration_factor devem ser positivos.")
    return round(duration_s if size == "xlarge" else duration_s * duration_factor)


def quota_multiplier(size: str) -> int:
    """Quantas vezes um segundo de GPU conta na cota: 2 no `xlarge` (a GPU inteira), 1 no `large`."""
    if size not in SIZES:
        raise ValueError(f"size deve ser um de {SIZES}; recebeu {size!r}.")
    return 2 if size == "xlarge" else 1


def calls_using_full_request(requested_s: int, size: str, quota_s: float) -> int:
    """Quantas chamadas seguidas cabem numa cota de `quota_s` segundos se cada uma usar a GPU por todo o tempo pedido.

    Cada chamada custa `requested_s × quota_multiplier(size)` e só é aceita se esse pedido cabe no que resta: são
    `quota_s // custo` chamadas (zero se o pedido é maior que a cota inteira). Chamadas que usam menos do que pediram
    descontam menos, e cabem mais delas.
    """
    if requested_s <= 0:
        raise ValueError("requested_s deve ser positivo.")
    return int(quota_s // (requested_s * quota_multiplier(size)))


def request_report(duration_s: float, size: str, duration_factor: float, quota_minutes: dict, gpu_name: str = "") -> str:
    """O texto do controle do notebook 00: o pedido de uma chamada e quantas cabem em cada cota diária.

    quota_minutes: {conta: minutos por dia}, por exemplo {"gratuita": 5}.
    """
    requested = requested_seconds(duration_s, size, duration_factor)
    cost = requested * quota_multiplier(size)
    where = f" na {gpu_name}" if gpu_name else ""
    factor = "sem o duration_factor, que não vale no xlarge" if size == "xlarge" else f"duration_factor {duration_factor:g}"
    lines = [f'@spaces.GPU(duration={duration_s:g}, size="{size}"){where} ({factor}):',
             f"o agendador recebe um pedido de {requested} s; cada chamada que usa todo esse tempo custa {cost} s de cota"
             + (" (em dobro no xlarge)" if size == "xlarge" else ""),
             f"{'conta':<12}{'cota do dia':>12}   chamadas que cabem, usando todo o tempo pedido"]
    for account, minutes in quota_minutes.items():
        calls = calls_using_full_request(requested, size, 60 * minutes)
        note = "nenhuma: o pedido é maior que a cota inteira" if calls == 0 else str(calls)
        lines.append(f"{account:<12}{60 * minutes:>10} s   {note}")
    return "\n".join(lines)
