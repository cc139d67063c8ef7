"""Testes do GPTQ e do AWQ (course_utils.calibration, gptq, awq) em camadas pequenas e no modelo minúsculo.

Cada teste confere uma afirmação do notebook 02: o GPTQ erra menos que o RTN na saída da camada
quando as entradas são correlacionadas (e vira o próprio RTN quando H = I), o act-order reordena
sem sair da grade, o AWQ nunca erra mais que o RTN nos dados de calibração, dobrar as escalas não
muda o modelo em ponto flutuante, tudo é determinístico, e entradas ruins dão erro em português.
"""

import pytest
import torch

from course_utils import quantization as Q
from course_utils.awq import (
    awq_clip,
    awq_layer_errors,
    awq_quantize,
    awq_scale,
    awq_search_scale,
    fold_scales,
    llama_scale_groups,
)
from course_utils.calibration import (
    accumulate_hessian,
    block_inputs,
    calibration_samples,
    linear_input_hessian,
    linear_inputs,
    output_error,
    run_block,
)
from course_utils.gptq import gptq_inverse_hessian, gptq_quantize, gptq_quantize_weight

# muitas operações pequenas: uma thread evita a espera ativa do OpenMP (ver conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


def _correlated_inputs(n=512, d=128, seed=0):
    """Entradas com canais correlacionados (poucos fatores latentes) e escalas bem diferentes."""
    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 16, generator=gen)
    mix = torch.randn(16, d, generator=gen)
    x = latent @ mix + 0.1 * torch.randn(n, d, generator=gen)
    return x * torch.logspace(-1, 0.5, d)[torch.randperm(d, generator=gen)]


def _hessian(x):
    return 2 * x.T @ x / x.shape[0]


def _weights(rows=48, cols=128, seed=1):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * 0.05


def _levels_per_group(w, group_size):
    return max(len(torch.unique(g)) for g in w.reshape(-1, group_size))


# ---------------------------------------------------------------- calibração


def test_calibration_samples_janelas_do_texto_deterministicas():
    ids = torch.arange(1000)[None]
    a = calibration_samples(ids, 6, 32, seed=3)
    b = calibration_samples(ids, 6, 32, seed=3)
    assert a.shape == (6, 32) and torch.equal(a, b)
    assert (a[:, 1:] - a[:, :-1] == 1).all()  # janelas contíguas do texto
    assert not torch.equal(a, calibration_samples(ids, 6, 32, seed=4))
    with pytest.raises(ValueError, match="não cabe uma janela"):
        calibration_samples(ids, 2, 2000)
    with pytest.raises(ValueError, match="um texto só"):
        calibration_samples(torch.zeros(2, 100, dtype=torch.long), 2, 10)


def test_hessiano_acumulado_em_lotes_e_2xxt_sobre_n():
    x = torch.randn(3, 40, 16)
    H, n = None, 0
    for chunk in x.split(1):
        H, n = accumulate_hessian(H, n, chunk)  # lotes [1, 40, 16]
    flat = x.reshape(-1, 16)
    assert n == 120
    torch.testing.assert_close(H, _hessian(flat), rtol=1e-5, atol=1e-6)


def test_block_inputs_e_run_block_reproduzem_o_forward_do_modelo(tiny):
    samples = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(0))
    inputs = block_inputs(tiny, samples, batch_size=2)
    assert [h.shape for h, _ in inputs] == [(2, 12, 64), (1, 12, 64)]
    for layer in tiny.model.layers:
        inputs = run_block(layer, inputs)
    with torch.no_grad():
        ref = tiny.model(samples).last_hidden_state
        ours = tiny.model.norm(torch.cat([h for h, _ in inputs]))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_entradas_e_hessiano_de_uma_linear_do_modelo(tiny):
    samples = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(0))
    seen = {}

    def keep(module, args, output):
        seen["x"] = args[0].reshape(-1, args[0].shape[-1]).detach()

    handle = tiny.model.layers[1].mlp.down_proj.register_forward_hook(keep)
    with torch.no_grad():
        tiny(samples)
    handle.remove()
    x = linear_inputs(tiny, samples, layer_index=1, name="mlp.down_proj", batch_size=2)   # passa pelo bloco 0 antes
    torch.testing.assert_close(x, seen["x"], rtol=1e-5, atol=1e-5)
    w, H = linear_input_hessian(tiny, samples, layer_index=1, name="mlp.down_proj", batch_size=2)
    assert torch.equal(w, tiny.model.layers[1].mlp.down_proj.weight)
    torch.testing.assert_close(H, _hessian(seen["x"]), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="fora do modelo"):
        linear_inputs(tiny, samples, layer_index=2)
    with pytest.raises(ValueError, match="não tem uma camada"):
        linear_inputs(tiny, samples, name="mlp.nao_existe")
    with pytest.raises(ValueError, match="não é uma nn.Linear"):
        linear_inputs(tiny, samples, name="mlp")


