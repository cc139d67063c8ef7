# %% [markdown]
# # 04 · Janela deslizante e attention sinks: textos longos com memória limitada
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - medir a perplexidade de um texto mais longo que a janela do modelo do jeito certo (janela, passo e quais tokens
#   são avaliados), e quanto isso custa;
# - explicar a atenção com janela deslizante do Mistral: a máscara, o cache que guarda só os últimos W-1 tokens e o
#   campo receptivo que cresce camada a camada (medido com gradientes);
# - reproduzir o achado do StreamingLLM: com um cache de tamanho fixo, jogar fora os primeiros tokens faz a
#   perplexidade explodir, e guardar só 4 deles (os *attention sinks*) resolve — com um cache escrito por nós.
#
# **Pré-requisitos.** Notebook 01 (medidas); saber o que é atenção (consultas, chaves, valores). O pouco que usamos do
# cache KV é explicado na seção 2 (o notebook 05 o abre por inteiro); o RoPE é explicado na seção 4.
# **Tempo estimado.** 40 minutos de leitura; a execução completa leva uns 2 minutos numa CPU de 2 núcleos.
# **Hardware.** CPU serve: num runtime de CPU (o padrão do Colab para este notebook) tudo roda. Com GPU (T4 no Colab)
# tudo roda igual, mais rápido.
#
# Todo número impresso aqui é medido agora, nesta execução.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` é uma versão rápida de cada experimento (textos mais curtos); as afirmações continuam sendo conferidas no
# que for medido.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
EVAL_TOKENS = 2048               # texto longo da seção 1 (perplexidade com janela e passo)
PPL_WINDOW = 1024                # janela da avaliação com passo
STRIDES = [1024, 512, 256]       # passos comparados
STREAM_TOKENS = None             # tokens avaliados um a um na seção 4 (None: 384 na CPU, 2048 na GPU)
CACHE_SIZE = 128                 # lugares no cache durante o streaming (sinks + janela)
SINKS = 4                        # attention sinks: os primeiros tokens, que nunca saem do cache
TORCH_THREADS = None             # threads do torch neste notebook (None: o padrão, todos os núcleos)

# %%
from course_utils.environment import environment_info, pick_device, quiet_libraries

quiet_libraries()   # antes das outras importações: o transformers importa o torchao, que avisa ao carregar

import math
import time

import matplotlib.pyplot as plt
import torch
from transformers import DynamicCache, MistralConfig, MistralForCausalLM
from transformers.masking_utils import sliding_window_causal_mask_function

from course_utils.data import text_token_ids
from course_utils.display import explore, show_source
from course_utils.exercises import check
from course_utils.generation import cache_nbytes, kv_cache_bytes
from course_utils.models import load_model, load_tokenizer
from course_utils.plotting import plot_bars, plot_lines
from course_utils.results import claim, claim_skipped, record
from course_utils.streaming import (
    evict_to_sinks_and_window,
    full_context_nll,
    nll_to_perplexity,
    seed_sliding_window_hidden_states,
    shift_rotary,
    stepwise_nll,
    tokens_in_cache,
)

# %% [markdown]
# Na versão rápida, textos mais curtos e uma thread do torch; depois o modelo (em fp32) e o texto de avaliação.

# %%
if SMOKE:  # versão rápida; 1 thread do torch: numa máquina de 2 núcleos dividida, mais threads só disputam os núcleos
    EVAL_TOKENS, STRIDES, STREAM_TOKENS, CACHE_SIZE = 2048, [1024, 256], STREAM_TOKENS or 256, 64
    TORCH_THREADS = TORCH_THREADS or 1
if TORCH_THREADS:
    torch.set_num_threads(TORCH_THREADS)

torch.set_flush_denormal(True)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
# cada token do streaming custa uma passada do modelo inteiro (~0,08 s numa CPU de 2 núcleos): na CPU, um texto menor
STREAM_TOKENS = STREAM_TOKENS or (2048 if device.startswith("cuda") else 384)
print(environment_info())
tokenizer = load_tokenizer(MODEL_ID)
# fp32 também na GPU: o cache com sinks gira chaves a cada passo, e em fp16 o arredondamento se acumularia
model = load_model(MODEL_ID, device=device, dtype=torch.float32)
ids = text_token_ids(tokenizer, "en", max(EVAL_TOKENS, STREAM_TOKENS))
print(f"texto de avaliação: {ids.shape[1]} tokens (inglês, escrito para o curso)")


# %% [markdown]
# ## 1. Perplexidade de um texto longo, do jeito certo
#
# Perplexidade é exp(média de -log p(token | tokens anteriores)). Com um texto maior que a janela que queremos usar
# (aqui, janelas de `PPL_WINDOW` tokens — a atenção custa O(n²), e muitos modelos nem aceitam mais que isso), há dois
# jeitos de avaliar:
#
# - **janelas disjuntas** (passo = janela): barato, mas o primeiro token de cada janela não tem contexto nenhum, o
#   segundo tem um token de contexto, e assim por diante — a perplexidade sai pior do que o modelo realmente é;
# - **janela deslizante com passo** `s < janela`: a janela anda `s` tokens por vez e só os últimos `s` tokens de cada
#   janela são avaliados; os `janela - s` anteriores servem só de contexto. Cada token é avaliado **uma vez**, e fora da
#   primeira janela com pelo menos `janela - s` tokens de contexto. O custo é ⌈(n - janela)/s⌉ + 1 passadas de `janela` tokens.
#
# Um detalhe que muda a comparação: o primeiro token de uma janela não tem nada antes dele *na janela*, então não é
# avaliado. Com janelas disjuntas isso acontece no começo de cada janela; com passo menor, só no começo do texto. Para
# comparar igual com igual, calculamos o -log p de cada token e tiramos a média **sobre os mesmos tokens** em todos os
# passos (os que todas as configurações avaliam).
#
# O desenho mostra as primeiras janelas com passo 512: cinza é contexto, azul é o que é avaliado.

# %%
def window_plan(n, window, stride):
    """(início, fim, primeiro avaliado) de cada janela: avalia de `primeiro` a `fim - 1`, cada token uma vez."""
    plan, scored_until, begin = [], 1, 0
    while True:
        end = min(begin + window, n)
        plan.append((begin, end, max(scored_until, begin + 1)))
        scored_until = end
        if end == n:
            return plan
        begin += stride

fig, ax = plt.subplots(figsize=(8, 2.6))
plan = window_plan(EVAL_TOKENS, PPL_WINDOW, 512)[:5]
for row, (begin, end, first) in enumerate(plan):
    ax.broken_barh([(begin, first - begin), (first, end - first)], (row - 0.35, 0.7), color=["0.8", "tab:blue"])
ax.set_yticks(range(len(plan)), [f"janela {k + 1}" for k in range(len(plan))])
ax.invert_yaxis()
ax.set_xlabel("posição no texto (tokens)")
ax.set_title(f"Janela {PPL_WINDOW}, passo 512: contexto (cinza) e tokens avaliados (azul)")
plt.show()

# %% [markdown]
# O -log p de cada token avaliado, janela a janela (NaN nos que a regra não avalia): o token `t` é previsto pelos
# logits da posição `t - 1` da mesma janela.

# %%
def strided_nll(model, ids, window, stride):
    """-log p(x_t | janela) de cada token t = 1..n-1 (NaN nos não avaliados), como full_context_nll."""
    nll = torch.full((ids.shape[1] - 1,), float("nan"), dtype=torch.float64)
    for begin, end, first in window_plan(ids.shape[1], window, stride):
        with torch.inference_mode():
            logits = model(ids[:, begin:end].to(device)).logits[0, first - begin - 1:end - begin - 1].float()
        targets = ids[0, first:end].to(device)
        nll[first - 1:end - 1] = -torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0].double().cpu()
    return nll


