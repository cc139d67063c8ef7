"""Testes dos primitivos de quantização (course_utils.quantization).

Cada teste confere uma afirmação que o notebook 01 faz: o erro de arredondamento é no
máximo meia escala, granularidade mais fina erra menos, 4 bits erra mais que 8, o formato
Q4_1 é reproduzido pelo esquema minmax, e a calculadora de memória bate com medidas reais.
"""

import pytest
import torch

from course_utils import quantization as Q

# muitas operações pequenas: uma thread evita a espera ativa do OpenMP (ver conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

GRANULARITIES = [("tensor", 64), ("channel", 64), ("group", 32), ("group", 64)]


def _weights(rows=16, cols=192, seed=0):
    """Pesos de teste com linhas de magnitudes diferentes e alguns outliers."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=gen) * torch.linspace(0.05, 2.0, rows)[:, None]
    w[1, 5] = 9.0
    w[7, cols // 2 + 4] = -6.0
    return w


def _half_scale_bound(scale):
    """Meia escala, com folga mínima para o arredondamento do float32."""
    return scale / 2 * (1 + 1e-5) + 1e-7


# ---------------------------------------------------------------- ida e volta


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("granularity,group_size", GRANULARITIES)
def test_absmax_erro_no_maximo_meia_escala(bits, granularity, group_size):
    w = _weights()
    q, scale = Q.absmax_quantize(w, bits, granularity, group_size)
    w_hat = Q.absmax_dequantize(q, scale, w.shape)
    assert w_hat.shape == w.shape
    err = (w_hat - w).reshape(q.shape).abs()
    assert (err <= _half_scale_bound(scale)).all()
    qmax = 2 ** (bits - 1) - 1
    assert q.dtype == torch.int8
    assert q.abs().max().item() <= qmax
    # o maior |w| de cada grupo vira exatamente ±qmax: a grade inteira é usada
    assert (q.abs().amax(dim=1) == qmax).all()


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("granularity,group_size", GRANULARITIES)
def test_zeropoint_erro_no_maximo_meia_escala(bits, granularity, group_size):
    w = _weights()
    q, scale, zero = Q.zeropoint_quantize(w, bits, granularity, group_size)
    w_hat = Q.zeropoint_dequantize(q, scale, zero, w.shape)
    err = (w_hat - w).reshape(q.shape).abs()
    assert (err <= _half_scale_bound(scale)).all()
    assert q.min().item() >= 0 and q.max().item() <= 2**bits - 1
    assert torch.equal(zero, zero.round())  # o ponto-zero é inteiro


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("granularity,group_size", GRANULARITIES)
def test_minmax_erro_no_maximo_meia_escala(bits, granularity, group_size):
    w = _weights()
    q, scale, minimum = Q.minmax_quantize(w, bits, granularity, group_size)
    w_hat = Q.minmax_dequantize(q, scale, minimum, w.shape)
    err = (w_hat - w).reshape(q.shape).abs()
    assert (err <= _half_scale_bound(scale)).all()
    assert q.min().item() == 0 and q.max().item() == 2**bits - 1  # mínimo -> 0, máximo -> 2^b - 1


def test_absmax_zero_vira_exatamente_o_inteiro_zero():
    w = _weights(8, 64)
    w[2, ::3] = 0.0
    w[5] = 0.0  # uma linha inteira de zeros não pode dar divisão por zero
    for granularity in ("tensor", "channel", "group"):
        q, scale = Q.absmax_quantize(w, 8, granularity, 32)
        w_hat = Q.absmax_dequantize(q, scale, w.shape)
        zeros = w == 0
        assert (q.reshape(w.shape)[zeros] == 0).all()
        assert (w_hat[zeros] == 0).all()
        assert torch.isfinite(w_hat).all()


# ---------------------------------------------------------------- granularidade e bits


def test_por_canal_erra_menos_que_por_tensor_com_linhas_de_escalas_diferentes():
    gen = torch.Generator().manual_seed(3)
    magnitudes = torch.logspace(-3, 1, 8)  # de 0.001 a 10
    w = torch.randn(8, 128, generator=gen) * magnitudes[:, None]
    per_tensor = Q.fake_quantize(w, 8, "absmax", "tensor")
    per_channel = Q.fake_quantize(w, 8, "absmax", "channel")
    err_tensor = Q.quantization_error(w, per_tensor)
    err_channel = Q.quantization_error(w, per_channel)
    assert err_channel["rmse"] <= err_tensor["rmse"]
    assert err_channel["relative"] < err_tensor["relative"]
    # a linha pequena some por inteiro com uma escala só, mas sobrevive com escala própria
    assert (per_tensor[0] == 0).all()
    assert Q.quantization_error(w[0], per_channel[0])["relative"] < 0.01


@pytest.mark.parametrize("scheme", ["absmax", "zeropoint", "minmax"])
def test_grupo_erra_menos_que_canal(scheme):
    w = _weights(16, 256)
    err_channel = Q.quantization_error(w, Q.fake_quantize(w, 4, scheme, "channel"))
    err_group = Q.quantization_error(w, Q.fake_quantize(w, 4, scheme, "group", 32))
    assert err_group["rmse"] <= err_channel["rmse"]
    assert err_group["max_abs"] <= err_channel["max_abs"]


def test_escala_do_grupo_nunca_maior_que_a_do_canal():
    w = _weights(16, 256)
    _, s_channel = Q.absmax_quantize(w, 8, "channel")
    _, s_group = Q.absmax_quantize(w, 8, "group", 64)
    s_group = s_group.reshape(16, -1)
    assert (s_group <= s_channel + 1e-12).all()
    assert (s_group.amax(dim=1, keepdim=True) == s_channel).all()


@pytest.mark.parametrize("scheme", ["absmax", "zeropoint", "minmax"])
@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_4_bits_erra_mais_que_8_bits(scheme, granularity):
    w = _weights()
    err8 = Q.quantization_error(w, Q.fake_quantize(w, 8, scheme, granularity, 64))
    err4 = Q.quantization_error(w, Q.fake_quantize(w, 4, scheme, granularity, 64))
    assert err4["rmse"] > 4 * err8["rmse"]  # ~16x menos níveis: o erro cresce bem mais que 4x


# ---------------------------------------------------------------- erros com mensagem


@pytest.mark.parametrize(
    "quantize", [Q.absmax_quantize, Q.zeropoint_quantize, Q.minmax_quantize], ids=["absmax", "zeropoint", "minmax"]
)
def test_group_size_que_nao_divide_a_dimensao_da_erro_em_portugues(quantize):
    w = torch.randn(4, 576)
    with pytest.raises(ValueError, match="não é divisível por group_size=128"):
        quantize(w, 4, "group", 128)


def test_fake_quantize_repassa_o_erro_de_group_size():
    with pytest.raises(ValueError, match="divisível"):
        Q.fake_quantize(torch.randn(4, 100), 4, "zeropoint", "group", 64)


def test_granularidade_e_esquema_desconhecidos_dao_valueerror():
    w = torch.randn(4, 64)
    with pytest.raises(ValueError, match="granularity deve ser"):
        Q.absmax_quantize(w, 8, "linha")
    with pytest.raises(ValueError, match="scheme deve ser"):
        Q.fake_quantize(w, 8, "nf4")


# ---------------------------------------------------------------- Q4_1 / minmax


def _q4_1_tensor(rows=8, blocks=6, seed=0):
    """Um tensor construído numa grade Q4_1: w = d*q + m em cada bloco de 32, q em 0..15.

    d e m são diádicos (frações de potência de 2), então a grade é exata em float32;
    m fica entre -15d e 0 e não é múltiplo de d, como num bloco real.
    """
    gen = torch.Generator().manual_seed(seed)
    n = rows * blocks
    q = torch.randint(0, 16, (n, 32), generator=gen)
    q[:, 0], q[:, 1] = 0, 15  # cada bloco usa os dois extremos
    q = q[:, torch.randperm(32, generator=gen)]
    d = torch.randint(1, 64, (n, 1), generator=gen).float() / 1024
    m = -d * (torch.randint(1, 14, (n, 1), generator=gen).float() + 0.375)
    w = (d * q + m).reshape(rows, blocks * 32)
    return w, q, d, m


def test_minmax_grupo_32_reproduz_uma_grade_q4_1_mas_o_ponto_zero_inteiro_nao():
    w, q_true, d, m = _q4_1_tensor()
    q, scale, minimum = Q.minmax_quantize(w, 4, "group", 32)
    assert torch.equal(q.long(), q_true)
    torch.testing.assert_close(scale, d, rtol=1e-6, atol=0)
    assert torch.equal(minimum, m)
    w_hat = Q.fake_quantize(w, 4, "minmax", "group", 32)
    torch.testing.assert_close(w_hat, w, rtol=0, atol=1e-6)

    # com ponto-zero inteiro, o zero da grade é arredondado: a grade se desloca
    w_zp = Q.fake_quantize(w, 4, "zeropoint", "group", 32)
    err = (w_zp - w).abs().reshape(-1, 32).amax(dim=1, keepdim=True)
    assert (err > 0.1 * d).all()


def test_lineares_do_modelo_de_referencia_estao_na_grade_q4_1(reference_model):
    """O modelo offline vem de um GGUF Q4_1: minmax g32 deve reproduzir as lineares dos blocos.

    Confere o primeiro e o último bloco (todas as 7 lineares de cada); o notebook 01 confere todos.
    """
    layers = reference_model.model.layers
    assert len(layers) == 30
    worst_minmax = worst_zeropoint = 0.0
    checked = 0
    for block in (layers[0], layers[-1]):
        linears = [m for m in block.modules() if isinstance(m, torch.nn.Linear)]
        assert len(linears) == 7
        for module in linears:
            w = module.weight.detach()
            q, scale, minimum = Q.minmax_quantize(w, 4, "group", 32)
            err = (Q.minmax_dequantize(q, scale, minimum, w.shape) - w).reshape(q.shape).abs()
            worst_minmax = max(worst_minmax, (err / scale).max().item())
            qz, sz, z = Q.zeropoint_quantize(w, 4, "group", 32)
            errz = (Q.zeropoint_dequantize(qz, sz, z, w.shape) - w).reshape(qz.shape).abs()
            worst_zeropoint = max(worst_zeropoint, (errz / sz).max().item())
            checked += 1
    assert checked == 14
    assert worst_minmax < 1e-3  # praticamente exato (só o arredondamento do float32)
    assert worst_zeropoint > 0.1  # o ponto-zero inteiro não cai na mesma grade


# ---------------------------------------------------------------- custo em bits


def test_bits_por_peso():
    assert Q.bits_per_weight(4, 64, 16, 4) == pytest.approx(4 + 20 / 64, abs=1e-12)
    assert Q.bits_per_weight(4, 32, 16, 16) == pytest.approx(5.0, abs=1e-12)  # Q4_1
    assert Q.bits_per_weight(8, None) == 8.0
    assert Q.bits_per_weight(4, 32) < Q.bits_per_weight(4, 16)  # grupo menor custa mais


# ---------------------------------------------------------------- modelo inteiro


def test_fake_quantize_model_altera_lineares_mas_nao_lm_head_nem_embeddings(tiny):
    before = {name: p.detach().clone() for name, p in tiny.named_parameters(remove_duplicate=False)}
    linear_names = [n for n, mod in tiny.named_modules() if isinstance(mod, torch.nn.Linear)]
    expected = [n for n in linear_names if "lm_head" not in n]
    assert len(expected) == 2 * 7  # q, k, v, o, gate, up, down em cada um dos 2 blocos

    count = Q.fake_quantize_model_(tiny, bits=4, scheme="zeropoint", granularity="group", group_size=64)
    assert count == len(expected)

    after = dict(tiny.named_parameters(remove_duplicate=False))
    for name in expected:
        w = after[f"{name}.weight"].detach()
        assert not torch.equal(w, before[f"{name}.weight"]), name
        assert w.dtype == before[f"{name}.weight"].dtype
        # 4 bits: no máximo 16 valores distintos em cada grupo de 64
        assert max(len(torch.unique(g)) for g in w.reshape(-1, 64)) <= 16
    for name in ("lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"):
        assert torch.equal(after[name], before[name]), name


def test_fake_quantize_preserva_formato_e_dtype():
    w = _weights().to(torch.bfloat16)
    w_hat = Q.fake_quantize(w, 8, "absmax", "channel")
    assert w_hat.dtype == torch.bfloat16 and w_hat.shape == w.shape


# ---------------------------------------------------------------- casos de borda (defeitos já corrigidos)


def test_zeropoint_com_pesos_todos_positivos_ainda_erra_no_maximo_meia_escala():
    w = torch.rand(4, 64, generator=torch.Generator().manual_seed(0)) + 10.0
    q, scale, zero = Q.zeropoint_quantize(w, 8, "channel")
    err = (Q.zeropoint_dequantize(q, scale, zero, w.shape) - w).abs()
    assert (err <= _half_scale_bound(scale)).all()


def test_minmax_com_mais_de_8_bits_ainda_erra_no_maximo_meia_escala():
    w = _weights()
    q, scale, minimum = Q.minmax_quantize(w, 10, "channel")
    err = (Q.minmax_dequantize(q, scale, minimum, w.shape) - w).reshape(q.shape).abs()
    assert (err <= _half_scale_bound(scale)).all()


# ---------------------------------------------------------------- o controle de bits e grupo, bits guardados, compile


def test_group_tradeoff_mais_bits_e_grupos_menores_erram_menos_e_custam_o_que_a_formula_diz():
    w = _weights(16, 256)
    r4 = Q.group_tradeoff(w, bits=4, group_size=64)
    assert r4["bits_per_weight"] == pytest.approx(4 + 16 / 64)
    assert Q.group_tradeoff(w, 4, 64, "zeropoint")["bits_per_weight"] == pytest.approx(4 + 20 / 64)
    assert Q.group_tradeoff(w, bits=8, group_size=64)["relative_error"] < r4["relative_error"] / 8
    assert Q.group_tradeoff(w, bits=4, group_size=16)["relative_error"] < r4["relative_error"]
    assert r4["relative_error"] == pytest.approx(
        Q.quantization_error(w, Q.fake_quantize(w, 4, "absmax", "group", 64))["relative"])
    with pytest.raises(ValueError, match="scheme deve ser"):
        Q.group_tradeoff(w, 4, 64, "minmax")


def test_bits_guardados_por_peso_de_lineares_reais():
    from course_utils.measure import stored_bits_per_weight

    linear = torch.nn.Linear(256, 64)
    assert stored_bits_per_weight(linear) == pytest.approx(32.0)  # o bias não conta
    assert stored_bits_per_weight(torch.nn.Linear(256, 64, dtype=torch.float16)) == pytest.approx(16.0)


def test_bits_guardados_por_peso_do_nf4_com_dupla_quantizacao_batem_com_a_formula():
    bnb = pytest.importorskip("bitsandbytes")
    from course_utils.measure import stored_bits_per_weight

    layer = bnb.nn.Linear4bit(1024, 64, bias=False, compute_dtype=torch.float32, compress_statistics=True,
                              quant_type="nf4")
    layer.load_state_dict({"weight": torch.randn(64, 1024)})
    layer = layer.to("cpu")  # o bitsandbytes quantiza ao "mover" a camada para o dispositivo
    assert layer.weight.bnb_quantized and layer.weight.dtype == torch.uint8
    # 4 bits + absmax de 8 bits por bloco de 64 + uma escala fp32 a cada 256 absmax (+ o deslocamento fp32)
    expected = Q.bits_per_weight(4, 64, 8 + 32 / 256)
    assert stored_bits_per_weight(layer) == pytest.approx(expected, rel=0.01)


def test_eager_e_compilado_devolve_as_duas_medidas_ou_o_erro(monkeypatch):
    from course_utils import measure

    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    x = torch.randn(2, 8)

    def broken(module, **kwargs):
        raise RuntimeError("sem compilador C++\ndetalhes")

    monkeypatch.setattr(torch, "compile", broken)
    r = measure.eager_and_compiled_latency(mlp, x, warmup=1, repeats=2)
    assert r["eager_ms"] > 0 and r["compiled_ms"] is None and r["compile_s"] is None
    assert r["error"] == "RuntimeError: sem compilador C++"
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: module)  # "compila" sem mudar nada
    r = measure.eager_and_compiled_latency(mlp, x, warmup=1, repeats=2)
    assert r["error"] is None and r["compiled_ms"] > 0 and r["compile_s"] >= 0
