"""Mostrar na lição o código que o pacote executa: uma cópia só do algoritmo, lida onde ela roda."""

import inspect


def show_source(obj) -> None:
    """Mostra o código-fonte de uma função ou classe do curso, com o módulo de onde vem.

    No Jupyter aparece com destaque de sintaxe; fora dele (papermill, terminal), como texto.
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as exc:
        raise TypeError(f"show_source precisa de uma função ou classe escrita em Python; recebeu {obj!r}.") from exc
    where = f"# {obj.__module__}.{obj.__qualname__}"
    text = f"{where}\n{source}"
    try:
        from IPython import get_ipython
        from IPython.display import Code, display

        if get_ipython() is not None:
            display(Code(text, language="python"))
            return
    except ImportError:
        pass
    print(text)


def explore(fn, **controls) -> None:
    """Explorar `fn` com controles deslizantes (ipywidgets `interact`), sem depender deles.

    Cada controle é `nome=(mínimo, máximo, passo)` (a regra do `interact`) e o valor padrão vem da assinatura de
    `fn`. Sempre roda `fn` com os valores padrão e mostra o resultado (é o que fica num notebook executado pelo
    papermill ou sem ipywidgets); com ipywidgets num Jupyter/Colab, mostra também os controles, que chamam `fn` de novo.
    """
    fn()
    try:
        from IPython import get_ipython
        from ipywidgets import interact

        shell = get_ipython()
    except ImportError:
        return
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return
    print("Mexa nos controles abaixo para recalcular:")
    interact(fn, **controls)