# %% [markdown]
# Agora a medida: para cada passo, a perplexidade, o número de passadas (contado com um *hook* no modelo, não pela
# fórmula) e o tempo. Como referência, o mesmo texto numa passada só com atenção completa — o modelo aceita mais
# posições que o texto (o limite sai impresso abaixo), então aqui dá para calcular a resposta "sem janela" e ver quem
# chega perto dela.

# %%
calls = []
hook = model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(1), with_kwargs=True)
eval_ids = ids[:, :EVAL_TOKENS]
with torch.inference_mode():
    model(eval_ids[:, :PPL_WINDOW].to(device))  # aquecimento: a primeira passada paga inicializações
strided, nlls = {}, {}
for stride in STRIDES:
    calls.clear()
    start = time.perf_counter()
    nlls[stride] = strided_nll(model, eval_ids, PPL_WINDOW, stride)
    seconds = time.perf_counter() - start
    strided[stride] = {"passes": len(calls), "seconds": seconds, "scored": int(nlls[stride].isfinite().sum())}
    expected_passes = math.ceil((EVAL_TOKENS - PPL_WINDOW) / stride) + 1
    assert len(calls) == expected_passes, (len(calls), expected_passes)
hook.remove()
nll_full_eval = full_context_nll(model, eval_ids)

# %% [markdown]
# As médias saem sobre os mesmos tokens em todos os passos (os que todas as configurações avaliam), e o contexto
# inteiro é a régua:

# %%
common = torch.stack([nlls[s].isfinite() for s in STRIDES]).all(0)   # tokens que todos os passos avaliam
for stride in STRIDES:
    strided[stride]["ppl"] = nll_to_perplexity(nlls[stride][common])
    print(f"passo {stride:5d}: perplexidade {strided[stride]['ppl']:6.2f}  {strided[stride]['passes']:3d} passadas  "
          f"{strided[stride]['seconds']:6.1f} s  ({strided[stride]['scored']} tokens avaliados)")
ppl_full_eval = nll_to_perplexity(nll_full_eval[common])
print(f"contexto inteiro ({EVAL_TOKENS} tokens numa passada; o modelo aceita até "
      f"{model.config.max_position_embeddings}): perplexidade {ppl_full_eval:.2f}; médias sobre os mesmos "
      f"{int(common.sum())} tokens")

