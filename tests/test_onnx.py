"""Exportação para ONNX e ONNX Runtime (course_utils.onnx_export e course_utils.ort), num modelo minúsculo.

Tudo aqui usa `tiny_model` (Llama de 2 camadas, pesos aleatórios): exportar, rodar, quantizar, gerar com o
onnxruntime-genai e conferir contra o PyTorch leva segundos.
"""

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from course_utils.measure import perplexity  # noqa: E402
from course_utils.models import tiny_model  # noqa: E402
from course_utils.onnx_export import cached_export, model_fingerprint, truncated_copy  # noqa: E402
from course_utils.ort import (  # noqa: E402
    create_session,
    dynamic_quantize_uint8,
    matmul_weight_bytes,
    op_counts,
    ort_perplexity,
    quantize_dynamic_int8,
    quantize_weight_only,
    run_logits,
    single_matmul_model,
    u8s8_matmul,
)


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    """Um diretório de cache só destes testes (COURSE_CACHE_DIR)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def exported(cache_env):
    model = tiny_model(vocab_size=256, hidden_size=64, num_layers=2, seed=3)
    path, hit = cached_export(model, "minusculo")
    assert not hit
    return model, path


def test_export_has_dynamic_axes_and_matches_torch(exported):
    model, path = exported
    onnx.checker.check_model(str(path), full_check=True)
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_param, "lote e sequência devem ser simbólicos"
    session = create_session(path)
    for shape in ((1, 5), (3, 11)):  # formatos diferentes do exemplo da exportação (2 x 8)
        ids = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.inference_mode():
            ref = model(ids).logits.numpy()
        got = run_logits(session, ids.numpy())
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 1e-4


def test_cached_export_reuses_the_file(exported):
    model, path = exported
    again, hit = cached_export(model, "minusculo")
    assert hit and again == path
    other = tiny_model(vocab_size=256, hidden_size=64, num_layers=2, seed=4)  # outros pesos, outra chave
    assert model_fingerprint(other) != model_fingerprint(model)


def test_optimization_levels_keep_the_function(exported, tmp_path):
    model, path = exported
    ids = np.arange(12, dtype=np.int64)[None] % 256
    ref = run_logits(create_session(path, level="disable"), ids)
    counts = {}
    for level in ("disable", "all"):
        optimized = tmp_path / f"{level}.onnx"
        out = run_logits(create_session(path, level=level, optimized_path=optimized), ids)
        counts[level] = sum(op_counts(optimized).values())
        assert np.abs(out - ref).max() < 1e-4
    assert counts["all"] < counts["disable"]
    with pytest.raises(ValueError):
        create_session(path, level="turbo")


def test_ort_perplexity_is_the_same_algorithm(exported):
    model, path = exported
    ids = torch.randint(0, 256, (1, 40), generator=torch.Generator().manual_seed(0))
    session = create_session(path)
    for window, stride in ((16, 8), (40, 40)):
        ours = ort_perplexity(session, ids, window=window, stride=stride, progress=False)
        ref = perplexity(model, ids, window=window, stride=stride, progress=False)
        assert ours == pytest.approx(ref, rel=1e-4)


def test_weight_only_quantization(exported, tmp_path):
    model, path = exported
    ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(1)).numpy()
    ref = run_logits(create_session(path), ids)
    err = {}
    for bits in (8, 4):
        q = quantize_weight_only(path, tmp_path / f"w{bits}" / "model.onnx", bits=bits, block_size=32, symmetric=False)
        assert op_counts(q)["MatMulNBits"] > 0
        err[bits] = np.abs(run_logits(create_session(q), ids) - ref).mean()
    assert err[8] < err[4]
    assert err[8] < 0.01 * np.abs(ref).mean()
    assert matmul_weight_bytes(tmp_path / "w4" / "model.onnx") < matmul_weight_bytes(path) / 4


def test_matmul_weight_bytes_counts_the_linear_layers(exported):
    model, path = exported
    linear = sum(m.weight.numel() * 4 for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and name != "lm_head")
    got = matmul_weight_bytes(path)
    lm_head = model.lm_head.weight.numel() * 4
    assert got in (linear, linear + lm_head)  # a cabeça amarrada ao embedding pode ou não virar um inicializador


def test_truncated_copy_keeps_the_original():
    model = tiny_model(num_layers=2)
    small = truncated_copy(model, 1)
    assert len(small.model.layers) == 1 and small.config.num_hidden_layers == 1
    assert len(model.model.layers) == 2 and model.config.num_hidden_layers == 2
    assert torch.equal(small.model.layers[0].mlp.up_proj.weight, model.model.layers[0].mlp.up_proj.weight)
    with pytest.raises(ValueError):
        truncated_copy(model, 3)


def _onnx_dynamic_quantize(x):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"])], "dql",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("q", TensorProto.UINT8, list(x.shape)),
                               helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
                               helper.make_tensor_value_info("z", TensorProto.UINT8, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("kind", ["misto", "positivo", "negativo", "outlier"])
def test_dynamic_quantize_uint8_matches_onnx_runtime(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(np.float32)
    x = {"misto": x, "positivo": np.abs(x) + 0.1, "negativo": -np.abs(x) - 0.1,
         "outlier": np.where(np.arange(35).reshape(5, 7) == 3, 90.0, x).astype(np.float32)}[kind]
    q_ref, s_ref, z_ref = _onnx_dynamic_quantize(x)
    q, s, z = dynamic_quantize_uint8(x)
    assert s == pytest.approx(float(s_ref), rel=1e-6)
    assert z == int(z_ref)
    assert np.array_equal(q, q_ref.astype(np.int64))


def test_u8s8_matmul_exact_and_saturating(tmp_path):
    rng = np.random.default_rng(1)
    k, n = 64, 8
    w = rng.standard_normal((k, n)).astype(np.float32)
    # ativações quase todas negativas e pequenas com um positivo grande: ponto-zero alto, valores uint8 perto de 255
    x = (-np.abs(rng.standard_normal((6, k))) * 0.1).astype(np.float32)
    x[0, 0] = -8.0
    x[1, 1] = 0.5
    a_q, a_scale, a_zp = dynamic_quantize_uint8(x)
    assert a_zp > 200
    mm = single_matmul_model(w, tmp_path / "mm.onnx")
    q_path = quantize_dynamic_int8(mm, tmp_path / "mm_q.onnx", per_channel=True)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(q_path)).graph.initializer}
    w_q, w_scale = inits["W_quantized"], inits["W_scale"].astype(np.float64)
    exact, frac0 = u8s8_matmul(a_q, a_zp, w_q)
    assert frac0 == 0.0
    dequant = ((a_q - a_zp) * a_scale) @ (w_q * w_scale)
    assert np.allclose(exact * (a_scale * w_scale), dequant, rtol=1e-9, atol=1e-9)
    saturated, frac = u8s8_matmul(a_q, a_zp, w_q, saturate_pairs=True, chunk=2)
    assert frac > 0, "com pesos na faixa inteira e ativações perto de 255, algum par deveria saturar"
    y_ort = create_session(q_path).run(None, {"X": x})[0]
    scale = np.abs(x @ w).max()
    to_exact = np.abs(y_ort - exact * (a_scale * w_scale)).max() / scale
    to_sat = np.abs(y_ort - saturated * (a_scale * w_scale)).max() / scale
    assert min(to_exact, to_sat) < 1e-4, "o ORT deveria bater com a conta exata (VNNI) ou com a saturada (AVX2)"


def test_genai_builder_generates_like_torch(tmp_path, cache_env):
    og = pytest.importorskip("onnxruntime_genai")
    from course_utils.generation import generate
    from course_utils.models import ModelNotAvailableError, load_tokenizer
    from course_utils.ort import build_genai_model, genai_generate, load_genai_model, tokenizer_round_trip

    try:
        tokenizer = load_tokenizer()
    except ModelNotAvailableError:
        pytest.skip("sem o tokenizador de referência offline")
    model = tiny_model(vocab_size=256, hidden_size=64, num_layers=2, seed=5)
    source = tmp_path / "minusculo"
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    out, hit = build_genai_model(source, "fp32", "cpu", out_root=tmp_path / "genai")
    assert not hit and (out / "genai_config.json").exists()
    assert build_genai_model(source, "fp32", "cpu", out_root=tmp_path / "genai") == (out, True)
    assert op_counts(out / "model.onnx")["GroupQueryAttention"] == 2

    prompt = torch.tensor([[5, 17, 42, 7, 99]])
    ours = genai_generate(load_genai_model(out), prompt, 8)
    ref = generate(model, prompt, 8)[0, prompt.shape[1]:].tolist()
    assert ours["new_ids"] == ref
    assert ours["decode_tokens_per_s"] > 0 and ours["prefill_s"] > 0
    # o grafo do builder numa InferenceSession comum, com cache "passado" vazio
    with torch.inference_mode():
        ref_logits = model(prompt).logits.numpy()
    got = run_logits(create_session(out / "model.onnx"), prompt.numpy(), head_dim=16)
    assert np.abs(got - ref_logits).max() < 1e-3
    assert isinstance(og.__version__, str)
    rt = tokenizer_round_trip(load_genai_model(out), tokenizer, ["Olá, mundo! ção", "def f(x):\n\treturn x"])
    assert rt["ids_match"] and rt["text_match"], rt["failures"]


# ---------------------------------------------------------------- saturação, int4 em blocos, tipos no grafo

def _row(exact, sat, frac, err_tensor=0.01, err_canal=0.01):
    return {"zero_point": 200, "err_tensor": err_tensor, "err_canal": err_canal, "sat_frac_tensor": 0.0,
            "sat_frac_canal": frac, "ort_vs_exact_tensor": 1e-4, "ort_vs_sat_tensor": 1e-4,
            "ort_vs_exact_canal": exact, "ort_vs_sat_canal": sat}


def test_saturation_verdict_covers_both_cpus():
    """O ramo que a CPU desta máquina (com VNNI) não executa, com dados de uma CPU sem VNNI."""
    from course_utils.ort import saturation_verdict

    without_vnni = [_row(exact=0.3, sat=1e-4, frac=2e-3, err_canal=0.9), _row(exact=2e-3, sat=1e-4, frac=0.0)]
    assert saturation_verdict(without_vnni)["kind"] == "saturates"
    assert saturation_verdict(without_vnni)["worst"]["sat_frac_canal"] == 2e-3
    with_vnni = [_row(exact=1e-4, sat=0.2, frac=1e-3)]
    assert saturation_verdict(with_vnni)["kind"] == "exact"
    assert saturation_verdict([_row(exact=0.3, sat=0.3, frac=1e-3)])["kind"] == "unexplained"
    with pytest.raises(ValueError):
        saturation_verdict([])


def test_int4_arrays_round_trip_through_matmulnbits(tmp_path):
    from course_utils.ort import create_session, matmulnbits_model, ort_int4_blocks

    w = np.random.default_rng(0).standard_normal((96, 5)).astype(np.float32) * 0.1
    arrays = ort_int4_blocks(w, tmp_path)
    assert arrays["B"].shape == (5, 3, 16) and arrays["zero_points"].shape == (5, 2)
    x = np.random.default_rng(1).standard_normal((4, 96)).astype(np.float32)
    ours = create_session(matmulnbits_model(arrays["B"], arrays["scales"], arrays["zero_points"], tmp_path / "m.onnx"))
    theirs = create_session(arrays["path"])
    assert np.allclose(ours.run(None, {"X": x})[0], theirs.run(None, {"X": x})[0], atol=1e-5)


def test_weights_of_dynamic_int8_keep_the_quantized_weights_in_fp32(tmp_path):
    from course_utils.ort import create_session, quantize_dynamic_int8, single_matmul_model, weights_of_dynamic_int8

    w = np.random.default_rng(2).standard_normal((16, 8)).astype(np.float32)
    src = single_matmul_model(w, tmp_path / "fp32.onnx")
    q = quantize_dynamic_int8(src, tmp_path / "int8.onnx")
    dst = weights_of_dynamic_int8(src, tmp_path / "w.onnx", int8_src=q)
    got = create_session(dst).run(None, {"X": np.eye(16, dtype=np.float32)})[0]
    scale = np.abs(w).max() / 127
    assert np.abs(got - w).max() <= scale / 2 + 1e-6 and not np.allclose(got, w)


def test_op_input_types_and_builder_command(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from course_utils.onnx_export import op_input_types
    from course_utils.ort import builder_command

    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT),
                               helper.make_node("Pow", ["x32", "two"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "g.onnx"))
    assert op_input_types(tmp_path / "g.onnx") == ["FLOAT"]
    cmd = builder_command("org/modelo", "int4", "cpu", "saida", {"accuracy_level": 4})
    assert cmd == ("python -m onnxruntime_genai.models.builder -m org/modelo -o saida -p int4 -e cpu "
                   "--extra_options accuracy_level=4")
    assert builder_command(tmp_path, "fp32", "cpu", "o").split()[3] == "-i"


# ---------------------------------------------------------------- o encanamento do notebook 06

def test_session_at_level_counts_the_optimized_graph_and_removes_it(exported):
    from course_utils.ort import scratch_dir, session_at_level

    model, path = exported
    before = set(scratch_dir().rglob("*.onnx"))
    session, counts, seconds = session_at_level(path, "all")
    assert sum(counts.values()) > 0 and seconds >= 0
    assert set(scratch_dir().rglob("*.onnx")) == before, "o grafo otimizado (com todos os pesos) deveria ser apagado"
    ids = np.arange(6, dtype=np.int64)[None]
    assert np.abs(run_logits(session, ids) - run_logits(create_session(path, level="disable"), ids)).max() < 1e-4


def test_keep_argmax_gives_the_top1_of_the_same_pass(exported):
    from course_utils.ort import OrtCausalLM

    model, path = exported
    ids = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(2))
    lm = OrtCausalLM(create_session(path), keep_argmax=True)
    ppl = perplexity(lm, ids, window=20, stride=20, progress=False)
    assert ppl == pytest.approx(perplexity(model, ids, window=20, stride=20, progress=False), rel=1e-4)
    assert len(lm.argmax) == 1 and lm.argmax[0].shape == (1, 20)
    with torch.inference_mode():
        assert np.array_equal(lm.argmax[0], model(ids).logits.argmax(-1).numpy())
    assert OrtCausalLM(create_session(path)).argmax == []  # sem keep_argmax, nada guardado


def test_attention_head_dim_is_derived_when_the_config_lacks_it():
    from types import SimpleNamespace

    from course_utils.ort import attention_head_dim

    assert attention_head_dim(SimpleNamespace(hidden_size=576, num_attention_heads=9)) == 64   # sem o campo
    assert attention_head_dim(SimpleNamespace(hidden_size=576, num_attention_heads=9, head_dim=None)) == 64
    assert attention_head_dim(SimpleNamespace(hidden_size=2048, num_attention_heads=16, head_dim=128)) == 128  # Qwen3


def test_require_llama_layout_explains_in_portuguese():
    from transformers import GPT2Config, GPT2LMHeadModel

    from course_utils.onnx_export import require_llama_layout

    assert len(require_llama_layout(tiny_model(num_layers=2))) == 2
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=32))
    with pytest.raises(ValueError, match="não é um decoder no estilo Llama"):
        require_llama_layout(gpt2, "gpt2")


def test_cpu_int8_instructions_reads_the_flags(tmp_path):
    from course_utils.ort import cpu_int8_instructions

    avx2_only = tmp_path / "avx2"
    avx2_only.write_text("flags\t\t: fpu sse2 avx avx2 fma\n")
    assert cpu_int8_instructions(avx2_only) == {"avx2": True, "avx512": False, "vnni": False}
    avx512_vnni = tmp_path / "vnni"
    avx512_vnni.write_text("flags\t\t: avx2 avx512f avx512_vnni\n")
    assert cpu_int8_instructions(avx512_vnni) == {"avx2": True, "avx512": True, "vnni": True}
    assert cpu_int8_instructions(tmp_path / "nao-existe") == {"avx2": False, "avx512": False, "vnni": False}


def test_variant_results_names_the_keys_in_english():
    from course_utils.ort import VARIANT_KEYS, variant_results

    assert variant_results("ppl_ort", {"int8 dinâmico": 52.0, "fp32": 29.0}) == {"ppl_ort_int8_dynamic": 52.0,
                                                                                   "ppl_ort_fp32": 29.0}
    assert len(set(VARIANT_KEYS.values())) == len(VARIANT_KEYS)
    with pytest.raises(KeyError):
        variant_results("ppl_ort", {"int3 mágico": 1.0})


def test_scratch_paths_are_unique_and_temporary():
    from course_utils.ort import scratch_dir, scratch_path

    a, b = scratch_path("x.onnx"), scratch_path("x.onnx")
    assert a != b and a.parent.is_dir() and scratch_dir() in a.parents


def test_cuda_branch_skip_reason_without_gpu():
    from course_utils.ort import cuda_branch_skip_reason

    assert cuda_branch_skip_reason("cpu") == "sem GPU nesta execução"


def test_builder_refuses_bad_arguments_before_touching_the_disk(tmp_path):
    pytest.importorskip("onnxruntime_genai")
    from course_utils.ort import build_genai_model

    root = tmp_path / "genai"
    for args in (("org/modelo", "0.9"), ("org/modelo", "fp32", "tpu"), ("não é um modelo", "fp32")):
        with pytest.raises(ValueError):
            build_genai_model(*args, out_root=root)
    assert not root.exists(), "argumentos inválidos não deveriam criar pastas no cache"


def test_cached_build_leaves_no_temporary_folder_when_the_build_fails(tmp_path):
    from course_utils.onnx_export import cached_build

    def broken(path):
        path.parent.mkdir(parents=True)
        path.write_text("pela metade")
        raise RuntimeError("falhou no meio")

    with pytest.raises(RuntimeError):
        cached_build(tmp_path / "artefato", broken)
    assert list(tmp_path.iterdir()) == []


def test_int4_recipe_reads_zero_points_and_the_embedding_format_from_the_graph(tmp_path):
    """Dois "int4" com o mesmo nome diferem no grafo: a receita lida dele diz em quê."""
    import numpy as np
    import pytest

    from course_utils.ort import int4_recipe, matmulnbits_model

    rng = np.random.default_rng(0)
    packed = rng.integers(0, 256, (4, 2, 16), dtype=np.uint8)
    scales = rng.random((4, 2)).astype(np.float32)
    with_zero = int4_recipe(matmulnbits_model(packed, scales, rng.integers(0, 256, (4, 1), dtype=np.uint8),
                                              tmp_path / "a.onnx"))
    symmetric = int4_recipe(matmulnbits_model(packed, scales, None, tmp_path / "b.onnx"))
    assert with_zero["ponto-zero"].startswith("assimétrico") and symmetric["ponto-zero"].startswith("simétrico")
    assert with_zero["bloco"] == [32] and with_zero["accuracy_level"] == [0]
    assert symmetric["embeddings"] == "float (Gather)"   # sem GatherBlockQuantized no grafo
    single = tmp_path / "c.onnx"
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(single))
    with pytest.raises(ValueError, match="MatMulNBits"):
        int4_recipe(single)
