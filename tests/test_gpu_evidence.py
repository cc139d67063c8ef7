"""A evidência de GPU versionada (results/gpu, results/t4) e a tabela do README gerada dela.

Os números vêm do runner numa GPU emprestada (`python -m course_utils.course run --profile gpu|t4`); aqui não há GPU.
Cada afirmação que a fonte de hoje de um notebook declara vira um teste por perfil: passa se a execução gravada, da
mesma fonte (mesmo hash), a conferiu; aparece como pulado, com o motivo, se a evidência é de uma fonte anterior ou se a
execução não tinha como conferi-la; falha se a evidência atual não a gravou ou a gravou falsa.
"""

import json
from pathlib import Path

import pytest

from course_utils.course import evidence
from course_utils.results import declared_claims

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SUMMARIES = evidence.load_summaries()
CASES = [(profile, name, claim) for profile in sorted(SUMMARIES) for name in NOTEBOOKS
         for claim in declared_claims((ROOT / "notebooks" / "src" / f"{name}.py").read_text(encoding="utf-8"))]


def test_every_gpu_summary_says_which_gpu_and_versions():
    assert SUMMARIES, "não há evidência de GPU em results/"
    for profile, summary in SUMMARIES.items():
        assert summary["profile"] == profile
        for name, entry in summary["notebooks"].items():
            env = entry.get("environment") or summary["environment"]
            for key in ("gpu_name", "driver", "torch", "cuda_torch"):
                assert env.get(key), f"{profile}/{name}: falta {key} no ambiente"


@pytest.mark.parametrize("profile,name,claim", CASES, ids=[f"{p}/{n}: {c}" for p, n, c in CASES])
def test_gpu_evidence_of_the_current_source_confirms_each_claim(profile, name, claim):
    entry = SUMMARIES[profile]["notebooks"].get(name)
    if entry is None:
        pytest.skip(f"{name} sem execução no perfil {profile}")
    if not evidence.is_current(name, entry):
        pytest.skip(f"evidência de {profile} para {name} é de uma versão anterior da fonte ({entry.get('date')})")
    assert entry["status"] == "ok", f"{name} falhou no perfil {profile}: {entry['error']}"
    info = entry["claims"].get(claim)
    assert info is not None, f"a execução atual de {name} no perfil {profile} não gravou a afirmação"
    if info["status"] == "skipped":
        pytest.skip(f"não conferida no perfil {profile}: {info['reason']}")
    assert info["status"] == "ok", f"{claim}: medido {info.get('measured')}"


def test_table_marks_stale_and_current_evidence(tmp_path):
    nbs = tmp_path / "notebooks"
    (nbs / "src").mkdir(parents=True)
    (nbs / "src" / "a.py").write_text("# fonte de hoje\n", encoding="utf-8")
    (nbs / "src" / "b.py").write_text("# fonte de hoje\n", encoding="utf-8")
    from course_utils.course.runner import source_hash
    env = {"gpu_name": "GPU X", "driver": "1.0", "torch": "2.11", "cuda_torch": "12.8"}
    entry = {"status": "ok", "error": None, "date": "2026-12-01", "environment": env, "libraries": {},
             "claims": {"c1": {"status": "ok"}, "c2": {"status": "skipped", "reason": "r"}}}
    summary = {"profile": "t4", "notebooks": {"a": {**entry, "source_sha256": source_hash("a", nbs)},
                                             "b": {**entry, "source_sha256": "outra"}}}
    (tmp_path / "results" / "t4").mkdir(parents=True)
    (tmp_path / "results" / "t4" / "resultados.json").write_text(json.dumps(summary), encoding="utf-8")
    table = evidence.gpu_table(evidence.load_summaries(tmp_path / "results"), nbs)
    assert "| t4 | `a` | ok | 1 ok, 1 puladas | 2026-12-01 | GPU X, 1.0 | 2.11, ? | atual |" in table
    assert "| t4 | `b` |" in table and table.rstrip().endswith("versão anterior |")
    readme = f"antes\n{evidence.README_START}\nvelho\n{evidence.README_END}\ndepois\n"
    expected = f"antes\n{evidence.README_START}\n{table}\n{evidence.README_END}\ndepois\n"
    assert evidence.readme_with_table(readme, table) == expected
    with pytest.raises(ValueError, match="marcadores"):
        evidence.readme_with_table("sem marcadores", table)
