"""Os relatórios, a partir dos registros: notas.csv, feedback/<aluno>.md e relatorio.html (com figuras)."""

import base64
import csv
import hashlib
import html
import io
import json
import re
from datetime import datetime
from pathlib import Path

from .judge import evaluate_record, fmt

STATUS = {"ok": "ok", "errors": "erros nas células", "stopped": "interrompida", "forged": "coleta forjada",
          "invalid": "inválida", "wrong": "outra tarefa"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def write_text(path: Path, text: str) -> None:
    """Texto em UTF-8, sempre: meia letra (surrogate) vinda de um nome ou resposta vira U+FFFD."""
    Path(path).write_text(_SURROGATE.sub("\ufffd", text), encoding="utf-8")


def _safe_cell(text) -> str:
    """Evita fórmulas ao abrir o CSV numa planilha (textos do aluno começando com =, +, -, @)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def feedback_name(student: str) -> str:
    """Nome do arquivo de retorno, único e estável por aluno: um nome já seguro fica como está ("ana_b.md");
    qualquer outro ganha um pedaço do hash do nome ("ana b" -> "ana_b-3f2a1c.md"), mesmo em disco que não
    distingue maiúsculas."""
    safe = re.sub(r"[^\w.-]+", "_", student, flags=re.ASCII).strip("._")[:60] or "aluno"
    if safe == student and safe == safe.lower():
        return safe + ".md"
    return f"{safe}-{hashlib.sha1(student.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}.md"


def identical_submissions(records: list) -> dict:
    """{arquivo: [outros alunos com o mesmo conteúdo]}: entregas idênticas (mesmo hash) de alunos diferentes."""
    by_hash = {}
    for record in records:
        if record.get("sha256") and not record["sha256"].startswith("sem-conteudo"):
            by_hash.setdefault(record["sha256"], []).append(record)
    same = {}
    for group in by_hash.values():
        students = {r["student"] for r in group}
        if len(students) > 1:
            for record in group:
                same[record["file"]] = sorted(students - {record["student"]})
    return same


def student_rows(records: list, evaluations: list, assignments: dict) -> list:
    """Uma linha por aluno: para cada tarefa vale a melhor entrega; problemas vão para 'observacoes'."""
    rows = {}
    identical = identical_submissions(records)
    for record, ev in zip(records, evaluations, strict=True):
        row = rows.setdefault(record["student"], {"student": record["student"], "best": {}, "notes": [],
                                                  "identical": []})
        name = record.get("assignment")
        if name in assignments:
            best = row["best"].get(name)
            if best is not None:
                row["notes"].append(f"{record['file']}: mais de uma entrega para {name}; vale a de maior nota")
            if best is None or ev["total"] > best[1]["total"]:
                row["best"][name] = (record, ev)
        if record["status"] != "ok" or record["problems"]:
            details = [record["reason"]] if record["reason"] else []
            details += record["problems"][:3] + ([f"+{len(record['problems']) - 3} problema(s)"]
                                                 if len(record["problems"]) > 3 else [])
            row["notes"].append(f"{record['file']}: {STATUS[record['status']]} — {'; '.join(details)}")
        if record["file"] in identical:
            row["identical"] += identical[record["file"]]
            row["notes"].append(f"{record['file']}: conteúdo idêntico ao de {', '.join(identical[record['file']])} "
                                f"(mesmo hash; não foi zerada: decida você)")
    for row in rows.values():
        statuses = [(name, STATUS[row["best"][name][0]["status"]] if name in row["best"] else "sem entrega válida")
                    for name in assignments]
        row["status"] = statuses[0][1] if len(statuses) == 1 else "; ".join(f"{n[:2]}: {s}" for n, s in statuses)
        row["total"] = sum(ev["total"] for _, ev in row["best"].values())
        row["feedback"] = feedback_name(row["student"])
    return sorted(rows.values(), key=lambda r: r["student"])


def write_gradebook(rows: list, assignments: dict, path: Path) -> None:
    ids = [ex_id for a in assignments.values() for ex_id in a.ids]
    maximum = sum(a.points for a in assignments.values())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["aluno", "situacao", *ids, "total", "maximo", "identica_a", "observacoes"])
    for row in rows:
        points = {ex_id: e["points"] for _, ev in row["best"].values() for ex_id, e in ev["exercises"].items()}
        writer.writerow([_safe_cell(row["student"]), row["status"], *[points.get(i, 0) for i in ids],
                         round(row["total"], 4), maximum, _safe_cell(" ".join(sorted(set(row["identical"])))),
                         _safe_cell(" | ".join(row["notes"]))])
    write_text(path, buffer.getvalue())


def feedback_markdown(row: dict, records: list, evaluations: list, assignments: dict) -> str:
    """Retorno de um aluno em pt-BR: nota por exercício, cada teste oculto, problemas da execução."""
    lines = [f"# Correção: {row['student']}", ""]
    mine = [(r, ev) for r, ev in zip(records, evaluations, strict=True) if r["student"] == row["student"]]
    for record, ev in mine:
        header = f"## `{record['file']}`"
        if ev["assignment"] in assignments:
            header += f" — notebook {ev['assignment']}: **{fmt(ev['total'])} de {fmt(ev['max'])} pontos**"
        lines += [header, "", f"Situação: **{STATUS[record['status']]}**"
                  + (f". {record['reason'][0].upper()}{record['reason'][1:]}." if record["reason"] else "."), ""]
        for ex_id, e in ev["exercises"].items():
            lines += [f"### Exercício {ex_id} ({e['title']}): {fmt(e['points'])} de {fmt(e['max'])}", ""]
            lines += [f"- {line}" for line in e["lines"]] + [""]
        if record["problems"]:
            lines += ["### Problemas na execução", ""] + [f"- {p}" for p in record["problems"]] + [""]
    lines += ["---", "Correção automática: as respostas foram coletadas do seu notebook executado e comparadas "
              "com casos de teste que não aparecem no notebook. Dúvidas? Fale com o professor."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------- relatorio.html

def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figures(rows: list, assignments: dict, records: list, evaluations: list) -> list:
    """[(título, PNG em base64)]: distribuição das notas e taxa de acerto (nota cheia) por exercício.
    Desenhadas com matplotlib, sem rede nem janela (sem pyplot)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    maximum = sum(a.points for a in assignments.values()) or 1
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    totals = [row["total"] for row in rows]
    ax.hist(totals, bins=min(20, max(5, int(maximum) + 1)), range=(0, maximum), color="#4a7ebb", edgecolor="white")
    ax.set_xlabel(f"nota (de {fmt(maximum)})")
    ax.set_ylabel("alunos")
    ax.set_title("Distribuição das notas")
    result = [("Distribuição das notas", _png(fig))]
    labels, rates = [], []
    for a in assignments.values():
        graded = [ev for ev in evaluations if ev["assignment"] == a.notebook]
        for ex in a.exercises:
            got = [ev["exercises"][ex.id]["points"] for ev in graded]
            labels.append(ex.id)
            rates.append(100 * sum(p >= ex.points for p in got) / len(got) if got else 0.0)
    fig = Figure(figsize=(max(4, 0.6 * len(labels) + 2), 3))
    ax = fig.add_subplot()
    ax.bar(labels, rates, color="#5aa469")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% com nota cheia")
    ax.set_title("Taxa de acerto por exercício")
    result.append(("Taxa de acerto por exercício", _png(fig)))
    return result


def applied_limits(info: dict, records: list) -> list:
    """Frases (pt-BR) sobre os limites e o isolamento que de fato valeram nas execuções deste relatório."""
    limits = info.get("limits") or {}
    lines = []
    if limits:
        lines.append(f"tempo: {limits['timeout_s']} s por notebook (relógio), {limits['cell_timeout_s']} s por "
                     f"célula, {limits['call_timeout_s']:g} s por caso oculto")
        lines.append(f"saída: {limits['max_output_kb']} KB por célula e {limits['max_notebook_mb']} MB no notebook "
                     f"(todas as mensagens, inclusive atualizações de display)")
    seen = {}
    for record in records:
        box = record.get("sandbox") or {}
        if not box:
            continue
        parts = [f"memória por processo {box.get('memory_mb')} MB (RLIMIT_AS)"]
        if box.get("cgroup"):
            parts.append(f"árvore de processos num cgroup {box['cgroup']} (memória total {box.get('memory_mb')} MB"
                         f" e no máximo {limits.get('max_procs', '?')} processos/threads)")
        else:
            parts.append(f"sem cgroup ({box.get('why', '?')})"
                         + (f"; RLIMIT_NPROC {box['nproc']}" if box.get("nproc") else "; sem limite de processos"))
        if box.get("isolation") == "namespaces":
            files = box.get("files") or {}
            parts.append(f"namespaces de rede, montagem e PID; usuário: {box.get('uid')}; tudo só leitura fora da "
                         f"pasta de trabalho, /tmp, /var/tmp e /dev/shm (privados, {limits.get('scratch_mb', '?')} MB "
                         f"no total); {len(files.get('hidden', []))} pasta(s) escondida(s)"
                         + (f"; {len(files['not_read_only'])} montagem(ns) não ficaram só leitura"
                            if files.get("not_read_only") else ""))
        else:
            parts.append("sem isolamento (só os limites acima)")
        text = "; ".join(parts)
        seen[text] = seen.get(text, 0) + 1
    lines += [f"{text} ({n} execução(ões))" for text, n in seen.items()]
    return lines


def write_html(rows: list, assignments: dict, records: list, evaluations: list, info: dict, path: Path) -> None:
    e = html.escape
    ids = [ex_id for a in assignments.values() for ex_id in a.ids]
    maximum = sum(a.points for a in assignments.values())
    head = "".join(f"<th title='{e(a.titles[i])}'>{e(i)}</th>" for a in assignments.values() for i in a.ids)
    body = []
    for row in rows:
        points = {ex_id: x for _, ev in row["best"].values() for ex_id, x in ev["exercises"].items()}
        cells = "".join(f"<td class='{'full' if i in points and points[i]['points'] >= points[i]['max'] else ''}'>"
                        f"{fmt(points[i]['points']) if i in points else '–'}</td>" for i in ids)
        link = f"<a href='feedback/{e(row['feedback'])}'>{e(row['student'])}</a>"
        body.append(f"<tr><td>{link}</td><td>{e(row['status'])}</td>{cells}"
                    f"<td><b>{fmt(row['total'])}</b></td><td class='notes'>{e(' | '.join(row['notes']))}</td></tr>")
    stats = []
    for a in assignments.values():
        graded = [ev for ev in evaluations if ev["assignment"] == a.notebook]
        for ex in a.exercises:
            got = [ev["exercises"][ex.id]["points"] for ev in graded]
            mean = sum(got) / len(got) if got else 0.0
            full = sum(p >= ex.points for p in got)
            stats.append(f"<tr><td>{e(ex.id)}</td><td>{e(a.titles[ex.id])}</td><td>{fmt(ex.points)}</td>"
                         f"<td>{fmt(round(mean, 2))}</td><td>{full} de {len(got)}</td></tr>")
    counts = {}
    for record in records:
        counts[STATUS[record["status"]]] = counts.get(STATUS[record["status"]], 0) + 1
    summary = ", ".join(f"{n} {e(s)}" for s, n in sorted(counts.items()))
    params = e(json.dumps(info.get("parameters", {}), ensure_ascii=False))
    limits = "".join(f"<li>{e(line)}</li>" for line in applied_limits(info, records)) or "<li>—</li>"
    pictures = "".join(f"<figure><img alt='{e(title)}' src='data:image/png;base64,{png}'>"
                       f"<figcaption>{e(title)}</figcaption></figure>"
                       for title, png in figures(rows, assignments, records, evaluations))
    identical = identical_submissions(records)
    same = "".join(f"<li>{e(file)} ({e(next(r['student'] for r in records if r['file'] == file))}): igual à de "
                   f"{e(', '.join(others))}</li>" for file, others in sorted(identical.items()))
    page = f"""<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Correção: {e(', '.join(assignments))}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:center}}td.full{{background:#dfd}}
td.notes{{text-align:left;font-size:85%;max-width:40em}}figure{{display:inline-block;margin:0 1em}}</style>
</head><body>
<h1>Correção em lote: {e(', '.join(assignments))}</h1>
<p>{len(records)} entrega(s) de {len(rows)} aluno(s): {summary}. Gerado em
{e(datetime.now().strftime('%d/%m/%Y %H:%M'))}.</p>
<p>Isolamento do kernel: <b>{e(str(info.get('isolation')))}</b> ({e(str(info.get('detail', '')))}).
Parâmetros injetados: <code>{params}</code>.</p>
<h2>Limites que valeram</h2><ul>{limits}</ul>
<h2>A turma</h2>{pictures or '<p>(sem matplotlib: figuras omitidas)</p>'}
<h2>Notas</h2><p>Clique no nome para ver o retorno do aluno.</p>
<table><tr><th>aluno</th><th>situação</th>{head}<th>total (de {fmt(maximum)})</th>
<th>observações</th></tr>{''.join(body)}</table>
<h2>Por exercício</h2><table><tr><th>exercício</th><th>título</th><th>pontos</th><th>média</th>
<th>nota cheia</th></tr>{''.join(stats)}</table>
<h2>Entregas idênticas</h2>{f'<ul>{same}</ul>' if same else '<p>nenhuma</p>'}
</body></html>
"""
    write_text(path, page)


def write_reports(records: list, assignments: dict, out_dir: Path, info: dict) -> list:
    """notas.csv, feedback/<aluno>.md e relatorio.html a partir dos registros; devolve as avaliações."""
    out_dir = Path(out_dir)
    evaluations = [evaluate_record(r, assignments) for r in records]
    rows = student_rows(records, evaluations, assignments)
    write_gradebook(rows, assignments, out_dir / "notas.csv")
    feedback_dir = out_dir / "feedback"
    feedback_dir.mkdir(exist_ok=True)
    for row in rows:
        write_text(feedback_dir / row["feedback"], feedback_markdown(row, records, evaluations, assignments))
    write_html(rows, assignments, records, evaluations, info, out_dir / "relatorio.html")
    return evaluations
