"""Texto sem fim com memória fixa: janela deslizante e attention sinks (StreamingLLM).

O transformers 5 tirou o `SinkCache`; aqui está a versão do curso, em três peças pequenas:

- `shift_rotary`: move chaves que já receberam RoPE por `delta` posições;
- `evict_to_sinks_and_window`: corta um `DynamicCache` para os S primeiros tokens (sinks) e os
  mais recentes, re-posicionando as chaves que ficaram;
- `stepwise_nll`: avalia um texto token a token, como num chat que nunca acaba, devolvendo o
  -log p de cada token e o maior número de tokens que o cache chegou a guardar.

Posições (como no artigo, Xiao et al. 2023, seção 3.2): a posição de cada token é o seu lugar
**dentro do cache**, não no texto. Com S=4 e W=1020, o cache tem 1024 lugares, e um token novo
sempre entra na posição len(cache). Quando um token da janela sai, os que vêm depois dele
andam uma posição para trás: como as chaves no cache já estão giradas pelo RoPE da posição
antiga, giramos de novo por -1 (RoPE compõe: R(p)·R(-1) = R(p-1)). Os valores não têm posição
e só são cortados.
"""

import math

import torch
from tqdm.auto import tqdm


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) nas duas metades da última dimensão, a convenção do Llama no transformers."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def shift_rotary(keys: torch.Tensor, delta: int, inv_freq: torch.Tensor) -> torch.Tensor:
    """Chaves com RoPE da posição p viram chaves com RoPE da posição p + delta.

    k' = k·cos(delta·θ) + rotate_half(k)·sin(delta·θ), com θ = inv_freq repetido nas duas metades.
    A conta é feita em fp32 e volta ao dtype das chaves.
    """
    angle = delta * inv_freq.to(device=keys.device, dtype=torch.float32)
    angle = torch.cat((angle, angle))
    k = keys.float()
    return (k * angle.cos() + rotate_half(k) * angle.sin()).to(keys.dtype)


def rotary_inv_freq(model) -> torch.Tensor:
    """As frequências do RoPE que o modelo usa (o módulo `rotary_emb` de modelos tipo Llama)."""
    for module in model.modules():
        if hasattr(module, "inv_freq") and getattr(module, "attention_scaling", 1.0) == 1.0:
            return module.inv_freq
    raise ValueError("Não achei o RoPE deste modelo (um módulo com `inv_freq` e sem escala de atenção). "
                     "stepwise_nll com janela só funciona em modelos tipo Llama/Mistral com RoPE padrão.")


def evict_to_sinks_and_window(cache, sinks: int, keep: int, inv_freq: torch.Tensor) -> int:
    """Deixa em cada camada do cache os `sinks` primeiros tokens e os `keep - sinks` mais recentes.

    Os tokens do meio saem; as chaves dos recentes giram para trás tantas posições quantas saíram,
    para que as posições no cache continuem 0, 1, ..., keep-1. Devolve quantos tokens saíram.
    """
    removed = 0
    for layer in cache.layers:
        if getattr(layer, "keys", None) is None:  # cache ainda vazio
            return 0
        n = layer.keys.shape[-2]
        removed = n - keep
        if removed <= 0:
            return 0
        recent = slice(sinks + removed, None)
        layer.keys = torch.cat([layer.keys[..., :sinks, :],
                                shift_rotary(layer.keys[..., recent, :], -removed, inv_freq)], dim=-2)
        layer.values = torch.cat([layer.values[..., :sinks, :], layer.values[..., recent, :]], dim=-2)
    return removed


def tokens_in_cache(token: int, sinks: int, cache_size: int) -> list:
    """Quais tokens do texto estão no cache (em ordem: posição 0, 1, ...) quando o token `token` é lido.

    A regra de `stepwise_nll` com `window = cache_size - sinks`: os `sinks` primeiros tokens (ou todos os lidos até
    aqui, se forem menos) e os mais recentes até `token`, inclusive, sem passar de `cache_size` lugares.
    """
    if cache_size < 1 or not 0 <= sinks < cache_size or token < 0:
        raise ValueError("Use cache_size >= 1, 0 <= sinks < cache_size e token >= 0.")
    first = list(range(min(sinks, token + 1)))
    recent = list(range(max(sinks, token - (cache_size - sinks) + 1), token + 1))
    return first + recent


