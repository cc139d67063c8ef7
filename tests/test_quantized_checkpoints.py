"""Salvar e recarregar modelos quantizados (course_utils.quantized_checkpoints), a base da seção do notebook 01 que
desmente o material antigo ("Não podemos salvar o modelo quantizado diretamente").

Tudo com o modelo minúsculo de testes: fp32, torchao INT8 (TorchAoConfig) e bitsandbytes 8 e 4 bits na CPU.
"""

import os

import pytest
import torch

from course_utils import quantized_checkpoints as C
from course_utils.measure import model_footprint

pytestmark = pytest.mark.usefixtures("single_thread")

IDS = torch.tensor([[1, 5, 9, 3, 7, 2, 8, 4]])


@pytest.fixture
def tiny_dir(tiny, tmp_path):
    """O modelo minúsculo salvo em fp32 numa pasta (de onde as variantes quantizadas são carregadas)."""
    path = tmp_path / "fp32"
    tiny.save_pretrained(path)
    return path


def _load_quantized(path, config):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, quantization_config=config, dtype=torch.float32,
                                                device_map={"": "cpu"}).eval()


# ---------------------------------------------------------------- pastas e tamanhos


def test_tamanhos_de_pasta_e_arquivos(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 2**20)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_bytes(b"y" * 2**19)
    assert C.dir_size_mb(tmp_path) == pytest.approx(1.5)
    assert list(C.checkpoint_files(tmp_path).items()) == [("a.bin", 1.0), (os.path.join("sub", "b.json"), 0.5)]


def test_pasta_temporaria_some_mesmo_com_erro():
    with pytest.raises(RuntimeError), C.temporary_checkpoint_dir() as path:
        open(os.path.join(path, "x"), "w").close()
        raise RuntimeError("falhou no meio")
    assert not os.path.exists(path)


def test_checkpoint_dir_devolve_pasta_nova_e_vazia():
    first = C.checkpoint_dir("teste")
    open(os.path.join(first, "velho"), "w").close()
    again = C.checkpoint_dir("teste")
    assert again == first and os.listdir(again) == []
    assert C.checkpoint_dir("outro") != first


def test_diferenca_relativa_dos_logits():
    a = torch.tensor([[1.0, -4.0], [2.0, 0.0]])
    assert C.relative_logit_difference(a, a.clone()) == 0.0
    assert C.relative_logit_difference(a, a + torch.tensor([[0.0, 0.4], [0.0, 0.0]])) == pytest.approx(0.1)


# ---------------------------------------------------------------- salvar e recarregar


def test_fp32_salvo_e_recarregado_e_o_mesmo_modelo_com_o_tamanho_da_memoria(tiny, tmp_path):
    result = C.save_and_reload(tiny, IDS, tmp_path / "ckpt")
    assert result["error"] is None
    assert result["relative_logit_diff"] <= 1e-6
    assert result["disk_mb"] == pytest.approx(model_footprint(tiny)["total_mb"], rel=0.05)
    assert "model.safetensors" in result["files"]


@pytest.mark.parametrize("kind", ["int8", "nf4"])
def test_bitsandbytes_salvo_logo_depois_de_carregar_recarrega_igual(tiny_dir, tmp_path, kind):
    from transformers import BitsAndBytesConfig

    config = (BitsAndBytesConfig(load_in_8bit=True) if kind == "int8" else
              BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch.float32))
    model = _load_quantized(tiny_dir, config)
    footprint = model_footprint(model)["total_mb"]
    result = C.save_and_reload(model, IDS, tmp_path / kind)
    assert result["error"] is None, result["error"]
    assert not result["repacked_before_save"]
    assert result["relative_logit_diff"] <= 1e-6
    assert ("Linear8bitLt" if kind == "int8" else "Linear4bit") in result["reloaded_class"]
    # o arquivo guarda os inteiros e as escalas, não fp32: bem menor que o checkpoint fp32. No modelo minúsculo, o
    # cabeçalho do safetensors e o estado de quantização em JSON de cada camada pesam: até ~30 KiB além dos tensores.
    assert result["files"]["model.safetensors"] == pytest.approx(footprint, rel=0.05, abs=0.03)
    assert result["disk_mb"] < 0.8 * C.dir_size_mb(tiny_dir)


def test_nf4_depois_de_um_forward_na_cpu_a_referencia_vem_de_antes_de_salvar(tiny_dir, tmp_path):
    """Se o forward reempacotou os pesos (CPU com AVX512-BF16), a comparação usa os logits de antes de salvar."""
    from transformers import BitsAndBytesConfig

    model = _load_quantized(tiny_dir, BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                         bnb_4bit_compute_dtype=torch.float32))
    before = C.logits_of(model, IDS)
    repacked = C.bnb_repacked_for_cpu(model)
    result = C.save_and_reload(model, IDS, tmp_path / "depois")
    assert result["repacked_before_save"] == repacked
    assert result["error"] is None and result["relative_logit_diff"] is not None
    if not repacked:  # sem reempacotamento, salvar depois de usar também dá o mesmo modelo
        assert result["relative_logit_diff"] <= 1e-6
    assert torch.isfinite(before).all()


def test_torchao_int8_carregado_com_torchaoconfig_salva_e_recarrega(tiny_dir, tmp_path):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig
    from transformers import TorchAoConfig

    model = _load_quantized(tiny_dir, TorchAoConfig(Int8DynamicActivationInt8WeightConfig()))
    result = C.save_and_reload(model, IDS, tmp_path / "torchao")
    assert result["error"] is None, result["error"]
    assert result["relative_logit_diff"] <= 1e-6
    assert result["files"]["model.safetensors"] == pytest.approx(model_footprint(model)["total_mb"], rel=0.05, abs=0.03)


def test_erro_ao_salvar_vira_mensagem_e_nao_excecao(tiny, tmp_path, monkeypatch):
    def broken(path, **kwargs):
        raise RuntimeError("não sei salvar isto\nsegunda linha")

    monkeypatch.setattr(tiny, "save_pretrained", broken)
    result = C.save_and_reload(tiny, IDS, tmp_path / "x")
    assert result["error"] == "RuntimeError: não sei salvar isto"
    assert result["disk_mb"] is None and result["relative_logit_diff"] is None


def test_saved_size_mb_mede_a_pasta_salva(tiny, tmp_path):
    assert C.saved_size_mb(tiny, tmp_path / "s") == pytest.approx(C.dir_size_mb(tmp_path / "s"))
