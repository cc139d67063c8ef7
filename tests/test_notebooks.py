"""Os notebooks do curso: fontes em texto em dia com os .ipynb, higiene do arquivo e execução completa com papermill.

A execução roda cada notebook com SMOKE=True (cargas pequenas) no perfil offline. Cada afirmação que a fonte do
notebook declara com `claim(...)` vira um teste: passa se a execução a conferiu, aparece como pulado (com o motivo)
se a execução não tinha como conferi-la (ex.: só vale na GPU) e falha se não foi gravada.
"""

import os
import re
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import nbformat
import pytest

from course_utils.config import GITHUB_BRANCH, GITHUB_REPO, NOTEBOOKS
from course_utils.course import notebooks as generator
from course_utils.course.runner import run_notebook
from course_utils.results import declared_claims

ROOT = Path(__file__).resolve().parent.parent
PATHS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in PATHS]
SOURCES = {p.stem: (ROOT / "notebooks" / "src" / f"{p.stem}.py").read_text(encoding="utf-8") for p in PATHS}
CLAIMS = [(name, claim) for name in IDS for claim in declared_claims(SOURCES[name])]

# Chaves que cada notebook registra com record(...): o contrato de build/resultados.json. As afirmações
# (e seus limites) ficam só no notebook, declaradas com claim(...); os testes leem-nas da fonte.
RECORDED_KEYS = {
    "00_zerogpu_spaces": [
        "lint_rules", "lint_bad_flagged", "lint_bad_total", "lint_good_false_positives", "local_app_ok"
    ],
    "01_quantizacao_ptq": [
        "footprint_mb_fp32", "footprint_mb_int8", "footprint_mb_nf4", "ppl_fp32", "ppl_int8", "ppl_nf4", "ppl_fp4",
        "ppl_torchao_int8", "latency_ms_fp32", "latency_ms_torchao_int8", "ppl_int8_no_decomposition",
        "bits_per_weight_stored_int8", "bits_per_weight_stored_nf4", "nf4_code_entropy_bits", "activation_error_static",
        "activation_error_dynamic_per_token", "disk_mb_fp32", "disk_mb_torchao_int8", "disk_mb_int8", "disk_mb_nf4",
        "latency_ms_mlp_fp32_cpu_eager", "latency_ms_mlp_int8_cpu_eager"
    ],
    "02_awq_gptq": [
        "ppl_fp32", "ppl_rtn_w4g64", "ppl_gptq_w4g64", "ppl_awq_w4g64", "ppl_rtn_w3g64", "ppl_gptq_w3g64",
        "ppl_awq_w3g64", "seconds_gptq", "seconds_awq", "bits_per_weight_w4g64", "bits_per_weight_w3g64",
        "gib_llama2_7b_w4g64", "gib_llama2_7b_w3g64", "awq_fold_max_relative_logit_diff", "autoround_ran"
    ],
    "03_offloading": [
        "rss_peak_mb_in_memory", "rss_peak_mb_disk_offload", "seconds_per_token_in_memory",
        "seconds_per_token_disk_offload", "disk_budget_mb", "model_size_mb", "jit_offload_matches"
    ],
    "04_janela_deslizante": [
        "ppl_full", "ppl_window_only", "ppl_sinks_window", "window", "sinks", "tokens_evaluated", "cache_tokens_max",
        "receptive_field_matches_theory"
    ],
    "05_kv_cache": [
        "kv_new_tokens", "speedup_kv_cache", "kv_bytes_formula", "kv_bytes_measured", "batch_throughput_gain",
        "fp8_overflow_is_nan"
    ],
    "06_onnx_runtime": [
        "max_abs_logit_diff_fp32", "ppl_ort_fp32", "ppl_ort_int8_dynamic", "ppl_ort_int8_weight_only",
        "ppl_ort_int4_weight_only", "decode_tok_s_torch", "decode_tok_s_ort_fp32", "decode_tok_s_ort_int4",
        "ort_int4_output_ok", "tokenizer_round_trip_ok", "memory_bandwidth_gbs"
    ],
    "07_tensorrt": [
        "tensorrt_available", "torch_compile_speedup", "onnx_max_abs_diff_fp32", "cells_skipped"
    ],
    "08_colab_7b": [
        "planner_max_error_pct", "planner_choice_colab_t4", "recipe_footprint_mb", "tokens_per_s_chat"
    ],
}

PT_WORDS = {"de", "que", "não", "para", "com", "uma", "os", "é", "em", "um", "do", "da", "mais", "como", "se"}
EN_WORDS = {"the", "and", "of", "to", "is", "with", "that", "this", "for", "are", "it", "you"}


def _read(path):
    return nbformat.read(path, as_version=4)


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]


