"""A cola da biblioteca mantida do notebook 02 (course_utils.library_quant, o AutoRound).

Sem o AutoRound instalado, só rodam os testes do que não precisa dele (o motivo de pular a seção, os erros em
português). Com ele: o AWQ e o AutoRound da biblioteca deixam as lineares dos blocos na grade de 4 bits com grupos
de 64 e ponto-zero (o formato das nossas implementações), não tocam embeddings nem normas fora do que o AWQ dobra,
não sujam o diretório atual, e o checkpoint salvo recarrega com o transformers e dá a mesma saída.
"""

import pytest
import torch

from course_utils import library_quant
from course_utils.library_quant import (
    autoround_checkpoint,
    autoround_configs,
    autoround_quantize,
    library_missing,
    reload_quantized,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def _samples(n=4, length=32, vocab=256, seed=0):
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def _levels_per_group(w, group_size=64):
    return max(len(torch.unique(g)) for g in w.detach().float().reshape(-1, group_size))


def _block_linears(model):
    return {name: m for name, m in model.model.layers.named_modules() if isinstance(m, torch.nn.Linear)}


def test_sem_o_autoround_o_motivo_diz_como_instalar(monkeypatch):
    monkeypatch.setattr(library_quant.importlib.util, "find_spec", lambda name: None)
    reason = library_missing()
    assert "não está instalado" in reason and f"pip install {library_quant.AUTOROUND_REQUIREMENT}" in reason


def test_metodo_desconhecido_e_amostras_erradas_dao_erro_em_portugues(tiny):
    with pytest.raises(ValueError, match="GPTQ o AutoRound não tem"):
        autoround_configs("gptq")
    with pytest.raises(ValueError, match=r"samples deve ser \[amostras, tokens\]"):
        autoround_quantize(tiny, None, torch.zeros(32, dtype=torch.long), "awq")


needs_autoround = pytest.mark.skipif(library_missing() is not None, reason=str(library_missing()))


@needs_autoround
@pytest.mark.parametrize("method", ["awq", "autoround"])
def test_a_biblioteca_deixa_as_lineares_na_grade_de_4_bits(tiny, reference_tokenizer, method, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {name: m.weight.detach().clone() for name, m in _block_linears(tiny).items()}
    embed = tiny.model.embed_tokens.weight.detach().clone()
    quantized = autoround_quantize(tiny, reference_tokenizer, _samples(), method, bits=4, group_size=64, iters=3, n_grid=4)
    linears = _block_linears(quantized)
    assert linears.keys() == before.keys()
    for name, m in linears.items():
        assert _levels_per_group(m.weight) <= 16, f"{method}: {name} saiu da grade de 4 bits"
        assert not torch.equal(m.weight, before[name]), f"{method}: {name} não foi quantizada"
    assert quantized.dtype == embed.dtype, "o modelo volta ao dtype em que entrou"
    # os embeddings não são quantizados: só passam pelo bf16 em que a biblioteca calcula
    torch.testing.assert_close(quantized.model.embed_tokens.weight, embed, rtol=2**-8, atol=0)
    assert list(tmp_path.iterdir()) == [], "o AutoRound deixou arquivos de trabalho no diretório atual"
    with torch.no_grad():
        logits = quantized(_samples(1, 16, seed=1)).logits
    assert torch.isfinite(logits).all()


@needs_autoround
def test_o_checkpoint_salvo_recarrega_com_o_transformers_e_da_a_mesma_saida(reference_tokenizer, tmp_path):
    from course_utils.models import tiny_model

    samples, probe = _samples(), _samples(1, 16, seed=1)
    in_memory = autoround_quantize(tiny_model(), reference_tokenizer, samples, "awq", n_grid=4)
    folder = autoround_checkpoint(tiny_model(), reference_tokenizer, samples, "awq", tmp_path / "awq", n_grid=4)
    assert folder.is_relative_to(tmp_path / "awq") and (folder / "config.json").exists()
    reloaded = reload_quantized(folder)
    assert not isinstance(reloaded.model.layers[0].mlp.down_proj, torch.nn.Linear), "recarregou sem os inteiros"
    with torch.no_grad():
        expected = in_memory(probe).logits.float()
        got = reloaded(probe).logits.float()
    # o recarregado calcula em 16 bits (o kernel de inteiros do AutoRound na CPU); a referência, em fp32
    assert (got - expected).abs().max() <= 0.05 * expected.abs().max()
