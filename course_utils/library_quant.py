"""A biblioteca mantida da seção 8 do notebook 02: o AutoRound (Intel, `auto-round` no PyPI), que tem o AWQ e o
algoritmo próprio, AutoRound (SignRound), e salva checkpoints nos formatos auto_round, auto_gptq e auto_awq.

Por que o AutoRound (conferido em 02/12/2026; detalhes, versões e erros em results/gptqmodel/README.md):
- GPTQModel: a 7.7 exige torch >= 2.14.1 e pillow >= 13 (o curso fixa o torch 2.13 e, por causa do gradio, a
  pillow 12.3); da 5.x à 7.6, todas fixam numpy == 2.2.6 (o curso usa a 2.4.6) e exigem protobuf >= 7.34 (o Colab
  mantém o protobuf 5.29, de que dependem os pacotes do Google); e a dependência pypcre só existe como código-fonte
  (compila a PCRE2 na instalação).
- llm-compressor 0.14.0.1 (a mais nova): exige transformers <= 5.17 (o curso usa o 5.23).
- torchao 0.18 (já instalado): o GPTQ dele (protótipo) só roda em CUDA.
- auto-round 0.16.1: só rodas prontas (nada compila), instala sem trocar nenhum pacote do curso nem do Colab e
  quantiza na CPU. Não tem GPTQ: o método que "escolhe os arredondamentos com os dados" é o AutoRound.

Aqui fica só a cola (o que a lição não precisa ler): a verificação de que a biblioteca está instalada, o diretório de
trabalho temporário que ela cria, os avisos dela silenciados e o recarregamento de um checkpoint salvo.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

AUTOROUND_REQUIREMENT = "auto-round==0.16.1"
METHODS = ("awq", "autoround")
# auto_round com o empacotamento sem ponto-zero deslocado: o único que o AutoRound 0.16.1 recarrega na CPU com
# inteiros assimétricos sem pacotes extras (o padrão para 4 bits assimétricos, auto_round:auto_awq, pede o auto-round-lib)
CHECKPOINT_FORMAT = "auto_round:gptqmodel"


def library_missing() -> str | None:
    """None se o AutoRound está instalado e importa; senão, o motivo (em português, com o que fazer)."""
    if importlib.util.find_spec("auto_round") is None:
        return (f"o AutoRound não está instalado neste ambiente (instale com: pip install {AUTOROUND_REQUIREMENT}; "
                "o requirements.txt do curso e a célula de configuração do Colab já o instalam)")
    try:
        with quiet_autoround():
            import auto_round  # noqa: F401
    except Exception as exc:  # um import quebrado (versão de torch/transformers incompatível) vira o motivo
        return f"o AutoRound está instalado mas não importa aqui ({type(exc).__name__}: {exc})"
    return None


@contextlib.contextmanager
def quiet_autoround(level: int = logging.ERROR):
    """Silencia o registro do AutoRound (um aviso por camada, os passos de cada bloco) enquanto o bloco roda."""
    logger = logging.getLogger("autoround")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


@contextlib.contextmanager
def _scratch_workspace():
    """O AutoRound grava arquivos de trabalho em ./ar_work_space (variável AR_WORK_SPACE): mandamos para um
    diretório temporário, apagado no fim, em vez do diretório do notebook."""
    before = os.environ.get("AR_WORK_SPACE")
    with tempfile.TemporaryDirectory(prefix="curso-autoround-") as work:
        os.environ["AR_WORK_SPACE"] = work
        try:
            yield work
        finally:
            if before is None:
                os.environ.pop("AR_WORK_SPACE", None)
            else:
                os.environ["AR_WORK_SPACE"] = before


@contextlib.contextmanager
def _frozen_garbage_collector():
    """O AutoRound chama `gc.collect()` várias vezes por bloco; num notebook cheio de objetos (modelos, tensores,
    a saída das células) cada chamada percorre todos eles, e só isso chegou a custar mais que a quantização. Com
    `gc.freeze()` o coletor ignora o que já existia antes da chamada (e volta a olhar no fim, com `gc.unfreeze()`)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def autoround_configs(method: str, bits: int = 4, group_size: int = 64, iters: int = 10, n_grid: int = 10,
                      lr: float | None = 0.05):
    """As configurações de algoritmo do AutoRound para `method`, com o formato das nossas implementações:
    inteiros assimétricos (ponto-zero), grupos de `group_size` pesos.

    - "awq": o AWQ da biblioteca (busca de α numa grade de `n_grid` pontos, escala mean|x|^α/mean|w|^(1−α),
      erro medido na saída do módulo inteiro) e depois o RTN simples;
    - "autoround": o AutoRound (SignRound), `iters` passos de descida de gradiente com sinal por bloco, de tamanho
      `lr`, que ajustam o arredondamento (para cima ou para baixo) de cada peso para a saída do bloco ficar perto da
      original. O recorte do mínimo e do máximo de cada grupo, que a biblioteca também ajusta por padrão, fica
      desligado: com poucos passos e poucos tokens ele piorou o resultado (perplexidade 35,75 contra 34,51 sem ele,
      com a calibração e o orçamento do notebook 02; results/gptqmodel/README.md). O passo
      padrão da biblioteca, 1/iters, é pensado para os 200 passos dela; None o usa.
    """
    if method not in METHODS:
        raise ValueError(f"method deve ser um de {METHODS}, não {method!r} (GPTQ o AutoRound não tem).")
    from auto_round import AWQConfig, RTNConfig, SignRoundConfig

    grid = {"bits": bits, "group_size": group_size, "sym": False}
    if method == "awq":
        return [AWQConfig(n_grid=n_grid, **grid), RTNConfig(disable_opt_rtn=True, **grid)]
    return [SignRoundConfig(iters=iters, lr=lr, enable_minmax_tuning=False, **grid)]


