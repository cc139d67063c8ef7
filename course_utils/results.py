"""Registrar resultados e afirmações de um notebook para o runner (`make course`) e os testes lerem.

`record("ppl_int8", 24.77)` mostra o valor na célula e o grava na saída do notebook com um
tipo MIME próprio; o notebook executado pelo papermill carrega esses valores e
`read_results()` os recolhe. Sem dependência de scrapbook.

`claim("INT8 ocupa <= 45% do fp32", ratio <= 0.45, measured=ratio)` declara uma afirmação do notebook: ela é
conferida (um `AssertionError` em português se for falsa) e gravada junto, com o valor medido. Uma afirmação que
esta execução não tem como conferir (só vale com GPU, por exemplo) é declarada com
`claim_skipped("...", "sem GPU nesta execução")`: aparece como pulada, nunca como conferida.
O nome da afirmação é um texto literal: os testes leem as afirmações declaradas direto da fonte do notebook.
"""

import math
import numbers

RESULT_MIME = "application/vnd.curso-llm-rapido.result+json"
CLAIM_MIME = "application/vnd.curso-llm-rapido.claim+json"

_RESULTS: dict = {}
_CLAIMS: dict = {}


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


def _show(text: str, mime: str, payload: dict) -> None:
    """Mostra `text` na célula e grava `payload` na saída com o tipo `mime` (fora do Jupyter, só imprime)."""
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({"text/plain": text, mime: payload}, raw=True)
            return
    except ImportError:
        pass
    print(text)


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def record(key: str, value):
    """Registra um resultado medido (número, bool ou texto). Não devolve nada: numa última linha de célula, o valor
    apareceria de novo, solto, depois da linha "registrado"."""
    if not isinstance(key, str) or not key:
        raise TypeError("A chave de record precisa ser um texto não vazio, como 'ppl_int8'.")
    value = _plain(value)
    _RESULTS[key] = value
    _show(f"📌 registrado: {key} = {_shown(value)}", RESULT_MIME, {"key": key, "value": value})


def claim(name: str, ok, measured=None) -> None:
    """Confere a afirmação `name` (`ok` verdadeiro) e a grava com o valor `measured`; falsa, levanta AssertionError."""
    if not isinstance(name, str) or not name:
        raise TypeError("O nome da afirmação precisa ser um texto não vazio, como 'INT8 ocupa <= 45% do fp32'.")
    ok = bool(_plain(ok))
    measured = None if measured is None else _plain(measured)
    _CLAIMS[name] = {"status": "ok" if ok else "failed", "measured": measured}
    extra = f" (medido: {_shown(measured)})" if measured is not None else ""
    _show(f"{'✅' if ok else '❌'} afirmação: {name}{extra}", CLAIM_MIME,
          {"name": name, "status": _CLAIMS[name]["status"], "measured": measured})
    if not ok:
        raise AssertionError(f"A afirmação não vale nesta execução: {name}{extra}.")


def claim_skipped(name: str, reason: str) -> None:
    """Declara que a afirmação `name` não pôde ser conferida nesta execução, e por quê (ex.: "sem GPU")."""
    if not isinstance(name, str) or not name or not isinstance(reason, str) or not reason:
        raise TypeError("claim_skipped precisa do nome da afirmação e do motivo, ambos textos não vazios.")
    _CLAIMS[name] = {"status": "skipped", "reason": reason}
    _show(f"⏭️ afirmação não conferida: {name} ({reason})", CLAIM_MIME,
          {"name": name, "status": "skipped", "reason": reason})


def recorded() -> dict:
    """Os resultados registrados neste processo até agora."""
    return dict(_RESULTS)


def _outputs(notebook, mime: str):
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if not hasattr(notebook, "cells") else notebook
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                yield data[mime]


def read_results(notebook) -> dict:
    """Resultados gravados num notebook executado (caminho ou objeto nbformat); o último valor de cada chave vence."""
    return {item["key"]: item["value"] for item in _outputs(notebook, RESULT_MIME)}


def read_claims(notebook) -> dict:
    """Afirmações gravadas num notebook executado: nome -> {"status": "ok"|"failed"|"skipped", "measured"/"reason"}."""
    return {item["name"]: {k: v for k, v in item.items() if k != "name"} for item in _outputs(notebook, CLAIM_MIME)}


def declared_claims(source: str) -> list:
    """Os nomes das afirmações que a fonte de um notebook declara, em ordem.

    Declara uma afirmação toda chamada de uma função cujo nome começa com `claim` (`claim`, `claim_skipped` ou um
    auxiliar do notebook, como `claim_peak`) com um texto literal como primeiro argumento. Chamadas com o nome
    calculado não declaram nada; os testes recusam a afirmação gravada que a fonte não declarou.
    """
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = getattr(node.func, "id", getattr(node.func, "attr", ""))
        first = node.args[0] if node.args else None
        if func.startswith("claim") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((node.lineno, first.value))
    names = []
    for _, name in sorted(found):
        if name not in names:
            names.append(name)
    return names