def test_every_notebook_is_a_known_course_notebook():
    assert PATHS, "não há notebooks em notebooks/"
    for path in PATHS:
        assert path.stem in NOTEBOOKS, f"{path.name} não está em course_utils.config.NOTEBOOKS"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_hygiene(path):
    nb = _read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: célula com saída gravada (salve o notebook limpo)"
            assert cell.execution_count is None, f"{path.name}: contador de execução gravado"
    params = _tagged(nb, "parameters")
    assert len(params) == 1, f"{path.name}: precisa de exatamente uma célula com a tag 'parameters'"
    for name in ("MODEL_ID", "SMOKE", "SEED", "DEVICE"):
        assert re.search(rf"^{name}\s*=", nb.cells[params[0]].source, re.M), f"{path.name}: parâmetro {name} ausente"
    setup = _tagged(nb, "setup")
    assert len(setup) == 1 and setup[0] < params[0], f"{path.name}: a célula 'setup' vem antes dos parâmetros"
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    for word in ("Objetivos", "Pré-requisitos", "Tempo estimado", "Hardware"):
        assert word in first.source, f"{path.name}: a primeira célula deve dizer '{word}'"
    sources = "\n".join(c.source for c in nb.cells)
    assert "## Resumo" in sources, f"{path.name}: falta a seção 'Resumo'"
    assert "record(" in sources, f"{path.name}: o notebook não registra resultados"
    exercises = re.findall(r"check\(\"\d\d\.\d+\"", sources)
    assert len(exercises) >= 3, f"{path.name}: precisa de pelo menos 3 exercícios com check()"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_prose_is_portuguese(path):
    text = " ".join(c.source for c in _read(path).cells if c.cell_type == "markdown").lower()
    words = re.findall(r"[a-zà-ú]+", text)
    pt = sum(w in PT_WORDS for w in words)
    en = sum(w in EN_WORDS for w in words)
    assert pt > 4 * max(en, 1), f"{path.name}: o texto não parece pt-BR ({pt} palavras pt, {en} en)"


def test_every_notebook_has_a_text_source_and_declares_claims():
    assert {p.stem for p in (ROOT / "notebooks" / "src").glob("*.py")} == set(IDS)
    for name in IDS:
        assert len(declared_claims(SOURCES[name])) >= 2, f"{name}: declare as afirmações do notebook com claim(...)"


def test_committed_notebooks_match_their_sources():
    stale = [str(p.relative_to(ROOT)) for p in generator.stale_files()]
    assert not stale, f"arquivos gerados desatualizados: {stale}. Rode `make notebooks` e faça commit do resultado."


