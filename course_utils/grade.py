"""Apelido de `course_utils.grader` (o corretor em lote), para o que já usava este nome.

    python -m course_utils.grade run -n 04 entregas/ --smoke --jobs 2 --out correcao   # = curso-corrigir
    from course_utils.grade import Case, Check, Code, FunctionExercise, ValueExercise, number, same_tensor

Os arquivos de testes ocultos (grading/*.py e os de --spec-dir) importam daqui; o código vive em
`course_utils/grader/` (veja o __init__ de lá).
"""

import sys

from .grader.assignments import GRADING_DIR, Assignment, detect_assignment, find_spec, load_assignment
from .grader.cli import build_parser, main
from .grader.execute import Limits, kernel_environment, summarize_execution
from .grader.judge import evaluate_record, judge_function, judge_value, reference_outputs
from .grader.orchestrate import Options, execute_submission, grade, merge, probe_isolation
from .grader.prepare import KERNEL_NAME, prepare_notebook
from .grader.report import STATUS, write_reports
from .grader.spec import (
    Case,
    Check,
    Code,
    FunctionExercise,
    ValueExercise,
    as_number,
    close,
    number,
    same_tensor,
    same_value,
)
from .grader.submissions import Submission, find_submissions, parse_notebook, select_shard
from .grader.wire import COLLECT_MIME, MAX_ELEMENTS, MAX_PAYLOAD_BYTES, Opaque, decode, encode, encode_cases

__all__ = ["Assignment", "COLLECT_MIME", "Case", "Check", "Code", "FunctionExercise", "GRADING_DIR", "KERNEL_NAME",
           "Limits", "MAX_ELEMENTS", "MAX_PAYLOAD_BYTES", "Opaque", "Options", "STATUS", "Submission",
           "ValueExercise", "as_number", "build_parser", "close", "decode", "detect_assignment", "encode",
           "encode_cases", "evaluate_record", "execute_submission", "find_spec", "find_submissions", "grade",
           "judge_function", "judge_value", "kernel_environment", "load_assignment", "main", "merge", "number",
           "parse_notebook", "prepare_notebook", "probe_isolation", "reference_outputs", "same_tensor",
           "same_value", "select_shard", "summarize_execution", "write_reports"]

if __name__ == "__main__":
    sys.exit(main())
