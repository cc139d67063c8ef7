"""Testes da geração escrita à mão (course_utils.generation).

O laço guloso é conferido token a token contra `model.generate` do transformers no modelo de
referência; o batch com padding à esquerda contra a geração de cada prompt sozinho; o top-p contra
uma versão força-bruta, linha a linha; a memória do cache contra a conta 2·L·H_kv·d·n·bytes.
"""

import pytest
import torch
from transformers import DynamicCache, QuantizedCache

from course_utils.data import text_token_ids
from course_utils.generation import (
    apply_repetition_penalty,
    cache_holds_nan,
    cache_nbytes,
    generate,
    kv_cache_bytes,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

# muitas operações pequenas (decode token a token): uma thread evita a espera ativa do OpenMP (ver conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

N_NEW = 24
PROMPT_EN = "The key-value cache stores the keys and values of previous tokens so that"
QUESTION_PT = "Explique em poucas frases por que um cache de chaves e valores acelera a geração de texto."


def _chat(tokenizer, text):
    messages = [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _random_logits(rows=8, vocab=50, seed=0, scale=3.0):
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * scale


def _ids(n, vocab=256, seed=0, batch=1):
    return torch.randint(0, vocab, (batch, n), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- igual ao transformers

@pytest.fixture(scope="module")
def hf_greedy(reference_model, reference_tokenizer):
    """Saídas gulosas de model.generate para os dois prompts (calculadas uma vez)."""
    prompts = {"pt_chat": _chat(reference_tokenizer, QUESTION_PT), "en": PROMPT_EN}
    out = {}
    for name, text in prompts.items():
        ids = reference_tokenizer(text, return_tensors="pt").input_ids
        ref = reference_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                       max_new_tokens=N_NEW, eos_token_id=reference_tokenizer.eos_token_id,
                                       pad_token_id=reference_tokenizer.eos_token_id)
        out[name] = (ids, ref)
    return out


@pytest.mark.parametrize("use_cache", [True, False], ids=["com_cache", "sem_cache"])
@pytest.mark.parametrize("prompt", ["pt_chat", "en"])
def test_greedy_equals_transformers_generate(reference_model, reference_tokenizer, hf_greedy, prompt, use_cache):
    ids, ref = hf_greedy[prompt]
    # os dois lados param no mesmo EOS; o prompt foi escolhido para não parar antes de N_NEW
    assert ref.shape[1] == ids.shape[1] + N_NEW, "model.generate parou cedo: a comparação cobriria poucos tokens"
    ours = generate(reference_model, ids, N_NEW, use_cache=use_cache, eos_token_id=reference_tokenizer.eos_token_id)
    assert torch.equal(ours, ref), (
        f"geração gulosa difere de model.generate:\nnossa: {reference_tokenizer.decode(ours[0, ids.shape[1]:])!r}\n"
        f"hf:    {reference_tokenizer.decode(ref[0, ids.shape[1]:])!r}"
    )


def test_repetition_penalty_equals_transformers(reference_model, reference_tokenizer):
    ids = reference_tokenizer(PROMPT_EN, return_tensors="pt").input_ids
    eos = reference_tokenizer.eos_token_id
    ref = reference_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=16,
                                   repetition_penalty=1.5, eos_token_id=eos, pad_token_id=eos)
    assert ref.shape[1] == ids.shape[1] + 16, "model.generate parou cedo"
    ours = generate(reference_model, ids, 16, repetition_penalty=1.5, eos_token_id=eos)
    plain = generate(reference_model, ids, 16, eos_token_id=eos)
    assert torch.equal(ours, ref)
    assert not torch.equal(ours, plain), "a penalidade 1,5 deveria mudar a geração deste prompt"


def test_left_padded_batch_equals_single_prompts(reference_model, reference_tokenizer):
    tok = reference_tokenizer
    texts = [_chat(tok, QUESTION_PT), PROMPT_EN]
    old_side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(texts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = old_side
    assert (enc.attention_mask[1] == 0).sum() > 10, "o prompt curto deveria ter padding à esquerda"
    ids_before, mask_before = enc.input_ids.clone(), enc.attention_mask.clone()

    batch = generate(reference_model, enc.input_ids, N_NEW, attention_mask=enc.attention_mask)

    assert torch.equal(enc.input_ids, ids_before) and torch.equal(enc.attention_mask, mask_before), \
        "generate alterou os tensores de entrada"
    width = enc.input_ids.shape[1]
    assert torch.equal(batch[:, :width], enc.input_ids)
    for row, text in enumerate(texts):
        single_ids = tok(text, return_tensors="pt").input_ids
        single = generate(reference_model, single_ids, N_NEW)
        new_single = single[0, single_ids.shape[1]:]
        assert torch.equal(batch[row, width:], new_single), f"linha {row} difere da geração sozinha"


# ---------------------------------------------------------------- filtros

def _top_p_brute_force(logits, p):
    """Linha a linha, em float64: percorre os tokens do mais provável ao menos provável e corta
    quando a massa acumulada ANTES do token já passa de p. Devolve também a menor folga |massa - p|."""
    out = logits.clone()
    margin = float("inf")
    for b in range(logits.shape[0]):
        probs = torch.softmax(logits[b].double(), dim=-1).tolist()
        mass = 0.0
        for j, i in enumerate(sorted(range(len(probs)), key=lambda i: -probs[i])):
            if j > 0:  # o primeiro fica sempre (massa anterior 0)
                margin = min(margin, abs(mass - p))
            if mass > p:
                out[b, i] = float("-inf")
            mass += probs[i]
    return out, margin


def _top_p_buggy(logits, p):
    """A versão errada do material antigo: a máscara, calculada na ordem ordenada, é aplicada direto
    nas posições originais (falta o scatter de volta)."""
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    remove_sorted = probs.cumsum(-1) - probs > p
    out = logits.clone()
    out[remove_sorted] = float("-inf")
    return out


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.8, 0.9])
def test_top_p_equals_brute_force(p):
    logits = _random_logits(seed=1)
    before = logits.clone()
    got = top_p_filter(logits, p)
    expected, margin = _top_p_brute_force(logits, p)
    assert margin > 1e-4, "dados de teste ambíguos: uma soma acumulada cai quase em cima de p"
    assert torch.equal(logits, before), "top_p_filter alterou a entrada"
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    assert torch.equal(got[~torch.isinf(got)], logits[~torch.isinf(got)]), "logits mantidos não podem mudar"

    kept = torch.isfinite(got)
    assert kept.sum(-1).min() >= 1, "todo token foi removido numa linha"
    if p == 0.0:
        assert (kept.sum(-1) == 1).all() and torch.equal(got.argmax(-1), logits.argmax(-1))
    for b in range(logits.shape[0]):
        removed = logits[b][~kept[b]]
        if removed.numel():
            assert logits[b][kept[b]].min() > removed.max(), "um token removido era mais provável que um mantido"

    if p > 0.0:
        assert not torch.equal(torch.isinf(_top_p_buggy(logits, p)), torch.isinf(expected)), \
            "a versão sem scatter deveria errar"