@torch.inference_mode()
def stepwise_nll(model, input_ids, cache=None, sinks: int = 0, window: int | None = None, prefill: int = 1,
                 progress: bool = True) -> dict:
    """Avalia o texto um token por vez, com K e V vindo do cache.

    window=None: o cache cresce sem limite (contexto inteiro) — serve para qualquer tipo de cache,
    inclusive os quantizados. Com `window`: antes de cada passo o cache é cortado para `sinks`
    tokens iniciais + os `window - 1` mais recentes, e o token novo entra na posição len(cache);
    durante a atenção o cache tem no máximo sinks + window tokens (sinks=0: só a janela).

    prefill: quantos tokens do começo entram numa passada só, como o prompt de um chat (padrão 1: tudo token
    a token). É com eles que o cache é criado: um cache que calibra a escala na primeira atualização (o fp8 do
    transformers) calibra nesses tokens. O -log p deles sai dessa mesma passada.

    Devolve {"nll": tensor [n-1] com -log p(x_t | contexto) para t = 1..n-1,
             "cache_tokens_max": o maior número de tokens no cache durante a atenção}.
    """
    from transformers import DynamicCache

    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if input_ids.shape[0] != 1:
        raise ValueError("stepwise_nll espera um único texto (batch 1).")
    if window is not None and (window < 1 or sinks < 0):
        raise ValueError("Use window >= 1 e sinks >= 0.")
    n = input_ids.shape[1]
    if not 1 <= prefill < n:
        raise ValueError(f"prefill deve ficar entre 1 e o número de tokens menos 1 ({n - 1}); veio {prefill}.")
    if window is not None and prefill > sinks + window:
        raise ValueError("Com janela, o prefill precisa caber no cache: prefill <= sinks + window.")
    device = next(model.parameters()).device
    ids = input_ids.to(device)
    if cache is None:
        cache = DynamicCache(config=model.config)
    inv_freq = rotary_inv_freq(model) if window is not None else None
    nll = torch.empty(n - 1, dtype=torch.float64)
    out = model(ids[:, :prefill], past_key_values=cache, use_cache=True,
                position_ids=torch.arange(prefill, device=device)[None])
    cache_tokens_max = cache.get_seq_length()
    logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
    nll[:prefill] = -logprobs.gather(1, ids[0, 1:prefill + 1, None])[:, 0].double().cpu()
    for t in tqdm(range(prefill, n - 1), desc="passo a passo", disable=not progress, leave=False, mininterval=5):
        if window is not None:
            evict_to_sinks_and_window(cache, sinks, sinks + window - 1, inv_freq)
        position = cache.get_seq_length()
        out = model(ids[:, t:t + 1], past_key_values=cache, use_cache=True,
                    position_ids=torch.tensor([[position]], device=device))
        cache_tokens_max = max(cache_tokens_max, cache.get_seq_length())
        logprobs = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        nll[t] = -logprobs[ids[0, t + 1]].item()
    return {"nll": nll, "cache_tokens_max": cache_tokens_max}


@torch.inference_mode()
def full_context_nll(model, input_ids) -> torch.Tensor:
    """-log p(x_t | x_<t) de cada token numa única passada com o texto inteiro (atenção completa)."""
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    device = next(model.parameters()).device
    ids = input_ids.to(device)
    logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    return -logprobs.gather(1, ids[0, 1:, None])[:, 0].double().cpu()


def nll_to_perplexity(nll) -> float:
    """exp(média do -log p)."""
    nll = torch.as_tensor(nll, dtype=torch.float64)
    return math.exp(nll.mean().item())


# ---------------------------------------------------------------- o material antigo, com o seu bug (notebook 04)

@torch.inference_mode()
def seed_sliding_window_hidden_states(model, input_ids, window_size: int = 1024, stride: int = 512):
    """O `sliding_window_attention` do material antigo (sem máscara nem escolha de dispositivo), para a lição rodá-lo.

    Costura os estados ocultos da última camada janela a janela. O bug: de cada janela ele guarda as posições
    start..start+stride, as PRIMEIRAS da janela, que são as que têm menos contexto (a posição `start` não vê nada
    antes dela); e o laço continua depois que uma janela chega ao fim do texto, reescrevendo a cauda com janelas
    cada vez menores. Cada posição acaba com menos de `stride` tokens de contexto. Não use.
    """
    batch_size, seq_length = input_ids.size()
    if seq_length <= window_size:
        return model(input_ids=input_ids, output_hidden_states=True).hidden_states[-1]
    all_hidden_states = torch.zeros((batch_size, seq_length, model.config.hidden_size), device=input_ids.device)
    for start_idx in range(0, seq_length, stride):
        end_idx = min(start_idx + window_size, seq_length)
        window_hidden_states = model(input_ids=input_ids[:, start_idx:end_idx],
                                     output_hidden_states=True).hidden_states[-1]
        if start_idx == 0:
            valid_end_idx = min(stride, end_idx)
            all_hidden_states[:, :valid_end_idx] = window_hidden_states[:, :valid_end_idx]
        elif end_idx == seq_length:
            last_valid_idx = start_idx
            all_hidden_states[:, last_valid_idx:] = window_hidden_states[:, -(seq_length - last_valid_idx):]
        else:
            valid_start_idx, valid_end_idx = start_idx, min(start_idx + stride, end_idx)
            all_hidden_states[:, valid_start_idx:valid_end_idx] = \
                window_hidden_states[:, valid_start_idx - start_idx:valid_end_idx - start_idx]
    return all_hidden_states
