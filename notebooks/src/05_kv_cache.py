# %% [markdown]
# # 05 · Cache KV: gerar texto do zero, com e sem cache
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - escrever o laço de geração de um LLM (guloso, temperatura, top-k, top-p, penalidade de repetição, parada no EOS) e
#   conferir que ele reproduz o `model.generate` token a token;
# - escrever o passo de decode com o cache KV e explicar por que ele troca o reprocessamento do texto inteiro por um
#   token só, e medir o ganho (onde ele é grande e onde é pequeno);
# - calcular quantos bytes o cache ocupa (e por que GQA ajuda) e conferir a fórmula contra o objeto de cache real;
# - gerar em lote com padding à esquerda e medir a vazão por tamanho de lote.
#
# **Pré-requisitos.** Notebook 01 (medidas); saber o que é atenção (consultas, chaves, valores). O notebook 04 já usou
# o cache KV por dentro (a janela e os sinks cortam o cache); aqui ele é aberto por inteiro.
# **Tempo estimado.** 35 minutos de leitura; a execução completa leva uns 3 minutos numa CPU de 2 núcleos.
# **Hardware.** CPU serve: num runtime de CPU (o padrão do Colab para este notebook) tudo roda. Com GPU (T4 no Colab)
# tudo roda igual, mais rápido.
#
# Todo número impresso aqui é medido agora, nesta execução.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` é uma versão rápida de cada experimento; a medida de velocidade do cache continua com 128 tokens novos,
# porque é para esse tamanho que a afirmação vale.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
NEW_TOKENS = 128                 # tokens novos na comparação com e sem cache
BATCH_SIZES = [1, 2, 4, 8]       # tamanhos de lote na medida de vazão
BATCH_NEW_TOKENS = 32
CACHE_NEW_TOKENS = 32            # tokens novos na comparação de tipos de cache
TF_TOKENS = 192                  # tokens do texto na perplexidade passo a passo (cache quantizado)
FP8_PREFILL = 64                 # tokens do prefill em que o cache fp8 calibra a escala
LONG_PROMPT = None               # tokens do prompt longo (None: 512 na CPU, 6144 na GPU)
COMPILE = None                   # medir StaticCache + torch.compile (None: só na GPU; na CPU compilar leva ~1,5 min)
TORCH_THREADS = None             # threads do torch neste notebook (None: o padrão, todos os núcleos)

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from transformers import Cache, DynamicCache, QuantizedCache

try:  # a camada fp8 do QuantizedCache entrou no transformers depois da 5.17
    from transformers.cache_utils import Fp8QuantizedLayer
except ImportError:
    Fp8QuantizedLayer = None

from course_utils.data import text_token_ids
from course_utils.display import explore, show_source
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.generation import (
    cache_holds_nan,
    cache_nbytes,
    fp8_per_token,
    generate,
    kv_cache_bytes,
    per_token_fp8_cache,
    top_k_filter,
    top_p_filter,
)
from course_utils.measure import generation_peak_mib, tokens_per_second
from course_utils.models import LLAMA2_7B_CONFIG, load_model, load_tokenizer
from course_utils.planner import T4_CUDA_TOTAL_GIB, weight_bytes
from course_utils.plotting import plot_bars, plot_lines
from course_utils.results import claim, claim_skipped, record
from course_utils.streaming import nll_to_perplexity, stepwise_nll

# %% [markdown]
# Na versão rápida, cargas menores e uma thread do torch; depois o modelo, em fp32.

