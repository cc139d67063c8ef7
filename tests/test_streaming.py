"""Cache com sinks + janela (StreamingLLM): posições RoPE, tamanho fixo, equivalência sem despejo."""

import pytest
import torch
from transformers import DynamicCache
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from course_utils.streaming import (
    evict_to_sinks_and_window,
    full_context_nll,
    nll_to_perplexity,
    rotary_inv_freq,
    shift_rotary,
    stepwise_nll,
)


def _rope(x, positions, inv_freq):
    freqs = positions[:, None].float() * inv_freq[None]
    emb = torch.cat((freqs, freqs), dim=-1)
    q, k = apply_rotary_pos_emb(x, x, emb.cos()[None], emb.sin()[None])
    return k


def test_shift_rotary_equivale_a_aplicar_o_rope_na_posicao_nova():
    torch.manual_seed(0)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16))
    x = torch.randn(1, 2, 5, 16)
    positions = torch.tensor([7, 8, 9, 10, 11])
    rotated = _rope(x, positions, inv_freq)
    for delta in (-7, -3, 4):
        assert torch.allclose(shift_rotary(rotated, delta, inv_freq), _rope(x, positions + delta, inv_freq), atol=1e-5)


def test_sem_despejo_passo_a_passo_igual_a_uma_passada_so(tiny, single_thread):
    ids = torch.randint(0, 256, (1, 40), generator=torch.Generator().manual_seed(1))
    full = full_context_nll(tiny, ids)
    step = stepwise_nll(tiny, ids, progress=False)
    assert step["cache_tokens_max"] == 39  # o último token não precisa passar pelo modelo
    assert torch.allclose(step["nll"], full, atol=1e-4)
    # janela que nunca enche: nada sai, mesmo resultado
    wide = stepwise_nll(tiny, ids, sinks=4, window=60, progress=False)
    assert torch.allclose(wide["nll"], full, atol=1e-4)


def test_cache_com_sinks_fica_em_s_mais_w_e_muda_o_resultado(tiny, single_thread):
    ids = torch.randint(0, 256, (1, 50), generator=torch.Generator().manual_seed(2))
    full = full_context_nll(tiny, ids)
    out = stepwise_nll(tiny, ids, sinks=2, window=8, progress=False)
    assert out["cache_tokens_max"] == 10
    assert out["nll"].shape == (49,)
    assert torch.allclose(out["nll"][:9], full[:9], atol=1e-4)   # antes de o cache encher, tudo igual
    assert not torch.allclose(out["nll"][12:], full[12:], atol=1e-3)
    assert nll_to_perplexity(out["nll"]) > 1


def test_chaves_reposicionadas_batem_com_uma_passada_nova_nas_posicoes_do_cache(tiny, single_thread):
    """Na camada 0 a chave só depende do token e da posição: depois dos despejos, as chaves que
    ficaram no cache devem ser as de uma passada nova com os tokens mantidos nas posições 0..n-1."""
    sinks, window, n = 3, 6, 30
    ids = torch.randint(0, 256, (1, n), generator=torch.Generator().manual_seed(3))
    cache = DynamicCache(config=tiny.config)
    with torch.inference_mode():
        for t in range(n):
            evict_to_sinks_and_window(cache, sinks, sinks + window - 1, rotary_inv_freq(tiny))
            tiny(ids[:, t:t + 1], past_key_values=cache, use_cache=True,
                 position_ids=torch.tensor([[cache.get_seq_length()]]))
        kept = torch.cat([ids[:, :sinks], ids[:, n - (window):]], dim=1)
        fresh = DynamicCache(config=tiny.config)
        tiny(kept, past_key_values=fresh, use_cache=True)
    assert cache.get_seq_length() == sinks + window
    assert torch.allclose(cache.layers[0].keys, fresh.layers[0].keys, atol=1e-5)
    assert torch.allclose(cache.layers[0].values, fresh.layers[0].values, atol=1e-6)


