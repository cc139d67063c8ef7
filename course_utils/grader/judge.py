"""O julgamento, no processo do professor: o dado coletado contra as referências e os casos ocultos."""

from .spec import ValueExercise, same_value
from .wire import decode, encode


def fmt(x: float) -> str:
    """2 -> "2"; 2.5 -> "2,5" (vírgula decimal, como no Brasil)."""
    return f"{x:.2f}".rstrip("0").rstrip(".").replace(".", ",") if x != int(x) else str(int(x))


def _answer_problem(data) -> str | None:
    """Mensagem para respostas que nem chegam a ser julgadas (ausente, forjada, erro...)."""
    if data is None:
        return "resposta não coletada: a execução não chegou a este exercício (veja os problemas abaixo)"
    if not isinstance(data, dict):
        return "resposta ilegível"
    if data.get("forged"):
        return "resposta desconsiderada: a coleta foi forjada ou adulterada"
    if data.get("missing"):
        return None
    if "error" in data:
        name, message = (list(data["error"]) + ["", ""])[:2]
        return f"ler a resposta levantou {name}: {message}".rstrip(": ")
    return None


def judge_value(exercise: ValueExercise, data: dict) -> tuple:
    """(pontos, linhas de retorno) de um exercício de valor."""
    from ..exercises import EXERCISES, evaluate

    if data.get("missing"):
        return 0.0, [f"❌ resposta ausente: não há a variável `{exercise.answer}` no notebook "
                     f"(a célula do exercício foi apagada ou renomeada?)"]
    value = decode(data["value"])
    if value is None or value is Ellipsis:
        return 0.0, ["❌ ainda sem resposta (o esqueleto não foi preenchido)"]
    points, lines, hint_needed = 0.0, [], False
    for check in exercise.checks:
        try:
            ok, message = check.judge(value)
        except Exception as exc:  # noqa: BLE001 - o teste nunca derruba o boletim
            ok, message = False, f"resposta em formato inesperado ({type(exc).__name__})"
        points += check.points if ok else 0.0
        hint_needed |= not ok
        lines.append(f"{'✅' if ok else '❌'} {check.name} ({fmt(check.points if ok else 0)}/{fmt(check.points)}): "
                     f"{message}")
    if hint_needed and exercise.id in EXERCISES:
        ok, message = evaluate(exercise.id, value)
        if not ok:
            lines.append(f"💡 dica: {message}")
    return points, lines


def reference_outputs(exercise) -> list:
    """Saída da referência em cada caso oculto (calculada uma vez), ou a exceção que ela levantou.

    As entradas passam por encode/decode, exatamente como chegam ao kernel do aluno.
    """
    if getattr(exercise, "_reference_outputs", None) is None:
        outputs = []
        for case in exercise.cases:
            try:
                args = decode(encode(tuple(case.args)), trusted=True)
                kwargs = decode(encode(dict(case.kwargs)), trusted=True)
                outputs.append(exercise.reference(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - teste oculto quebrado: o professor precisa saber
                outputs.append(exc)
        exercise._reference_outputs = outputs
    return exercise._reference_outputs


def _judge_case(exercise, got, expected) -> tuple:
    """(passou, mensagem) de um caso: o que veio do kernel contra a saída da referência."""
    if isinstance(expected, Exception):
        return False, (f"o teste oculto está quebrado (a referência levantou {type(expected).__name__}); "
                       f"avise o professor")
    if isinstance(got, dict) and isinstance(got.get("delegated"), list):
        names = ", ".join(str(n)[:80] for n in got["delegated"][:5]) or "?"
        return False, (f"sua função chamou {names}, que já resolve o exercício (ou desligou a vigia das chamadas): "
                       f"escreva a regra você mesmo")
    if not isinstance(got, dict) or ("error" not in got and "output" not in got):
        return False, "resultado ilegível"
    if "error" in got:
        name, message = (list(got["error"]) + ["", ""])[:2]
        if name == "TempoEsgotado":
            return False, f"{message} e foi interrompida"
        return False, f"sua função levantou {name}: {message}".rstrip(": ")
    if got["output"] is None:
        return False, "a função devolveu None (ainda é o esqueleto?)"
    try:
        return (exercise.compare or same_value)(decode(got["output"]), expected)
    except Exception as exc:  # noqa: BLE001 - uma saída estranha nunca derruba o boletim
        return False, f"saída em formato inesperado ({type(exc).__name__})"


def judge_function(exercise, data: dict) -> tuple:
    """(pontos, linhas de retorno): a saída do aluno em cada caso oculto contra a saída da referência."""
    if data.get("missing"):
        return 0.0, [f"❌ resposta ausente: não há a função `{exercise.answer}` no notebook "
                     f"(a célula do exercício foi apagada ou a função foi renomeada?)"]
    if "not_callable" in data:
        return 0.0, [f"❌ `{exercise.answer}` deveria ser uma função, mas é {data['not_callable']}"]
    results = data.get("results")
    results = results if isinstance(results, list) else []
    points, lines = 0.0, []
    for number_, (case, expected) in enumerate(zip(exercise.cases, reference_outputs(exercise), strict=True), 1):
        got = results[number_ - 1] if number_ - 1 < len(results) else None
        ok, message = _judge_case(exercise, got, expected)
        points += case.points if ok else 0.0
        label = f"caso oculto {number_}" + (f" ({case.name})" if case.name else "")
        lines.append(f"{'✅' if ok else '❌'} {label} ({fmt(case.points if ok else 0)}/{fmt(case.points)})"
                     + ("" if ok else f": {message}"))
    return points, lines


def evaluate_record(record: dict, assignments: dict) -> dict:
    """Nota de uma entrega: {"assignment", "exercises": {id: {"title","points","max","lines"}}, "total","max"}."""
    name = record.get("assignment")
    assignment = assignments.get(name)
    if assignment is None:
        return {"assignment": name, "exercises": {}, "total": 0.0, "max": 0.0}
    exercises = {}
    for ex in assignment.exercises:
        data = record["answers"].get(ex.id)
        try:
            problem = _answer_problem(data)
            if problem:
                points, lines = 0.0, [f"❌ {problem}"]
            elif isinstance(ex, ValueExercise):
                points, lines = judge_value(ex, data)
            else:
                points, lines = judge_function(ex, data)
        except Exception as exc:  # noqa: BLE001 - dado coletado estranho: zero, com o motivo
            points, lines = 0.0, [f"❌ resposta ilegível ({type(exc).__name__})"]
        if ex.id in record.get("where", {}) and record["where"][ex.id] is None:
            lines.append("ℹ️ a célula do exercício não foi achada; a resposta foi lida no fim do notebook")
        exercises[ex.id] = {"title": assignment.titles[ex.id], "points": round(points, 4),
                            "max": ex.points, "lines": lines}
    total = round(sum(e["points"] for e in exercises.values()), 4)
    return {"assignment": name, "exercises": exercises, "total": total, "max": assignment.points}
