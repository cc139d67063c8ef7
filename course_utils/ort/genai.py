"""onnxruntime-genai: o model builder (grafo com cache KV e GroupQueryAttention), a geração gulosa medida
(prefill e decode) e a conferência do tokenizador que ele escreve."""

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from ..onnx_export import onnx_cache_dir
from .files import dir_fingerprint, package_version
from .sessions import quiet_onnxruntime

# ---------------------------------------------------------------- onnxruntime-genai

PRECISIONS = ("int4", "int8", "bf16", "fp16", "fp32")            # as escolhas de -p do builder
EXECUTION_PROVIDERS = ("cpu", "cuda", "dml", "webgpu", "NvTensorRtRtx")   # as de -e


def build_genai_model(source, precision: str = "fp32", execution_provider: str = "cpu",
                      extra_options: dict | None = None, out_root=None, refresh: bool = False) -> tuple[Path, bool]:
    """Roda o model builder do onnxruntime-genai (no mesmo processo) e devolve (diretório, veio_do_cache).

    source: diretório do modelo do transformers (config.json, pesos, tokenizador) ou um ID do Hub ("dono/nome").
    O builder escreve model.onnx (com GroupQueryAttention e cache KV), genai_config.json e o tokenizador.
    O resultado fica no cache do curso; a saída do builder vai para build.log dentro dele. É o mesmo que a linha
    de comando de `builder_command`. Argumentos inválidos são recusados antes de tocar no disco, e uma construção
    que falha não deixa a pasta temporária para trás.
    """
    src = str(source)
    local = Path(src).is_dir()
    if precision not in PRECISIONS:
        raise ValueError(f"precisão {precision!r} desconhecida pelo builder; use uma de {list(PRECISIONS)}.")
    if execution_provider not in EXECUTION_PROVIDERS:
        raise ValueError(f"provedor {execution_provider!r} desconhecido pelo builder; use um de {list(EXECUTION_PROVIDERS)}.")
    if not local and not re.fullmatch(r"[\w.-]+/[\w.-]+", src):
        raise ValueError(f"{src[:80]!r} não é uma pasta de modelo nem um ID do Hub no formato 'dono/nome'.")
    with quiet_onnxruntime():  # o import do builder também mexe no logging
        from onnxruntime_genai.models.builder import create_model, parse_extra_options

    extra = {k: str(v) for k, v in (extra_options or {}).items()}
    versions = {n: package_version(n) for n in ("onnxruntime-genai", "onnxruntime", "transformers")}
    key_src = json.dumps({"src": dir_fingerprint(Path(src)) if local else src, "p": precision,
                          "ep": execution_provider, "x": extra, "v": versions}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    root = Path(out_root) if out_root else onnx_cache_dir()
    out_dir = root / f"genai-{precision}-{execution_provider}-{key}"
    if (out_dir / "genai_config.json").exists() and not refresh:
        return out_dir, True
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_name, input_path = (None, src) if local else (src, "")
    hf_cache = root / "hf-cache"
    try:
        with quiet_onnxruntime(tmp / "build.log"):
            options = parse_extra_options(model_name, input_path, str(tmp), precision, execution_provider,
                                          str(hf_cache), [f"{k}={v}" for k, v in extra.items()])
            create_model(model_name, input_path, str(tmp), precision, execution_provider, str(hf_cache), **options)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir, False


def load_genai_model(path, threads: int | None = None, providers=None):
    """og.Model de um diretório do builder; threads muda intra_op_num_threads da sessão do decoder."""
    import onnxruntime_genai as og

    config = og.Config(str(path))
    if threads is not None:
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    if providers is not None:
        config.clear_providers()
        for provider in providers:
            config.append_provider(provider)
    return og.Model(config)


def genai_generate(model, prompt_ids, new_tokens: int) -> dict:
    """Geração gulosa de exatamente `new_tokens` tokens com o onnxruntime-genai, medindo prefill e decode.

    append_tokens roda o prompt inteiro (prefill) e enche o cache KV; cada generate_next_token escolhe
    um token e, a partir do segundo, roda o modelo sobre o token anterior (um passo de decode).
    decode_tokens_per_s = (new_tokens - 1) / tempo do laço: passos de decode por segundo.
    """
    import onnxruntime_genai as og

    prompt = [int(t) for t in np.asarray(prompt_ids).reshape(-1)]
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + new_tokens, min_length=len(prompt) + new_tokens,
                              do_sample=False)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(prompt)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    while not generator.is_done():
        generator.generate_next_token()
    decode = time.perf_counter() - start
    sequence = [int(t) for t in generator.get_sequence(0)]
    new = sequence[len(prompt):]
    return {"new_ids": new, "prefill_s": prefill, "decode_s": decode,
            "decode_tokens_per_s": (len(new) - 1) / decode if len(new) > 1 else float("nan")}


def tokenizer_round_trip(genai_model, hf_tokenizer, texts) -> dict:
    """Confere o tokenizador que o builder escreveu (og.Tokenizer de um og.Model) contra o do transformers.

    Para cada texto: ids iguais aos do transformers? decode(encode(texto)) == texto? (Sem tokens
    especiais no texto: o decode do onnxruntime-genai os omite.)
    Devolve {"ids_match": bool, "text_match": bool, "failures": [...]}.
    """
    import onnxruntime_genai as og

    tokenizer = og.Tokenizer(genai_model)
    failures = []
    ids_match = text_match = True
    for text in texts:
        ids = [int(t) for t in tokenizer.encode(text)]
        ref = hf_tokenizer(text, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids)
        if ids != ref:
            ids_match = False
            failures.append(f"ids diferentes para {text!r}")
        if back != text:
            text_match = False
            failures.append(f"ida e volta mudou {text!r} para {back!r}")
    return {"ids_match": ids_match, "text_match": text_match, "failures": failures}


def builder_command(source, precision: str, execution_provider: str, out_dir, extra_options: dict | None = None) -> str:
    """A linha de comando do model builder que `build_genai_model` executa (no mesmo processo, pela API).

    `-m` para um ID do Hub, `-i` para um diretório local; `--extra_options chave=valor` como o builder lê.
    """
    src = str(source)
    where = f"-i {src}" if Path(src).is_dir() else f"-m {src}"
    cmd = f"python -m onnxruntime_genai.models.builder {where} -o {out_dir} -p {precision} -e {execution_provider}"
    if extra_options:
        cmd += " --extra_options " + " ".join(f"{k}={v}" for k, v in extra_options.items())
    return cmd
