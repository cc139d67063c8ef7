"""O linter de Spaces ZeroGPU (course_utils.zerogpu): fixtures boas e ruins, linha de comando e entradas ruins.

Cada pasta em tests/fixtures/spaces/bad/ se chama como a regra que ela tem de disparar
(`module_cuda__pipeline_device_cuda` dispara `module_cuda`) e não deve disparar nenhuma outra;
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
    assert (FIXTURES / "bad" / "module_cuda__pipeline_device_cuda").is_dir(), "falta o erro clássico"


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


def test_classic_mistake_points_at_the_pipeline_line():
    fixture = FIXTURES / "bad" / "module_cuda__pipeline_device_cuda"
    (finding,) = lint_path(fixture)
    source_line = (fixture / "app.py").read_text(encoding="utf-8").splitlines()[finding.line - 1]
    assert 'pipeline("text-generation"' in source_line and 'device="cuda"' in source_line
    assert str(finding).startswith(f"app.py:{finding.line}: erro [module_cuda]")
    assert "@spaces.GPU" in finding.message


def test_cuda_inside_gpu_function_is_fine_but_not_at_module_scope():
    inside = "import spaces\nimport torch\n\n@spaces.GPU\ndef f(x):\n    return torch.ones(1).cuda() + x\n"
    assert lint_source(inside) == []
    outside = inside + "\nWARM = torch.ones(1).cuda()\n"
    assert [(f.rule, f.line) for f in lint_source(outside)] == [("module_cuda", 8)]


@pytest.mark.parametrize("statement", [
    'torch.zeros(3, device="cuda:0")',
    'torch.set_default_device("cuda")',
    'm = AutoModel.from_pretrained("x", device_map={"": 0})',
    'm = AutoModel.from_pretrained("x").to(device=torch.device("cuda", 0))',
    'torch.cuda.synchronize()',
    'class Holder:\n    weights = torch.ones(2).cuda()',
    'if True:\n    torch.cuda.empty_cache()',
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
])
def test_module_scope_without_cuda_work_is_fine(statement):
    source = (f"import spaces\nimport torch\nfrom transformers import AutoModel, pipeline\n{statement}\n\n"
              "@spaces.GPU\ndef f():\n    pass\n")
    assert lint_source(source) == []


def test_duration_given_or_short_generation_needs_no_warning():
    template = "import spaces\n\n@spaces.GPU{args}\ndef f(model, n):\n    return model.generate(max_new_tokens={n})\n"
    assert lint_source(template.format(args="(duration=120)", n="n")) == []
    assert lint_source(template.format(args="(45)", n="n")) == []
    assert lint_source(template.format(args="", n="64")) == []
    (warning,) = lint_source(template.format(args="", n="n"))
    assert warning.rule == "gpu_duration" and warning.severity == "aviso"


def test_requirements_rules():
    assert lint_requirements("torch==2.8.0\n") == []
    assert lint_requirements("torch>=2.0\n") == []
    assert lint_requirements("torch @ https://exemplo.invalido/torch.whl\n") == []
    assert [f.line for f in lint_requirements("gradio\n# torch\n")] == [1]
    assert [f.rule for f in lint_requirements("torch<2\n")] == ["requirements_torch"]
    assert [f.rule for f in lint_requirements("torch==2.4.1+cpu\n")] == ["requirements_torch"]
    assert lint_requirements("torch==2.4.1\n", uses_aoti=False) == []
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
    _copy_fixture("good/lazy_load_gpu", tmp_path)
    app = tmp_path / "app.py"
    app.write_text(app.read_text(encoding="utf-8") + "\ncompile_ = spaces.aoti_compile\n", encoding="utf-8")
    (tmp_path / "requirements.txt").write_text("torch==2.6.0\n", encoding="utf-8")
    assert [f.rule for f in lint_path(tmp_path)] == ["requirements_torch"]


def _copy_fixture(name, dest: Path):
    for path in (FIXTURES / name).iterdir():
        (dest / path.name).write_bytes(path.read_bytes())


# ------------------------------------------------------------------ linha de comando

def test_cli_good_space_exits_zero():
    code, out, err = _cli("lint", FIXTURES / "good" / "lazy_load_gpu")
    assert code == 0, err
    assert "Nenhum problema encontrado" in out


def test_cli_bad_space_exits_one_with_file_and_line():
    code, out, _ = _cli("lint", FIXTURES / "bad" / "module_cuda__pipeline_device_cuda")
    assert code == 1
    assert "app.py:12: erro [module_cuda]" in out
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


# ------------------------------------------------------------------ exercícios do notebook 00

BROKEN_APP = '''import torch
from transformers import pipeline

print("GPU disponível:", torch.cuda.is_available())

import gradio as gr
import spaces

pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")


def answer(question, max_new_tokens):
    return pipe(question, max_new_tokens=max_new_tokens)[0]["generated_text"]


gr.Interface(answer, ["text", gr.Slider(16, 1024, step=16)], "text").launch()
'''

FIXED_APP = '''import spaces

import gradio as gr
from transformers import pipeline

_pipe = None


@spaces.GPU(duration=lambda question, max_new_tokens: 10 + max_new_tokens // 20)
def answer(question, max_new_tokens):
    global _pipe
    if _pipe is None:
        _pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")
    return _pipe(question, max_new_tokens=max_new_tokens)[0]["generated_text"]


gr.Interface(answer, ["text", gr.Slider(16, 1024, step=16)], "text").launch()
'''


def test_exercise_fix_app_judge():
    from course_utils.exercises import evaluate

    assert {f.rule for f in lint_source(BROKEN_APP)} == {"module_cuda", "no_gpu_function", "spaces_import_order"}
    assert evaluate("00.1", FIXED_APP)[0]
    ok, message = evaluate("00.1", BROKEN_APP)
    assert not ok and "linha" in message and "pipe = pipeline" not in message
    assert not evaluate("00.1", FIXED_APP.replace('device="cuda"', 'device="cpu"'))[0], "consertar tirando a GPU"
    assert not evaluate("00.1", "def (")[0]
    assert not evaluate("00.1", 42)[0]


def test_exercise_duration_and_quota_judges():
    import math

    from course_utils.exercises import evaluate

    assert evaluate("00.2", lambda prompt, max_new_tokens: min(120, math.ceil(10 + 0.05 * max_new_tokens)))[0]
    assert not evaluate("00.2", lambda prompt, max_new_tokens: math.ceil(10 + 0.05 * max_new_tokens))[0]
    assert not evaluate("00.2", lambda a, b: min(120, math.ceil(10 + 0.05 * b)))[0]
    assert evaluate("00.3", 60)[0] and not evaluate("00.3", 90)[0]