# %% [markdown]
# Perplexidade e custo lado a lado, e o que afirmamos sobre os dois:

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
plot_bars([str(s) for s in STRIDES], [strided[s]["ppl"] for s in STRIDES],
          "Perplexidade por passo (menor = melhor)", "perplexidade", ax=axes[0], fmt="{:.2f}")
axes[0].axhline(ppl_full_eval, color="k", ls="--", label="contexto inteiro")
axes[0].set_ylim(0.97 * ppl_full_eval, 1.02 * max(strided[s]["ppl"] for s in STRIDES))   # as diferenças são de poucos %
axes[0].set_xlabel("passo (tokens)")
axes[0].legend()
plot_bars([str(s) for s in STRIDES], [strided[s]["seconds"] for s in STRIDES],
          "Custo da avaliação", "segundos", ax=axes[1], color="tab:orange")
axes[1].set_xlabel("passo (tokens)")
plt.tight_layout()
plt.show()

smallest, disjoint = min(STRIDES), PPL_WINDOW
claim("passo menor: perplexidade menor e mais perto do contexto inteiro (mesmos tokens)",
      ppl_full_eval <= strided[smallest]["ppl"] < strided[disjoint]["ppl"] * 0.99,
      measured=strided[smallest]["ppl"] / strided[disjoint]["ppl"])
if not device.startswith("cuda"):  # na GPU cada passada leva milissegundos e o ruído do relógio domina
    claim("CPU: passo menor custa mais tempo", strided[smallest]["seconds"] > 1.5 * strided[disjoint]["seconds"],
          measured=strided[smallest]["seconds"] / strided[disjoint]["seconds"])
else:
    claim_skipped("CPU: passo menor custa mais tempo", "na GPU cada passada leva milissegundos")

# %% [markdown]
# O que a medida mostra: com janelas disjuntas a perplexidade sai mais alta, porque uma parte dos tokens é avaliada quase
# sem contexto; diminuindo o passo, ela se aproxima da resposta com o contexto inteiro, e o custo cresce na proporção do
# número de passadas. Compare no gráfico quanto da melhora já vem com o passo de metade da janela e quanto custa ir além.
# **Sempre diga a janela e o passo** ao publicar uma perplexidade: números com configurações diferentes não se comparam.
#
# ### O erro do material antigo: costurar as posições com menos contexto
#
# O material antigo deste curso tinha uma função `sliding_window_attention` que costurava os estados ocultos de janelas
# com passo (copiada em `course_utils.streaming.seed_sliding_window_hidden_states`):

# %%
show_source(seed_sliding_window_hidden_states)

# %% [markdown]
# De cada janela que começa em `start_idx`, ela guarda `window_hidden_states[:, 0:stride]`: as **primeiras** `stride`
# posições da janela, as que têm menos contexto (a posição `start_idx` não vê nenhum token antes dela). O certo é o
# contrário (o que `strided_nll` faz): guardar as **últimas** posições, que têm pelo menos `janela - passo` tokens antes.
# E o laço não para quando uma janela chega ao fim do texto: as janelas seguintes, cada vez menores, reescrevem a cauda.
# Resultado: cada posição fica com menos de `stride` tokens de contexto. Medimos com o `lm_head` (a última camada, que
# transforma estados em logits) sobre os estados costurados, contra o passo 512 certo da seção 1 (a mesma medida; a
# média agora é sobre todos os tokens que a costura avalia, e não só sobre os comuns a todos os passos, por isso o
# número muda um pouco):

# %%
seed_ids = eval_ids[:, :2 * PPL_WINDOW]
with torch.inference_mode():
    seed_hidden = seed_sliding_window_hidden_states(model, seed_ids.to(device), window_size=PPL_WINDOW, stride=512)
    seed_logprobs = torch.log_softmax(model.lm_head(seed_hidden[0, :-1]).float(), -1)
seed_nll = -seed_logprobs.gather(1, seed_ids[0, 1:, None].to(device))[:, 0].double().cpu()
same_tokens = seed_ids.shape == eval_ids.shape and 512 in nlls   # a seção 1 já mediu o passo 512 nestes tokens
right_nll = nlls[512] if same_tokens else strided_nll(model, seed_ids, PPL_WINDOW, 512)
both = right_nll.isfinite()
ppl_seed, ppl_right = nll_to_perplexity(seed_nll[both]), nll_to_perplexity(right_nll[both])
print(f"{seed_ids.shape[1]} tokens, janela {PPL_WINDOW}, passo 512: costura antiga {ppl_seed:.2f} | últimas posições "
      f"de cada janela {ppl_right:.2f}")
claim("material antigo: costurar as primeiras posições de cada janela piora a perplexidade", ppl_seed > 1.05 * ppl_right,
      measured=ppl_seed / ppl_right)

# %% [markdown]
# ## 2. Atenção com janela deslizante (Mistral)
#
# Na atenção causal comum, o token i olha para todos os tokens 0..i. Na **janela deslizante** (Mistral-7B-v0.1, janela de
# 4.096 tokens: [Jiang et al., 2023, nas referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#mistral)),
# ele olha só para os últimos W tokens, i-W+1..i. Abaixo, a máscara que o próprio transformers usa no
# Mistral (`sliding_window_causal_mask_function`), ao lado da causal comum.

