"""A célula de configuração do Colab (gerada em todo notebook por `make notebooks`)."""

from ..config import COLAB_PINS, GITHUB_BRANCH, GITHUB_REPO


def setup_cell_source(name: str) -> str:
    """A célula de configuração: instala só no Colab, sem trocar o torch que o Colab já tem."""
    pins = ", ".join(f'"{p}"' for p in COLAB_PINS)
    return (
        "# Configuração: no Colab instala o pacote do curso (mantendo o torch do Colab); fora dele não faz nada.\n"
        "import subprocess, sys\n"
        f'REPO, BRANCH = "{GITHUB_REPO}", "{GITHUB_BRANCH}"\n'
        'if "google.colab" in sys.modules:\n'
        f"    pins = [{pins}]\n"
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pins,\n'
        '                    f"curso-llm-rapido @ git+https://github.com/{REPO}@{BRANCH}"], check=True)'
    )
