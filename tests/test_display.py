"""Os controles da lição (course_utils.display): sem interface rodam os padrões uma vez; com ipywidgets, respondem."""

import os

import pytest

from course_utils import display
from course_utils.config import HEADLESS_ENV


def test_chat_box_without_widgets_answers_the_default_message_once(capsys):
    calls = []

    def fn(message):
        calls.append(message)
        return f"eco: {message}"

    assert not display.widgets_available()  # pytest não é um kernel do Jupyter
    assert display.chat_box(fn, "Olá, modelo") is None   # nada a mais na saída da célula
    out = capsys.readouterr().out
    assert calls == ["Olá, modelo"]
    assert "você: Olá, modelo" in out and "modelo: eco: Olá, modelo" in out


@pytest.mark.parametrize("default", ["", "   ", None, 42])
def test_chat_box_needs_a_default_message(default):
    with pytest.raises(ValueError, match="mensagem padrão"):
        display.chat_box(lambda m: m, default)


def test_chat_box_with_widgets_sends_what_was_typed(monkeypatch, capsys):
    pytest.importorskip("ipywidgets")
    import IPython.display

    shown, calls = [], []
    monkeypatch.setattr(display, "widgets_available", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))

    def fn(message):
        calls.append(message)
        return message.upper()

    display.chat_box(fn, "primeira")
    (box,) = shown
    row, _output = box.children
    text, button = row.children
    text.value = "  segunda mensagem "
    button.click()
    text.value = "   "          # vazio: o botão não chama a função
    button.click()
    assert calls == ["primeira", "segunda mensagem"]
    assert "modelo: SEGUNDA MENSAGEM" in capsys.readouterr().out
    assert not button.disabled and button.description == "Enviar"


def test_chat_box_button_comes_back_after_an_error(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    shown = []
    monkeypatch.setattr(display, "widgets_available", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))

    def fn(message):
        if message != "ok":
            raise RuntimeError("falhou")
        return "ok"

    display.chat_box(fn, "ok")
    text, button = shown[0].children[0].children
    text.value = "quebra"
    try:
        button.click()
    except RuntimeError:
        pass
    assert not button.disabled


def test_explore_with_widgets_runs_the_defaults_and_hands_the_controls_to_interact(monkeypatch, capsys):
    ipywidgets = pytest.importorskip("ipywidgets")

    got = {}
    monkeypatch.setattr(display, "widgets_available", lambda: True)
    monkeypatch.setattr(ipywidgets, "interact", lambda fn, **controls: got.update(fn=fn, controls=controls))

    def fn(bits=4):
        print(f"bits {bits}")

    display.explore(fn, bits=(2, 8, 1))
    assert "bits 4" in capsys.readouterr().out
    assert got == {"fn": fn, "controls": {"bits": (2, 8, 1)}}


def test_widgets_are_not_available_outside_a_kernel():
    assert display.widgets_available() is False


def test_widgets_are_off_in_kernels_without_a_browser(monkeypatch):
    """Com COURSE_HEADLESS=1 (runner, corretor) nem um shell de kernel mostra controles: o interact travaria o nbclient."""
    import IPython
    from ipykernel.zmqshell import ZMQInteractiveShell

    class FakeKernelShell(ZMQInteractiveShell):
        def __init__(self):  # sem kernel de verdade: só o tipo importa
            pass

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    assert display.widgets_available()
    monkeypatch.setenv(HEADLESS_ENV, "1")
    assert not display.widgets_available()


def test_the_runner_marks_its_kernels_headless_and_restores_the_environment(tmp_path, monkeypatch):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from course_utils.course.runner import run_notebook

    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    nb = new_notebook(cells=[new_code_cell(f"import os\nassert os.environ.get({HEADLESS_ENV!r}) == '1'")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "sem_navegador.ipynb")
    (tmp_path / "saida").mkdir()
    entry = run_notebook(tmp_path / "sem_navegador.ipynb", tmp_path / "saida", {}, progress=False)
    assert entry["status"] == "ok", entry["error"]
    assert HEADLESS_ENV not in os.environ
