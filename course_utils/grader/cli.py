"""Linha de comando do corretor: `curso-corrigir` = `python -m course_utils.grader` = `python -m course_utils.grade`.

    curso-corrigir run -n 04_janela_deslizante entregas/ --out correcao --smoke --jobs 2
    curso-corrigir run -n 04 -n 05 entregas/ --shard 1/3 --out parte1     # numa de 3 máquinas
    curso-corrigir run -n 04 entregas/ --spec-dir ~/meus-testes-ocultos    # testes que só o professor tem
    curso-corrigir merge parte1 parte2 parte3 --out correcao              # junta as partes
"""

import argparse
import ast
import os
import re
import sys
from pathlib import Path

from .assignments import GRADING_DIR
from .execute import Limits
from .judge import fmt

_ARGPARSE_PT = [("the following arguments are required", "faltam os argumentos"),
                ("unrecognized arguments", "argumentos desconhecidos"), ("invalid choice", "opção inválida"),
                ("invalid int value", "número inteiro inválido"), ("invalid float value", "número inválido"),
                ("expected one argument", "esperava um valor"), ("expected 2 arguments", "esperava dois valores"),
                ("choose from", "escolha entre")]


class PortugueseParser(argparse.ArgumentParser):
    """argparse com as mensagens de erro em pt-BR."""

    def error(self, message):
        for english, portuguese in _ARGPARSE_PT:
            message = message.replace(english, portuguese)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: erro: {message}\n(veja {self.prog} --help)\n")


def _parse_shard(text: str) -> tuple:
    match = re.fullmatch(r"(\d+)/(\d+)", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(f"--shard espera K/N com 1 <= K <= N (ex.: 2/4), veio {text!r}")
    return int(match[1]), int(match[2])


def _parse_value(text: str):
    """Valor de -p NOME VALOR: literal Python (True, 3, [1, 2], "x") ou, se não for, texto."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = PortugueseParser(prog="curso-corrigir", description="Correção em lote das entregas.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,merge}", parser_class=PortugueseParser)
    run = sub.add_parser("run", help="executa e corrige as entregas")
    run.add_argument("submissions", nargs="+", help="pastas com entregas (.ipynb) ou arquivos")
    run.add_argument("-n", "--notebook", action="append", required=True,
                     help="notebook da tarefa (ex.: 04_janela_deslizante ou 04); repita para vários")
    run.add_argument("--out", default="correcao", help="pasta de saída (padrão: correcao/)")
    run.add_argument("--jobs", type=int, default=1, help="entregas em paralelo (padrão: 1)")
    run.add_argument("--shard", type=_parse_shard, default=(1, 1), help="K/N: corrige só a K-ésima de N partes")
    run.add_argument("--force", action="store_true", help="corrige de novo mesmo o que não mudou")
    run.add_argument("--smoke", action="store_true", help="injeta SMOKE=True (cargas pequenas, bem mais barato)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NOME", "VALOR"),
                     help="parâmetro injetado pelo papermill (ex.: -p SEED 1); repita para vários")
    d = Limits()
    run.add_argument("--timeout", type=int, default=d.timeout_s, help=f"segundos por notebook ({d.timeout_s})")
    run.add_argument("--cell-timeout", type=int, default=d.cell_timeout_s,
                     help=f"segundos por célula ({d.cell_timeout_s})")
    run.add_argument("--call-timeout", type=float, default=d.call_timeout_s,
                     help=f"segundos por caso oculto ({d.call_timeout_s:g})")
    run.add_argument("--memory-mb", type=int, default=d.memory_mb,
                     help=f"memória de cada entrega, todos os processos juntos ({d.memory_mb})")
    run.add_argument("--max-procs", type=int, default=d.max_procs,
                     help=f"processos e threads de cada entrega ({d.max_procs})")
    run.add_argument("--threads", type=int, default=None, help="threads por kernel (padrão: núcleos / jobs)")
    run.add_argument("--isolation", choices=["auto", "namespaces", "nenhum"], default="auto",
                     help="isolamento do kernel (padrão: auto, usa namespaces quando o Linux deixa)")
    run.add_argument("--spec-dir", default=str(GRADING_DIR),
                     help="pasta dos testes ocultos (padrão: grading/, os de referência, públicos; para testes "
                          "secretos, uma pasta sua no mesmo formato)")
    run.add_argument("--no-progress", action="store_true", help="sem barra de progresso")
    run.add_argument("--keep-jobs", action="store_true", help=argparse.SUPPRESS)
    merge_parser = sub.add_parser("merge", help="junta as saídas de vários --shard")
    merge_parser.add_argument("inputs", nargs="+", help="pastas de saída das partes")
    merge_parser.add_argument("--out", required=True, help="pasta de saída final")
    merge_parser.add_argument("--spec-dir", default=str(GRADING_DIR), help="pasta dos testes ocultos (grading/)")
    execute = sub.add_parser("_execute")  # interno: o processo executor de uma entrega
    execute.add_argument("job_dir")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "_execute":
        from .execute import main as execute_main

        return execute_main(args.job_dir)
    from .orchestrate import Options, grade, merge

    if args.command == "merge":
        records, _ = merge(args.inputs, Path(args.out), Path(args.spec_dir))
        print(f"{len(records)} entrega(s) juntadas. Boletim em {Path(args.out) / 'notas.csv'}")
        return 0
    parameters = {name: _parse_value(value) for name, value in args.param}
    if args.smoke:
        parameters["SMOKE"] = True
    jobs = max(1, args.jobs)
    threads = args.threads or max(1, (os.cpu_count() or 1) // jobs)
    limits = Limits(timeout_s=args.timeout, cell_timeout_s=args.cell_timeout, call_timeout_s=args.call_timeout,
                    memory_mb=args.memory_mb, max_procs=args.max_procs, threads=threads, isolation=args.isolation)
    opts = Options(notebooks=args.notebook, out_dir=Path(args.out), parameters=parameters, limits=limits,
                   jobs=jobs, shard=args.shard, force=args.force, progress=not args.no_progress,
                   spec_dir=Path(args.spec_dir), keep_jobs=args.keep_jobs)
    records, evaluations = grade(args.submissions, opts)
    total = sum(ev["total"] for ev in evaluations)
    print(f"\n{len(records)} entrega(s) nesta parte; soma das notas {fmt(round(total, 2))}. "
          f"Boletim: {opts.out_dir / 'notas.csv'}; relatório: {opts.out_dir / 'relatorio.html'}")
    return 0
