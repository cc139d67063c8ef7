"""O linter de Spaces ZeroGPU (course_utils.zerogpu): fixtures boas e ruins, linha de comando e entradas ruins.

Cada pasta em tests/fixtures/spaces/bad/ se chama como a regra que ela tem de disparar
(`module_cuda__torch_compile` dispara `module_cuda`) e não deve disparar nenhuma outra;
as pastas em good/ não podem ter nenhum achado.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import zerogpu
from course_utils.zerogpu import Finding, LintInputError, lint_path, lint_readme, lint_requirements, lint_source

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "spaces"
GOOD = sorted(p for p in (FIXTURES / "good").iterdir() if p.is_dir())
BAD = sorted(p for p in (FIXTURES / "bad").iterdir() if p.is_dir())


def _rule_of(fixture: Path) -> str:
    return fixture.name.split("__")[0]


def _cli(*args):
    """Roda `python -m course_utils.zerogpu ...` e devolve (código de saída, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "course_utils.zerogpu", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def test_fixtures_cover_every_rule():
    assert GOOD and BAD
    assert {_rule_of(p) for p in BAD} == set(zerogpu.RULES), "cada regra precisa de pelo menos uma fixture ruim"
    assert (FIXTURES / "good" / "docs_pipeline_cuda").is_dir(), "falta o exemplo da documentação (cuda no módulo)"


@pytest.mark.parametrize("fixture", GOOD, ids=[p.name for p in GOOD])
def test_good_spaces_have_no_findings(fixture):
    findings = lint_path(fixture)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("fixture", BAD, ids=[p.name for p in BAD])
def test_bad_space_is_flagged_with_its_rule_only(fixture):
    findings = lint_path(fixture)
    rules = {f.rule for f in findings}
    assert _rule_of(fixture) in rules, f"{fixture.name} deveria disparar {_rule_of(fixture)}; disparou {rules}"
    assert rules == {_rule_of(fixture)}, f"{fixture.name} disparou regras a mais: {rules}"
    for finding in findings:
        assert (fixture / finding.path).is_file() or finding.path in ("README.md", "requirements.txt")
        assert finding.line >= 1


def test_reading_gpu_state_points_at_the_line():
    fixture = FIXTURES / "bad" / "module_cuda__device_properties"
    (finding,) = lint_path(fixture)
    source_line = (fixture / "app.py").read_text(encoding="utf-8").splitlines()[finding.line - 1]
    assert "torch.cuda.get_device_properties(0)" in source_line
    assert str(finding).startswith(f"app.py:{finding.line}: erro [module_cuda]")
    assert "@spaces.GPU" in finding.message


def test_docs_example_module_level_cuda_is_not_an_error():
    """O exemplo da documentação do ZeroGPU: `pipe.to('cuda')` no escopo do módulo (o `spaces` emula)."""
    docs = ("import spaces\nfrom diffusers import DiffusionPipeline\n\npipe = DiffusionPipeline.from_pretrained('x')\n"
            "pipe.to('cuda')\n\n@spaces.GPU\ndef generate(prompt):\n    return pipe(prompt).images\n")
    assert lint_source(docs) == []


def test_real_gpu_work_inside_gpu_function_is_fine_but_not_at_module_scope():
    inside = ("import spaces\nimport torch\n\n@spaces.GPU\ndef f(x):\n"
              "    print(torch.cuda.mem_get_info())\n    return x\n")
    assert lint_source(inside) == []
    outside = inside + "\nprint(torch.cuda.mem_get_info())\n"
    assert [(f.rule, f.line) for f in lint_source(outside)] == [("module_cuda", 9)]


@pytest.mark.parametrize("statement", [
    'print(torch.cuda.get_device_name(0))',
    'free, total = torch.cuda.mem_get_info()',
    'used = torch.cuda.memory_allocated()',
    's = torch.cuda.Stream()',
    'torch.cuda.set_device(0)',
    'class Holder:\n    total = torch.cuda.get_device_properties(0).total_memory',
    'if True:\n    torch.cuda.empty_cache()',
    'm = torch.compile(AutoModel.from_pretrained("x"))',
    'm = AutoModel.from_pretrained("x")\nm.compile()',
    '@torch.compile\ndef step(x):\n    return x * 2',
    '@torch.compile(mode="max-autotune")\ndef step(x):\n    return x * 2',
    'def warm():\n    torch.cuda.set_device(0)\n\nwarm()',
])
def test_module_cuda_variants(statement):
    source = (f"import spaces\nimport torch\nfrom transformers import AutoModel\n{statement}\n\n"
              "@spaces.GPU\ndef f():\n    pass\n")
    assert {f.rule for f in lint_source(source)} == {"module_cuda"}


@pytest.mark.parametrize("statement", [
    'x = torch.ones(2).to(torch.float16)',
    'x = torch.ones(2).to("cpu")',
    'p = pipeline("text-generation", device=-1)',
    'm = AutoModel.from_pretrained("x", device_map="cpu")',
    'DEVICE = torch.device("cuda")',
    'print("use device=cuda dentro da função")',
    'ok = torch.cuda.is_available()',
    # posicionamento em "cuda" no escopo do módulo: emulado pelo spaces, é o que a documentação recomenda
    'p = pipeline("text-generation", device="cuda")',
    'p = pipeline("text-generation", device=0)',
    'm = AutoModel.from_pretrained("x").cuda()',
    'm = AutoModel.from_pretrained("x", device_map="auto")',
    'm = AutoModel.from_pretrained("x", device_map={"": 0})',
    'm = AutoModel.from_pretrained("x").to(device=torch.device("cuda", 0))',
    'x = torch.zeros(3, device="cuda:0")',
    'torch.set_default_device("cuda")',
    'with torch.device("cuda"):\n    x = torch.zeros(1)',
    'torch.cuda.manual_seed(0)',
    'import re\npattern = re.compile("a+")',
])
def test_module_scope_without_real_gpu_work_is_fine(statement):
    source = (f"import spaces\nimport torch\nfrom transformers import AutoModel, pipeline\n{statement}\n\n"
              "@spaces.GPU\ndef f():\n    pass\n")
    assert lint_source(source) == []


def test_cuda_placement_before_import_spaces_is_still_an_import_order_error():
    source = ("import torch\nx = torch.zeros(1).cuda()\nimport spaces\n\n@spaces.GPU\ndef f():\n    pass\n")
    assert [f.rule for f in lint_source(source)] == ["spaces_import_order"]


def test_lazy_load_inside_gpu_function_is_a_warning():
    template = ("import spaces\nfrom transformers import AutoModel\n{module}\n\n@spaces.GPU(duration=30)\n"
                "def f(x):\n{body}\n    return x\n")
    direct = lint_source(template.format(module="", body='    m = AutoModel.from_pretrained("x").to("cuda")'))
    assert [(f.rule, f.severity) for f in direct] == [("gpu_lazy_load", "aviso")]
    moved = lint_source(template.format(module='m = AutoModel.from_pretrained("x")', body='    m.to("cuda")'))
    assert [f.rule for f in moved] == ["gpu_lazy_load"]
    inputs_only = lint_source(template.format(module='m = AutoModel.from_pretrained("x").to("cuda")',
                                              body='    x = x.to("cuda")'))
    assert inputs_only == [], "mover as entradas para a GPU dentro da função é o normal"


def test_generator_and_bitsandbytes_are_not_flagged():
    fixture = FIXTURES / "good" / "bitsandbytes_and_streaming"
    source = (fixture / "app.py").read_text(encoding="utf-8")
    assert "yield" in source and "BitsAndBytesConfig" in source
    assert lint_path(fixture) == []


def test_module_cuda_placements_finds_module_level_cuda_only():
    from course_utils.zerogpu import module_cuda_placements

    src = ('import spaces\nfrom transformers import pipeline\np = pipeline("t", device="cuda")\n\n'
           '@spaces.GPU\ndef f():\n    q = pipeline("t", device="cuda")\n')
    assert module_cuda_placements(src) == [3]
    assert module_cuda_placements(src.replace('p = pipeline("t", device="cuda")', 'p = None')) == []


def test_duration_given_or_short_generation_needs_no_warning():
    template = "import spaces\n\n@spaces.GPU{args}\ndef f(model, n):\n    return model.generate(max_new_tokens={n})\n"
    assert lint_source(template.format(args="(duration=120)", n="n")) == []
    assert lint_source(template.format(args="(45)", n="n")) == []
    assert lint_source(template.format(args="", n="64")) == []
    (warning,) = lint_source(template.format(args="", n="n"))
    assert warning.rule == "gpu_duration" and warning.severity == "aviso"


def test_requirements_rules():
    assert lint_requirements("torch==2.8.0\n") == []
    assert lint_requirements("torch==2.11.0\n") == []
    assert lint_requirements("torch>=2.0\n") == []
    assert [f.rule for f in lint_requirements("torch==2.6.0\n")] == ["requirements_torch"]
    assert lint_requirements("torch @ https://exemplo.invalido/torch.whl\n") == []
    assert [f.line for f in lint_requirements("gradio\n# torch\n")] == [1]
    assert [f.rule for f in lint_requirements("torch<2\n")] == ["requirements_torch"]
    assert [f.rule for f in lint_requirements("torch==2.8.0+cpu\n")] == ["requirements_torch"]
    assert [f.rule for f in lint_requirements("torch==2.4.1\n", uses_aoti=True)] == ["requirements_torch"]
    assert [f.rule for f in lint_requirements("torch\ngradio<4\n")] == ["gradio_version"]
    assert lint_requirements("torch\ngradio>=4\n") == []


def test_readme_rules():
    ok = '---\nsdk: gradio\nsdk_version: "5.49.1"\napp_file: app.py\npython_version: "3.10"\n---\n'
    assert lint_readme(ok) == []
    assert [f.rule for f in lint_readme(ok.replace('"5.49.1"', "4.44"))] == ["readme_front_matter"]
    assert [f.rule for f in lint_readme(ok.replace("app_file: app.py\n", ""))] == ["readme_front_matter"]
    assert [f.rule for f in lint_readme(ok.replace('"5.49.1"', '"3.50.2"'))] == ["gradio_version"]
    assert [f.rule for f in lint_readme("---\nsdk: gradio\n")] == ["readme_front_matter"]  # sem o `---` final


def test_aoti_requires_recent_torch_in_a_space(tmp_path):
    _copy_fixture("good/module_to_device", tmp_path)
    app = tmp_path / "app.py"
    app.write_text(app.read_text(encoding="utf-8") + "\ncompile_ = spaces.aoti_compile\n", encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("torch==2.6.0\n", encoding="utf-8")
    assert [f.rule for f in lint_path(tmp_path)] == ["requirements_torch"]
    (tmp_path / "requirements.txt").write_text("torch==2.8.0\n", encoding="utf-8")
    assert lint_path(tmp_path) == []


def _copy_fixture(name, dest: Path):
    for path in (FIXTURES / name).iterdir():
        (dest / path.name).write_bytes(path.read_bytes())


# ------------------------------------------------------------------ linha de comando

def test_cli_good_space_exits_zero():
    code, out, err = _cli("lint", FIXTURES / "good" / "module_to_device")
    assert code == 0, err
    assert "Nenhum problema encontrado" in out


def test_cli_bad_space_exits_one_with_file_and_line():
    code, out, _ = _cli("lint", FIXTURES / "bad" / "module_cuda__device_properties")
    assert code == 1
    assert "app.py:14: erro [module_cuda]" in out
    assert "1 erro(s), 0 aviso(s)." in out


def test_cli_warnings_only_fail_with_strict():
    fixture = FIXTURES / "bad" / "gpu_duration"
    code, out, _ = _cli("lint", fixture)
    assert code == 0 and "aviso [gpu_duration]" in out
    assert _cli("lint", "--strict", fixture)[0] == 1


@pytest.mark.parametrize("target, code, words", [
    ("nao/existe", zerogpu.EXIT_NOT_FOUND, "não existe"),
    (FIXTURES / "bad_input" / "syntax_error", zerogpu.EXIT_SYNTAX, "erro de sintaxe"),
    (FIXTURES / "bad_input" / "syntax_error" / "app.py", zerogpu.EXIT_SYNTAX, "app.py:6"),
    (FIXTURES / "bad_input" / "not_python.txt", zerogpu.EXIT_NOT_PYTHON, "não é um arquivo Python"),
])
def test_cli_bad_input_gives_message_and_distinct_code(target, code, words):
    got, out, err = _cli("lint", target)
    assert got == code
    assert words in err
    assert "Traceback" not in err + out


def test_cli_empty_folder_and_folder_without_python(tmp_path):
    empty = tmp_path / "vazia"
    empty.mkdir()
    code, out, err = _cli("lint", empty)
    assert code == zerogpu.EXIT_EMPTY and "vazia" in err and "Traceback" not in err + out
    (tmp_path / "so_readme").mkdir()
    (tmp_path / "so_readme" / "README.md").write_text("# nada\n", encoding="utf-8")
    code, _, err = _cli("lint", tmp_path / "so_readme")
    assert code == zerogpu.EXIT_EMPTY and "nenhum arquivo .py" in err


def test_cli_binary_file_and_usage_errors(tmp_path):
    binary = tmp_path / "app.py"
    binary.write_bytes(b"\xff\xfe\x00\x81 bytes")
    code, out, err = _cli("lint", binary)
    assert code == zerogpu.EXIT_NOT_PYTHON and "UTF-8" in err and "Traceback" not in err + out
    code, _, err = _cli()
    assert code == zerogpu.EXIT_USAGE and "erro de uso" in err


def test_exit_codes_are_distinct():
    codes = [zerogpu.EXIT_OK, zerogpu.EXIT_FINDINGS, zerogpu.EXIT_USAGE, zerogpu.EXIT_NOT_FOUND,
             zerogpu.EXIT_SYNTAX, zerogpu.EXIT_NOT_PYTHON, zerogpu.EXIT_EMPTY]
    assert len(set(codes)) == len(codes)


def test_lint_path_raises_lint_input_error_not_traceback_types():
    with pytest.raises(LintInputError) as info:
        lint_path(FIXTURES / "bad_input" / "syntax_error")
    assert info.value.exit_code == zerogpu.EXIT_SYNTAX


def test_finding_format():
    finding = Finding("module_cuda", "app.py", 3, "mensagem")
    assert str(finding) == "app.py:3: erro [module_cuda] mensagem"


# ------------------------------------------------------------------ o que o notebook 00 usa do pacote

def test_spaces_facts_reads_the_installed_package():
    from course_utils.zerogpu.installed import spaces_facts

    facts = spaces_facts()
    assert facts["DEFAULT_SCHEDULE_DURATION"] == zerogpu.DEFAULT_DURATION_S
    assert facts["TOKEN_HEADER"].lower() == "x-ip-token"
    assert facts["gpus"] and all({"model", "memory", "duration_factor"} <= set(g) for g in facts["gpus"])


def test_space_edits_and_writing(tmp_path):
    from course_utils.zerogpu.local_space import edit, write_space

    files = {"app": "import spaces\n", "requirements": "torch==2.8.0\n"}
    changed = edit("requirements", "2.8.0", "2.6.0")(files)
    assert changed["requirements"] == "torch==2.6.0\n" and files["requirements"] == "torch==2.8.0\n"
    with pytest.raises(ValueError, match="não encontrado"):
        edit("app", "import torch", "")(files)
    folder = write_space(tmp_path / "s", changed)
    assert sorted(p.name for p in folder.iterdir()) == ["app.py", "requirements.txt"]


def test_aot_child_failure_says_where_it_stopped():
    from course_utils.zerogpu.aot import AotError, _run_child

    with pytest.raises(AotError, match="código de saída 3 depois de 'compilado'"):
        _run_child("import sys; print('compilado 1.0', flush=True); sys.exit(3)", [], ["compilado", "carregado"])
    with pytest.raises(AotError, match="sinal 11 antes de 'compilado'"):
        _run_child("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", [], ["compilado"])


def test_timeline_figure_draws_three_lanes():
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.zerogpu.timeline import TIMELINE, plot_zerogpu_timeline

    ax = plot_zerogpu_timeline()
    assert len(ax.get_yticks()) == len(TIMELINE) == 3
    assert len(ax.collections) == sum(len(spans) for _, spans in TIMELINE)


@pytest.mark.parametrize("statement", ["torch.cuda.synchronize()", "print(torch.cuda.current_device())"])
def test_what_the_emulation_replaces_is_not_flagged_at_module_level(statement):
    # spaces 0.51.3, zero/torch/patching.py: synchronize vira `lambda *args: None`, current_device `lambda: 0`
    source = f"import spaces\nimport torch\n{statement}\n\n@spaces.GPU\ndef f():\n    pass\n"
    assert lint_source(source) == []
