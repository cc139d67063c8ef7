"""Mostrar na lição o código que o pacote executa (uma cópia só do algoritmo) e controles para explorar.

Os controles (`explore`, `chat_box`) sempre rodam a função com os valores padrão e imprimem o resultado: é o que fica
num notebook executado sem interface (papermill) ou sem ipywidgets. Num Jupyter ou no Colab, com ipywidgets, mostram
também os controles, que chamam a função de novo.
"""

import inspect
import os

from .config import HEADLESS_ENV


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


def widgets_available() -> bool:
    """True num kernel do Jupyter/Colab com ipywidgets instalado (onde um controle aparece); False num terminal, nos
    kernels sem navegador do runner e do corretor (`COURSE_HEADLESS=1`),
    num script ou sem ipywidgets.

    O shell do Colab é uma subclasse do `ZMQInteractiveShell` do ipykernel (com outro nome), por isso a conferência
    é por `isinstance`, não pelo nome da classe.
    """
    try:
        import ipywidgets  # noqa: F401
        from ipykernel.zmqshell import ZMQInteractiveShell
        from IPython import get_ipython
    except ImportError:
        return False
    if os.environ.get(HEADLESS_ENV) == "1":  # o runner e o corretor: sem navegador, um interact pode travar o nbclient
        return False
    return isinstance(get_ipython(), ZMQInteractiveShell)


def explore(fn, **controls) -> None:
    """Explorar `fn` com controles deslizantes (ipywidgets `interact`), sem depender deles.

    Cada controle é `nome=(mínimo, máximo, passo)` (a regra do `interact`; uma lista vira um menu) e o valor padrão
    vem da assinatura de `fn`. Sempre roda `fn` com os valores padrão e mostra o resultado (é o que fica num notebook
    executado pelo papermill ou sem ipywidgets); com ipywidgets num Jupyter/Colab, mostra também os controles, que
    chamam `fn` de novo.
    """
    fn()
    if not widgets_available():
        return
    from ipywidgets import interact

    print("Mexa nos controles abaixo para recalcular:")
    interact(fn, **controls)


def chat_box(fn, default_message: str) -> None:
    """Uma caixa de chat: um campo de texto e um botão que mandam a mensagem a `fn(mensagem) -> resposta`.

    Sempre responde a `default_message` e imprime a conversa (é o que fica num notebook executado pelo papermill ou
    sem ipywidgets). Com ipywidgets num Jupyter/Colab mostra também a caixa: cada clique em
    "Enviar" chama `fn` com o texto escrito e mostra a resposta logo abaixo (só a última conversa).
    """
    if not isinstance(default_message, str) or not default_message.strip():
        raise ValueError("chat_box precisa de uma mensagem padrão (um texto não vazio).")
    answer = fn(default_message)
    print(f"você: {default_message}\nmodelo: {answer}")
    if not widgets_available():
        return
    import ipywidgets as widgets
    from IPython.display import display

    text = widgets.Text(value=default_message, placeholder="Escreva uma mensagem",
                        layout=widgets.Layout(width="75%"))
    send = widgets.Button(description="Enviar", button_style="primary")
    output = widgets.Output()

    def on_send(_button):
        message = text.value.strip()
        if not message:
            return
        send.disabled, send.description = True, "Gerando..."
        output.clear_output()
        with output:
            print(f"você: {message}")
            try:
                print(f"modelo: {fn(message)}")
            finally:
                send.disabled, send.description = False, "Enviar"

    send.on_click(on_send)
    print("Escreva outra mensagem e clique em Enviar:")
    display(widgets.VBox([widgets.HBox([text, send]), output]))
