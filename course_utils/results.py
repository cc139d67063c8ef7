"""Registrar resultados medidos num notebook para o runner (`make course`) e os testes lerem.

`record("ppl_int8", 24.77)` mostra o valor na célula e o grava na saída do notebook com um
tipo MIME próprio; o notebook executado pelo papermill carrega esses valores e
`read_results()` os recolhe. Sem dependência de scrapbook.
"""

import math
import numbers

RESULT_MIME = "application/vnd.curso-llm-rapido.result+json"

_RESULTS: dict = {}


def _plain(value):
    """Converte escalares de numpy/torch para tipos do Python e rejeita o que não cabe em JSON."""
    if hasattr(value, "item") and callable(value.item):
        size = getattr(value, "size", 1)
        size = size() if callable(size) else size
        if hasattr(size, "numel"):
            size = size.numel()
        if size != 1:
            raise TypeError(f"record aceita um valor só; recebeu um array/tensor com {size} elementos.")
        value = value.item()
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"Valor não finito ({value}): meça de novo antes de registrar.")
        return value
    raise TypeError(f"record aceita número, bool ou texto; recebeu {type(value).__name__}.")


def record(key: str, value):
    """Registra um resultado medido (número, bool ou texto) e o devolve."""
    if not isinstance(key, str) or not key:
        raise TypeError("A chave de record precisa ser um texto não vazio, como 'ppl_int8'.")
    value = _plain(value)
    _RESULTS[key] = value
    shown = f"{value:.4g}" if isinstance(value, float) else repr(value)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({"text/plain": f"📌 registrado: {key} = {shown}", RESULT_MIME: {"key": key, "value": value}}, raw=True)
            return value
    except ImportError:
        pass
    print(f"registrado: {key} = {shown}")
    return value


def recorded() -> dict:
    """Os resultados registrados neste processo até agora."""
    return dict(_RESULTS)


def read_results(notebook) -> dict:
    """Resultados gravados num notebook executado (caminho ou objeto nbformat); o último valor de cada chave vence."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if not hasattr(notebook, "cells") else notebook
    results = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULT_MIME in data:
                item = data[RESULT_MIME]
                results[item["key"]] = item["value"]
    return results
