# %% [markdown]
# # 05 · Cache KV: gerar texto do zero, com e sem cache
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - escrever o laço de geração de um LLM (guloso, temperatura, top-k, top-p, penalidade de repetição, parada no EOS) e
#   conferir que ele reproduz o `model.generate` token a token;
# - explicar por que o cache KV transforma cada passo de O(n) passadas em uma só, e medir o ganho;
# - calcular quantos bytes o cache ocupa (e por que GQA ajuda) e conferir a fórmula contra o objeto de cache real;
# - gerar em lote com padding à esquerda e medir a vazão por tamanho de lote.
#
# **Pré-requisitos.** Notebook 01 (medidas); saber o que é atenção (consultas, chaves, valores).
# **Tempo estimado.** 35 minutos de leitura; a execução completa leva uns 4 minutos numa CPU de 2 núcleos.
# **Hardware.** CPU serve. Com GPU (T4 no Colab) tudo roda igual, mais rápido.
#
# Todo número impresso aqui é medido agora, nesta execução.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` reduz as cargas para a CI; a medida de velocidade do cache continua com 256 tokens novos, porque é para esse
# tamanho que a afirmação vale.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
NEW_TOKENS = 256                 # tokens novos na comparação com e sem cache
BATCH_SIZES = [1, 2, 4, 8]       # tamanhos de lote na medida de vazão
BATCH_NEW_TOKENS = 32
CACHE_NEW_TOKENS = 64            # tokens novos na comparação de tipos de cache
TF_TOKENS = 256                  # tokens do texto na perplexidade passo a passo (cache quantizado)
COMPILE = True                   # medir StaticCache + torch.compile (leva ~1,5 min para compilar na CPU)

# %%
import time
import matplotlib.pyplot as plt
import torch
from transformers import DynamicCache, QuantizedCache

from course_utils.data import text_token_ids
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.generation import (apply_repetition_penalty, cache_nbytes, generate, kv_cache_bytes,
                                     sample_next_token, top_k_filter, top_p_filter)
from course_utils.measure import tokens_per_second
from course_utils.models import LLAMA2_7B_CONFIG, load_model, load_tokenizer
from course_utils.plotting import plot_bars, plot_lines
from course_utils.results import claim, claim_skipped, record
from course_utils.streaming import nll_to_perplexity, stepwise_nll

if SMOKE:
    BATCH_SIZES, BATCH_NEW_TOKENS, TF_TOKENS, COMPILE = [1, 4], 16, 128, False

quiet_libraries()
torch.set_flush_denormal(True)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
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
# `course_utils.generation.generate` faz exatamente isso, em poucas linhas. Primeiro conferimos que, no modo guloso, ele
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
# Duas armadilhas do material antigo deste curso: no top-p, a máscara é calculada na ordem **ordenada** e precisa voltar
# para as posições **originais** do vocabulário (`scatter`); e a penalidade não pode alterar os logits no lugar dentro do
# laço (o tensor é compartilhado). Vejamos a primeira com números:

# %%
logits = torch.tensor([[1.0, 3.0, 0.5, 2.5, -1.0]])
probs = torch.softmax(logits, -1)
kept = torch.isfinite(top_p_filter(logits, 0.8))
print("probabilidades:", [round(v, 3) for v in probs[0].tolist()])
print("top-p 0.8 mantém os tokens:", kept[0].nonzero().flatten().tolist())

# a versão com o bug: aplica a máscara calculada na ordem ordenada direto nos logits originais
sorted_logits, order = torch.sort(logits, descending=True)
cum = torch.softmax(sorted_logits, -1).cumsum(-1)
remove_sorted = (cum - torch.softmax(sorted_logits, -1)) > 0.8
buggy = logits.masked_fill(remove_sorted, float("-inf"))
print("versão com bug mantém:", torch.isfinite(buggy)[0].nonzero().flatten().tolist())
assert kept[0].nonzero().flatten().tolist() == [1, 3], "top-p 0.8 deveria manter os dois tokens mais prováveis"
assert not torch.equal(torch.isfinite(buggy), kept), "o bug deveria escolher tokens errados"

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
if device == "cpu" and NEW_TOKENS >= 256:
    claim("CPU: cache KV >= 3x com 256 tokens novos ou mais", speedup >= 3, measured=speedup)
elif device == "cpu":
    claim_skipped("CPU: cache KV >= 3x com 256 tokens novos ou mais", f"só {NEW_TOKENS} tokens novos")