def test_output_error_e_o_erro_relativo_da_saida():
    x, w = _correlated_inputs(), _weights()
    w_hat = Q.rtn_quantize(w, 3, 64)
    direct = ((x @ (w - w_hat).T).pow(2).sum() / (x @ w.T).pow(2).sum()).item()
    assert output_error(w, w_hat, _hessian(x)) == pytest.approx(direct, rel=1e-4)


# ---------------------------------------------------------------- RTN


def test_rtn_e_o_ponto_zero_por_grupos_e_fica_na_grade():
    w = _weights()
    w_hat = Q.rtn_quantize(w, 4, 64)
    assert torch.equal(w_hat, Q.fake_quantize(w, 4, "zeropoint", "group", 64))
    assert w_hat.shape == w.shape and w_hat.dtype == w.dtype
    assert _levels_per_group(w_hat, 64) <= 16
    assert _levels_per_group(Q.rtn_quantize(w, 3, 64), 64) <= 8
    assert Q.rtn_quantize(w, 4, None).shape == w.shape  # uma escala por linha
    with pytest.raises(ValueError, match="bits deve ficar entre"):
        Q.rtn_quantize(w, 1, 64)


def test_zeropoint_params_e_fake_quantize_batem_com_zeropoint_quantize():
    g = _weights().reshape(-1, 64)
    scale, zero = Q.zeropoint_params(g, 3)
    q, s2, z2 = Q.zeropoint_quantize(g, 3, "channel")
    assert torch.equal(scale, s2) and torch.equal(zero, z2)
    assert torch.equal(Q.zeropoint_fake_quantize(g, scale, zero, 3), Q.zeropoint_dequantize(q, s2, z2, g.shape))


# ---------------------------------------------------------------- GPTQ