# %%
n_demo, w_demo = 16, 5
q_idx, kv_idx = torch.arange(n_demo)[:, None], torch.arange(n_demo)[None, :]
causal = kv_idx <= q_idx
sliding = sliding_window_causal_mask_function(w_demo)(0, 0, q_idx, kv_idx)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, mask, title in zip(axes, [causal, sliding], ["causal", f"janela deslizante (W={w_demo})"], strict=True):
    ax.imshow(mask, cmap="Blues")
    ax.set_title(title)
    ax.set_xlabel("chave (posição)")
    ax.set_ylabel("consulta (posição)")
plt.tight_layout()
plt.show()
print(f"pares (consulta, chave) permitidos: causal {int(causal.sum())}, janela {int(sliding.sum())} "
      f"(cresce como n·W em vez de n²/2)")

# %% [markdown]
# ### O cache KV, e o cache de uma janela
#
# Ao gerar texto, cada token novo precisa das chaves $K$ e valores $V$ de todos os anteriores, em cada camada. Em vez de
# recalculá-los a cada passo, o modelo os guarda num **cache KV**: a cada token, só o token novo passa pelo modelo, e
# seus $K, V$ entram no cache (o notebook 05 mede quanto isso acelera e quanto ocupa).
#
# Se nenhuma consulta olha mais de W-1 tokens para trás, o cache não precisa guardar mais que isso. O artigo do Mistral
# descreve um *rolling buffer* (o token i vai para o lugar i mod W, sobrescrevendo o que saiu da janela). O transformers
# 5 faz de outro jeito, que dá o mesmo resultado: um `DynamicCache` criado com a configuração de um modelo com
# `sliding_window` concatena o token novo e **corta** os tensores para os últimos W-1 tokens
# (`keys[:, :, -W + 1:, :]`, em `DynamicSlidingWindowLayer`; [o código](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#hf-sliding-cache)), em ordem; cada
# passo copia o que ficou.
#
# Para ver sem baixar nada, construímos um Mistral minúsculo com pesos aleatórios (4 camadas, janela W=8) e geramos
# token a token com dois caches: o que corta na janela e um cache completo. O modelo é o mesmo e a máscara da janela é
# aplicada nos dois, então os logits devem ser iguais — a diferença está só na memória.

# %%
W_TINY, LAYERS_TINY = 8, 4
config_tiny = MistralConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS_TINY,
                            num_attention_heads=4, num_key_value_heads=2, sliding_window=W_TINY,
                            max_position_embeddings=256)
config_tiny._attn_implementation = "eager"
torch.manual_seed(SEED)
mistral = MistralForCausalLM(config_tiny).eval().to(device)
tiny_ids = torch.randint(0, 128, (1, 40), device=device)

window_cache, full_cache = DynamicCache(config=config_tiny), DynamicCache()
sizes_window, sizes_full = [], []
with torch.inference_mode():
    for t in range(tiny_ids.shape[1]):
        a = mistral(tiny_ids[:, t:t + 1], past_key_values=window_cache, use_cache=True).logits
        b = mistral(tiny_ids[:, t:t + 1], past_key_values=full_cache, use_cache=True).logits
        assert torch.allclose(a, b, atol=1e-5), f"passo {t}: cortar o cache nos últimos W-1 tokens mudou a saída"
        # get_seq_length() conta posições já vistas; o que está guardado é o tamanho dos tensores
        sizes_window.append(window_cache.layers[0].keys.shape[-2])
        sizes_full.append(full_cache.layers[0].keys.shape[-2])
print(f"mesmos logits nos {tiny_ids.shape[1]} passos; tokens guardados no fim: janela {sizes_window[-1]}, "
      f"completo {sizes_full[-1]}")
print(f"bytes no fim: janela {cache_nbytes(window_cache):_}, completo {cache_nbytes(full_cache):_}".replace("_", "\u2009"))
assert max(sizes_window) == W_TINY - 1
plot_lines(range(1, len(sizes_full) + 1), {"cache completo": sizes_full, f"cache da janela (W={W_TINY})": sizes_window},
           "Tokens guardados no cache durante a geração", "tokens gerados", "tokens no cache", marker=None)
plt.show()

# %% [markdown]
# O cache guarda W-1 tokens: o token atual entra na atenção junto com eles, somando W.
#
# ### O campo receptivo cresce com as camadas
#
# Se cada camada só olha W-1 tokens para trás, como o Mistral "lembra" de algo a 10 mil tokens? Porque a camada 2 olha
# para estados da camada 1, que já misturaram W-1 tokens anteriores: depois de L camadas, a informação pode ter andado
# até L·(W-1) posições (é o exercício 1). O artigo do Mistral faz a mesma conta com outra convenção: lá a posição i
# olha as posições i−W..i (W+1 posições, o próprio token a mais), e o alcance dá W·L.
#
# Dá para **medir** o campo receptivo: derivamos a saída da última posição, depois de k camadas, em relação aos
# embeddings de entrada. Uma posição de entrada influencia a saída só se esse gradiente não for zero.

