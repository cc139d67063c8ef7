"""O notebook que o kernel executa: saídas apagadas, células numeradas e uma célula de coleta por exercício."""

import json

from .assignments import Assignment, exercise_of
from .spec import FunctionExercise
from .wire import encode_cases

KERNEL_NAME = "curso-correcao"


def _collect_cell(nonce: str, exercise, call_timeout_s: float, ids_label: str):
    import nbformat

    cases = json.dumps(encode_cases(exercise)) if isinstance(exercise, FunctionExercise) else None
    source = (f"# Célula injetada pelo corretor: coleta a resposta do exercício {ids_label}.\n"
              f"import course_utils.grader.collect as _curso_coleta\n"
              f"_curso_coleta.collect({nonce!r}, {exercise.id!r}, {exercise.answer!r}, {cases!r}, "
              f"{call_timeout_s!r})\n"
              f"del _curso_coleta")
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["curso-coleta"]
    cell.metadata["curso_correcao"] = {"coleta": exercise.id}
    return cell


def prepare_notebook(nb, assignment: Assignment, nonce: str, call_timeout_s: float):
    """Limpa saídas, numera as células do aluno e injeta uma célula de coleta depois de cada exercício.

    Devolve (notebook, {exercício: nº da célula de código do exercício, ou None se ela não foi achada}).
    """
    by_id = {ex.id: ex for ex in assignment.exercises}
    last_cell = {}
    code_number = 0
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("curso_correcao", None)
        if "curso-coleta" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "curso-coleta"]
        if cell.cell_type != "code":
            continue
        code_number += 1
        cell.outputs, cell.execution_count = [], None
        cell.metadata["curso_correcao"] = {"celula": code_number}
        ex = exercise_of(cell)
        if ex in by_id:
            last_cell[ex] = index
    cells, where, inserts = [], {}, {}
    for ex_id, index in last_cell.items():
        inserts.setdefault(index, []).append(ex_id)
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        for ex_id in inserts.get(index, []):
            cells.append(_collect_cell(nonce, by_id[ex_id], call_timeout_s, ex_id))
            where[ex_id] = cell.metadata["curso_correcao"]["celula"]
    for ex in assignment.exercises:
        if ex.id not in where:
            cells.append(_collect_cell(nonce, ex, call_timeout_s, f"{ex.id} (célula do exercício não achada)"))
            where[ex.id] = None
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (correção)", "language": "python"}
    nb.metadata.setdefault("language_info", {})["name"] = "python"
    return nb, where