def test_entradas_invalidas_dao_mensagem_clara(tiny):
    with pytest.raises(ValueError, match="batch 1"):
        stepwise_nll(tiny, torch.zeros(2, 5, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="window >= 1"):
        stepwise_nll(tiny, torch.zeros(1, 5, dtype=torch.long), window=0, progress=False)
    with pytest.raises(ValueError, match="RoPE"):
        rotary_inv_freq(torch.nn.Linear(2, 2))


def _visible_tokens(t, sinks, window):
    """Os tokens no cache (mais o próprio t) quando o stepwise_nll lê o token t com sinks + janela."""
    recent = max(min(sinks, t), t - (window - 1))
    return list(range(min(sinks, t))) + list(range(recent, t + 1))


@torch.inference_mode()
def _brute_force_nll(model, ids, sinks, window):
    """Referência por força bruta: a cada passo, uma passada NOVA só com os tokens visíveis, nas posições 0..k-1."""
    out = []
    for t in range(ids.shape[1] - 1):
        visible = ids[:, _visible_tokens(t, sinks, window)]
        logprobs = torch.log_softmax(model(visible).logits[0, -1].float(), -1)
        out.append(-logprobs[ids[0, t + 1]].item())
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("sinks,window", [(2, 6), (0, 8), (4, 3)])
def test_stepwise_nll_bate_com_a_forca_bruta_token_a_token(single_thread, sinks, window):
    """Com uma camada só, K e V de cada token dependem só do token e da posição: o cache re-posicionado tem de dar
    exatamente o que uma passada nova com os tokens visíveis nas posições 0..k-1 dá (qualquer erro de posição falha)."""
    from course_utils.models import tiny_model

    model = tiny_model(num_layers=1, seed=7).eval()
    ids = torch.randint(0, 256, (1, 40), generator=torch.Generator().manual_seed(4))
    got = stepwise_nll(model, ids, sinks=sinks, window=window, progress=False)["nll"]
    expected = _brute_force_nll(model, ids, sinks, window)
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_prefill_da_o_mesmo_que_token_a_token(tiny, single_thread):
    ids = torch.randint(0, 256, (1, 30), generator=torch.Generator().manual_seed(5))
    full = full_context_nll(tiny, ids)
    for prefill in (1, 7, 29):
        assert torch.allclose(stepwise_nll(tiny, ids, prefill=prefill, progress=False)["nll"], full, atol=1e-4)
    with_window = stepwise_nll(tiny, ids, sinks=2, window=6, prefill=5, progress=False)
    assert torch.allclose(with_window["nll"], stepwise_nll(tiny, ids, sinks=2, window=6, progress=False)["nll"],
                          atol=1e-4)
    with pytest.raises(ValueError, match="prefill"):
        stepwise_nll(tiny, ids, prefill=30, progress=False)
    with pytest.raises(ValueError, match="prefill"):
        stepwise_nll(tiny, ids, sinks=1, window=3, prefill=5, progress=False)


def test_cache_fp8_calibrado_no_prefill_fica_finito_e_menor(tiny, single_thread):
    from transformers import QuantizedCache

    from course_utils.generation import cache_nbytes

    try:
        fp8 = QuantizedCache("fp8", tiny.config)
    except ValueError:
        pytest.skip("este transformers não tem o backend fp8")
    ids = torch.randint(0, 256, (1, 30), generator=torch.Generator().manual_seed(6))
    dyn = DynamicCache(config=tiny.config)
    ref = stepwise_nll(tiny, ids, cache=dyn, prefill=10, progress=False)["nll"]
    got = stepwise_nll(tiny, ids, cache=fp8, prefill=10, progress=False)["nll"]
    assert torch.isfinite(got).all() and torch.allclose(got[:10], ref[:10], atol=1e-4)  # o prefill não é quantizado
    assert cache_nbytes(fp8) <= 0.55 * cache_nbytes(dyn)


def test_costura_do_material_antigo_da_a_cada_posicao_menos_contexto(tiny, single_thread):
    from course_utils.streaming import seed_sliding_window_hidden_states

    ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(8))
    with torch.inference_mode():
        stitched = seed_sliding_window_hidden_states(tiny, ids, window_size=8, stride=4)
        alone = tiny(ids[:, 20:], output_hidden_states=True).hidden_states[-1]   # a janela de 4 tokens do fim
    assert torch.allclose(stitched[:, 20:], alone, atol=1e-5), "a cauda vem da última janela, a menor"


def test_tokens_no_cache_bate_com_o_despejo_de_verdade():
    """O que o controle do notebook mostra é o que evict_to_sinks_and_window deixa no cache (chaves = id do token,
    RoPE de frequência zero: a rotação não muda nada), também quando ainda há menos tokens que sinks."""
    from course_utils.streaming import tokens_in_cache

    class Layer:
        keys = values = None

    class Cache:
        layers = [Layer()]

    no_rotation = torch.zeros(1)
    for sinks, cache_size in ((0, 3), (2, 6), (4, 5), (5, 6), (3, 4)):
        cache = Cache()
        cache.layers = [Layer()]
        for token in range(3 * cache_size):
            evict_to_sinks_and_window(cache, sinks, cache_size - 1, no_rotation)
            new = torch.full((1, 1, 1, 2), float(token))
            layer = cache.layers[0]
            layer.keys = new if layer.keys is None else torch.cat([layer.keys, new], -2)
            layer.values = layer.keys
            kept = layer.keys[0, 0, :, 0].long().tolist()
            assert tokens_in_cache(token, sinks, cache_size) == kept, (sinks, cache_size, token)
    assert tokens_in_cache(1, 4, 8) == [0, 1]   # menos tokens lidos que sinks: todos estão no cache
    with pytest.raises(ValueError):
        tokens_in_cache(3, 6, 6)