# %%
n_rf = 48
embeds = mistral.get_input_embeddings()(torch.randint(0, 128, (1, n_rf), device=device)).detach().requires_grad_(True)
hidden = mistral(inputs_embeds=embeds, output_hidden_states=True).hidden_states
reach_measured, reach_theory = [], []
for k in range(1, LAYERS_TINY + 1):
    grad, = torch.autograd.grad(hidden[k][0, -1].sum(), embeds, retain_graph=True)
    influences = grad[0].abs().sum(-1) > 0
    earliest = int(influences.nonzero().min())
    reach_measured.append(n_rf - 1 - earliest)
    reach_theory.append(k * (W_TINY - 1))
    print(f"depois de {k} camada(s): a última posição enxerga {reach_measured[-1]} tokens para trás "
          f"(teoria k·(W-1) = {reach_theory[-1]})")
claim("campo receptivo medido = L(W-1)", reach_measured == reach_theory, measured=reach_measured[-1])
plot_lines(range(1, LAYERS_TINY + 1), {"medido (gradiente)": reach_measured, "k·(W-1)": reach_theory},
           f"Campo receptivo com janela W={W_TINY}", "camadas", "alcance (tokens para trás)")
plt.show()

# %% [markdown]
# Alcance teórico não é memória garantida: a informação precisa sobreviver a L passos de mistura, e na prática ela se
# dilui. Por isso o Mistral ainda é avaliado em tarefas de contexto longo, não só pelo cálculo do alcance.
#
# ## 3. Por que os primeiros tokens importam: attention sinks
#
# A softmax obriga cada consulta a distribuir massa 1 entre as chaves, mesmo quando nenhuma é relevante. Os modelos
# aprendem a "estacionar" esse excesso em tokens que todas as consultas enxergam: os primeiros do texto. Xiao et al.
# (2023) chamaram esses tokens de **attention sinks**. Vamos medir no modelo de referência: em cada camada, a fração
# média da atenção (consultas da posição 16 em diante, todas as cabeças) que vai para o primeiro token — e, para
# comparar, para o segundo token e o que a atenção uniforme daria.

# %%
eager = load_model(MODEL_ID, device=device, dtype=torch.float32, attn_implementation="eager")
with torch.inference_mode():
    attentions = eager(ids[:, :512].to(device), output_attentions=True).attentions
n_q = attentions[0].shape[-2]
uniform = (1.0 / torch.arange(17, n_q + 1).double()).mean().item()  # consulta q com atenção uniforme: 1/(q+1)
mass_first = [a[0, :, 16:, 0].mean().item() for a in attentions]
mass_second = [a[0, :, 16:, 1].mean().item() for a in attentions]
del eager, attentions
fig, ax = plt.subplots(figsize=(10, 3.5))
layers = range(len(mass_first))
ax.bar([i - 0.2 for i in layers], mass_first, width=0.4, label="1º token")
ax.bar([i + 0.2 for i in layers], mass_second, width=0.4, label="2º token")
ax.axhline(uniform, color="k", ls="--", label="atenção uniforme")
ax.set_yscale("log")
ax.set_xlabel("camada")
ax.set_ylabel("fração da atenção")
ax.set_title("Quanto da atenção vai para o início do texto")
ax.legend()
plt.show()
layers_with_sink = sum(m > 10 * uniform for m in mass_first)
print(f"atenção uniforme daria {uniform:.4f} por token; o 1º token recebe mais de 10x isso em "
      f"{layers_with_sink} de {len(mass_first)} camadas (mediana {sorted(mass_first)[len(mass_first) // 2]:.3f})")
claim("1º token recebe > 10x a atenção uniforme em pelo menos metade das camadas",
      layers_with_sink >= len(mass_first) / 2, measured=layers_with_sink / len(mass_first))

# %% [markdown]
# O primeiro token recebe muito mais atenção do que seu conteúdo justificaria, na maior parte das camadas (a contagem
# está acima). Agora imagine
# um cache que guarda só os últimos W tokens: quando o texto passa de W tokens, o primeiro sai do cache, e a massa que
# ia para ele precisa ir para outro lugar — a distribuição da atenção muda em todas as camadas ao mesmo tempo.
#
# ## 4. StreamingLLM: um cache com sinks + janela, escrito por nós
#
# O `SinkCache` não existe mais no transformers 5 (o substituto no Hub exige baixar código remoto), então o curso tem o seu, em
# `course_utils/streaming.py`. A regra: o cache tem `CACHE_SIZE` lugares; os `SINKS` primeiros tokens nunca saem; os
# demais lugares são uma janela dos tokens mais recentes. E as posições do RoPE?
#
# **Posições dentro do cache** (como no artigo): o token novo entra sempre na posição len(cache), então as posições vão
# de 0 a CACHE_SIZE-1 — nunca passam do que o modelo viu no treino, por mais longo que o texto seja. Quando um token da
# janela sai, todos os que vieram depois andam uma posição para trás. As chaves guardadas já foram giradas pelo RoPE da
# posição antiga, e é preciso girá-las para a nova.
#
# **O RoPE.** Cada chave (e consulta) de dimensão $d$ é lida como $d/2$ pares de números; o par $i$ é um ponto no plano
# que o RoPE gira por um ângulo proporcional à posição $p$, com frequência $\theta_i = b^{-2i/d}$ (`inv_freq`; $b$ é a
# base, `rope_theta`: 10.000 no Llama 2, 100.000 no SmolLM2-135M):
# $$\begin{pmatrix} k'_1 \\ k'_2 \end{pmatrix} = \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\
# \sin p\theta_i & \cos p\theta_i \end{pmatrix} \begin{pmatrix} k_1 \\ k_2 \end{pmatrix}.$$
# No transformers o par $i$ é (coordenada $i$, coordenada $i + d/2$), e a rotação se escreve
# $k' = k\cos(p\theta) + \text{rotate\_half}(k)\sin(p\theta)$, com `rotate_half`$(k_1, k_2) = (-k_2, k_1)$ nas duas
# metades. Rotações se compõem, $R(p)R(\delta) = R(p + \delta)$: uma chave girada para a posição $p$ vai para
# $p + \delta$ girando mais $\delta$ (com $\delta = -1$, uma posição para trás). É o que `shift_rotary` faz:

