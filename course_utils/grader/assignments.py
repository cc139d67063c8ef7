"""Os testes ocultos de cada tarefa (grading/<notebook>.py ou --spec-dir) e a tarefa de cada entrega."""

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .spec import FunctionExercise, ValueExercise
from .wire import encode_cases

# os testes de referência do curso (públicos); CURSO_GRADING_DIR muda o padrão (o container usa)
GRADING_DIR = Path(os.environ.get("CURSO_GRADING_DIR") or Path(__file__).resolve().parent.parent.parent / "grading")


@dataclass
class Assignment:
    """Os testes ocultos de um notebook, carregados de grading/<notebook>.py."""
    notebook: str
    exercises: list
    titles: dict
    collection_digest: str  # muda quando as entradas ocultas mudam (aí é preciso executar de novo)

    @property
    def ids(self):
        return [ex.id for ex in self.exercises]

    @property
    def points(self):
        return sum(ex.points for ex in self.exercises)


def find_spec(notebook: str, spec_dir=GRADING_DIR) -> Path:
    """grading/<notebook>.py; aceita o nome inteiro ou só o número ("04")."""
    spec_dir = Path(spec_dir)
    if not spec_dir.is_dir():
        raise SystemExit(f"A pasta de testes ocultos {spec_dir} não existe (confira --spec-dir).")
    exact = spec_dir / f"{notebook}.py"
    if exact.exists():
        return exact
    matches = sorted(p for p in spec_dir.glob(f"{notebook}*.py") if not p.name.startswith("_"))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.stem for p in sorted(spec_dir.glob("[0-9]*.py")))
    raise SystemExit(f"Não há testes ocultos para {notebook!r} em {spec_dir} (disponíveis: {known or 'nenhum'}).")


def load_assignment(notebook: str, spec_dir=GRADING_DIR) -> Assignment:
    """Importa o arquivo de testes ocultos e confere que ele está bem formado."""
    path = find_spec(notebook, spec_dir)
    module_spec = importlib.util.spec_from_file_location(f"_grading_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    exercises = list(getattr(module, "EXERCISES", []))
    if not exercises:
        raise SystemExit(f"{path}: defina a lista EXERCISES (veja grading/README.md).")
    for ex in exercises:
        if not isinstance(ex, (ValueExercise, FunctionExercise)) or ex.points <= 0:
            raise SystemExit(f"{path}: {ex!r} precisa ser ValueExercise/FunctionExercise com pontos > 0.")
    from ..exercises import EXERCISES

    titles = {ex.id: EXERCISES[ex.id].title if ex.id in EXERCISES else (ex.title or ex.id) for ex in exercises}
    collection = [(ex.id, ex.answer, encode_cases(ex) if isinstance(ex, FunctionExercise) else None)
                  for ex in exercises]
    digest = hashlib.sha256(json.dumps(collection, sort_keys=True).encode()).hexdigest()
    return Assignment(path.stem, exercises, titles, digest)


_CHECK_CALL = re.compile(r"""check\(\s*["'](\d\d\.\d+)["']""")


def exercise_of(cell) -> str | None:
    """O exercício de uma célula: pelos metadados (curso.exercicio) ou pela chamada check("NN.K", ...)."""
    meta = cell.metadata.get("curso", {})
    if isinstance(meta, dict) and isinstance(meta.get("exercicio"), str):
        return meta["exercicio"]
    found = _CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []
    return found[-1] if found else None


def detect_assignment(nb, assignments: dict, filename: str):
    """(notebook, None) ou (None, motivo): pelos exercícios que o notebook traz; sem nenhum, pelo nome."""
    present = {ex for cell in nb.cells if (ex := exercise_of(cell))}
    overlap = {name: len(present & set(a.ids)) for name, a in assignments.items()}
    best = max(overlap.values(), default=0)
    winners = [name for name, n in overlap.items() if n == best]
    if present and not best:
        return None, (f"notebook de outra tarefa: traz os exercícios {', '.join(sorted(present))}, "
                      f"e esta correção é de {', '.join(assignments)}")
    if len(winners) > 1:  # empate (ou nenhum exercício achado): o número do notebook no nome do arquivo decide
        winners = [name for name in winners if re.search(rf"(^|\D){name[:2]}(\D|$)", filename)]
    if len(winners) == 1:
        return winners[0], None
    return None, "não deu para saber de qual tarefa é o notebook (nenhuma célula de exercício reconhecida)"