def test_inversa_amortecida_de_cholesky():
    H = _hessian(_correlated_inputs(d=32))
    U = gptq_inverse_hessian(H, damp=0.01)
    assert torch.equal(U, U.triu())
    damped = H + 0.01 * H.diagonal().mean() * torch.eye(32)
    torch.testing.assert_close(U.T @ U, torch.linalg.inv(damped), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("bits", [4, 3])
def test_gptq_erra_menos_que_rtn_na_saida_com_entradas_correlacionadas(bits):
    x, w = _correlated_inputs(), _weights()
    H = _hessian(x)
    err_rtn = output_error(w, Q.rtn_quantize(w, bits, 64), H)
    err_gptq = output_error(w, gptq_quantize_weight(w, H, bits, 64), H)
    assert err_gptq < 0.7 * err_rtn


def test_gptq_com_h_identidade_e_o_proprio_rtn():
    # sem correlação entre entradas não há como compensar o erro de uma coluna nas outras
    w = _weights()
    w_hat = gptq_quantize_weight(w, 2 * torch.eye(128), bits=4, group_size=64, damp=0.0)
    torch.testing.assert_close(w_hat, Q.rtn_quantize(w, 4, 64), rtol=0, atol=1e-6)


def test_gptq_fica_na_grade_preserva_formato_dtype_e_e_deterministico():
    x, w = _correlated_inputs(), _weights().to(torch.bfloat16)
    H = _hessian(x)
    a = gptq_quantize_weight(w, H, 3, 32, block_size=64)
    b = gptq_quantize_weight(w, H, 3, 32, block_size=64)
    assert a.shape == w.shape and a.dtype == torch.bfloat16
    assert torch.equal(a, b)
    assert _levels_per_group(gptq_quantize_weight(w.float(), H, 3, 32, block_size=64), 32) <= 8


def test_act_order_reordena_as_colunas_sem_sair_da_grade():
    x, w = _correlated_inputs(), _weights()
    H = _hessian(x)
    w_ao = gptq_quantize_weight(w, H, 3, 64, act_order=True)
    perm = torch.argsort(H.diagonal(), descending=True)
    assert _levels_per_group(w_ao[:, perm], 64) <= 8  # grupos consecutivos na ordem do act-order
    assert output_error(w, w_ao, H) < output_error(w, Q.rtn_quantize(w, 3, 64), H)
    # com diag(H) já em ordem decrescente, o act-order não muda nada
    Hs, ws = H[perm][:, perm], w[:, perm]
    torch.testing.assert_close(gptq_quantize_weight(ws, Hs, 3, 64, act_order=True),
                               gptq_quantize_weight(ws, Hs, 3, 64), rtol=0, atol=0)


def test_gptq_entrada_morta_vira_zero():
    x = _correlated_inputs()
    x[:, 5] = 0
    w_hat = gptq_quantize_weight(_weights(), _hessian(x), 4, 64)
    assert torch.isfinite(w_hat).all() and (w_hat[:, 5] == 0).all()


def test_gptq_erros_em_portugues():
    w, H = _weights(), torch.eye(128)
    with pytest.raises(ValueError, match="não são divisíveis por group_size=48"):
        gptq_quantize_weight(w, H, 4, 48, block_size=96)
    with pytest.raises(ValueError, match="H deve ser"):
        gptq_quantize_weight(w, torch.eye(64), 4, 64)
    with pytest.raises(ValueError, match="múltiplo de group_size"):
        gptq_quantize_weight(w, H, 4, 64, block_size=96)
    with pytest.raises(ValueError, match="2D"):
        gptq_quantize_weight(w[0], H, 4, 64)
    with pytest.raises(ValueError, match="positiva definida"):
        gptq_inverse_hessian(-torch.eye(8), damp=0.0)


def _logits_error(model, ref_logits, samples):
    with torch.no_grad():
        return (model(samples).logits - ref_logits).pow(2).mean().item()


def test_gptq_no_modelo_minusculo_quantiza_tudo_e_erra_menos_que_rtn(tiny):
    import copy

    gen = torch.Generator().manual_seed(0)
    calib = torch.randint(0, 256, (8, 32), generator=gen)
    held_out = torch.randint(0, 256, (4, 32), generator=gen)
    with torch.no_grad():
        ref = tiny(held_out).logits
    rtn = copy.deepcopy(tiny)
    Q.fake_quantize_model_(rtn, bits=3, group_size=32)
    before = {n: p.detach().clone() for n, p in tiny.named_parameters(remove_duplicate=False)}
    info = gptq_quantize(tiny, calib, bits=3, group_size=32, batch_size=4, track_errors=True, progress=False)
    assert info["linears"] == 14
    for name, p in tiny.named_parameters(remove_duplicate=False):
        if name.endswith("proj.weight"):
            assert _levels_per_group(p.detach(), 32) <= 8, name
        else:  # embeddings, lm_head e normas intocados
            assert torch.equal(p, before[name]), name
    assert all(e["gptq"] < e["rtn"] for e in info["output_errors"].values())
    assert _logits_error(tiny, ref, held_out) < _logits_error(rtn, ref, held_out)


# ---------------------------------------------------------------- AWQ


def _outlier_inputs(n=512, d=128, seed=2):
    """Poucos canais de entrada com ativações grandes (o que o AWQ explora)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    x[:, :4] *= 20
    return x


def test_awq_busca_nunca_erra_mais_que_rtn_e_ganha_com_canais_salientes():
    x = _outlier_inputs()
    H = _hessian(x)
    ws = [_weights(48, 128, seed=1), _weights(32, 128, seed=2)]
    s, alpha, losses = awq_search_scale(ws, x[::2], x.abs().mean(0), bits=3, group_size=64, n_grid=10)
    assert len(losses) == 10 and alpha in [k / 10 for k in range(10)]
    assert min(losses) == losses[int(round(alpha * 10))] <= losses[0]  # α = 0 é o RTN
    assert alpha > 0 and s.shape == (128,) and (s > 0).all()
    for w in ws:
        err_awq = output_error(w, Q.rtn_quantize(w * s, 3, 64) / s, H)
        assert err_awq < output_error(w, Q.rtn_quantize(w, 3, 64), H)


def test_escala_do_awq_normalizada_e_erros_de_uma_camada_do_controle_deslizante():
    x = _outlier_inputs()
    x_absmean, H, w = x.abs().mean(0), _hessian(x), _weights()
    assert torch.equal(awq_scale(x_absmean, 0.0), torch.ones(128))
    s = awq_scale(x_absmean, 0.7)
    assert (s.max() * s.min()).item() == pytest.approx(1.0, rel=1e-5)
    assert torch.equal(s.argsort(), x_absmean.argsort())           # canais mais ativos, escala maior
    at_zero = awq_layer_errors(w, x_absmean, H, bits=3, group_size=64, alpha=0.0)
    assert at_zero["awq"] == at_zero["rtn"] == output_error(w, Q.rtn_quantize(w, 3, 64), H)
    errors = [awq_layer_errors(w, x_absmean, H, bits=3, group_size=64, alpha=a / 10) for a in range(11)]
    assert len({e["rtn"] for e in errors}) == 1                      # o RTN não depende de α
    assert min(e["awq"] for e in errors) < at_zero["rtn"]            # com canais salientes, algum α ganha do RTN
    assert awq_layer_errors(w, x_absmean, H, bits=8, group_size=64)["rtn"] < at_zero["rtn"]
    with pytest.raises(ValueError, match="divisíveis"):
        awq_layer_errors(w, x_absmean, H, group_size=96)
    with pytest.raises(ValueError, match="x_absmean"):
        awq_layer_errors(w, x_absmean[:10], H)


def test_awq_clip_nunca_piora_o_erro_do_grupo():
    x, w = _outlier_inputs(), _weights()
    w[:, 7] = 0.6  # um peso enorme em cada linha estraga a escala do primeiro grupo
    H = _hessian(x)
    clipped = awq_clip(w, H, bits=3, group_size=64, n_grid=20)
    assert clipped.shape == w.shape and (clipped.abs() <= w.abs() + 1e-7).all()
    assert output_error(w, Q.rtn_quantize(clipped, 3, 64), H) < output_error(w, Q.rtn_quantize(w, 3, 64), H)


def test_dobrar_as_escalas_nao_muda_o_modelo_em_ponto_flutuante(tiny):
    samples = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = tiny(samples).logits
        gen = torch.Generator().manual_seed(2)
        for layer in tiny.model.layers:
            for prev, linears in llama_scale_groups(layer):
                if prev is not None:
                    s = torch.rand(linears[0].in_features, generator=gen) * 4 + 0.25
                    fold_scales(prev, linears, s)
        out = tiny(samples).logits
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="Não sei dobrar"):
        fold_scales(torch.nn.ReLU(), [], torch.ones(4))


def test_grupos_do_awq_com_e_sem_gqa(tiny):
    layer = tiny.model.layers[0]  # 4 cabeças de consulta, 2 KV: v_proj (32) != o_proj (64)
    groups = llama_scale_groups(layer)
    assert [len(lins) for _, lins in groups] == [3, 1, 2, 1]
    assert groups[1][0] is None and groups[3][0] is layer.mlp.up_proj


def test_awq_no_modelo_minusculo_fica_na_grade_e_e_deterministico(tiny):
    import copy

    gen = torch.Generator().manual_seed(0)
    calib = torch.randint(0, 256, (8, 32), generator=gen)
    other = copy.deepcopy(tiny)
    info = awq_quantize(tiny, calib, bits=4, group_size=32, n_grid=5, batch_size=4, progress=False)
    awq_quantize(other, calib, bits=4, group_size=32, n_grid=5, batch_size=4, progress=False)
    assert info["linears"] == 14 and len(info["alphas"]) == 2 * 3  # 3 grupos com escala por bloco (GQA)
    for (name, p), (_, p2) in zip(tiny.named_parameters(), other.named_parameters(), strict=True):
        assert torch.equal(p, p2), name
        if name.endswith("proj.weight"):
            assert _levels_per_group(p.detach(), 32) <= 16, name


def test_awq_erros_em_portugues():
    H, m = torch.eye(64), torch.ones(64)
    with pytest.raises(ValueError, match="mesmo número de entradas"):
        awq_search_scale([torch.randn(4, 64), torch.randn(4, 32)], torch.randn(8, 64), m)
    with pytest.raises(ValueError, match="x deve ser"):
        awq_search_scale([torch.randn(4, 64)], torch.randn(8, 32), m)
    with pytest.raises(ValueError, match="divisíveis por group_size"):
        awq_clip(torch.randn(4, 64), H, group_size=48)
    with pytest.raises(ValueError, match="model.model.layers"):
        awq_quantize(torch.nn.Linear(4, 4), torch.zeros(1, 4, dtype=torch.long))


# ---------------------------------------------------------------- testes que pegam um algoritmo quebrado
# (mutações tentadas: tirar a correção das colunas depois de cada bloco, alimentar o bloco seguinte com
# saídas não quantizadas, tirar a reescala do Hessiano depois da dobra do AWQ: cada uma faz um destes falhar)


@pytest.mark.parametrize("group_size, block_sizes", [(32, (32, 64, 96, 128)), (None, (16, 48, 100, 128))])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_da_o_mesmo_resultado_com_qualquer_tamanho_de_bloco(group_size, block_sizes, act_order):
    # a atualização "preguiçosa" é só uma reorganização das contas: um bloco só (block_size = entradas)
    # e vários blocos têm de dar o mesmo Ŵ (320 entradas: até 20 blocos, um deles incompleto)
    x, w = _correlated_inputs(n=1024, d=320), _weights(48, 320)
    H = _hessian(x)
    one_block = gptq_quantize_weight(w, H, 3, group_size, block_size=320, act_order=act_order)
    for block_size in block_sizes:
        blocks = gptq_quantize_weight(w, H, 3, group_size, block_size=block_size, act_order=act_order)
        torch.testing.assert_close(blocks, one_block, rtol=0, atol=1e-5, msg=f"block_size={block_size}")


def _wide_tiny():
    """Modelo minúsculo com down_proj de 320 entradas: com block_size=128, três blocos de colunas."""
    from course_utils.models import tiny_model

    return tiny_model(hidden_size=160, num_layers=3, seed=4)


def _linear_inputs(model, layer, samples):
    """Entradas de cada nn.Linear de `layer` num forward do modelo INTEIRO (sem course_utils.calibration)."""
    xs, handles = {}, []
    for name, m in layer.named_modules():
        if isinstance(m, torch.nn.Linear):
            def hook(module, args, output, name=name):
                xs.setdefault(name, []).append(args[0].reshape(-1, args[0].shape[-1]).float())
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(samples, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(v) for name, v in xs.items()}


def _assert_same_weights(model, ref):
    for (name, p), (_, p_ref) in zip(model.named_parameters(), ref.named_parameters(), strict=True):
        torch.testing.assert_close(p, p_ref, rtol=0, atol=1e-4, msg=name)


def test_gptq_no_modelo_e_o_laco_simples_camada_a_camada():
    # referência escrita do jeito mais direto: para cada bloco, um forward do modelo INTEIRO (com os blocos
    # anteriores já quantizados) dá as entradas de cada linear, H = 2XᵀX/N, e cada linear é quantizada sozinha
    import copy

    model = _wide_tiny()
    ref = copy.deepcopy(model)
    calib = torch.randint(0, 256, (8, 32), generator=torch.Generator().manual_seed(5))
    kw = dict(bits=3, group_size=32, block_size=128, damp=0.01, act_order=True)
    gptq_quantize(model, calib, batch_size=8, progress=False, **kw)
    with torch.no_grad():
        for layer in ref.model.layers:
            xs = _linear_inputs(ref, layer, calib)
            for name, x in xs.items():
                linear = layer.get_submodule(name)
                linear.weight.copy_(gptq_quantize_weight(linear.weight, _hessian(x), **kw))
    _assert_same_weights(model, ref)


def test_awq_no_modelo_e_o_laco_simples_camada_a_camada():
    # referência direta: as escalas saem das entradas do modelo em ponto flutuante; depois de dobrar cada escala
    # numa cópia em ponto flutuante, um NOVO forward mede a entrada já dividida por s, e dela sai o H do recorte
    import copy

    model = _wide_tiny()
    pristine, ref = copy.deepcopy(model), copy.deepcopy(model)
    calib = torch.randint(0, 256, (8, 32), generator=torch.Generator().manual_seed(6))
    bits, gs, n_grid = 3, 32, 5
    awq_quantize(model, calib, bits=bits, group_size=gs, n_grid=n_grid, search_tokens=calib.numel(),
                 batch_size=8, progress=False)
    with torch.no_grad():
        for i, target in enumerate(ref.model.layers):
            floating = copy.deepcopy(pristine)          # só o bloco i recebe as dobras: os anteriores, intactos
            layer = floating.model.layers[i]
            names = {id(m): n for n, m in layer.named_modules()}
            xs = _linear_inputs(floating, layer, calib)                     # antes de qualquer dobra
            for prev, lins in llama_scale_groups(layer):
                first = names[id(lins[0])]
                if prev is not None:
                    x = xs[first]
                    s, _, _ = awq_search_scale([m.weight for m in lins], x, x.abs().mean(0), bits, gs, n_grid)
                    fold_scales(prev, lins, s)
                    if isinstance(prev, torch.nn.Linear):                   # a up_proj já recortada também se divide
                        target.get_submodule(names[id(prev)]).weight.div_(s[:, None])
                H = _hessian(_linear_inputs(floating, layer, calib)[first])   # entrada medida de novo: x / s
                for m in lins:
                    skip_clip = names[id(m)].endswith(("q_proj", "k_proj"))
                    clipped = m.weight if skip_clip else awq_clip(m.weight, H, bits, gs, n_grid)
                    target.get_submodule(names[id(m)]).weight.copy_(clipped)
            for name, m in layer.named_modules():
                if isinstance(m, torch.nn.Linear):
                    w = target.get_submodule(name).weight
                    w.copy_(Q.rtn_quantize(w, bits, gs))
                elif getattr(m, "weight", None) is not None and m.weight.dim() == 1:
                    target.get_submodule(name).weight.copy_(m.weight)       # normas com a escala dobrada
    _assert_same_weights(model, ref)


def _gptq_by_definition(w, H, bits, group_size, damp):
    """O GPTQ pela definição, sem a Cholesky nem blocos: a cada coluna j, a inversa do bloco das colunas que restam,
    (H_F)⁻¹ com F = {j, ..., d}, calculada de novo (O(d⁴): só serve para conferir); escala e zero de cada grupo com
    as colunas dele já corrigidas pelas anteriores."""
    W = w.double().clone()
    H = H.double() + damp * H.diagonal().double().mean() * torch.eye(H.shape[0], dtype=torch.float64)
    Q_hat = torch.zeros_like(W)
    if group_size is None:
        scale, zero = (t[:, 0] for t in Q.zeropoint_params(W, bits))
    for j in range(W.shape[1]):
        if group_size is not None and j % group_size == 0:
            scale, zero = (t[:, 0] for t in Q.zeropoint_params(W[:, j:j + group_size], bits))
        q = Q.zeropoint_fake_quantize(W[:, j], scale, zero, bits)
        Q_hat[:, j] = q
        inv_F = torch.linalg.inv(H[j:, j:])
        W[:, j:] -= ((W[:, j] - q) / inv_F[0, 0])[:, None] * inv_F[0][None, :]
    return Q_hat


@pytest.mark.parametrize("group_size", [16, None])
def test_gptq_e_o_passo_do_obs_com_a_inversa_das_colunas_que_restam(group_size):
    # a Cholesky da inversa (uma só, antes do laço) tem de dar o mesmo que refazer (H_F)⁻¹ a cada coluna
    x, w = _correlated_inputs(n=256, d=64), _weights(12, 64)
    H = _hessian(x)
    ours = gptq_quantize_weight(w, H, 3, group_size, block_size=32, damp=0.01)
    reference = _gptq_by_definition(w, H, 3, group_size, damp=0.01).float()
    mismatch = (ours - reference).abs() > 1e-4
    assert mismatch.float().mean().item() <= 0.01, f"{int(mismatch.sum())} pesos diferentes da definição"
    torch.testing.assert_close(output_error(w, ours, H), output_error(w, reference, H), rtol=0.02, atol=0)