# %%
show_source(shift_rotary)

# %% [markdown]
# Conferimos a identidade com o RoPE do próprio transformers: girar por -97 chaves calculadas nas posições 100..105 dá
# o mesmo que calculá-las nas posições 3..8.

# %%
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

rotary = model.model.rotary_emb
k = torch.randn(1, 3, 6, model.config.head_dim, device=device)
positions = torch.arange(100, 106, device=device)[None]
cos, sin = rotary(k, positions)
_, k_at_100 = apply_rotary_pos_emb(k, k, cos, sin)
cos, sin = rotary(k, positions - 97)
_, k_at_3 = apply_rotary_pos_emb(k, k, cos, sin)
print("girar por -97 as chaves das posições 100..105 = calcular nas posições 3..8:",
      torch.allclose(shift_rotary(k_at_100, -97, rotary.inv_freq), k_at_3, atol=1e-4))
assert torch.allclose(shift_rotary(k_at_100, -97, rotary.inv_freq), k_at_3, atol=1e-4)


# %% [markdown]
# A regra de despejo do cache, com a rotação (a função que o `stepwise_nll` chama antes de cada token):

# %%
show_source(evict_to_sinks_and_window)

# %% [markdown]
# Linha a linha: em cada camada, `removed` é quantos tokens passam de `keep`; ficam os `sinks` primeiros e os que vêm
# depois dos removidos (`recent`); as chaves de `recent` giram `-removed` posições (elas andaram esse tanto para trás),
# os valores só são cortados (não têm posição). Mexa nos sinks e no tamanho do cache para ver quais tokens ficam e em
# que posição:

# %%
def show_eviction(sinks=2, cache_size=6, token=12):
    """Quais tokens do texto estão no cache (e em que posição) quando o token `token` é lido."""
    sinks = min(sinks, cache_size - 1)
    kept = tokens_in_cache(token, sinks, cache_size)   # a regra do stepwise_nll (conferida contra ele nos testes)
    print(f"S={sinks}, cache de {cache_size}: lendo o token {token:2d}, o cache tem os tokens {kept} "
          f"nas posições {list(range(len(kept)))}")


for t in (1, 5, 6, 7, 12):
    show_eviction(token=t)
explore(show_eviction, sinks=(0, 8, 1), cache_size=(2, 16, 1), token=(0, 40, 1))

# %% [markdown]
# E o laço que lê o texto token a token com essa regra, `stepwise_nll`. Linha a linha, depois das validações: o
# *prefill* põe os primeiros tokens no cache numa passada; antes de cada token seguinte, o cache é cortado para
# `sinks + window - 1` tokens (`evict_to_sinks_and_window`, acima); o token novo entra na posição
# `cache.get_seq_length()` (os `position_ids`), ou seja, a posição **dentro do cache**, como no artigo, e não a posição
# no texto; o -log p do próximo token sai dos logits desse passo.

# %%
show_source(stepwise_nll)

# %% [markdown]
# Agora o experimento do artigo, na escala do nosso modelo: o texto é lido **um token por vez**, como num chat que não
# acaba, e medimos -log p de cada próximo token com três memórias:
# 1. **contexto inteiro** (referência; uma passada com atenção completa, o que um cache sem limite daria);
# 2. **só janela**: cache de `CACHE_SIZE` tokens, os mais antigos saem;
# 3. **sinks + janela**: o mesmo tamanho de cache, mas os `SINKS` primeiros tokens ficam.

# %%
WINDOW = CACHE_SIZE - SINKS
stream_ids = ids[:, :STREAM_TOKENS]
nll_full = full_context_nll(model, stream_ids)

start = time.perf_counter()
window_only = stepwise_nll(model, stream_ids, sinks=0, window=CACHE_SIZE)
seconds_stream = time.perf_counter() - start
sink_cache = DynamicCache(config=model.config)
with_sinks = stepwise_nll(model, stream_ids, cache=sink_cache, sinks=SINKS, window=WINDOW)

