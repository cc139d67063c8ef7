"""Linha de comando: `python -m course_utils.zerogpu lint CAMINHO [--strict]`, relatório e código de saída."""

import argparse
import sys

from .findings import ERROR, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, LintInputError
from .space import lint_path

# ------------------------------------------------------------------ linha de comando

def format_report(findings: list, target: str = "") -> str:
    """Um achado por linha (arquivo:linha) e um resumo no fim, em pt-BR."""
    errors = sum(f.severity == ERROR for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return f"Nenhum problema encontrado{' em ' + target if target else ''}."
    lines = [str(f) for f in findings]
    lines.append(f"{errors} erro(s), {warnings} aviso(s).")
    return "\n".join(lines)


def exit_code(findings: list, strict: bool = False) -> int:
    """1 se houver algum erro (com strict=True, também algum aviso); 0 caso contrário."""
    failing = findings if strict else [f for f in findings if f.severity == ERROR]
    return EXIT_FINDINGS if failing else EXIT_OK


# Mensagens do argparse que aparecem no uso errado mais comum, em pt-BR.
_ARGPARSE_PT = {
    "the following arguments are required": "faltam os argumentos",
    "invalid choice": "opção inválida",
    "unrecognized arguments": "argumentos não reconhecidos",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        for english, portuguese in _ARGPARSE_PT.items():
            message = message.replace(english, portuguese)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"erro de uso: {message}\n")


def main(argv=None) -> int:
    parser = _Parser(prog="python -m course_utils.zerogpu",
                     description="Confere uma pasta de Space (ou um app.py) contra as regras do ZeroGPU.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="lint")
    lint = sub.add_parser("lint", help="analisa a pasta do Space (ou um arquivo .py)")
    lint.add_argument("path", metavar="CAMINHO", help="pasta do Space ou arquivo .py")
    lint.add_argument("--strict", action="store_true", help="avisos também fazem o código de saída ser 1")
    args = parser.parse_args(argv)
    try:
        findings = lint_path(args.path)
    except LintInputError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_report(findings, args.path))
    return exit_code(findings, args.strict)