# %%
if SMOKE:  # versão rápida; 1 thread do torch: numa máquina de 2 núcleos dividida, mais threads só disputam os núcleos
    BATCH_SIZES, BATCH_NEW_TOKENS, TF_TOKENS, COMPILE = [1, 4], 16, 128, False
    FP8_PREFILL = min(FP8_PREFILL, TF_TOKENS // 4)
    TORCH_THREADS = TORCH_THREADS or 1
if TORCH_THREADS:
    torch.set_num_threads(TORCH_THREADS)

quiet_libraries()
torch.set_flush_denormal(True)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
if COMPILE is None:  # compilar custa ~1,5 min numa CPU de 2 núcleos; na GPU, segundos
    COMPILE = device.startswith("cuda")
print(environment_info())
tokenizer = load_tokenizer(MODEL_ID)
# fp32 também na GPU: as comparações token a token abaixo não devem depender de arredondamentos do fp16
model = load_model(MODEL_ID, device=device, dtype=torch.float32)

# %% [markdown]
# ## 1. O laço de geração, do zero
#
# Um LLM causal só sabe uma coisa: dado o texto até aqui, dar uma distribuição para o **próximo** token. Gerar é repetir:
# 1. passar a sequência pelo modelo e pegar os *logits* da última posição;
# 2. escolher um token (o mais provável, ou sortear);
# 3. anexá-lo à sequência e voltar ao passo 1, até o EOS ou o limite.
#
# O passo que se repete, com o cache KV (a seção 3 explica por que ele é assim): só o token novo entra no modelo; as
# chaves e os valores do texto anterior vêm do cache, que cresce um token a cada chamada.
#
# ```python
# out = model(next_token[:, None], past_key_values=cache, use_cache=True)   # cache: DynamicCache, já com o prompt
# next_token = out.logits[:, -1].argmax(-1)                                 # guloso
# ```
#
# `course_utils.generation.generate` é esse laço com os detalhes (máscara, posições, amostragem, EOS):

# %%
show_source(generate)

# %% [markdown]
# Linha a linha: o prefill passa o prompt inteiro uma vez e enche o cache; a cada passo, `sample_next_token` escolhe o
# token, ele é anexado, e só ele entra na passada seguinte (`step_ids`), com as posições continuando de onde o cache
# parou. Sem cache (`use_cache=False`), cada passo passa a sequência inteira. Conferimos que, no modo guloso, o laço
# produz **os mesmos tokens** que o `model.generate` do transformers.

# %%
# O SmolLM2-135M foi treinado quase só em inglês: em português ele responde mal, então conversamos em inglês.
messages = [{"role": "user", "content": "Explain in two sentences what a cache is."}]
chat_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"].to(device)
n_check = 24
ours = generate(model, chat_ids, max_new_tokens=n_check, eos_token_id=None)
# passe sempre a máscara: sem ela o generate a deduz de input_ids != pad_token_id, o que erra quando o pad é um
# token que aparece no prompt
theirs = model.generate(chat_ids, attention_mask=torch.ones_like(chat_ids), max_new_tokens=n_check,
                        min_new_tokens=n_check, do_sample=False, pad_token_id=tokenizer.eos_token_id)
print(tokenizer.decode(ours[0, chat_ids.shape[1]:]))
assert torch.equal(ours, theirs), "o laço do curso deveria reproduzir o generate guloso token a token"
ours_no_cache = generate(model, chat_ids, max_new_tokens=n_check, eos_token_id=None, use_cache=False)
assert torch.equal(ours_no_cache, theirs), "sem cache o resultado tem de ser o mesmo (o cache só evita recomputar)"
print(f"Conferido: {n_check} tokens iguais ao model.generate, com e sem cache.")

# %% [markdown]
# ## 2. Escolher o próximo token: temperatura, top-k, top-p e penalidade de repetição
#
# - **Temperatura** $T$: divide os logits por $T$ antes do softmax. $T<1$ concentra, $T>1$ espalha.
# - **top-k**: só os $k$ tokens mais prováveis podem ser sorteados.
# - **top-p (núcleo)**: os tokens mais prováveis até a probabilidade acumulada passar de $p$.
# - **Penalidade de repetição** $r$: logits de tokens que já apareceram são divididos por $r$ (se positivos) ou
#   multiplicados por $r$ (se negativos).
#
# O código do material antigo deste curso filtrava o top-p assim (copiado do material, com `next_token_logits`
# de formato [lote, vocabulário]):
#
# ```python
# sorted_logits, sorted_indices = torch.sort(next_token_logits, descending=True)
# cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
# sorted_indices_to_remove = cumulative_probs > top_p
# sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
# sorted_indices_to_remove[..., 0] = 0
# indices_to_remove = sorted_indices[sorted_indices_to_remove]
# next_token_logits[0, indices_to_remove] = -float("inf")
# ```
#
# O laço antigo gera **uma sequência por vez** (`tokenizer.encode(prompt, ...)` e um `for` sobre
# `num_return_sequences`), e com uma sequência o filtro está certo: `sorted_indices[máscara]` devolve as posições do
# vocabulário a remover. O erro fica escondido até alguém gerar em lote (seção 5), o primeiro passo para ganhar vazão.
# Com **lote > 1** a máscara booleana achata todas as linhas numa lista só de posições, e
# `next_token_logits[0, ...]` aplica as remoções de todas as linhas **na linha 0**; as outras linhas ficam sem filtro.
# E `next_token.item()`, que o laço usa para conferir o EOS, falha com mais de um token. (A penalidade de repetição do
# mesmo laço tem o mesmo defeito: `curr_input_ids[0]` e `next_token_logits[0, token_id]` só olham a linha 0.) Rodamos
# o código antigo nos logits do modelo, com um lote de dois prompts diferentes:

# %%
def seed_top_p(next_token_logits, top_p):
    """O filtro top-p do material antigo, linha por linha como estava."""
    next_token_logits = next_token_logits.clone()
    sorted_logits, sorted_indices = torch.sort(next_token_logits, descending=True)
    cumulative_probs = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
    sorted_indices_to_remove = cumulative_probs > top_p
    sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
    sorted_indices_to_remove[..., 0] = 0
    indices_to_remove = sorted_indices[sorted_indices_to_remove]
    next_token_logits[0, indices_to_remove] = -float("inf")
    return next_token_logits


tokenizer.padding_side = "left"
pair = tokenizer(["The capital of France is", "My favourite fruit is the"], return_tensors="pt", padding=True).to(device)
with torch.inference_mode():
    pair_logits = model(**pair).logits[:, -1].float()
ours_kept = torch.isfinite(top_p_filter(pair_logits, 0.9)).sum(-1).tolist()
seed_one = torch.isfinite(seed_top_p(pair_logits[1:], 0.9)).sum(-1).tolist()
seed_kept = torch.isfinite(seed_top_p(pair_logits, 0.9)).sum(-1).tolist()
print(f"tokens mantidos com top-p 0,9: top_p_filter {ours_kept} | antigo, linha 1 sozinha {seed_one} | "
      f"antigo em lote {seed_kept} (de {pair_logits.shape[-1]})")
claim("material antigo: top-p certo com uma sequência, errado em lote (a linha 1 fica sem filtro)",
      seed_one == ours_kept[1:] and seed_kept[1] == pair_logits.shape[-1], measured=seed_kept[1])
try:
    torch.zeros(2, 1, dtype=torch.long).item()   # o `next_token.item()` do laço antigo, com lote 2
except RuntimeError as exc:
    print(f"next_token.item() com lote 2: {exc}")

# %% [markdown]
# O filtro do curso faz a mesma conta **linha por linha**: a máscara fica no formato [lote, vocabulário] e volta para a
# ordem do vocabulário com `scatter`, sem achatar nada. O top-k é mais simples: o k-ésimo maior logit de cada linha é o
# limite.

# %%
show_source(top_k_filter)
show_source(top_p_filter)

# %% [markdown]
# Mexa na temperatura, no top-k e no top-p e veja quantos tokens continuam sorteáveis e com que probabilidade (para o
# próximo token depois de "My favourite fruit is the"):

# %%
def show_sampling(temperature=1.0, top_k=0, top_p=1.0):
    """Probabilidades depois de temperatura -> top-k -> top-p, a ordem do `sample_next_token`."""
    filtered = top_p_filter(top_k_filter(pair_logits[1:] / temperature, top_k or None), top_p)
    probs = torch.softmax(filtered, -1)[0]
    top = probs.topk(5)
    kept = int(torch.isfinite(filtered).sum())
    words = ", ".join(f"{tokenizer.decode(int(i))!r} {float(v):.2f}"
                      for v, i in zip(top.values, top.indices, strict=True))
    print(f"T={temperature}, top-k={top_k or 'sem'}, top-p={top_p}: {kept} tokens sorteáveis; "
          f"os 5 mais prováveis: {words}")


explore(show_sampling, temperature=(0.1, 2.0, 0.1), top_k=(0, 100, 5), top_p=(0.05, 1.0, 0.05))

# %%
prompt = tokenizer("Once upon a time, in a small fishing town,", return_tensors="pt").input_ids.to(device)
settings = {"guloso": dict(do_sample=False),
            "T=0.7, top-p=0.9": dict(do_sample=True, temperature=0.7, top_p=0.9),
            "T=1.3, top-k=50": dict(do_sample=True, temperature=1.3, top_k=50),
            "guloso + penalidade 1.3": dict(do_sample=False, repetition_penalty=1.3)}
for name, kw in settings.items():
    g = torch.Generator(device=device).manual_seed(SEED)
    out = generate(model, prompt, max_new_tokens=40, eos_token_id=tokenizer.eos_token_id, generator=g, **kw)
    text = tokenizer.decode(out[0, prompt.shape[1]:])
    print(f"[{name}] {text!r}\n")

# %% [markdown]
# ## 3. Por que o cache KV acelera
#
# Em cada camada, a atenção do token $t$ usa as **chaves** e **valores** de todos os tokens $\le t$. Sem cache, o passo
# $t$ recalcula $K$ e $V$ de toda a sequência: o custo do passo cresce com o comprimento e gerar $N$ tokens custa
# $O(N^2)$ passadas de token. Com cache, guardamos $K$ e $V$ de cada camada e cada passo só processa **o token novo**.
#
# Medimos o tempo de cada passo, com e sem cache, gerando `NEW_TOKENS` tokens depois de um prompt curto.

# %%
short = tokenizer("The history of clocks begins", return_tensors="pt").input_ids.to(device)
for use_cache in (True, False):  # aquecimento: a primeira chamada paga custos únicos (alocação, kernels)
    generate(model, short, max_new_tokens=4, eos_token_id=None, use_cache=use_cache)
_, t_cache = generate(model, short, max_new_tokens=NEW_TOKENS, eos_token_id=None, return_step_times=True)
_, t_nocache = generate(model, short, max_new_tokens=NEW_TOKENS, eos_token_id=None, use_cache=False,
                        return_step_times=True)
total_cache, total_nocache = sum(t_cache), sum(t_nocache)
speedup = total_nocache / total_cache
print(f"{NEW_TOKENS} tokens novos: sem cache {total_nocache:.1f} s | com cache {total_cache:.1f} s | {speedup:.2f}x")
positions = list(range(short.shape[1], short.shape[1] + NEW_TOKENS))
plot_lines(positions[1:], {"sem cache": [1000 * t for t in t_nocache[1:]], "com cache": [1000 * t for t in t_cache[1:]]},
           "Tempo de cada passo de geração", "comprimento da sequência (tokens)", "ms por token", marker=None)
plt.show()
if device == "cpu" and NEW_TOKENS >= 128:
    claim("CPU: cache KV >= 2x com 128 tokens novos ou mais", speedup >= 2, measured=speedup)
elif device == "cpu":
    claim_skipped("CPU: cache KV >= 2x com 128 tokens novos ou mais", f"só {NEW_TOKENS} tokens novos")
else:
    claim_skipped("CPU: cache KV >= 2x com 128 tokens novos ou mais", "execução na GPU")

# %% [markdown]
# Quanto o passo encarece do começo ao fim da geração: o passo mais rápido entre os últimos 32 sobre o mais rápido
# entre os primeiros 32, com e sem cache (o mínimo de uma janela é o tempo sem interferência de outros programas, que
# só somam tempo).

# %%
k = min(32, len(t_cache) // 4)
growth_cache = min(t_cache[-k:]) / min(t_cache[1:k + 1])
growth_nocache = min(t_nocache[-k:]) / min(t_nocache[1:k + 1])
print(f"do começo ao fim da geração o passo ficou {growth_nocache:.1f}x mais caro sem cache e {growth_cache:.2f}x com cache")
first_ms = 1000 * min(t_nocache[1:k + 1])
if growth_nocache >= 1.5 * growth_cache:
    print("Sem cache o passo encarece com o texto (cada passo reprocessa tudo); com cache bem menos: só o token novo "
          "entra, e a atenção sobre o cache é barata perto das camadas lineares num modelo deste tamanho.")
else:
    print(f"Aqui os dois quase não encarecem: o passo custa ~{first_ms:.0f} ms com ou sem cache. É um custo fixo por "
          "passo, que não depende de quantos tokens ele processa (na GPU, com um modelo pequeno, é a CPU lançando uma "
          "a uma as centenas de operações de uma passada).")
if device == "cpu" and NEW_TOKENS >= 128:
    claim("CPU: sem cache o passo cresce com o comprimento; com cache cresce >= 1,5x menos",
          growth_nocache >= 1.5 * growth_cache, measured=growth_nocache / growth_cache)
else:
    claim_skipped("CPU: sem cache o passo cresce com o comprimento; com cache cresce >= 1,5x menos",
                  "na GPU o passo é limitado pelo lançamento dos kernels" if device != "cpu" else "poucos tokens")

# %% [markdown]
# **Onde o cache pesa de verdade: o prompt longo.** Com um prompt longo (um documento, uma conversa longa; aqui, 6.144
# tokens na GPU e 512 na CPU, para caber no tempo), cada passo sem cache reprocessa o documento inteiro; com cache,
# continua sendo um token. Isso vale na GPU
# também, porque aí a passada sem cache deixa de ser pequena:

# %%
long_len = LONG_PROMPT or (6144 if device.startswith("cuda") else 512)
doc = text_token_ids(tokenizer, "en", long_len).to(device)
steps = 4
for use_cache in (True, False):  # aquecimento neste comprimento
    generate(model, doc, max_new_tokens=2, eos_token_id=None, use_cache=use_cache)
_, long_cache = generate(model, doc, max_new_tokens=steps, eos_token_id=None, return_step_times=True)
_, long_nocache = generate(model, doc, max_new_tokens=steps, eos_token_id=None, use_cache=False,
                           return_step_times=True)
def median(xs):
    return sorted(xs)[len(xs) // 2]


step_cache, step_nocache = median(long_cache[1:]), median(long_nocache[1:])   # o passo 0 é o prefill
long_speedup = step_nocache / step_cache
print(f"prompt de {doc.shape[1]} tokens: um passo custa {1000 * step_nocache:.0f} ms sem cache e "
      f"{1000 * step_cache:.1f} ms com cache ({long_speedup:.1f}x); o prefill (passo 1) custou "
      f"{1000 * long_cache[0]:.0f} ms")
claim("prompt longo: um passo com cache >= 2x mais rápido que sem", long_speedup >= 2, measured=long_speedup)

# %% [markdown]
# ## 4. Quanto o cache ocupa
#
# Para cada camada guardamos $K$ e $V$: dois tensores de formato [lote, cabeças KV, tokens, dimensão da cabeça].
# $$\text{bytes} = 2 \times \text{camadas} \times \text{cabeças KV} \times \text{dim. da cabeça} \times \text{tokens} \times \text{lote} \times \text{bytes por elemento}.$$
#
# **GQA (grouped-query attention).** Com menos cabeças de chave/valor que de consulta, cada grupo de consultas
# compartilha um par $K,V$, e o cache encolhe na mesma proporção. A célula abaixo lê do modelo carregado quantas são.
# Conferimos a fórmula contra os bytes que o objeto `DynamicCache` realmente guarda:

# %%
cfg = model.config
print(f"camadas {cfg.num_hidden_layers}, cabeças de consulta {cfg.num_attention_heads}, cabeças KV {cfg.num_key_value_heads}, "
      f"dimensão da cabeça {cfg.head_dim}")
long_ids = text_token_ids(tokenizer, "en", 1024).to(device)
elem = next(model.parameters()).element_size()
lengths = [128, 256, 512, 1024]
formula, measured = [], []
for n in lengths:
    cache = DynamicCache(config=cfg)
    with torch.inference_mode():
        model(long_ids[:, :n], past_key_values=cache, use_cache=True)
    formula.append(kv_cache_bytes(cfg, n, bytes_per_element=elem))
    measured.append(cache_nbytes(cache))
    print(f"{n:5d} tokens: fórmula {formula[-1] / 2**20:7.2f} MiB | medido {measured[-1] / 2**20:7.2f} MiB")
kv_formula_1024, kv_measured_1024 = formula[-1], measured[-1]
claim("fórmula do cache = bytes medidos (5%)", abs(kv_measured_1024 / kv_formula_1024 - 1) < 0.05,
      measured=kv_measured_1024 / kv_formula_1024)
mha = kv_cache_bytes({**cfg.to_dict(), "num_key_value_heads": cfg.num_attention_heads}, 1024, bytes_per_element=elem)
print(f"com {cfg.num_attention_heads} cabeças KV (sem GQA) seriam {mha / 2**20:.2f} MiB: "
      f"{mha / kv_formula_1024:.0f}x mais")

# %% [markdown]
# E num 7B? O Llama-2-7B tem atenção completa com 32 cabeças KV; o Mistral-7B-v0.1 tem GQA (8 cabeças KV) e uma
# **janela deslizante de 4.096 tokens** ([Jiang et al., 2023](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#mistral)):
# cada camada só atende aos últimos 4.096 tokens, e o cache do transformers para esse modelo guarda só a janela
# (ele corta os mais antigos a cada passo). Os pesos em fp16 do Llama-2-7B ocupam 12,55 GiB
# ([medido numa H100](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b)); em NF4,
# o planejador do curso conta os bytes como o bitsandbytes guarda. Numa T4 (14,74 GiB visíveis para o CUDA, de 16 GB anunciados: [referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-t4)):

# %%
T4_GIB, MISTRAL_WINDOW, LLAMA2_CONTEXT = T4_CUDA_TOTAL_GIB, 4096, 4096   # o Llama-2 foi treinado com contexto de 4.096 tokens
mistral = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}
tokens = [512 * 2**i for i in range(8)]   # 512 ... 65.536
curves = {"Llama-2-7B (32 cabeças KV; contexto até 4.096)":
              [kv_cache_bytes(LLAMA2_7B_CONFIG, n) / 2**30 if n <= LLAMA2_CONTEXT else float("nan") for n in tokens],
          "Mistral-7B-v0.1 (8 cabeças KV, janela 4.096)":
              [kv_cache_bytes(mistral, min(n, MISTRAL_WINDOW)) / 2**30 for n in tokens]}
plot_lines(tokens, curves, "Cache KV em fp16, lote 1", "tokens de contexto", "GiB", logy=True)
plt.show()
w_fp16 = 12.55
w_nf4 = weight_bytes(LLAMA2_7B_CONFIG, "nf4")["stored"] / 2**30
per_token = kv_cache_bytes(LLAMA2_7B_CONFIG, 1) / 2**30
for label, w in (("fp16", w_fp16), ("NF4", w_nf4)):
    room = T4_GIB - w
    fit = f"{room / per_token:,.0f}".replace(",", ".")   # milhar com ponto, como em português
    print(f"Llama-2-7B, pesos {label}: {w:.2f} GiB; sobram {room:.2f} GiB na T4 -> cabem ~{fit} "
          f"tokens de cache (sem contar ativações)")
mistral_gib = curves["Mistral-7B-v0.1 (8 cabeças KV, janela 4.096)"]
print(f"a 4.096 tokens: Llama-2-7B {kv_cache_bytes(LLAMA2_7B_CONFIG, 4096) / 2**30:.2f} GiB, Mistral-7B-v0.1 "
      f"{mistral_gib[3]:.2f} GiB (GQA: 4x menos); a 32.768 tokens o Mistral continua em {mistral_gib[6]:.2f} GiB "
      "(a janela limita o cache), e o Llama-2 nem chega lá")

# %% [markdown]
# Leia a curva: o cache cresce em linha reta com o contexto (atenção completa) até a janela, e fica plano depois dela.
# Em fp16 o que limita um 7B numa T4 são **os pesos**: 12,55 dos 14,74 GiB que o CUDA enxerga numa T4. A sobra da conta acima ainda tem de acomodar
# as ativações e a memória que o próprio CUDA reserva, que o notebook 08 soma; para o cache fica bem menos que ela.
# Com os pesos em 4 bits (notebook 08) sobra espaço, e aí é **o cache** que decide até onde o contexto vai — daí GQA,
# caches quantizados e janelas (notebook 04).

# %% [markdown]
# ## 5. Gerar em lote: padding à esquerda
#
# Para gerar várias sequências de uma vez elas precisam ter o mesmo comprimento, então completamos as curtas com *padding*.
# Num modelo que só decodifica, o padding vai **à esquerda**: o último token de cada linha precisa ser o último token real
# (é dele que sai o próximo). A máscara de atenção diz quais posições são padding, e as posições (RoPE) são contadas a
# partir do primeiro token real. Conferimos que o lote dá os mesmos tokens que cada prompt sozinho:

# %%
tokenizer.padding_side = "left"
prompts = ["The baker opened the shop before dawn and", "Rivers", "In the harbour, the old clock above the office"]
batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
together = generate(model, batch.input_ids, max_new_tokens=16, attention_mask=batch.attention_mask, eos_token_id=None)
for i, p in enumerate(prompts):
    alone = generate(model, tokenizer(p, return_tensors="pt").input_ids.to(device), max_new_tokens=16, eos_token_id=None)
    assert torch.equal(together[i, -16:], alone[0, -16:]), f"a linha {i} do lote deveria ser igual à geração sozinha"
print("Conferido: com padding à esquerda e máscara, cada linha do lote gera o mesmo que sozinha.")

# %%
base_prompt = "Write a short note about the sea:"
throughput = []
for bs in BATCH_SIZES:
    ids = tokenizer([base_prompt] * bs, return_tensors="pt", padding=True).to(device)
    generate(model, ids.input_ids, max_new_tokens=4, attention_mask=ids.attention_mask, eos_token_id=None)  # aquecimento
    start = time.perf_counter()
    generate(model, ids.input_ids, max_new_tokens=BATCH_NEW_TOKENS, attention_mask=ids.attention_mask, eos_token_id=None)
    throughput.append(bs * BATCH_NEW_TOKENS / (time.perf_counter() - start))
    print(f"lote {bs}: {throughput[-1]:.1f} tokens/s")
plot_bars([str(b) for b in BATCH_SIZES], throughput, "Vazão de geração por tamanho de lote", "tokens/s")
plt.show()
batch_gain = max(throughput) / throughput[0]
print(f"melhor lote ({BATCH_SIZES[throughput.index(max(throughput))]}) dá {batch_gain:.2f}x a vazão do lote 1")
claim("gerar em lote aumenta a vazão", batch_gain > 1, measured=batch_gain)

# %% [markdown]
# Um passo de decode lê todos os pesos para produzir um token por linha: com mais linhas, a mesma leitura de pesos serve
# mais tokens. A vazão cresce até o cálculo (e não a leitura de memória) virar o gargalo.

# %% [markdown]
# ## 6. Tipos de cache no transformers 5
#
# - `DynamicCache` (padrão): cresce a cada token, concatenando tensores. Foi o que usamos até aqui.
# - `StaticCache`: aloca de uma vez o espaço para `max_cache_len` tokens. Formatos fixos permitem ao `torch.compile`
#   gerar um grafo só para o passo de decode. Na GPU, o `generate` compila esse passo sozinho quando o cache é
#   estático; abaixo desligamos isso (`disable_compile=True`) para medir o cache e a compilação separadamente.
# - `QuantizedCache`: guarda K e V quantizados. O backend `fp8` vem no próprio transformers (uma escala por tensor,
#   calibrada na primeira atualização; detalhes abaixo); `quanto` e `hqq` quantizam por grupos e guardam os tokens
#   recentes sem quantizar, mas exigem pacotes extras.
# - Cache descarregado na CPU (`DynamicCache(offloading=True)`): deixa o cache das camadas na memória da CPU e mantém
#   na GPU a camada em uso e a seguinte (que ele já começa a copiar, para a cópia não atrasar o próximo passo). Só faz
#   sentido com GPU.

# %%
CLOCK_PROMPT = "The history of clocks begins"
reps = 1 if SMOKE else 3
# disable_compile=True: na GPU, com cache estático, o generate do transformers compilaria sozinho o passo de decode.
# Aqui o StaticCache é medido SEM compilar, para separar o efeito do cache do efeito da compilação.
dynamic = tokens_per_second(model, tokenizer, CLOCK_PROMPT, CACHE_NEW_TOKENS, warmup=1, repeats=reps,
                            disable_compile=True)
static = tokens_per_second(model, tokenizer, CLOCK_PROMPT, CACHE_NEW_TOKENS, warmup=1, repeats=reps,
                           cache_implementation="static", disable_compile=True)
ref_ids, tps_dynamic, tps_static = dynamic["output_ids"], dynamic["tokens_per_s"], static["tokens_per_s"]
assert torch.equal(static["output_ids"], ref_ids), "StaticCache deveria gerar os mesmos tokens"
print(f"DynamicCache {tps_dynamic:.1f} tokens/s | StaticCache {tps_static:.1f} tokens/s (mesmos tokens, sem compilar)")

# %% [markdown]
# Agora o mesmo `StaticCache` com o passo de decode compilado. A primeira geração compila (o prefill e o passo de
# decode) e é cronometrada à parte: é o preço que se paga uma vez por formato.

# %%
tps_compiled = None
if COMPILE:
    if device.startswith("cuda"):
        # Na GPU, o caminho do próprio transformers: com cache estático o generate compila o passo de decode
        # (torch.compile com CUDA graphs, mode="reduce-overhead"): um modelo pequeno passa a pagar um lançamento por
        # passo em vez de centenas. Embrulhar model.forward à mão com CUDA graphs quebra, porque o cache é
        # reescrito entre as chamadas; o generate cuida disso.
        how, compiled_kwargs = "compilação automática do generate, CUDA graphs", {}
    else:
        # Na CPU o generate não compila sozinho: embrulhamos o forward (o modo padrão funde operações).
        how, compiled_kwargs = "torch.compile(model.forward)", {"disable_compile": True}
        eager_forward = model.forward
        model.forward = torch.compile(model.forward, fullgraph=True)
    start = time.perf_counter()
    # a 1ª geração compila (o prefill e o passo de decode); o mesmo número de tokens mantém o tamanho do cache
    tokens_per_second(model, tokenizer, CLOCK_PROMPT, CACHE_NEW_TOKENS, warmup=0, repeats=1,
                      cache_implementation="static", **compiled_kwargs)
    compile_seconds = time.perf_counter() - start
    print(f"{how}: {compile_seconds:.0f} s na primeira geração (compilando)")
else:
    print("torch.compile não medido nesta execução (COMPILE=False; na CPU o padrão é não compilar, porque leva "
          "~1,5 min: ponha COMPILE = True na célula de parâmetros para medir aqui também).")

# %% [markdown]
# Com o passo compilado, a velocidade medida como as outras (aquecimento e mediana) e os mesmos tokens conferidos:

# %%
if COMPILE:
    compiled = tokens_per_second(model, tokenizer, CLOCK_PROMPT, CACHE_NEW_TOKENS, warmup=1, repeats=reps,
                                 cache_implementation="static", **compiled_kwargs)
    tps_compiled = compiled["tokens_per_s"]
    if not device.startswith("cuda"):
        model.forward = eager_forward
    assert torch.equal(compiled["output_ids"], ref_ids), "o modelo compilado deveria gerar os mesmos tokens"
    print(f"StaticCache + torch.compile ({how}): {tps_compiled:.1f} tokens/s depois de {compile_seconds:.0f} s "
          f"compilando ({tps_compiled / tps_static:.2f}x o StaticCache sem compilar)")
    if device.startswith("cuda"):
        claim("(GPU) compilar o passo de decode acelera a geração", tps_compiled > tps_static,
              measured=tps_compiled / tps_static)
    else:
        claim_skipped("(GPU) compilar o passo de decode acelera a geração", "execução na CPU")
else:
    claim_skipped("(GPU) compilar o passo de decode acelera a geração", "COMPILE=False: compilação não medida")

# %% [markdown]
# **Cache quantizado: memória contra qualidade.** O backend `fp8` do `QuantizedCache` (no transformers 5.23, a classe
# `Fp8QuantizedLayer`) guarda K e V em `float8_e4m3fn` com **uma escala por tensor**, calculada na **primeira**
# atualização de cada camada, $s = \max|x| / 448$ (448 é o maior número do e4m3), e **congelada** depois: cada token
# novo é dividido por essa mesma escala e convertido, sem recalibrar
# ([o código do transformers](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#fp8-cache)).
# Um valor com $|x| > 448\,s$ não cabe no e4m3, que não tem infinito. O que a conversão faz com ele depende da versão
# do PyTorch, não do dispositivo: até a 2.11 (a do Colab), um valor acima de ~464·s vira NaN, na CPU e na GPU; a partir
# da correção pytorch/pytorch#178817 (abril de 2026, no PyTorch 2.12), ele satura em ±448
# ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#fp8-cache)). Medimos
# aqui mesmo:

# %%
fp8_max = torch.finfo(torch.float8_e4m3fn).max
probe = torch.tensor([300.0, 460.0, 1000.0, -1000.0], device=device).to(torch.float8_e4m3fn).float().tolist()
overflow_is_nan = math.isnan(probe[2])
print(f"maior valor do e4m3: {fp8_max:g}; neste PyTorch ({torch.__version__}, em {device}) 300 -> {probe[0]:g}, "
      f"460 -> {probe[1]:g}, 1000 -> {probe[2]:g}, -1000 -> {probe[3]:g} (entre 256 e 448 o e4m3 só tem múltiplos de 32)")
print("um valor grande demais vira NaN: uma chave NaN contamina a atenção e a perplexidade vira nan"
      if overflow_is_nan else "um valor grande demais satura em ±448: o erro é grande, mas finito")

# %% [markdown]
#
# Então importa **em quê** a escala é calibrada. Se o texto entra um token por vez desde o começo, cada camada calibra
# num token só. Num uso real, o prompt entra inteiro numa passada (o *prefill*), e a escala é calibrada nele. Com K e V
# exatos do texto, contamos quantos valores dos tokens seguintes ficariam fora do alcance em cada caso:

# %%
tf_ids = text_token_ids(tokenizer, "en", TF_TOKENS + 1).to(device)
exact = DynamicCache(config=model.config)
with torch.inference_mode():
    model(tf_ids, past_key_values=exact, use_cache=True)


def out_of_range_fraction(cache, calib_tokens):
    """Fração dos valores de K e V depois dos `calib_tokens` primeiros com |x| > max|x| desses primeiros (por camada)."""
    over = total = 0
    for layer in cache.layers:
        for x in (layer.keys, layer.values):
            later = x[..., calib_tokens:, :].abs()
            over += int((later > x[..., :calib_tokens, :].abs().amax()).sum())
            total += later.numel()
    return over / total


frac_one, frac_prefill = out_of_range_fraction(exact, 1), out_of_range_fraction(exact, FP8_PREFILL)
print(f"valores fora do alcance do fp8: calibrado em 1 token {frac_one:.2%} | num prefill de {FP8_PREFILL} tokens "
      f"{frac_prefill:.3%}")
claim("fp8: calibrar a escala num prefill deixa menos valores fora do alcance que calibrar em 1 token",
      frac_prefill < frac_one, measured=frac_prefill / max(frac_one, 1e-12))

# %% [markdown]
# Agora a perplexidade passo a passo (um token por vez, lendo K e V do cache, como na geração), com os primeiros
# `FP8_PREFILL` tokens entrando numa passada só (`stepwise_nll(..., prefill=...)`), com o cache normal e com o fp8:

# %%
def stepwise_perplexity(cache, prefill):
    """exp(média de -log p(x_t | x_<t)); o prefill numa passada, o resto um token por passo (course_utils.streaming)."""
    return nll_to_perplexity(stepwise_nll(model, tf_ids, cache=cache, prefill=prefill, progress=False)["nll"])


dyn_cache = DynamicCache(config=model.config)
ppl_dynamic_cache = stepwise_perplexity(dyn_cache, FP8_PREFILL)
bytes_dynamic = cache_nbytes(dyn_cache)
print(f"cache normal: {bytes_dynamic / 2**20:.2f} MiB, perplexidade {ppl_dynamic_cache:.2f}")

# %% [markdown]
# O mesmo texto com o `QuantizedCache` fp8 do transformers (escala por tensor, calibrada no prefill):

# %%
try:
    fp8_cache = QuantizedCache("fp8", model.config)
except ValueError:  # o backend fp8 entrou no transformers depois da 5.17
    fp8_cache = None
    print("Este transformers não tem o backend fp8 do QuantizedCache; a célula de configuração instala uma versão que tem.")
ppl_fp8_cache = bytes_fp8 = float("nan")
if fp8_cache is not None:
    ppl_fp8_cache = stepwise_perplexity(fp8_cache, FP8_PREFILL)
    bytes_fp8 = cache_nbytes(fp8_cache)
    print(f"cache fp8:    {bytes_fp8 / 2**20:.2f} MiB ({bytes_fp8 / bytes_dynamic:.2f}x), perplexidade "
          f"{ppl_fp8_cache:.2f} ({100 * (ppl_fp8_cache / ppl_dynamic_cache - 1):+.1f}%)")
    print(f"(o cache normal aqui é {model.dtype}, {elem} bytes por número; contra um cache fp16, o fp8 ocupa cerca de "
          "metade)")
    # NaN guardado de fato no cache (valores entre 448·s e ~464·s arredondam para 448 mesmo onde a conversão dá NaN)
    nan_stored = cache_holds_nan(fp8_cache)
    print(f"{frac_prefill:.3%} dos valores passaram do alcance calibrado no prefill, e aqui a conversão "
          f"{'dá NaN' if overflow_is_nan else 'satura'}; NaN guardado no cache: {'sim' if nan_stored else 'não'}; "
          f"perplexidade {'nan' if math.isnan(ppl_fp8_cache) else 'finita'}")
if fp8_cache is not None and nan_stored:
    claim("fp8 do transformers: se há valores fora do alcance e a conversão dá NaN, a perplexidade vira nan",
          math.isnan(ppl_fp8_cache), measured=frac_prefill)
else:
    claim_skipped("fp8 do transformers: se há valores fora do alcance e a conversão dá NaN, a perplexidade vira nan",
                  "sem o backend fp8" if fp8_cache is None else
                  "a conversão satura neste PyTorch" if not overflow_is_nan else "nenhum NaN guardado no cache")

# %% [markdown]
# O conserto mínimo mantém a escala por tensor e **satura antes de converter**: recortar em $\pm 448$ garante um erro
# finito nos poucos valores fora do alcance, mesmo num PyTorch em que a conversão dá NaN; onde ela já satura (veja a
# célula acima), o resultado é igual ao do cache fp8 do transformers. É uma subclasse de quatro linhas da camada do transformers:

# %%
if Fp8QuantizedLayer is not None:
    class SaturatingFp8Layer(Fp8QuantizedLayer):
        """A camada fp8 do transformers (escala por tensor, calibrada na 1ª atualização), recortando em ±448."""

        def _quantize(self, tensor, scale=None):
            if scale is None:   # a 1ª atualização (o prefill) calibra a escala, como na original
                scale = (tensor.abs().amax().float() / self.fp8_max).clamp(min=torch.finfo(torch.float32).tiny)
            return (tensor.float() / scale).clamp(-self.fp8_max, self.fp8_max).to(self.fp8_dtype), scale

    ppl_saturating = stepwise_perplexity(Cache(layer_class_to_replicate=SaturatingFp8Layer), FP8_PREFILL)
    saturating_rel = ppl_saturating / ppl_dynamic_cache - 1
    print(f"fp8 por tensor, saturando: perplexidade {ppl_saturating:.2f} ({100 * saturating_rel:+.1f}%)")
    claim("fp8 por tensor calibrado no prefill, saturando: perplexidade finita e <= 10% acima do cache normal",
          math.isfinite(ppl_saturating) and saturating_rel <= 0.10, measured=saturating_rel)
else:
    ppl_saturating = float("nan")
    claim_skipped("fp8 por tensor calibrado no prefill, saturando: perplexidade finita e <= 10% acima do cache normal",
                  "este transformers não tem Fp8QuantizedLayer")

# %% [markdown]
# A saída robusta é não congelar a escala: calcular **uma escala por token** (e por cabeça), na hora em que o token entra
# no cache. Nenhum valor sai do alcance, na CPU ou na GPU; o preço são 4 bytes de escala por token e cabeça
# (`course_utils.generation.per_token_fp8_cache`, uma camada de cache de 15 linhas, mostrada abaixo):

# %%
show_source(fp8_per_token)
show_source(per_token_fp8_cache)
token_cache = per_token_fp8_cache()
ppl_token_fp8 = stepwise_perplexity(token_cache, FP8_PREFILL)
bytes_token_fp8 = cache_nbytes(token_cache)
token_rel = ppl_token_fp8 / ppl_dynamic_cache - 1
print(f"fp8 por token: {bytes_token_fp8 / 2**20:.2f} MiB ({bytes_token_fp8 / bytes_dynamic:.2f}x), perplexidade "
      f"{ppl_token_fp8:.2f} ({100 * token_rel:+.1f}%)")
claim("cache fp8 com escala por token <= 55% dos bytes do cache normal", bytes_token_fp8 <= 0.55 * bytes_dynamic,
      measured=bytes_token_fp8 / bytes_dynamic)
claim("cache fp8 com escala por token: perplexidade finita e no máximo 5% acima do cache normal",
      math.isfinite(ppl_token_fp8) and abs(token_rel) <= 0.05, measured=token_rel)

# %% [markdown]
# A escala por tensor aguenta quando é calibrada num prefill que já mostra a faixa de valores de cada camada. Ela
# continua frágil: um token posterior com um valor maior que todos os do prefill sai do alcance (e satura, ou vira NaN
# onde a conversão não satura). Por isso os caches quantizados usados na prática (KIVI, e os backends `quanto`/`hqq`) recalculam a
# escala **por grupo**, a cada bloco de tokens, e guardam os tokens mais recentes sem quantizar.

# %%
def cpu_cache():
    """Um DynamicCache que guarda as camadas na CPU e traz para a GPU só a camada em uso (e a seguinte)."""
    return DynamicCache(config=model.config, offloading=True)


if device.startswith("cuda"):
    on_cpu_run = tokens_per_second(model, tokenizer, CLOCK_PROMPT, CACHE_NEW_TOKENS, warmup=1, repeats=reps,
                                   make_cache=cpu_cache)
    assert torch.equal(on_cpu_run["output_ids"], ref_ids), "o cache descarregado deveria gerar os mesmos tokens"
    print(f"cache na CPU: {on_cpu_run['tokens_per_s']:.1f} tokens/s (DynamicCache: {tps_dynamic:.1f}); mesmos tokens")
    peaks = {"GPU": generation_peak_mib(model, doc, 8), "CPU": generation_peak_mib(model, doc, 8, make_cache=cpu_cache)}
    kv_doc_mib = kv_cache_bytes(cfg, doc.shape[1] + 8, bytes_per_element=elem) / 2**20
    print(f"prompt de {doc.shape[1]} tokens (cache de {kv_doc_mib:.0f} MiB): pico da geração acima dos pesos "
          f"{peaks['GPU']:.0f} MiB com o cache na GPU, {peaks['CPU']:.0f} MiB com o cache na CPU "
          f"({peaks['CPU'] / peaks['GPU']:.0%}). O cache é {kv_doc_mib / peaks['GPU']:.0%} do pico com ele na GPU; "
          "o resto são as ativações do prefill, que descarregar o cache não toca.")
    saved = (peaks["GPU"] - peaks["CPU"]) / kv_doc_mib
    claim("(GPU) cache descarregado na CPU: o pico cai de pelo menos metade dos bytes do cache",
          saved >= 0.5, measured=saved)
else:
    claim_skipped("(GPU) cache descarregado na CPU: o pico cai de pelo menos metade dos bytes do cache",
                  "execução na CPU")
    print("Sem GPU: o cache descarregado move camadas entre a GPU e a CPU, então aqui não há o que medir. "
          "Rode este notebook no Colab com GPU para ver a troca de memória por velocidade.")

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Um modelo de 32 camadas com GQA (32 cabeças de consulta, **8 cabeças KV**, dimensão da cabeça 128)
# gera em **lote de 4** sequências de **8.192 tokens**, com o cache em fp16. Quantos **GiB** ocupa o cache KV?

# %% curso={"exercicio": "05.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número
check("05.1", resposta_1)


# %% [markdown]
# **Exercício 2.** Uma variante do top-p: a amostragem **min-p** mantém os tokens cuja probabilidade é pelo menos
# `p_min` vezes a do token mais provável **da mesma linha** ($q_i \ge p_{min} \cdot \max_j q_j$), e o resto vira `-inf`.
# Com uma distribuição concentrada ela corta muito; com uma achatada, deixa muitos. Escreva `meu_min_p(logits, p_min)`
# para logits `[lote, vocabulário]`; os logits mantidos não mudam.

# %% curso={"exercicio": "05.2", "resposta": "meu_min_p"} tags=["exercicio"]
def meu_min_p(logits, p_min):
    # seu código aqui
    ...

check("05.2", meu_min_p)

# %% [markdown]
# **Exercício 3 (cache de prefixo).** Muitos pedidos a um mesmo modelo começam pelo mesmo texto (um prompt de
# sistema, um documento). Em vez de processá-lo de novo a cada pedido, um servidor guarda o cache KV desse **prefixo**
# uma vez e continua dele. Escreva `gerar_com_prefixo(model, cache_do_prefixo, sufixo, n)`: `cache_do_prefixo` é um
# `DynamicCache` que já tem o prefixo, `sufixo` tem formato `[1, s]`; devolva os `n` tokens novos gulosos (tensor
# `[1, n]` ou lista). O modelo não pode receber o prefixo de novo, e `cache_do_prefixo` tem de sair como entrou (o
# próximo pedido vai usá-lo; `copy.deepcopy` copia um cache). Escreva o laço você mesmo, sem `generate`. A
# autocorreção compara com a geração gulosa do texto inteiro, para dois sufixos com o mesmo cache.

# %% curso={"exercicio": "05.3", "resposta": "gerar_com_prefixo"} tags=["exercicio"]
def gerar_com_prefixo(model, cache_do_prefixo, sufixo, n):
    # seu código aqui
    ...

check("05.3", gerar_com_prefixo)

# %% [markdown]
# ## Resumo

# %%
record("kv_new_tokens", NEW_TOKENS)
record("speedup_kv_cache", speedup)
record("seconds_no_cache", total_nocache)
record("seconds_with_cache", total_cache)
record("kv_bytes_formula", kv_formula_1024)
record("kv_bytes_measured", kv_measured_1024)
record("batch_throughput_gain", batch_gain)
record("best_batch_size", BATCH_SIZES[throughput.index(max(throughput))])
record("tokens_per_s_dynamic_cache", tps_dynamic)
record("tokens_per_s_static_cache", tps_static)
if tps_compiled is not None:
    record("tokens_per_s_static_compiled", tps_compiled)
    record("compile_seconds", compile_seconds)
record("kv_long_prompt_tokens", int(doc.shape[1]))
record("speedup_kv_cache_long_prompt", long_speedup)
record("fp8_out_of_range_one_token", frac_one)
record("fp8_out_of_range_prefill", frac_prefill)
record("ppl_stepwise_dynamic_cache", ppl_dynamic_cache)
if fp8_cache is not None:
    record("kv_bytes_fp8_over_dynamic", bytes_fp8 / bytes_dynamic)
    if math.isfinite(ppl_fp8_cache):  # NaN onde a conversão dá NaN (seção 6); nada a registrar
        record("ppl_stepwise_fp8_cache", ppl_fp8_cache)
record("fp8_overflow_is_nan", overflow_is_nan)
if math.isfinite(ppl_saturating):
    record("ppl_stepwise_fp8_saturating", ppl_saturating)
record("kv_bytes_fp8_per_token_over_dynamic", bytes_token_fp8 / bytes_dynamic)
record("ppl_stepwise_fp8_per_token_cache", ppl_token_fp8)

# %% [markdown]
# **Para levar.** (1) Gerar é um laço simples; o cuidado está nos detalhes (máscaras, posições, top-p).
# (2) O cache KV troca computação por memória: cada passo processa um token só. (3) A memória do cache cresce com
# camadas × cabeças KV × tokens × lote; GQA, janelas e quantização são as alavancas. Próximo: **06 · ONNX Runtime**.
