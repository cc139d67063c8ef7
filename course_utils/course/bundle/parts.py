"""Partes, lotes e manifesto: cortar os arquivos grandes, conferir sha256, remontar."""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # a raiz do checkout


MANIFEST = "manifest.json"


MIB = 1024 * 1024


class BundleError(RuntimeError):
    """Problema no pacote offline; a mensagem (em português) diz o que fazer."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def split_file(path: Path, part_bytes: int, out_dir: Path) -> list:
    """Corta `path` em `out_dir/NOME.part000`, `.part001`... de no máximo `part_bytes`; devolve as partes."""
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as src:
        while True:
            chunk = src.read(part_bytes)
            if not chunk and parts:
                return parts
            part = out_dir / f"{path.name}.part{len(parts):03d}"
            part.write_bytes(chunk)
            parts.append(part)


def join_parts(parts, dest: Path, sha256: str, size: int | None = None) -> Path:
    """Junta as partes em `dest` e confere tamanho e sha256; erro em português se algo faltar ou não bater."""
    dest = Path(dest)
    missing = [str(p) for p in parts if not Path(p).is_file()]
    if missing:
        raise BundleError(f"Falta(m) {len(missing)} parte(s) de {dest.name}: {', '.join(missing)}. "
                          "Leve de novo o lote que as contém (veja manifest.json) e rode outra vez.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".incompleto")
    digest, total = hashlib.sha256(), 0
    with open(tmp, "wb") as out:
        for part in parts:
            data = Path(part).read_bytes()
            digest.update(data)
            total += len(data)
            out.write(data)
    if digest.hexdigest() != sha256 or (size is not None and total != size):
        tmp.unlink()
        raise BundleError(f"{dest.name} remontado não confere (sha256 ou tamanho diferente do manifest): "
                          "alguma parte chegou corrompida. Leve de novo os lotes dele e rode outra vez.")
    tmp.replace(dest)
    return dest


def check_part(path: Path, info: dict) -> None:
    """Confere uma parte (tamanho e sha256); o erro diz qual lote levar de novo."""
    batch = info["path"].split("/", 1)[0]
    if not path.is_file():
        raise BundleError(f"Falta {info['path']} (do {batch}): leve de novo a pasta {batch} do pacote "
                          "(em `carry`) e rode install-bundle outra vez.")
    if path.stat().st_size != info["size"] or sha256_file(path) != info["sha256"]:
        raise BundleError(f"{info['path']} (do {batch}) está corrompida: o sha256 não bate com manifest.json. "
                          f"Leve de novo a pasta {batch} e rode install-bundle outra vez.")


def plan_batches(pieces: dict, capacity: int) -> list:
    """Reparte {nome: bytes} em lotes de no máximo `capacity` (maiores primeiro); devolve listas de nomes."""
    batches = []  # [bytes livres, [nomes]]
    for name, size in sorted(pieces.items(), key=lambda item: (-item[1], item[0])):
        if size > capacity:
            raise BundleError(f"{name} tem {size} bytes, mais que um lote ({capacity}): corte-o antes em partes.")
        batch = next((b for b in batches if b[0] >= size), None)
        if batch is None:
            batch = [capacity, []]
            batches.append(batch)
        batch[0] -= size
        batch[1].append(name)
    return [sorted(names) for _, names in batches]


def lay_out(out: Path, files: list, part_bytes: int) -> tuple:
    """Corta os arquivos grandes e reparte tudo em `out/lote-NN/`; devolve (entradas do manifesto, lotes)."""
    entries, sizes, sources = [], {}, {}
    with tempfile.TemporaryDirectory(dir=out) as staging:
        for rel, src, kind in files:
            size = src.stat().st_size
            split = size > part_bytes
            parts = split_file(src, part_bytes, Path(staging) / rel) if split else [src]
            names = [f"{rel}.part{i:03d}" for i in range(len(parts))] if split else [rel]
            sources.update(zip(names, parts, strict=True))
            sizes.update((n, p.stat().st_size) for n, p in zip(names, parts, strict=True))
            entries.append({"file": rel, "kind": kind, "size": size, "sha256": sha256_file(src),
                            "parts": [{"path": n, "size": sizes[n], "sha256": sha256_file(p)}
                                      for n, p in zip(names, parts, strict=True)]})
        where, batches = {}, []
        for i, names in enumerate(plan_batches(sizes, part_bytes)):
            batches.append({"dir": f"lote-{i:02d}", "bytes": sum(sizes[n] for n in names)})
            for name in names:
                where[name] = f"lote-{i:02d}/{name}"
                (out / where[name]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sources[name], out / where[name])
    for entry in entries:
        for part in entry["parts"]:
            part["path"] = where[part["path"]]
    return entries, batches


def write_manifest(out: Path, files: list, meta: dict) -> Path:
    """manifest.json: `files` = [{file, kind, size, sha256, parts: [{path, size, sha256}]}] + `meta`."""
    path = Path(out) / MANIFEST
    path.write_text(json.dumps({**meta, "files": files}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(out: Path) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise BundleError(f"Não encontrei {path}: leve o pacote inteiro (manifest.json, install.sh e os lotes) "
                          "ou gere-o com `python -m course_utils.course bundle`.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} está corrompido ({exc}): leve-o de novo.") from exc