def test_top_p_noop():
    logits = _random_logits()
    for p in (None, 1.0, 1.5):
        assert torch.equal(top_p_filter(logits, p), logits)


@pytest.mark.parametrize("k", [1, 5, 49])
def test_top_k_keeps_exactly_k(k):
    logits = _random_logits(seed=2)
    before = logits.clone()
    got = top_k_filter(logits, k)
    assert torch.equal(logits, before), "top_k_filter alterou a entrada"
    kept = torch.isfinite(got)
    assert (kept.sum(-1) == k).all()
    expected_idx = torch.topk(logits, k, dim=-1).indices
    assert kept.gather(-1, expected_idx).all(), "os k mantidos precisam ser os k maiores"
    assert torch.equal(got[kept], logits[kept])


def test_top_k_noop():
    logits = _random_logits()
    for k in (None, 0, 50, 1000):
        assert torch.equal(top_k_filter(logits, k), logits)


def test_repetition_penalty_rule_and_no_mutation():
    logits = torch.tensor([[2.0, -2.0, 1.0, -1.0, 0.5], [3.0, -3.0, 0.0, 4.0, -0.5]])
    before = logits.clone()
    seen = torch.tensor([[0, 1, 1], [3, 4, 3]])  # repetições contam uma vez só
    got = apply_repetition_penalty(logits, seen, 2.0)
    expected = torch.tensor([[1.0, -4.0, 1.0, -1.0, 0.5], [3.0, -3.0, 0.0, 2.0, -1.0]])
    assert torch.equal(logits, before), "apply_repetition_penalty alterou a entrada"
    assert torch.equal(got, expected)
    assert torch.equal(apply_repetition_penalty(logits, seen, 1.0), logits)


