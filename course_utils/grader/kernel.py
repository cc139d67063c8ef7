"""Lançador do kernel de uma entrega: arma a coleta e só então inicia o ipykernel.

    python -m course_utils.grader.kernel --key-fd 5 --channel-fd 6 -f conexao.json

A chave do HMAC é lida do descritor `--key-fd` (aberto pelo sandbox num arquivo já apagado) e o descritor é
fechado antes de qualquer célula; o canal (`--channel-fd`) é um arquivo fora da vista do kernel, aberto só
para acrescentar. Depois disso o código é o de `ipykernel_launcher`, com o namespace das células guardado
pela coleta antes da primeira célula.
"""

import os
import sys


def _take_fd(argv: list, flag: str) -> int:
    index = argv.index(flag)
    fd = int(argv[index + 1])
    del argv[index:index + 2]
    return fd


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    key_fd, channel_fd = _take_fd(argv, "--key-fd"), _take_fd(argv, "--channel-fd")
    key = os.read(key_fd, 256)
    os.close(key_fd)
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # como o ipykernel_launcher: nada da pasta de trabalho sombreia um módulo
    from . import collect

    collect.arm(key, channel_fd)
    del key
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(argv)
    collect.attach(app.shell.user_ns)
    app.start()


if __name__ == "__main__":
    main()
