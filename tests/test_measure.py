"""Testes das medidas (course_utils.measure): perplexidade, memória, latência.

A perplexidade é conferida contra contas feitas aqui, de forma independente: um modelo de
logits nulos (perplexidade = tamanho do vocabulário), um modelo de bigramas (sem contexto,
então a janela não importa e dá para saber exatamente quais tokens foram contados) e uma
versão força-bruta token a token com o modelo minúsculo.
"""

import math
import statistics
from types import SimpleNamespace

import pytest
import torch

from course_utils import measure
from course_utils.measure import measure_latency, model_footprint, perplexity

# muitas operações pequenas: uma thread evita a espera ativa do OpenMP (ver conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


class ZeroLogits(torch.nn.Module):
    """Prevê a distribuição uniforme sobre o vocabulário, sempre."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # para next(model.parameters()) funcionar

    def forward(self, input_ids):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab_size))


class Bigram(torch.nn.Module):
    """Os logits da posição t dependem só do token t: o contexto anterior não importa."""

    def __init__(self, vocab_size, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(torch.randn(vocab_size, vocab_size, generator=gen) * 3)

    def forward(self, input_ids):
        return SimpleNamespace(logits=self.table[input_ids])


def _ids(n, vocab=256, seed=0):
    return torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(seed))


def _bigram_ppl(model, ids, positions):
    """exp(média do NLL) só nas posições (alvos) pedidas."""
    logprobs = torch.log_softmax(model.table.detach().double(), dim=-1)
    nll = [-logprobs[ids[0, t - 1], ids[0, t]].item() for t in positions]
    return math.exp(sum(nll) / len(nll))


@torch.no_grad()
def _brute_force_ppl(model, ids, window, stride):
    """Cada token t avaliado uma vez, com o contexto ids[begin:t] da primeira janela que chega até ele."""
    n = ids.shape[1]
    nll, scored = [], []
    begin, scored_until = 0, 1
    while True:
        end = min(begin + window, n)
        for t in range(max(scored_until, begin + 1), end):
            logits = model(ids[:, begin:t]).logits[0, -1].double()
            nll.append(-torch.log_softmax(logits, dim=-1)[ids[0, t]].item())
            scored.append(t)
        scored_until = end
        if end == n:
            break
        begin += stride
    return math.exp(sum(nll) / len(nll)), scored


# ---------------------------------------------------------------- perplexidade


@pytest.mark.parametrize("window,stride", [(1024, 512), (64, 32), (40, 40), (16, 5)])
def test_logits_nulos_dao_perplexidade_igual_ao_vocabulario(window, stride):
    model = ZeroLogits(vocab_size=300)
    ppl = perplexity(model, _ids(150, 300), window=window, stride=stride, progress=False)
    assert ppl == pytest.approx(300, rel=1e-5)


@pytest.mark.parametrize("n,window,stride", [(200, 64, 32), (200, 64, 1), (130, 50, 20), (97, 10, 9), (50, 1024, 512)])
def test_com_stride_menor_que_a_janela_todo_token_menos_o_primeiro_conta_uma_vez(n, window, stride):
    model = Bigram(64)
    ids = _ids(n, 64)
    expected = _bigram_ppl(model, ids, range(1, n))
    assert perplexity(model, ids, window=window, stride=stride, progress=False) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("n,window", [(200, 64), (192, 64), (100, 7)])
def test_janelas_disjuntas_nao_avaliam_o_primeiro_token_de_cada_janela(n, window):
    model = Bigram(64)
    ids = _ids(n, 64)
    expected = _bigram_ppl(model, ids, [t for t in range(1, n) if t % window != 0])
    everything = _bigram_ppl(model, ids, range(1, n))
    ppl = perplexity(model, ids, window=window, stride=window, progress=False)
    assert ppl == pytest.approx(expected, rel=1e-5)
    assert abs(ppl / everything - 1) > 1e-3  # e isso faz diferença


def test_janela_maior_que_o_texto_e_uma_passada_exata(tiny):
    ids = _ids(120)
    with torch.no_grad():
        logits = tiny(ids).logits[0, :-1].double()
    exact = math.exp(torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item())
    assert perplexity(tiny, ids, window=1024, stride=512, progress=False) == pytest.approx(exact, rel=1e-5)
    assert perplexity(tiny, ids, window=120, stride=120, progress=False) == pytest.approx(exact, rel=1e-5)
    assert perplexity(tiny, ids[0], window=120, stride=60, progress=False) == pytest.approx(exact, rel=1e-5)  # 1-D


@pytest.mark.parametrize("n,window,stride", [(200, 64, 32), (130, 50, 20)])
def test_janela_deslizante_igual_a_forca_bruta_token_a_token(tiny, n, window, stride):
    ids = _ids(n, seed=1)
    expected, scored = _brute_force_ppl(tiny, ids, window, stride)
    assert scored == list(range(1, n))  # a referência também avalia cada token uma vez
    ppl = perplexity(tiny, ids, window=window, stride=stride, progress=False)
    assert math.isfinite(ppl)
    assert ppl == pytest.approx(expected, rel=1e-5)


def test_janela_deslizante_faz_so_as_passadas_necessarias(tiny):
    """Com um modelo espião: janelas de 64 começando a cada 32 tokens, e nenhuma passada depois do fim."""
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            seen.append(x[0].tolist())
            return self.inner(x)

    ids = _ids(200)
    perplexity(Spy(tiny), ids, window=64, stride=32, progress=False)
    # começos 0, 32, ..., 160; a última janela vai de 160 até o fim (200)
    expected = [ids[0, b : min(b + 64, 200)].tolist() for b in range(0, 161, 32)]
    assert seen == expected


@pytest.mark.parametrize("window,stride", [(64, 0), (64, -1), (64, 65)])
def test_stride_invalido_da_valueerror(tiny, window, stride):
    with pytest.raises(ValueError, match="stride"):
        perplexity(tiny, _ids(100), window=window, stride=stride, progress=False)


def test_entradas_invalidas_dao_valueerror(tiny):
    with pytest.raises(ValueError, match="batch 1"):
        perplexity(tiny, torch.zeros(2, 10, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="pelo menos 2 tokens"):
        perplexity(tiny, torch.zeros(1, 1, dtype=torch.long), progress=False)


def test_textos_do_curso_tem_mais_de_9_mil_tokens(reference_tokenizer):
    from course_utils.data import load_text, text_token_ids

    for lang in ("en", "pt"):
        assert reference_tokenizer(load_text(lang), return_tensors="pt").input_ids.shape[1] > 9000
        assert tuple(text_token_ids(reference_tokenizer, lang, 64).shape) == (1, 64)
    with pytest.raises(ValueError, match="só"):
        text_token_ids(reference_tokenizer, "pt", 10**6)
    with pytest.raises(ValueError, match="não disponível"):
        load_text("fr")


def test_mais_contexto_da_perplexidade_menor_no_modelo_de_referencia(reference_model, reference_tokenizer):
    from course_utils.data import text_token_ids

    ids = text_token_ids(reference_tokenizer, "en", 96)
    full = perplexity(reference_model, ids, window=96, stride=96, progress=False)
    short = perplexity(reference_model, ids, window=12, stride=12, progress=False)
    assert 1 < full < 200  # um modelo treinado, num texto em inglês comum
    assert short > full


# ---------------------------------------------------------------- memória


def test_footprint_do_tiny_conta_pesos_amarrados_uma_vez(tiny):
    assert tiny.lm_head.weight is tiny.model.embed_tokens.weight  # embeddings amarrados
    unique = sum(p.numel() * p.element_size() for p in {id(p): p for p in tiny.parameters()}.values())
    buffers = sum(b.numel() * b.element_size() for b in tiny.buffers())
    naive = sum(p.numel() * p.element_size() for _, p in tiny.named_parameters(remove_duplicate=False))
    fp = model_footprint(tiny)
    assert fp["total_mb"] == pytest.approx((unique + buffers) / 2**20, rel=1e-12)
    assert fp["total_mb"] < naive / 2**20
    assert list(fp["by_dtype_mb"]) == ["torch.float32"]


def test_footprint_conta_uma_vez_parametros_distintos_que_dividem_o_mesmo_armazenamento():
    storage = torch.zeros(512, 256)
    module = torch.nn.Module()
    module.a = torch.nn.Parameter(storage)
    module.b = torch.nn.Parameter(storage)  # outro objeto Parameter, mesmos bytes
    module.c = torch.nn.Parameter(storage[:256])  # uma vista: mesmos bytes, mas só a metade
    assert module.a is not module.b
    assert model_footprint(module)["total_mb"] == pytest.approx(0.5 + 0.25)


def test_footprint_separa_por_dtype():
    module = torch.nn.Module()
    module.w = torch.nn.Parameter(torch.zeros(1024, 256, dtype=torch.float16))
    module.register_buffer("codes", torch.zeros(2048, 512, dtype=torch.int8))
    fp = model_footprint(module)
    assert fp["by_dtype_mb"] == {"torch.float16": pytest.approx(0.5), "torch.int8": pytest.approx(1.0)}
    assert fp["total_mb"] == pytest.approx(1.5)


def test_footprint_conta_os_bytes_reais_de_um_peso_torchao():
    quantization = pytest.importorskip("torchao.quantization")
    model = torch.nn.Sequential(torch.nn.Linear(256, 128, bias=False))
    fp32_mb = model_footprint(model)["total_mb"]
    quantization.quantize_(model, quantization.Int8WeightOnlyConfig())
    fp = model_footprint(model)
    assert fp["by_dtype_mb"]["torch.int8"] >= 128 * 256 / 2**20  # os códigos int8
    assert sum(v for k, v in fp["by_dtype_mb"].items() if k != "torch.int8") > 0  # as escalas
    assert fp["total_mb"] < fp32_mb / 3


def test_memoria_do_processo():
    current = measure.current_rss_mb()
    assert current > 0
    assert measure.peak_rss_mb() >= current


def test_cuda_peak_sem_gpu_e_zero(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert measure.cuda_peak_mb() == 0.0
    assert measure.cuda_peak_mb(reset=True) == 0.0


# ---------------------------------------------------------------- tempo


def test_measure_latency_conta_aquecimento_e_repeticoes():
    calls = []
    stats = measure_latency(lambda: calls.append(sum(range(2000))), warmup=3, repeats=7)
    assert len(calls) == 3 + 7
    assert len(stats["times_ms"]) == 7
    assert stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
    assert stats["median_ms"] == statistics.median(stats["times_ms"])
    assert stats["min_ms"] == min(stats["times_ms"]) and stats["max_ms"] == max(stats["times_ms"])
    assert all(t >= 0 for t in stats["times_ms"])


def test_measure_latency_sem_aquecimento_e_com_uma_repeticao():
    calls = []
    stats = measure_latency(lambda: calls.append(1), warmup=0, repeats=1)
    assert len(calls) == 1
    assert stats["min_ms"] == stats["median_ms"] == stats["max_ms"]


@pytest.mark.parametrize("repeats", [0, -3])
def test_measure_latency_rejeita_repeats_menor_que_1(repeats):
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(lambda: None, repeats=repeats)


def test_tokens_per_second_gera_exatamente_max_new_tokens(reference_tokenizer):
    from course_utils.models import tiny_model

    model = tiny_model(vocab_size=len(reference_tokenizer))
    # o primeiro token que o modelo gera passa a ser o EOS: sem forçar o mínimo, a geração pararia nele
    prompt = reference_tokenizer("Olá, mundo", return_tensors="pt")
    first = model.generate(**prompt, max_new_tokens=1, do_sample=False)[0, -1].item()
    model.generation_config.eos_token_id = first
    generated = []
    original_generate = model.generate

    def spy_generate(**kwargs):
        out = original_generate(**kwargs)
        generated.append(out.shape[1] - kwargs["input_ids"].shape[1])
        assert kwargs["do_sample"] is False
        return out

    model.generate = spy_generate
    result = measure.tokens_per_second(model, reference_tokenizer, "Olá, mundo", max_new_tokens=5, warmup=1, repeats=2)
    assert generated == [5, 5, 5]  # 1 aquecimento + 2 medidas, sempre 5 tokens novos
    assert result["new_tokens"] == 5
    assert result["tokens_per_s"] == pytest.approx(5 / result["median_s"])
    assert result["tokens_per_s"] > 0


def test_one_cpu_thread_usa_uma_thread_e_restaura_mesmo_com_erro():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with measure.one_cpu_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), measure.one_cpu_thread("cpu"):
            raise RuntimeError("falha dentro do with")
        assert torch.get_num_threads() == 2
        with measure.one_cpu_thread("meta"):  # fora da CPU não mexe nas threads
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_generation_peak_mib_pede_gpu():
    from course_utils.measure import generation_peak_mib
    from course_utils.models import tiny_model

    with pytest.raises(ValueError, match="GPU"):
        generation_peak_mib(tiny_model(), torch.tensor([[1, 2]]), 2)


def test_tokens_per_second_cria_um_cache_novo_por_geracao():
    from course_utils.measure import tokens_per_second

    seen = []

    class Model:
        device = "cpu"

        def generate(self, **kwargs):
            seen.append(kwargs.get("past_key_values"))
            return torch.zeros(1, 3, dtype=torch.long)

    def tokenizer(prompt, return_tensors):
        return SimpleNamespace(to=lambda device: {"input_ids": torch.ones(1, 2, dtype=torch.long)})

    tokenizer.pad_token_id, tokenizer.eos_token_id = 0, 0
    tokens_per_second(Model(), tokenizer, "x", 1, warmup=1, repeats=2, make_cache=object)
    assert len(seen) == 3 and len({id(c) for c in seen}) == 3 and all(c is not None for c in seen)
    tokens_per_second(Model(), tokenizer, "x", 1, warmup=0, repeats=1)
    assert seen[-1] is None