else:  # na GPU um modelo deste tamanho é limitado pelo lançamento de kernels, não pela conta
    claim_skipped("CPU: cache KV >= 3x com 256 tokens novos ou mais", "execução na GPU")
    assert speedup > 1, "mesmo na GPU o cache não deveria deixar a geração mais lenta"
    print("Na GPU, com um modelo de 135 M parâmetros e poucas centenas de tokens, cada passo custa quase só o "
          "lançamento dos kernels (com ou sem cache), então o ganho é menor; ele cresce com o modelo e o contexto.")
late_ratio = (sum(t_nocache[-32:]) / 32) / (sum(t_cache[1:33]) / 32)
print(f"no fim, um passo sem cache custa {late_ratio:.1f}x um passo com cache do começo")

# %% [markdown]
# O tempo sem cache cresce com o comprimento (cada passo reprocessa tudo); com cache ele fica quase plano: o passo só
# processa um token, e a atenção sobre o cache é barata perto das camadas lineares num modelo deste tamanho.

# %% [markdown]
# ## 4. Quanto o cache ocupa
#
# Para cada camada guardamos $K$ e $V$: dois tensores de formato [lote, cabeças KV, tokens, dimensão da cabeça].
# $$\text{bytes} = 2 \times \text{camadas} \times \text{cabeças KV} \times \text{dim. da cabeça} \times \text{tokens} \times \text{lote} \times \text{bytes por elemento}.$$
#
# **GQA (grouped-query attention).** O modelo de referência tem 9 cabeças de consulta mas só 3 cabeças de chave/valor:
# cada grupo de 3 consultas compartilha um par $K,V$. O cache fica 3x menor do que seria com 9 cabeças KV.
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
print(f"com 9 cabeças KV (sem GQA) seriam {mha / 2**20:.2f} MiB: {mha / kv_formula_1024:.0f}x mais")

# %%
mistral = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}
print("Cache KV em fp16, lote 1:")
for name, c in [("Llama-2-7B (MHA, 32 cabeças KV)", LLAMA2_7B_CONFIG), ("Mistral-7B (GQA, 8 cabeças KV)", mistral)]:
    for n in (4096, 32768):
        print(f"  {name:<32} {n:>6} tokens: {kv_cache_bytes(c, n, bytes_per_element=2) / 2**30:6.2f} GiB")

# %% [markdown]
# Num Llama-2-7B em fp16 os pesos ocupam ~12,5 GiB (notebook 01); a 32 mil tokens o cache sozinho passaria de 16 GiB.
# Numa T4 (15 GiB) é o cache, não os pesos, que limita o contexto — daí GQA, caches quantizados e janelas (notebook 04).

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
# mais tokens. A vazão cresce até a conta (e não a leitura de memória) virar o gargalo.

# %% [markdown]
# ## 6. Tipos de cache no transformers 5
#
# - `DynamicCache` (padrão): cresce a cada token, concatenando tensores. Foi o que usamos até aqui.
# - `StaticCache`: aloca de uma vez o espaço para `max_cache_len` tokens. Formatos fixos permitem ao `torch.compile`
#   gerar um grafo só para o passo de decode. Na GPU, o `generate` compila esse passo sozinho quando o cache é
#   estático; abaixo desligamos isso (`disable_compile=True`) para medir o cache e a compilação separadamente.
# - `QuantizedCache`: guarda K e V quantizados. O backend `fp8` vem no próprio transformers (uma escala por tensor);
#   `quanto` e `hqq` quantizam por grupos, mas exigem pacotes extras.
# - Cache com *offloading* (`cache_implementation="offloaded"`): mantém na GPU só a camada em uso e deixa as outras na
#   memória da CPU. Só faz sentido com GPU.

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
    print("torch.compile não medido nesta execução (COMPILE=False).")

# %% [markdown]
# **Cache quantizado: memória contra qualidade.** Medimos os bytes guardados e a perplexidade calculada **passo a passo**
# (um token por vez, como na geração, lendo K e V do cache), com o cache normal e com o cache em fp8.

# %%
tf_ids = text_token_ids(tokenizer, "en", TF_TOKENS + 1).to(device)

def stepwise_perplexity(cache):
    """exp(média de -log p(x_t | x_<t)), um token por passo, K e V vindo do cache (course_utils.streaming)."""
    return nll_to_perplexity(stepwise_nll(model, tf_ids, cache=cache, progress=False)["nll"])

