"""Geração de texto do zero: amostragem, laço de decodificação com KV cache e contas de memória do cache.

No espírito do gpt-fast e do nanoGPT: funções curtas em PyTorch puro, sem `model.generate`.
O laço é o de sempre num LM causal:

    prefill:  uma passada sobre o prompt inteiro enche o KV cache e dá os logits do 1º token novo
    decode:   a cada passo, só o último token entra no modelo; K e V dos anteriores vêm do cache

Sem cache (`use_cache=False`) cada passo reprocessa a sequência inteira: custo O(n²) em vez de O(n).
"""

import inspect
import time

import torch
from transformers import DynamicCache

from .measure import _sync, _tensor_pieces

# ---------------------------------------------------------------- filtros de logits

def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Mantém só os k maiores logits de cada linha; os demais viram -inf.

    limiar_b = k-ésimo maior logit da linha b;  l'_bi = l_bi se l_bi >= limiar_b, senão -inf.
    k=None, k=0 ou k >= vocabulário: nada a filtrar (devolve uma cópia). Empates no limiar
    ficam todos (como no transformers). Sempre devolve um tensor novo.
    """
    if k is None or k == 0 or k >= logits.shape[-1]:
        return logits.clone()
    if k < 0:
        raise ValueError(f"top_k precisa ser >= 0; recebi {k}.")
    threshold = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < threshold, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Amostragem de núcleo (nucleus, top-p): mantém o menor conjunto de tokens cuja probabilidade soma >= p.

    Com os tokens em ordem decrescente de probabilidade q_1 >= q_2 >= ..., remove o token j
    se a massa ANTES dele já passa de p:  sum_{i<j} q_i > p.  Assim o token que cruza p fica,
    e o primeiro (soma anterior = 0) sobrevive sempre.

    A máscara é calculada na ordem ORDENADA e volta às posições ORIGINAIS do vocabulário linha a
    linha (`scatter` com os índices da ordenação). O material antigo do curso fazia
    `logits[0, sorted_idx[mask]] = -inf`: certo com uma sequência, mas com lote > 1 a máscara
    booleana achata as linhas e todas as remoções caem na linha 0 (as outras ficam sem filtro).
    p=None ou p >= 1: nada a filtrar (devolve uma cópia).
    """
    if p is None or p >= 1.0:
        return logits.clone()
    if p < 0:
        raise ValueError(f"top_p precisa estar em [0, 1]; recebi {p}.")
    sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs           # sum_{i<j} q_i
    remove_sorted = mass_before > p
    remove_sorted[..., 0] = False                         # garante pelo menos um token
    remove = remove_sorted.scatter(-1, sorted_idx, remove_sorted)  # volta às posições originais
    return logits.masked_fill(remove, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Penalidade de repetição do CTRL (mesma regra do transformers), sem alterar `logits`.

    Para todo token t que já aparece em input_ids[b]:  l'_bt = l_bt * penalty se l_bt < 0,
    senão l_bt / penalty. Com penalty > 1 os dois casos diminuem a probabilidade de t.
    Tokens repetidos em input_ids contam uma vez só. penalty == 1: devolve uma cópia.
    Cada linha do lote usa os seus próprios tokens (o material antigo só olhava a linha 0); gather ->
    where -> scatter produzem um tensor novo, sem alterar `logits`.
    """
    if penalty <= 0:
        raise ValueError(f"A penalidade de repetição precisa ser > 0; recebi {penalty}.")
    if penalty == 1.0:
        return logits.clone()
    seen = torch.gather(logits, -1, input_ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, input_ids, seen)


def sample_next_token(
    logits: torch.Tensor,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Escolhe o próximo token de cada linha a partir dos logits [batch, vocab]; devolve LongTensor [batch].

    Guloso (do_sample=False): argmax_i l_i.
    Amostragem: l / T -> top-k -> top-p -> softmax -> sorteio (torch.multinomial).
    T < 1 concentra a distribuição, T > 1 achata. Com a mesma semente em `generator`, o sorteio se repete.
    """
    if not do_sample:
        return logits.argmax(dim=-1)
    if temperature <= 0:
        raise ValueError(f"A temperatura precisa ser > 0 com do_sample=True; recebi {temperature}.")
    logits = logits.float() / temperature
    logits = top_p_filter(top_k_filter(logits, top_k), top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


# ---------------------------------------------------------------- laço de geração

def _token_ids(token_id) -> list[int]:
    """None, um int ou uma lista de ints -> lista de ints."""
    if token_id is None:
        return []
    if isinstance(token_id, int):
        return [token_id]
    return [int(t) for t in token_id]


def _accepts(model, name: str) -> bool:
    """O forward do modelo aceita o argumento `name`?"""
    return name in inspect.signature(model.forward).parameters


@torch.inference_mode()
def generate(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    attention_mask: torch.Tensor | None = None,
    use_cache: bool = True,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    eos_token_id=None,
    pad_token_id: int | None = None,
    generator: torch.Generator | None = None,
    return_step_times: bool = False,
):
    """Gera até `max_new_tokens` tokens com um laço escrito à mão; devolve [batch, prompt + gerados].

    use_cache=True: passo 0 (prefill) roda o prompt inteiro com um DynamicCache vazio; cada passo
    seguinte roda só o último token, e o cache devolve K e V de todos os anteriores.
    use_cache=False: cada passo reprocessa a sequência inteira (mais lento, mesmo resultado).

    Batch com padding à ESQUERDA: a máscara de atenção (0 = pad) cresce uma coluna de 1 por passo,
    e as posições vêm da máscara, pos_t = (sum_{s<=t} mask_s) - 1 (pads ficam em 0), para que
    uma linha com padding use as mesmas posições (RoPE) que teria sozinha.

    Parada: quando todas as linhas já geraram um dos `eos_token_id` (int ou lista). Linhas que
    terminaram antes recebem `pad_token_id` (padrão: o primeiro eos). A penalidade de repetição
    olha a sequência inteira até agora (prompt + gerados), sem contar os pads da esquerda.
    return_step_times=True devolve também (ids, segundos por passo); o passo 0 é o prefill.
    """
    device = next(model.parameters()).device
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    ids = input_ids.to(device)
    if attention_mask is None:
        mask = torch.ones_like(ids)
    else:
        mask = attention_mask.to(device=device, dtype=torch.long).reshape(ids.shape)
    eos_ids = torch.tensor(_token_ids(eos_token_id), dtype=torch.long, device=device)
    if pad_token_id is None and len(eos_ids) > 0:
        pad_token_id = int(eos_ids[0])
    finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)

    cache = DynamicCache(config=model.config) if use_cache else None
    # Só os logits da última posição interessam: evita uma matriz [batch, prompt, vocab] no prefill.
    extra = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    step_times = []

    for step in range(max_new_tokens):
        start = time.perf_counter()
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        # Sem padding a máscara é só a causal: não a passamos (como o generate do transformers), e o
        # modelo usa o mesmo kernel de atenção; em fp16 isso importa para reproduzir os mesmos tokens.
        model_mask = None if bool(mask.all()) else mask
        if use_cache and step > 0:   # decode: só o token novo; o resto está no cache
            out = model(input_ids=ids[:, -1:], attention_mask=model_mask, position_ids=positions[:, -1:],
                        past_key_values=cache, use_cache=True, **extra)
        elif use_cache:              # prefill: o prompt inteiro enche o cache
            out = model(input_ids=ids, attention_mask=model_mask, position_ids=positions,
                        past_key_values=cache, use_cache=True, **extra)
        else:                        # sem cache: a sequência inteira, todo passo
            out = model(input_ids=ids, attention_mask=model_mask, position_ids=positions, use_cache=False, **extra)
        logits = out.logits[:, -1, :].float()

        if repetition_penalty != 1.0:
            # pads da esquerda viram o último token da linha (que já está no conjunto visto)
            seen = torch.where(mask.bool(), ids, ids[:, -1:])
            logits = apply_repetition_penalty(logits, seen, repetition_penalty)
        next_token = sample_next_token(logits, do_sample, temperature, top_k, top_p, generator)

        if len(eos_ids) > 0:
            next_token = torch.where(finished, torch.full_like(next_token, pad_token_id), next_token)
            finished = finished | torch.isin(next_token, eos_ids)
        ids = torch.cat([ids, next_token[:, None]], dim=-1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
        _sync()
        step_times.append(time.perf_counter() - start)
        if finished.all():
            break

    return (ids, step_times) if return_step_times else ids


# ---------------------------------------------------------------- memória do KV cache

def kv_cache_bytes(config, n_tokens: int, batch_size: int = 1, bytes_per_element: int = 2) -> int:
    """Bytes do KV cache de atenção completa, pela fórmula:

        2 (K e V) * camadas * cabeças_kv * head_dim * tokens * batch * bytes_por_elemento

    Lê num_hidden_layers, num_key_value_heads (padrão: num_attention_heads, ou seja, sem GQA) e
    head_dim (padrão: hidden_size // num_attention_heads) de uma config do transformers ou de um dict.
    Não considera janela deslizante nem camadas sem atenção.
    """
    if hasattr(config, "get_text_config"):
        config = config.get_text_config(decoder=True)
    get = config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
    layers = get("num_hidden_layers")
    heads = get("num_attention_heads")
    kv_heads = get("num_key_value_heads") or heads
    head_dim = get("head_dim") or get("hidden_size") // heads
    return 2 * layers * kv_heads * head_dim * n_tokens * batch_size * bytes_per_element


# estados que as camadas de cache do transformers 5 guardam (DynamicLayer, StaticLayer, quantizadas,
# atenção esparsa indexada, atenção linear); camadas vazias ou DummyLayer têm None aqui
_CACHE_STATE_ATTRS = ("keys", "values", "_quantized_keys", "_quantized_values", "indexer_keys",
                      "conv_states", "recurrent_states")


def _tensors(obj):
    """Os tensores dentro de obj: um tensor, ou tuplas/listas/dicts deles (ex.: (fp8, escala))."""
    if isinstance(obj, torch.Tensor):
        yield from _tensor_pieces(obj)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def cache_nbytes(cache) -> int:
    """Bytes guardados por um cache do transformers 5 (DynamicCache, StaticCache, QuantizedCache...).

    bytes = sum sobre as camadas (cache.layers[i]) e seus estados de numel * element_size.
    Numa DynamicLayer os estados são `.keys` e `.values`, [batch, cabeças_kv, tokens, head_dim].
    Camadas ainda não inicializadas (None) ou que não guardam nada (DummyLayer) contam 0.
    Caches quantizados guardam quase tudo em `_quantized_keys/_quantized_values` (no FP8, `.keys`
    fica vazio): esses tensores também entram. StaticCache conta o que foi pré-alocado.
    """
    if hasattr(cache, "self_attention_cache"):  # EncoderDecoderCache: dois caches dentro
        return cache_nbytes(cache.self_attention_cache) + cache_nbytes(cache.cross_attention_cache)
    total = 0
    for layer in cache.layers:
        for attr in _CACHE_STATE_ATTRS:
            for t in _tensors(getattr(layer, attr, None)):
                total += t.numel() * t.element_size()
    return total


def cache_holds_nan(cache) -> bool:
    """True se algum estado guardado no cache (os mesmos que `cache_nbytes` conta, inclusive os quantizados) tem NaN."""
    return any(torch.isnan(t.float()).any().item() for layer in cache.layers for attr in _CACHE_STATE_ATTRS
               for t in _tensors(getattr(layer, attr, None)) if t.is_floating_point())


# ---------------------------------------------------------------- cache fp8 com uma escala por token (notebook 05)

def fp8_per_token(x: torch.Tensor) -> tuple:
    """x [..., tokens, dim] -> (q em float8_e4m3fn, escala fp32 [..., tokens, 1]) com s = max|x| da linha / 448.

    Cada token (e cabeça) tem a sua escala, calculada na hora: nenhum valor passa de 448·s, então nada sai do alcance
    (nem satura, nem vira NaN, em qualquer versão do PyTorch). x ≈ q · s.
    """
    fp8 = torch.float8_e4m3fn
    scale = x.float().abs().amax(dim=-1, keepdim=True) / torch.finfo(fp8).max
    scale = scale.clamp(min=torch.finfo(torch.float32).tiny)   # uma linha de zeros daria escala 0
    return (x.float() / scale).to(fp8), scale


def per_token_fp8_cache():
    """Um cache do transformers cujas camadas guardam K e V em fp8 com uma escala por token e cabeça.

    Em cada camada, `keys`/`values` são os tensores fp8 e `_quantized_keys`/`_quantized_values` as escalas (fp32):
    `cache_nbytes` conta os dois. Cada `update` quantiza só os tokens novos e devolve K e V desquantizados.
    """
    from transformers.cache_utils import Cache, DynamicLayer

    class PerTokenFp8Layer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            (qk, sk), (qv, sv) = fp8_per_token(key_states), fp8_per_token(value_states)
            if not self.is_initialized:
                self.dtype, self.device, self.is_initialized = key_states.dtype, key_states.device, True
                self.keys, self.values, self._quantized_keys, self._quantized_values = qk, qv, sk, sv
            else:
                self.keys, self.values = torch.cat([self.keys, qk], -2), torch.cat([self.values, qv], -2)
                self._quantized_keys = torch.cat([self._quantized_keys, sk], -2)
                self._quantized_values = torch.cat([self._quantized_values, sv], -2)
            return ((self.keys.float() * self._quantized_keys).to(self.dtype),
                    (self.values.float() * self._quantized_values).to(self.dtype))

    return Cache(layer_class_to_replicate=PerTokenFp8Layer)