@contextlib.contextmanager
def _notebook_progress_bars():
    """O AutoRound usa o `tqdm` de texto: num notebook, cada passo vira uma linha nova na saída da célula (~130 linhas
    por quantização). Enquanto o bloco roda, as barras dele viram as do `tqdm.auto` (um widget que some no fim)."""
    import functools
    from unittest import mock

    from auto_round.compressors import orchestrator
    from tqdm.auto import tqdm

    with mock.patch.object(orchestrator, "tqdm", functools.partial(tqdm, leave=False)):
        yield


# Lote de cada passo do AutoRound: o custo de um passo (forward e backward do bloco) é proporcional a ele
BATCH_SIZE = 2


@contextlib.contextmanager
def _rounder(model, tokenizer, samples, method: str, bits: int, group_size: int, iters: int, n_grid: int,
             lr: float | None):
    """O `AutoRound` configurado como as nossas implementações, com os avisos dele silenciados e o diretório de
    trabalho num temporário."""
    if samples.dim() != 2:
        raise ValueError(f"samples deve ser [amostras, tokens]; veio com formato {tuple(samples.shape)}.")
    configs = autoround_configs(method, bits, group_size, iters, n_grid, lr)
    from auto_round import AutoRound

    device = next(model.parameters()).device
    with quiet_autoround(), _scratch_workspace(), _frozen_garbage_collector(), _notebook_progress_bars():
        yield AutoRound(model, tokenizer=tokenizer, alg_configs=configs, dataset=[row[None] for row in samples],
                        nsamples=samples.shape[0], seqlen=samples.shape[1],
                        batch_size=min(BATCH_SIZE, samples.shape[0]), device_map=str(device),
                        enable_torch_compile=False)