dyn_cache = DynamicCache(config=model.config)
ppl_dynamic_cache = stepwise_perplexity(dyn_cache)
bytes_dynamic = cache_nbytes(dyn_cache)
print(f"cache normal: {bytes_dynamic / 2**20:.2f} MiB, perplexidade {ppl_dynamic_cache:.2f}")
try:
    fp8_cache = QuantizedCache("fp8", model.config)
except ValueError:  # o backend fp8 entrou no transformers depois da 5.17
    fp8_cache = None
    print("Este transformers não tem o backend fp8 do QuantizedCache; a célula de configuração instala uma versão que tem.")
if fp8_cache is not None:
    ppl_fp8_cache = stepwise_perplexity(fp8_cache)
    bytes_fp8 = cache_nbytes(fp8_cache)
    print(f"cache fp8:    {bytes_fp8 / 2**20:.2f} MiB ({bytes_fp8 / bytes_dynamic:.2f}x), perplexidade {ppl_fp8_cache:.2f} "
          f"({100 * (ppl_fp8_cache / ppl_dynamic_cache - 1):+.0f}%)")
    assert bytes_fp8 < 0.55 * bytes_dynamic, "o cache fp8 deveria ocupar no máximo ~metade do cache em 16/32 bits"

# %% [markdown]
# Neste modelo pequeno, uma escala só por tensor em fp8 custa caro em qualidade: cada cabeça tem faixas de valores
# diferentes, e as chaves têm canais com valores grandes. Por isso os métodos de cache quantizado usados na prática
# (KIVI, e os backends `quanto`/`hqq`) quantizam **por grupos**, e guardam os tokens mais recentes sem quantizar.

# %%
if device.startswith("cuda"):
    offloaded = tokens_per_second(model, tokenizer, CLOCK_PROMPT, CACHE_NEW_TOKENS, warmup=1, repeats=reps,
                                  cache_implementation="offloaded")
    tps_off = offloaded["tokens_per_s"]
    assert torch.equal(offloaded["output_ids"], ref_ids), "o cache com offloading deveria gerar os mesmos tokens"
    print(f"cache com offloading: {tps_off:.1f} tokens/s (DynamicCache: {tps_dynamic:.1f}); mesmos tokens")
else:
    print("Sem GPU: o cache com offloading move camadas entre a GPU e a CPU, então aqui não há o que medir. "
          "Rode este notebook no Colab com GPU para ver a troca de memória por velocidade.")

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Quantos **GiB** ocupa o cache KV de um Llama-2-7B (32 camadas, 32 cabeças KV, dimensão 128) em fp16,
# lote 1, com 4.096 tokens?

# %% curso={"exercicio": "05.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número
check("05.1", resposta_1)


# %% [markdown]
# **Exercício 2.** Implemente o filtro top-p: recebe logits `[lote, vocabulário]` e `p`, devolve logits com `-inf` nos
# tokens removidos. Mantenha o token que faz a soma passar de `p` e pelo menos um token por linha.

# %% curso={"exercicio": "05.2", "resposta": "meu_top_p"} tags=["exercicio"]
def meu_top_p(logits, p):
    # seu código aqui
    ...

check("05.2", meu_top_p)

# %% [markdown]
# **Exercício 3.** Quantas vezes **menor** é o cache KV do modelo de referência (9 cabeças de consulta, 3 cabeças KV) do que
# seria se cada cabeça de consulta tivesse suas próprias chaves e valores?

# %% curso={"exercicio": "05.3", "resposta": "resposta_3"} tags=["exercicio"]
resposta_3 = None  # substitua por um número
check("05.3", resposta_3)

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
record("ppl_stepwise_dynamic_cache", ppl_dynamic_cache)
if fp8_cache is not None:
    record("kv_bytes_fp8_over_dynamic", bytes_fp8 / bytes_dynamic)
    record("ppl_stepwise_fp8_cache", ppl_fp8_cache)

# %% [markdown]
# **Para levar.** (1) Gerar é um laço simples; o cuidado está nos detalhes (máscaras, posições, top-p).
# (2) O cache KV troca computação por memória: cada passo processa um token só. (3) A memória do cache cresce com
# camadas × cabeças KV × tokens; GQA e lote são as alavancas. Próximo: **04 · Janela deslizante e attention sinks**,
# que limitam o cache em contextos longos.
