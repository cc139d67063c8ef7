# %% [markdown]
# # 04 · Janela deslizante e attention sinks: textos longos com memória limitada
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - medir a perplexidade de um texto mais longo que a janela do modelo do jeito certo (janela, passo e quais tokens
#   são avaliados), e quanto isso custa;
# - explicar a atenção com janela deslizante do Mistral: a máscara, o cache circular que guarda só os últimos W tokens
#   e o campo receptivo que cresce camada a camada (medido com gradientes);
# - reproduzir o achado do StreamingLLM: com um cache de tamanho fixo, jogar fora os primeiros tokens faz a
#   perplexidade explodir, e guardar só 4 deles (os *attention sinks*) resolve — com um cache escrito por nós.
#
# **Pré-requisitos.** Notebook 05 (cache KV); RoPE em linhas gerais (a posição entra girando consultas e chaves).
# **Tempo estimado.** 40 minutos de leitura; a execução completa leva uns 12 minutos numa CPU de 2 núcleos.
# **Hardware.** CPU serve. Com GPU (T4 no Colab) tudo roda igual, mais rápido.
#
# Todo número impresso aqui é medido agora, nesta execução.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` encurta os textos para a CI; as afirmações do notebook continuam sendo conferidas no que for medido.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
EVAL_TOKENS = 4096               # texto longo da seção 1 (perplexidade com janela e passo)
PPL_WINDOW = 1024                # janela da avaliação com passo
STRIDES = [1024, 512, 256, 128]  # passos comparados
STREAM_TOKENS = 4096             # tokens avaliados um a um na seção 4 (streaming)
CACHE_SIZE = 128                 # lugares no cache durante o streaming (sinks + janela)
SINKS = 4                        # attention sinks: os primeiros tokens, que nunca saem do cache

# %%
import math
import time
import matplotlib.pyplot as plt
import torch
from transformers import DynamicCache, MistralConfig, MistralForCausalLM
from transformers.masking_utils import sliding_window_causal_mask_function

from course_utils.data import text_token_ids
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.generation import cache_nbytes, kv_cache_bytes
from course_utils.measure import perplexity
from course_utils.models import load_model, load_tokenizer
from course_utils.plotting import plot_bars, plot_lines
from course_utils.results import claim, record
from course_utils.streaming import full_context_nll, nll_to_perplexity, shift_rotary, stepwise_nll

if SMOKE:
    EVAL_TOKENS, STRIDES, STREAM_TOKENS, CACHE_SIZE = 2048, [1024, 256], 1024, 64

quiet_libraries()
torch.set_flush_denormal(True)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
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
#   janela são avaliados; os `janela - s` anteriores servem só de contexto. Cada token é avaliado **uma vez**, com pelo
#   menos `janela - s` tokens de contexto. O custo é ⌈(n - janela)/s⌉ + 1 passadas de `janela` tokens.
#
# O desenho mostra as primeiras janelas com passo 512: cinza é contexto, azul é o que é avaliado.

# %%
def window_plan(n, window, stride):
    """(início, fim, primeiro avaliado) de cada janela, a mesma regra de course_utils.measure.perplexity."""
    plan, scored_until, begin = [], 1, 0
    while True:
        end = min(begin + window, n)
        plan.append((begin, end, max(scored_until, begin + 1)))
        scored_until = end
        if end == n:
            return plan
        begin += stride

fig, ax = plt.subplots(figsize=(8, 2.6))
for row, (begin, end, first) in enumerate(window_plan(EVAL_TOKENS, PPL_WINDOW, 512)[:5]):
    ax.broken_barh([(begin, first - begin), (first, end - first)], (row - 0.35, 0.7), color=["0.8", "tab:blue"])
ax.set_yticks(range(5), [f"janela {k + 1}" for k in range(5)])
ax.invert_yaxis()
ax.set_xlabel("posição no texto (tokens)")
ax.set_title(f"Janela {PPL_WINDOW}, passo 512: contexto (cinza) e tokens avaliados (azul)")
plt.show()

# %% [markdown]
# Agora a medida: para cada passo, a perplexidade, o número de passadas (contado com um *hook* no modelo, não pela
# fórmula) e o tempo. Como referência, o mesmo texto numa passada só com atenção completa — o modelo aceita até
# 8.192 posições, então aqui dá para calcular a resposta "sem janela" e ver quem chega perto dela.

# %%
calls = []
hook = model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(1), with_kwargs=True)
eval_ids = ids[:, :EVAL_TOKENS]
with torch.inference_mode():
    model(eval_ids[:, :PPL_WINDOW].to(device))  # aquecimento: a primeira passada paga inicializações