# ---------------------------------------------------------------- amostragem

def test_sampling_follows_the_filtered_distribution():
    base = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    logits = base.expand(40_000, -1)
    gen = torch.Generator().manual_seed(0)

    def freq(**kw):
        tokens = sample_next_token(logits, do_sample=True, generator=gen, **kw)
        return torch.bincount(tokens, minlength=5).double() / len(tokens)

    assert torch.allclose(freq(temperature=0.7), torch.softmax(base.double() / 0.7, -1), atol=0.01)
    two = torch.softmax(base[:2].double(), -1)
    # top_k=2 e top_p=0,6 deixam só os tokens 0 e 1 (massa antes do token 2 = 0,77 > 0,6)
    for kw in ({"top_k": 2}, {"top_p": 0.6}):
        f = freq(**kw)
        assert f[2:].sum() == 0
        assert torch.allclose(f[:2], two, atol=0.01)
    assert torch.equal(sample_next_token(logits[:3]), torch.zeros(3, dtype=torch.long))


def test_sampling_is_reproducible_and_top_k_1_is_greedy(tiny):
    ids = _ids(6, batch=2)
    kw = dict(do_sample=True, temperature=1.0)
    a = generate(tiny, ids, 12, generator=torch.Generator().manual_seed(123), **kw)
    b = generate(tiny, ids, 12, generator=torch.Generator().manual_seed(123), **kw)
    c = generate(tiny, ids, 12, generator=torch.Generator().manual_seed(124), **kw)
    greedy = generate(tiny, ids, 12)
    top1 = generate(tiny, ids, 12, top_k=1, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(a, b), "mesma semente, sequências diferentes"
    assert not torch.equal(a, c), "sementes diferentes deram a mesma sequência"
    assert not torch.equal(a, greedy)
    assert torch.equal(top1, greedy), "top_k=1 tem que ser igual à geração gulosa"


# ---------------------------------------------------------------- laço: EOS, padding, cache, tempos

def test_stops_at_eos_and_pads_finished_rows(tiny):
    ids = _ids(5, batch=2, seed=3)
    first = generate(tiny, ids, 1)[:, -1]
    assert first[0] != first[1], "escolha prompts com primeiros tokens diferentes"
    eos, pad = int(first[0]), 255
    assert pad not in first.tolist()

    alone = generate(tiny, ids[:1], 10, eos_token_id=eos)
    assert alone.shape == (1, 6) and alone[0, -1] == eos, "devia parar logo depois do primeiro token (o EOS)"

    batch = generate(tiny, ids, 10, eos_token_id=eos, pad_token_id=pad)
    row1 = generate(tiny, ids[1:], 10, eos_token_id=eos)
    assert batch.shape[1] == row1.shape[1]
    assert batch[0, 5] == eos and (batch[0, 6:] == pad).all(), "linha que terminou precisa receber pad"
    assert torch.equal(batch[1], row1[0])

    default_pad = generate(tiny, ids, 10, eos_token_id=eos)
    assert (default_pad[0, 5:] == eos).all(), "sem pad_token_id, o pad é o EOS"
    both = generate(tiny, ids, 10, eos_token_id=first.tolist())
    assert both.shape == (2, 6), "com os dois EOS numa lista, as duas linhas param no passo 1"


def _tiny_gpt2():
    """GPT-2 minúsculo com embeddings de POSIÇÃO fortes: errar as posições muda os tokens gerados.

    No Llama (RoPE) isso não aparece nos tokens: q_m·k_n só depende de m - n, então deslocar todas
    as posições de uma linha pela mesma constante (o que acontece se as posições ignoram o padding
    à esquerda) muda os logits só no arredondamento. Com posições absolutas (wpe) o erro aparece.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_positions=128,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.transformer.wpe.weight.normal_(0.0, 1.0)
    return model


def _left_pad(prompts, pad):
    """Empilha prompts [1, n_i] com padding à esquerda; devolve (ids, máscara)."""
    width = max(p.shape[1] for p in prompts)
    ids = torch.cat([torch.cat([torch.full((1, width - p.shape[1]), pad), p], 1) for p in prompts])
    mask = torch.cat([torch.cat([torch.zeros(1, width - p.shape[1], dtype=torch.long),
                                 torch.ones(1, p.shape[1], dtype=torch.long)], 1) for p in prompts])
    return ids, mask


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("penalty", [1.0, 2.0])
def test_left_padding_cache_and_penalty_on_tiny_models(tiny, arch, penalty):
    model = tiny if arch == "llama" else _tiny_gpt2()
    short, long = _ids(4, seed=4), _ids(9, seed=5)
    # o pad é justamente o token que o prompt curto geraria primeiro: se os pads contassem para a
    # penalidade de repetição, esse token seria penalizado e a linha mudaria
    pad = int(generate(model, short, 1, repetition_penalty=penalty)[0, -1])
    assert penalty == 1.0 or pad not in short[0].tolist()
    ids, mask = _left_pad([short, long], pad)

    batch = generate(model, ids, 15, attention_mask=mask, repetition_penalty=penalty)
    no_cache = generate(model, ids, 15, attention_mask=mask, repetition_penalty=penalty, use_cache=False)
    assert torch.equal(batch, no_cache), "com e sem cache deveriam dar a mesma sequência"
    for row, prompt in enumerate((short, long)):
        single = generate(model, prompt, 15, repetition_penalty=penalty)
        assert torch.equal(batch[row, 9:], single[0, prompt.shape[1]:]), f"linha {row} difere da geração sozinha"


def test_strong_repetition_penalty_avoids_repeats(tiny):
    ids = _ids(4, seed=6)
    plain = generate(tiny, ids, 30)
    penalized = generate(tiny, ids, 30, repetition_penalty=1e4)
    assert plain[0].unique().numel() < plain.shape[1], "sem penalidade, o modelo minúsculo repete tokens"
    assert penalized[0].unique().numel() == penalized.shape[1], "com penalidade enorme, nenhum token se repete"


def test_step_times(tiny):
    ids = _ids(8)
    out, times = generate(tiny, ids, 6, return_step_times=True)
    assert out.shape == (1, 14) and len(times) == 6
    assert all(t > 0 for t in times)
    assert torch.equal(out, generate(tiny, ids, 6))


# ---------------------------------------------------------------- memória do KV cache

def test_kv_cache_bytes_formula(reference_model):
    assert kv_cache_bytes(reference_model.config, 1024, bytes_per_element=4) == 2 * 30 * 3 * 64 * 1024 * 4
    assert kv_cache_bytes(reference_model.config, 100, batch_size=3) == 2 * 30 * 3 * 64 * 100 * 3 * 2
    # dict, sem num_key_value_heads (atenção multi-cabeça) e sem head_dim
    cfg = {"num_hidden_layers": 4, "num_attention_heads": 8, "hidden_size": 256}
    assert kv_cache_bytes(cfg, 10) == 2 * 4 * 8 * 32 * 10 * 2


def test_cache_nbytes_matches_formula_after_prefill(reference_model, reference_tokenizer):
    ids = text_token_ids(reference_tokenizer, "en", 1024)
    cache = DynamicCache(config=reference_model.config)
    assert cache_nbytes(cache) == 0, "cache vazio (camadas não inicializadas) ocupa 0 bytes"
    with torch.inference_mode():
        reference_model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    assert cache.get_seq_length() == 1024
    assert cache_nbytes(cache) == kv_cache_bytes(reference_model.config, 1024, bytes_per_element=4)


def test_cache_nbytes_counts_fp8_quantized_states(tiny):
    ids = _ids(40, batch=2)
    cache = QuantizedCache("fp8", tiny.config)
    with torch.inference_mode():
        tiny(ids, past_key_values=cache, use_cache=True)
    assert cache.layers[0].keys.numel() == 0, "no FP8 os dados ficam fora de .keys"
    # 1 byte por elemento + uma escala fp32 por tensor (K e V de cada camada)
    n_layers = tiny.config.num_hidden_layers
    expected = kv_cache_bytes(tiny.config, 40, batch_size=2, bytes_per_element=1) + 2 * n_layers * 4
    assert cache_nbytes(cache) == expected


def test_cache_holds_nan_sees_the_fp8_quantized_states(tiny):
    cache = QuantizedCache("fp8", tiny.config)
    with torch.inference_mode():
        tiny(_ids(12), past_key_values=cache, use_cache=True)
    assert not cache_holds_nan(cache)
    q, scale = cache.layers[1]._quantized_values
    q.view(torch.uint8)[0, 0, 3, 0] = 0x7F        # o padrão de bits do NaN no e4m3fn, num tensor que .values não mostra
    assert cache_holds_nan(cache)