ppl_full = nll_to_perplexity(nll_full)
ppl_window_only = nll_to_perplexity(window_only["nll"])
ppl_sinks_window = nll_to_perplexity(with_sinks["nll"])
tokens_evaluated = len(with_sinks["nll"])
print(f"{tokens_evaluated} tokens avaliados, {1000 * seconds_stream / tokens_evaluated:.0f} ms por token no streaming")
print(f"contexto inteiro:               perplexidade {ppl_full:8.2f}")
print(f"só janela (0+{CACHE_SIZE}):             perplexidade {ppl_window_only:8.2f}  "
      f"({ppl_window_only / ppl_full:.2f}x o contexto inteiro)")
print(f"{SINKS} sinks + janela ({SINKS}+{WINDOW}):     perplexidade {ppl_sinks_window:8.2f}  "
      f"({ppl_sinks_window / ppl_full:.2f}x o contexto inteiro)")

# %% [markdown]
# A perplexidade ao longo do texto conta a história: até o cache encher as três curvas coincidem (nada saiu ainda);
# quando o primeiro token sai, a curva "só janela" dispara, enquanto "sinks + janela" fica bem mais perto do contexto
# inteiro (quanto mais perto, a célula seguinte mede).

# %%
BIN = max(16, STREAM_TOKENS // 16)   # 16 médias ao longo do texto
def binned_perplexity(nll):
    usable = len(nll) // BIN * BIN
    return nll[:usable].view(-1, BIN).mean(1).exp().tolist()

centers = [BIN * (k + 0.5) for k in range(len(nll_full) // BIN)]
ax = plot_lines(centers, {"contexto inteiro": binned_perplexity(nll_full),
                          f"só janela (0+{CACHE_SIZE})": binned_perplexity(window_only["nll"]),
                          f"sinks + janela ({SINKS}+{WINDOW})": binned_perplexity(with_sinks["nll"])},
                f"Perplexidade ao longo do texto (média a cada {BIN} tokens)", "posição no texto (tokens)",
                "perplexidade", logy=True, marker=None)
ax.axvline(CACHE_SIZE, color="k", ls=":", label="cache cheio")
ax.legend()
plt.show()

assert torch.allclose(window_only["nll"][:CACHE_SIZE - 1], nll_full[:CACHE_SIZE - 1], atol=1e-3), \
    "antes de o cache encher, o streaming deveria dar o mesmo que o contexto inteiro"
# as afirmações olham só os tokens lidos depois que o cache encheu: antes disso as três memórias são iguais, e esses
# tokens diluiriam a diferença (tanto mais quanto mais curto o texto)
after = slice(CACHE_SIZE - 1, None)
full_after, window_after, sinks_after = (nll_to_perplexity(nll[after])
                                         for nll in (nll_full, window_only["nll"], with_sinks["nll"]))
# o que os sinks recuperam do que a janela sozinha perde: 0 = nada, 1 = tudo (igual ao contexto inteiro)
recovered = (window_after - sinks_after) / (window_after - full_after)
print(f"depois que o cache encheu ({len(nll_full[after])} tokens): só janela = {window_after / full_after:.2f}x o "
      f"contexto inteiro; os sinks recuperam {recovered:.0%} dessa perda")
claim("perder os primeiros tokens custa caro: depois que o cache enche, só janela >= 1,5x o contexto inteiro",
      window_after >= 1.5 * full_after, measured=window_after / full_after)
claim("4 sinks recuperam >= 60% do que a janela sozinha perde, depois que o cache enche", recovered >= 0.60,
      measured=recovered)

# %% [markdown]
# ### Memória: constante, por mais longo que seja o texto

# %%
cache_tokens_max = with_sinks["cache_tokens_max"]
bytes_sink_cache = cache_nbytes(sink_cache)
bytes_full_cache = kv_cache_bytes(model.config, STREAM_TOKENS, bytes_per_element=4)
print(f"maior ocupação do cache durante o streaming: {cache_tokens_max} tokens (S + W = {SINKS} + {WINDOW})")
print(f"bytes do cache com sinks ao fim: {bytes_sink_cache / 2**20:.2f} MiB; um cache com o texto inteiro "
      f"({STREAM_TOKENS} tokens, fp32) teria {bytes_full_cache / 2**20:.2f} MiB — e continuaria crescendo")
claim("cache fica em S + W", cache_tokens_max == SINKS + WINDOW, measured=cache_tokens_max)
assert bytes_sink_cache <= kv_cache_bytes(model.config, SINKS + WINDOW, bytes_per_element=4)

# %% [markdown]
# ### Ao lado do artigo
#
# O artigo mede o Llama-2-13B no primeiro livro do conjunto de teste do PG19, com cache de 1.024 lugares. Os números dele
# vêm das [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#streamingllm) (Xiao et al., ICLR 2024, Tabela 1); os nossos foram medidos acima.

# %%
model_name = MODEL_ID.split("/")[-1]
print(f"{'':44s}{'só janela':>12s}{'sinks + janela':>16s}{'razão':>8s}")
print(f"{'artigo: Llama-2-13B, 0+1024 / 4+1020':44s}{5158.07:12.2f}{5.40:16.2f}{5158.07 / 5.40:8.0f}")
print(f"{f'nós: {model_name}, 0+{CACHE_SIZE} / {SINKS}+{WINDOW}':44s}{ppl_window_only:12.2f}{ppl_sinks_window:16.2f}"
      f"{ppl_window_only / ppl_sinks_window:8.1f}")

# %% [markdown]
# A direção é a mesma; o tamanho do estrago, não. Diferenças que explicam: o modelo (13 B parâmetros contra os 135 M
# do nosso modelo de referência), o texto (um livro inteiro contra os `STREAM_TOKENS` tokens do nosso, impressos acima: quanto mais longo o
# streaming, maior a fração de tokens avaliados depois que os primeiros saíram do cache) e o tamanho do cache. O que se reproduz é o achado central: **a perplexidade não
# explode por falta de contexto, e sim por perder os primeiros tokens**; guardar 4 deles custa 4 lugares do cache e
# devolve a maior parte da qualidade perdida (a fração medida acima).
#
# Na geração de verdade o ganho é o mesmo: um chatbot com cache sinks + janela conversa indefinidamente com memória
# fixa. Ele não passa a lembrar do que saiu da janela — para isso é preciso outra coisa (resumos, busca).

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** O Mistral-7B-v0.1 tem 32 camadas e janela W = 4.096 (contando o próprio token, como na seção 2). Qual é
# o seu alcance teórico: quantos tokens para trás, no máximo, a saída da última camada na última posição pode
# depender? (É o que medimos com gradientes no Mistral minúsculo.)

# %% curso={"exercicio": "04.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número
check("04.1", resposta_1)


# %% [markdown]
# **Exercício 2.** Escreva a máscara de janela deslizante: `minha_mascara(n, w)` devolve um tensor bool `[n, n]` em
# que a linha é a consulta, a coluna é a chave, e `True` quer dizer "pode olhar". Não use a função do transformers.

# %% curso={"exercicio": "04.2", "resposta": "minha_mascara"} tags=["exercicio"]
def minha_mascara(n, w):
    # seu código aqui
    ...

check("04.2", minha_mascara)


# %% [markdown]
# **Exercício 3.** Escreva `massa_no_primeiro(attn)`: recebe pesos de atenção `[lote, cabeças, consultas, chaves]` e
# devolve a fração média da atenção dada à chave 0, sobre lote, cabeças e consultas — pulando a primeira consulta,
# que só pode olhar para si mesma.

# %% curso={"exercicio": "04.3", "resposta": "massa_no_primeiro"} tags=["exercicio"]
def massa_no_primeiro(attn):
    # seu código aqui
    ...

check("04.3", massa_no_primeiro)

# %% [markdown]
# **Exercício 4.** O `evict_to_sinks_and_window` corta o cache a cada token: cada corte copia o cache inteiro
# (`torch.cat`). Uma variante mais barata despeja **em blocos**: quando o cache passa de `sinks + window` tokens, tira de
# uma vez o menor múltiplo de `block` tokens (os mais antigos depois dos sinks) que o deixa com no máximo
# `sinks + window`. Escreva `despejar_em_blocos(keys, values, sinks, window, block, inv_freq)` para tensores
# `[lote, cabeças, tokens, dimensão]`: devolve `(keys, values)` com os sinks e os tokens recentes, e as chaves recentes
# giradas pelo RoPE para as posições novas (pode usar `shift_rotary`). Se o cache cabe, nada muda.

# %% curso={"exercicio": "04.4", "resposta": "despejar_em_blocos"} tags=["exercicio"]
def despejar_em_blocos(keys, values, sinks, window, block, inv_freq):
    # seu código aqui
    ...

check("04.4", despejar_em_blocos)

# %% [markdown]
# ## Resumo

# %%
for stride in STRIDES:
    record(f"ppl_stride_{stride}", strided[stride]["ppl"])
    record(f"seconds_stride_{stride}", strided[stride]["seconds"])
record("eval_tokens", EVAL_TOKENS)
record("ppl_full_context_eval", ppl_full_eval)
record("receptive_field_matches_theory", reach_measured == reach_theory)
record("attention_mass_first_token_median", sorted(mass_first)[len(mass_first) // 2])
record("ppl_full", ppl_full)
record("ppl_window_only", ppl_window_only)
record("ppl_sinks_window", ppl_sinks_window)
record("sinks_recovered_fraction", recovered)
record("window", WINDOW)
record("sinks", SINKS)
record("tokens_evaluated", tokens_evaluated)
record("cache_tokens_max", cache_tokens_max)
record("ms_per_token_streaming", 1000 * seconds_stream / tokens_evaluated)

# %% [markdown]
# **Para levar.** (1) Perplexidade de texto longo depende de janela e passo: diga os dois. (2) Janela deslizante limita
# o custo e o cache a W tokens por camada (W-1 guardados mais o atual), e o alcance cresce com a profundidade
# (L·(W-1)). (3) Os primeiros tokens são
# sumidouros de atenção: um cache de tamanho fixo precisa mantê-los, e com eles a perplexidade fica estável em textos
# de qualquer tamanho. Próximo: **05 · Cache KV**, que abre o cache usado aqui: o laço de geração, quanto o cache acelera
# e quanto ocupa.