strided = {}
for stride in STRIDES:
    calls.clear()
    start = time.perf_counter()
    ppl = perplexity(model, eval_ids, window=PPL_WINDOW, stride=stride, progress=False)
    seconds = time.perf_counter() - start
    strided[stride] = {"ppl": ppl, "passes": len(calls), "seconds": seconds}
    expected_passes = math.ceil((EVAL_TOKENS - PPL_WINDOW) / stride) + 1
    assert len(calls) == expected_passes, (len(calls), expected_passes)
    print(f"passo {stride:5d}: perplexidade {ppl:6.2f}  {len(calls):3d} passadas  {seconds:6.1f} s")
hook.remove()
ppl_full_eval = nll_to_perplexity(full_context_nll(model, eval_ids))
print(f"contexto inteiro ({EVAL_TOKENS} tokens numa passada): perplexidade {ppl_full_eval:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
plot_bars([str(s) for s in STRIDES], [strided[s]["ppl"] for s in STRIDES],
          "Perplexidade por passo (menor = melhor)", "perplexidade", ax=axes[0], fmt="{:.2f}")
axes[0].axhline(ppl_full_eval, color="k", ls="--", label="contexto inteiro")
axes[0].set_xlabel("passo (tokens)")
axes[0].legend()
plot_bars([str(s) for s in STRIDES], [strided[s]["seconds"] for s in STRIDES],
          "Custo da avaliação", "segundos", ax=axes[1], color="tab:orange")
axes[1].set_xlabel("passo (tokens)")
plt.tight_layout()
plt.show()

smallest, disjoint = min(STRIDES), PPL_WINDOW
assert strided[smallest]["ppl"] < strided[disjoint]["ppl"], "mais contexto por token deveria baixar a perplexidade"
assert abs(strided[smallest]["ppl"] - ppl_full_eval) < abs(strided[disjoint]["ppl"] - ppl_full_eval)
assert strided[smallest]["passes"] > strided[disjoint]["passes"]
if not device.startswith("cuda"):  # na GPU cada passada leva milissegundos e o ruído do relógio domina
    assert strided[smallest]["seconds"] > strided[disjoint]["seconds"]

# %% [markdown]
# O que a medida mostra: com janelas disjuntas a perplexidade sai mais alta, porque uma parte dos tokens é avaliada quase
# sem contexto; diminuindo o passo, ela se aproxima da resposta com o contexto inteiro, e o custo cresce na proporção do
# número de passadas. Compare no gráfico quanto da melhora já vem com o passo de metade da janela e quanto custa ir além.
# **Sempre diga a janela e o passo** ao publicar uma perplexidade: números com configurações diferentes não se comparam.

# %% [markdown]
# ## 2. Atenção com janela deslizante (Mistral)
#
# Na atenção causal comum, o token i olha para todos os tokens 0..i. Na **janela deslizante** (Mistral 7B, janela de
# 4.096 tokens), ele olha só para os últimos W tokens, i-W+1..i. Abaixo, a máscara que o próprio transformers usa no
# Mistral (`sliding_window_causal_mask_function`), ao lado da causal comum.

# %%
n_demo, w_demo = 16, 5
q_idx, kv_idx = torch.arange(n_demo)[:, None], torch.arange(n_demo)[None, :]
causal = kv_idx <= q_idx
sliding = sliding_window_causal_mask_function(w_demo)(0, 0, q_idx, kv_idx)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, mask, title in zip(axes, [causal, sliding], ["causal", f"janela deslizante (W={w_demo})"]):
    ax.imshow(mask, cmap="Blues")
    ax.set_title(title)
    ax.set_xlabel("chave (posição)")
    ax.set_ylabel("consulta (posição)")
plt.tight_layout()
plt.show()
print(f"pares (consulta, chave) permitidos: causal {int(causal.sum())}, janela {int(sliding.sum())} "
      f"(cresce como n·W em vez de n²/2)")

# %% [markdown]
# ### O cache circular
#
# Se nenhuma consulta olha mais de W-1 tokens para trás, o cache não precisa guardar mais que isso: o Mistral usa um
# *rolling buffer* em que a posição i vai para o lugar i mod W, sobrescrevendo o token que acabou de sair da janela.
# No transformers 5, um `DynamicCache` criado com a configuração de um modelo com `sliding_window` faz isso sozinho.
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

rolling, full_cache = DynamicCache(config=config_tiny), DynamicCache()
sizes_rolling, sizes_full = [], []
with torch.inference_mode():
    for t in range(tiny_ids.shape[1]):
        a = mistral(tiny_ids[:, t:t + 1], past_key_values=rolling, use_cache=True).logits
        b = mistral(tiny_ids[:, t:t + 1], past_key_values=full_cache, use_cache=True).logits
        assert torch.allclose(a, b, atol=1e-5), f"passo {t}: o cache circular mudou a saída"
        # get_seq_length() conta posições já vistas; o que está guardado é o tamanho dos tensores
        sizes_rolling.append(rolling.layers[0].keys.shape[-2])
        sizes_full.append(full_cache.layers[0].keys.shape[-2])
print(f"mesmos logits nos {tiny_ids.shape[1]} passos; tokens guardados no fim: circular {sizes_rolling[-1]}, "
      f"completo {sizes_full[-1]}")
print(f"bytes no fim: circular {cache_nbytes(rolling):,}, completo {cache_nbytes(full_cache):,}")
assert max(sizes_rolling) == W_TINY - 1
plot_lines(range(1, len(sizes_full) + 1), {"cache completo": sizes_full, f"cache circular (W={W_TINY})": sizes_rolling},
           "Tokens guardados no cache durante a geração", "tokens gerados", "tokens no cache", marker=None)
plt.show()

# %% [markdown]
# O cache guarda W-1 tokens: o token atual entra na atenção junto com eles, somando W.
#
# ### O campo receptivo cresce com as camadas
#
# Se cada camada só olha W-1 tokens para trás, como o Mistral "lembra" de algo a 10 mil tokens? Porque a camada 2 olha
# para estados da camada 1, que já misturaram W-1 tokens anteriores: depois de L camadas, a informação pode ter andado
# até L·(W-1) posições. O artigo do Mistral chama isso de ~131 mil tokens (32 camadas × 4.096).
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
# dilui. Por isso o Mistral ainda é avaliado em tarefas de contexto longo, não só pela conta.
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
ax.bar([l - 0.2 for l in layers], mass_first, width=0.4, label="1º token")
ax.bar([l + 0.2 for l in layers], mass_second, width=0.4, label="2º token")
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
assert layers_with_sink >= len(mass_first) // 2, "o primeiro token deveria ser um sumidouro na maioria das camadas"

# %% [markdown]
# O primeiro token recebe muito mais atenção do que seu conteúdo justificaria, em quase todas as camadas. Agora imagine
# um cache que guarda só os últimos W tokens: quando o texto passa de W tokens, o primeiro sai do cache, e a massa que
# ia para ele precisa ir para outro lugar — a distribuição da atenção muda em todas as camadas ao mesmo tempo.
#
# ## 4. StreamingLLM: um cache com sinks + janela, escrito por nós
#
# O transformers 5 removeu o `SinkCache` (o substituto no Hub exige baixar código remoto), então o curso tem o seu, em
# `course_utils/streaming.py`. A regra: o cache tem `CACHE_SIZE` lugares; os `SINKS` primeiros tokens nunca saem; os
# demais lugares são uma janela dos tokens mais recentes. E as posições do RoPE?
#
# **Posições dentro do cache** (como no artigo): o token novo entra sempre na posição len(cache), então as posições vão
# de 0 a CACHE_SIZE-1 — nunca passam do que o modelo viu no treino, por mais longo que o texto seja. Quando um token da
# janela sai, todos os que vieram depois andam uma posição para trás. As chaves guardadas já foram giradas pelo RoPE da
# posição antiga; como rotações se compõem, basta girá-las por -1 (`shift_rotary`). Conferimos essa identidade
# com o RoPE do próprio transformers:

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

S_demo, size_demo = 2, 6
for t in (5, 6, 7, 12):
    kept = list(range(S_demo)) + list(range(max(S_demo, t - (size_demo - S_demo) + 1), t + 1))
    print(f"lendo o token {t:2d}: cache com os tokens {kept} nas posições {list(range(len(kept)))}")

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
# quando o primeiro token sai, a curva "só janela" dispara, enquanto "sinks + janela" fica perto do contexto inteiro.

# %%
BIN = 64 if SMOKE else 128
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
claim("só janela >= 2x sinks + janela", ppl_window_only >= 2 * ppl_sinks_window,
      measured=ppl_window_only / ppl_sinks_window)
claim("sinks + janela <= 1,25x contexto inteiro", ppl_sinks_window <= 1.25 * ppl_full, measured=ppl_sinks_window / ppl_full)
claim("streaming avaliou mais de 1000 tokens", tokens_evaluated >= 1000, measured=tokens_evaluated)

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
print(f"{'':34s}{'só janela':>12s}{'sinks + janela':>16s}{'razão':>8s}")
print(f"{'artigo: Llama-2-13B, 0+1024 / 4+1020':34s}{5158.07:12.2f}{5.40:16.2f}{5158.07 / 5.40:8.0f}")
print(f"{f'nós: SmolLM2-135M, 0+{CACHE_SIZE} / {SINKS}+{WINDOW}':34s}{ppl_window_only:12.2f}{ppl_sinks_window:16.2f}"
      f"{ppl_window_only / ppl_sinks_window:8.1f}")

# %% [markdown]
# A direção é a mesma; o tamanho do estrago, não. Diferenças que explicam: o modelo (13 B contra 135 M parâmetros), o
# texto (um livro inteiro contra os nossos poucos milhares de tokens — quanto mais longo o streaming, maior a fração de
# tokens avaliados depois que os primeiros saíram do cache) e o tamanho do cache. O que se reproduz é o achado central: **a perplexidade não
# explode por falta de contexto, e sim por perder os primeiros tokens**; guardar 4 deles custa 4 lugares do cache e
# devolve quase toda a qualidade.
#
# Na geração de verdade o ganho é o mesmo: um chatbot com cache sinks + janela conversa indefinidamente com memória
# fixa. Ele não passa a lembrar do que saiu da janela — para isso é preciso outra coisa (resumos, busca).

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** O Mistral 7B tem 32 camadas e janela W = 4.096. Qual é o seu campo receptivo teórico, em tokens?

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
record("window", WINDOW)
record("sinks", SINKS)
record("tokens_evaluated", tokens_evaluated)
record("cache_tokens_max", cache_tokens_max)
record("ms_per_token_streaming", 1000 * seconds_stream / tokens_evaluated)

# %% [markdown]
# **Para levar.** (1) Perplexidade de texto longo depende de janela e passo: diga os dois. (2) Janela deslizante limita
# o custo e o cache a W tokens por camada, e o alcance cresce com a profundidade (L·W). (3) Os primeiros tokens são
# sumidouros de atenção: um cache de tamanho fixo precisa mantê-los, e com eles a perplexidade fica estável em textos
# de qualquer tamanho. Próximo: **06 · ONNX Runtime**, para acelerar tudo isso fora do PyTorch.