def autoround_quantize(model, tokenizer, samples, method: str, bits: int = 4, group_size: int = 64, iters: int = 10,
                       n_grid: int = 10, lr: float | None = 0.05):
    """Quantiza `model` NO LUGAR com o AutoRound (`method`: "awq" ou "autoround", ver `autoround_configs`) e o
    devolve, com os pesos quantizados-desquantizados (em ponto flutuante, na grade de `bits` bits).

    samples: [amostras, tokens] de calibração (as mesmas janelas que as nossas implementações usam). A biblioteca
    calcula em bf16 (o padrão dela, `amp=True`, com um modelo fp32) e devolve o modelo em bf16; aqui ele volta ao
    dtype em que entrou (os pesos quantizados são exatos nele; embeddings e normas ficam com o arredondamento de bf16).
    Com `amp=False` ela calcularia em fp32: na CPU de 2 núcleos do curso, 28,6 s em vez de 16,4 s no AWQ, com
    perplexidade 33,08 em vez de 33,13 (medido em 02/12/2026; results/gptqmodel/README.md).
    """
    dtype = next(model.parameters()).dtype
    with _rounder(model, tokenizer, samples, method, bits, group_size, iters, n_grid, lr) as rounder:
        quantized, _ = rounder.quantize()
    return quantized.to(dtype)


def autoround_checkpoint(model, tokenizer, samples, method: str, out_dir: str | Path | None = None, bits: int = 4,
                         group_size: int = 64, iters: int = 10, n_grid: int = 10, lr: float | None = 0.05) -> Path:
    """Como `autoround_quantize`, mas salva um checkpoint no formato auto_round (pesos empacotados em inteiros) dentro
    de `out_dir` (padrão: um diretório temporário novo) e devolve a pasta dele (o AutoRound cria uma subpasta com o
    nome do esquema, ex. w4g64)."""
    if out_dir is None:
        out_dir = tempfile.mkdtemp(prefix="curso-02-autoround-")
    with _rounder(model, tokenizer, samples, method, bits, group_size, iters, n_grid, lr) as rounder:
        _, folders = rounder.quantize_and_save(str(out_dir), format=CHECKPOINT_FORMAT)
    return Path(folders if isinstance(folders, str) else folders[0])


def reload_dtype(device: str):
    """O dtype em que o checkpoint recarregado calcula: fp16 na GPU; bf16 na CPU, onde as lineares de inteiros do
    AutoRound em fp16 foram ~34x mais lentas (um forward de 256 tokens: 21,9 s em fp16, 0,64 s em bf16, medido em
    02/12/2026 numa CPU de 2 núcleos; results/gptqmodel/README.md)."""
    import torch

    return torch.float16 if str(device).startswith("cuda") else torch.bfloat16


def reload_quantized(out_dir: str | Path, device: str = "cpu"):
    """Recarrega um checkpoint salvo por `autoround_checkpoint` com o transformers (que usa o AutoRound instalado para
    montar as lineares de inteiros), no dtype de `reload_dtype(device)`."""
    from transformers import AutoModelForCausalLM

    with quiet_autoround():
        return AutoModelForCausalLM.from_pretrained(str(out_dir), device_map=device,
                                                    dtype=reload_dtype(device)).eval()


def describe_checkpoint(folder: str | Path, model, tokenizer, prompt: str, max_new_tokens: int = 20) -> None:
    """Mostra o que o checkpoint recarregado é: o tamanho dos pesos no disco, a classe das lineares (inteiros
    empacotados, não nn.Linear) e um texto gerado por ele, sem amostragem."""
    import torch

    folder = Path(folder)
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    linear = model.model.layers[0].mlp.down_proj
    print(f"  checkpoint: {size / 2**20:.1f} MiB de pesos em {folder.name}/; a down_proj recarregada é "
          f"{type(linear).__module__}.{type(linear).__name__} ({model.dtype})")
    inputs = tokenizer(prompt, return_tensors="pt").to(next(model.parameters()).device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    print("  gera:", repr(tokenizer.decode(out[0], skip_special_tokens=True)))