def test_editing_a_source_without_regenerating_is_caught(tmp_path, monkeypatch):
    """A conferência acima falha de verdade: uma fonte editada sem regenerar aparece como desatualizada."""
    src, nbs = tmp_path / "notebooks" / "src", tmp_path / "notebooks"
    src.mkdir(parents=True)
    name = IDS[0]
    (src / f"{name}.py").write_text(SOURCES[name], encoding="utf-8")
    monkeypatch.setattr(generator, "SOURCES_DIR", src)
    monkeypatch.setattr(generator, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    monkeypatch.setattr(generator, "NOTEBOOKS", {name: NOTEBOOKS[name]})
    assert generator.stale_files() == [tmp_path / "colab_badges.md", nbs / f"{name}.ipynb"]  # nada gerado ainda
    assert generator.main([]) == 0 and generator.stale_files() == []
    (src / f"{name}.py").write_text(SOURCES[name] + "\n# %%\nprint('célula nova')\n", encoding="utf-8")
    assert generator.stale_files() == [nbs / f"{name}.ipynb"]
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0 and generator.stale_files() == []


def test_cell_ids_are_stable_when_a_cell_is_inserted():
    name = IDS[0]
    before = generator.build_notebook(name, SOURCES[name])
    marker = "# %% [markdown]\n# ## Parâmetros"
    text = SOURCES[name].replace(marker, "# %%\nx = 1  # célula inserida\n\n" + marker, 1) if marker in SOURCES[name] \
        else SOURCES[name] + "\n# %%\nx = 1\n"
    after = generator.build_notebook(name, text)
    ids_before, ids_after = [c.id for c in before.cells], [c.id for c in after.cells]
    assert len(ids_after) == len(ids_before) + 1
    assert set(ids_before) < set(ids_after), "inserir uma célula não pode mudar o id das outras"
    assert len(set(ids_after)) == len(ids_after)


def test_explicit_cell_id_in_the_source_wins():
    nb = generator.build_notebook(IDS[0], '# %% [markdown]\n# # Título\n\n# %% tags=["parameters"]\nSMOKE = False\n\n'
                                  '# %% id="minha-celula"\nprint(1)\n')
    assert [c.id for c in nb.cells][-1] == "minha-celula" and "id" not in nb.cells[-1].metadata


def test_a_source_with_a_hand_written_setup_cell_is_refused():
    with pytest.raises(generator.NotebookSourceError, match="gerada"):
        generator.build_notebook(IDS[0], '# %% [markdown]\n# # T\n\n# %% tags=["setup"]\nprint(1)\n')


def test_badges_and_setup_cells_agree_with_config():
    for path in PATHS:
        nb = _read(path)
        assert nb.cells[0].source.splitlines()[0] == generator.badge_markdown(path.stem), f"{path.name}: badge"
        assert f"{GITHUB_REPO}/blob/{GITHUB_BRANCH}/notebooks/{path.name}" in nb.cells[0].source
        assert nb.cells[_tagged(nb, "setup")[0]].source == generator.setup_cell_source(path.stem)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in PATHS:
        assert generator.badge_markdown(path.stem) in readme, f"README sem o badge de {path.stem}"


def test_setup_cells_install_the_package_of_a_commit_equal_to_todays():
    """A célula do Colab instala o pacote no commit carimbado: esse commit tem de ter o pacote de hoje."""
    import subprocess

    if not (ROOT / ".git").exists():
        pytest.skip("sem o histórico do git (não é um clone): não há commit para conferir")
    for path in PATHS:
        cell = _read(path).cells[_tagged(_read(path), "setup")[0]].source
        match = re.search(r"git\+https://github\.com/[\w.-]+/[\w.-]+@([0-9a-f]{40})\"", cell)
        assert match, f"{path.name}: a célula de configuração não instala um commit carimbado"
        ref = match.group(1)
        known = subprocess.run(["git", "cat-file", "-e", f"{ref}^{{commit}}"], cwd=ROOT).returncode == 0
        if not known:
            pytest.skip(f"o commit {ref[:10]} não está neste clone (clone raso?)")
        same = subprocess.run(["git", "diff", "--quiet", ref, "HEAD", "--", *generator.PACKAGE_PATHS],
                              cwd=ROOT).returncode == 0
        assert same, (f"{path.name} instala o pacote do commit {ref[:10]}, que difere do pacote de hoje: faça commit "
                      "do pacote, rode `make notebooks` e faça commit dos notebooks")


# Os mais demorados primeiro, para as execuções paralelas terminarem juntas (os demais vêm depois, em ordem).
SLOWEST_FIRST = ["05_kv_cache", "04_janela_deslizante", "06_onnx_runtime", "02_awq_gptq", "03_offloading",
                 "01_quantizacao_ptq", "00_zerogpu_spaces", "08_colab_7b", "07_tensorrt"]


def _one_thread_per_kernel():
    """Cada kernel com 1 thread: dois notebooks lado a lado num processador de 2 núcleos sem a espera ativa do OpenMP."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Executa cada notebook uma vez (SMOKE=True) e guarda o resultado para os testes abaixo.

    Cada notebook roda num processo novo, com 1 thread. `COURSE_TEST_JOBS=2` roda dois ao mesmo tempo (numa máquina
    de 4 núcleos ou mais); o padrão é 1, porque num processador de 2 núcleos as afirmações de tempo da CPU (ex.: o
    crescimento do passo no 05) sentem o vizinho: medido 1,58 contra o limite de 2 com dois lado a lado, 3,4 sozinho.
    """
    out = tmp_path_factory.mktemp("executados")
    jobs = int(os.environ.get("COURSE_TEST_JOBS") or 1)
    order = sorted(PATHS, key=lambda p: SLOWEST_FIRST.index(p.stem) if p.stem in SLOWEST_FIRST else len(SLOWEST_FIRST))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=_one_thread_per_kernel) as pool:
        futures = {p.stem: pool.submit(run_notebook, p, out, {"SMOKE": True}, progress=False) for p in order}
        return {name: (future.result(), out / f"{name}.ipynb") for name, future in futures.items()}


@pytest.mark.notebook
@pytest.mark.parametrize("name", IDS)
def test_notebook_runs_and_records_its_results(executed, name):
    entry, out_path = executed[name]
    assert entry["status"] == "ok", f"{name} falhou: {entry['error']}"
    missing = [k for k in RECORDED_KEYS[name] if k not in entry["results"]]
    assert not missing, f"{name} não registrou: {missing}"
    undeclared = sorted(set(entry["claims"]) - set(declared_claims(SOURCES[name])))
    assert not undeclared, f"{name} gravou afirmações que a fonte não declara com um nome literal: {undeclared}"
    # os exercícios deixados em branco dão retorno, não quebram o notebook
    outputs = "".join(o.get("text", "") for c in _read(out_path).cells if c.cell_type == "code" for o in c.outputs)
    assert "Ainda sem resposta" in outputs or "ainda devolve None" in outputs


@pytest.mark.notebook
@pytest.mark.parametrize("name,claim", CLAIMS, ids=[f"{n}: {c}" for n, c in CLAIMS])
def test_declared_claim_holds(executed, name, claim):
    entry, _ = executed[name]
    if entry["status"] != "ok" and claim not in entry["claims"]:
        pytest.fail(f"{name} não chegou a conferir esta afirmação: {entry['error']}")
    info = entry["claims"].get(claim)
    assert info is not None, f"{name}: a afirmação {claim!r} é declarada na fonte mas não foi gravada na execução"
    if info["status"] == "skipped":
        pytest.skip(f"não conferida nesta execução: {info['reason']}")
    assert info["status"] == "ok", f"{name}: {claim} (medido: {info.get('measured')})"
