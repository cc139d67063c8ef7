"""Linha de comando de `course_utils.course` (veja o docstring do pacote)."""

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"notebooks": "notebooks", "run": "runner", "bundle": "bundle", "install-bundle": "bundle"}
    if not argv or argv[0] not in commands:
        print("uso: python -m course_utils.course {notebooks,run,bundle,install-bundle} ...\n"
              "  notebooks       gera notebooks/*.ipynb a partir de notebooks/src/*.py\n"
              "  run             executa o curso num perfil (offline, gpu, t4)\n"
              "  bundle          empacota o que uma GPU sem internet precisa\n"
              "  install-bundle  instala esse pacote do outro lado")
        return 2
    import importlib

    module = importlib.import_module(f"course_utils.course.{commands[argv[0]]}")
    if argv[0] == "install-bundle":
        return module.main_install(argv[1:])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
