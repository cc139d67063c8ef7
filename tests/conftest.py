"""Configuração comum dos testes: sem rede, sem janela gráfica, modelos compartilhados.

As variáveis de ambiente são definidas na importação, antes de qualquer módulo do curso
(ou do transformers) ser importado pelos testes: `hub_available()` guarda a resposta em cache.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def reference_model():
    """O modelo de referência (SmolLM2-135M-Instruct) na CPU, em fp32. Não altere: é compartilhado."""
    from course_utils.models import load_model

    return load_model(device="cpu")


@pytest.fixture(scope="session")
def reference_tokenizer():
    """O tokenizador do modelo de referência."""
    from course_utils.models import load_tokenizer

    return load_tokenizer()


@pytest.fixture
def tiny():
    """Um LM Llama minúsculo com pesos aleatórios (semente fixa); novo a cada teste, pode ser alterado."""
    from course_utils.models import tiny_model

    return tiny_model()


@pytest.fixture
def single_thread():
    """Uma thread de CPU no torch durante o teste (restaura o valor anterior depois).

    Estes testes fazem muitas operações pequenas (modelo minúsculo, token a token). Com 2 threads
    e outro processo ocupando um núcleo, a espera ativa do OpenMP deixa cada operação até 100x mais
    lenta (medido: 60 s contra 0,4 s); com uma thread o tempo fica estável.
    """
    from course_utils.measure import one_cpu_thread

    with one_cpu_thread():
        yield
