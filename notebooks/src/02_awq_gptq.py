# %% [markdown]
# # 02 · AWQ e GPTQ: 3 e 4 bits que olham os dados
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - por que o arredondamento ao mais próximo (RTN) por grupos perde tanto em 3 bits, e medir isso;
# - escrever o **GPTQ**: a hessiana $H = 2X^\top X$ das entradas de cada camada, o amortecimento, a Cholesky da inversa, a
#   quantização coluna a coluna com correção do erro em blocos, o *act-order* e a passagem bloco a bloco pelo modelo;
# - escrever o **AWQ**: a magnitude das ativações por canal, a busca do expoente $\alpha$, as escalas dobradas na operação
#   anterior (sem custo na inferência) e a busca de recorte;
# - reproduzir em miniatura o resultado dos artigos (GPTQ e AWQ bem melhores que RTN em 3 bits) e comparar com os números
#   publicados dizendo o que difere;
# - quantizar com uma biblioteca mantida que roda onde você roda este notebook (o **AutoRound**: o AWQ dele e o método
#   AutoRound), salvar e recarregar o checkpoint, e migrar código antigo do AutoGPTQ/AutoAWQ.
#
# **Pré-requisitos.** Notebook 01 (quantização por grupos, ponto-zero, bits por peso, perplexidade). Álgebra linear básica
# (produto de matrizes, inversa; a decomposição de Cholesky é explicada aqui).
# **Tempo estimado.** 50 minutos de leitura; a execução completa leva uns 3 minutos numa CPU de 2 núcleos livre
# (com `SMOKE=True`, menos).
# **Hardware.** CPU serve: num runtime de CPU o notebook roda inteiro (os algoritmos do curso são PyTorch puro), só mais
# devagar. O notebook pede uma T4 ao Colab: com GPU tudo roda mais rápido.
#
# Todo número impresso aqui é medido agora, nesta execução. Números de artigos aparecem sempre com a fonte.

# %% [markdown]
# ## Parâmetros
# A célula abaixo tem a tag `parameters`: quem executa o notebook de fora (o papermill) pode trocar esses valores.
# `SMOKE=True` é uma versão rápida de cada experimento (grade do AWQ mais grossa, sem a seção 7, e a biblioteca da
# seção 8 com menos janelas, pontos e passos); as
# afirmações do notebook continuam sendo conferidas com esses tamanhos.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"            # "auto" usa a GPU se houver
EVAL_TOKENS = 1024         # tokens avaliados: o INÍCIO do texto em inglês (course_utils/data)
WINDOW, STRIDE = 1024, 512
CALIB_START = 4096         # a calibração só usa o texto a partir deste token: nunca o trecho avaliado
CALIB_SAMPLES, CALIB_LEN = 8, 128    # janelas de calibração (amostras x tokens)
GROUP_SIZE = 64            # 576 (hidden do modelo) não é divisível por 128
GPTQ_ACT_ORDER = True      # act-order (desc_act): colunas em ordem de diag(H) decrescente
GPTQ_DAMP = 0.1            # amortecimento: fração da média de diag(H) (o artigo usa 0,01; ver seção 3)
AWQ_GRID = 20              # pontos da grade de alfa (o código de referência do AWQ, llm-awq, usa 20)
AWQ_SEARCH_TOKENS = 128    # tokens de calibração usados na busca de alfa
AWQ_CLIP = True            # busca de recorte dos pesos depois das escalas
MISMATCH = True            # seção 7: calibrar com o texto em português e avaliar no inglês
RUN_LIBRARY = True         # seção 8: quantiza também com a biblioteca AutoRound (se estiver instalada)
LIBRARY_CALIB_SAMPLES = 4  # seção 8: quantas das janelas de calibração a biblioteca usa
LIBRARY_AWQ_GRID = 10      # seção 8: pontos da grade de alfa do AWQ da biblioteca
LIBRARY_ITERS = 10         # seção 8: passos do método AutoRound por bloco (o padrão da biblioteca é 200)
LIBRARY_LR = 0.05          # seção 8: tamanho de cada passo (o padrão da biblioteca, 1/passos, é para 200 passos)

# %%
if SMOKE:  # a versão rápida (ver a seção 5: as afirmações valem também com ela)
    AWQ_GRID = 10
    MISMATCH = False
    LIBRARY_CALIB_SAMPLES, LIBRARY_AWQ_GRID, LIBRARY_ITERS = 2, 5, 5

# %%
import copy
import time

import matplotlib.pyplot as plt
import torch

from course_utils.awq import awq_clip, awq_layer_errors, awq_quantize, awq_search_scale, fold_scales, llama_scale_groups
from course_utils.calibration import calibration_samples, linear_input_hessian, linear_inputs, output_error
from course_utils.data import text_token_ids
from course_utils.display import explore, show_source
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.gptq import gptq_quantize, gptq_quantize_weight
from course_utils.library_quant import (
    autoround_checkpoint,
    autoround_configs,
    autoround_quantize,
    describe_checkpoint,
    library_missing,
    reload_quantized,
)
from course_utils.measure import perplexity
from course_utils.models import LLAMA2_7B_CONFIG, OFFLINE_MODELS, load_model, load_tokenizer, resolve_model
from course_utils.planner import PRESETS, weight_gib
from course_utils.plotting import plot_bars
from course_utils.quantization import bits_per_weight, fake_quantize_model_, rtn_quantize
from course_utils.results import claim, claim_skipped, record

quiet_libraries()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
print(environment_info())

# %% [markdown]
# ## 1. O modelo, o texto de avaliação e o texto de calibração
#
# GPTQ e AWQ **olham os dados**: passam algumas sequências de *calibração* pelo modelo e usam o que chega em cada camada.
# Por isso a avaliação tem de ser feita num texto que a calibração **não viu** — senão medimos quanto o método decorou a
# calibração, não quanto ele preserva o modelo.
#
# O curso tem dois textos originais (`course_utils/data`, inglês e português, uns 11 mil tokens cada, com o tokenizador do SmolLM2). Avaliamos no
# **início** do texto em inglês e calibramos com janelas tiradas **depois** do token `CALIB_START`: os dois trechos não se
# sobrepõem (conferido abaixo). Os artigos vão além: calibram num corpus (C4 no GPTQ, o Pile no AWQ) e avaliam em
# outro (WikiText-2).
#
# O modelo fica em fp32 também na GPU: ele é pequeno, e assim os números da CPU e da GPU são comparáveis.

# %%
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device=device, dtype=torch.float32)
ids_en = text_token_ids(tokenizer, "en")
eval_ids = ids_en[:, :EVAL_TOKENS]
calib_source = ids_en[0, CALIB_START:]
calib = calibration_samples(calib_source, CALIB_SAMPLES, CALIB_LEN, seed=SEED)
calib_tokens = calib.numel()

assert EVAL_TOKENS <= CALIB_START, "a calibração não pode usar o trecho avaliado"
assert calib.shape == (CALIB_SAMPLES, CALIB_LEN)
print(f"avaliação: tokens 0..{EVAL_TOKENS - 1} do texto em inglês | calibração: {CALIB_SAMPLES} janelas de "
      f"{CALIB_LEN} tokens ({calib_tokens} tokens) tiradas dos tokens {CALIB_START}..{ids_en.shape[1] - 1}")

def evaluate(m):
    return perplexity(m, eval_ids, window=WINDOW, stride=STRIDE)

ppl_fp32 = evaluate(model)
print(f"perplexidade fp32: {ppl_fp32:.2f}")
offline_copy = resolve_model(MODEL_ID) != MODEL_ID and MODEL_ID in OFFLINE_MODELS
print("pesos:", "a cópia offline (desquantizada do GGUF Q4_1)" if offline_copy else f"os de {MODEL_ID}")


# %% [markdown]
# ## 2. A linha de base: RTN por grupos
#
# **RTN** (*round-to-nearest*) é o que o notebook 01 fez: para cada grupo de $g = 64$ pesos consecutivos de uma linha,
# escala e ponto-zero inteiro (assimétrica),
# $$s = \frac{\max - \min}{2^b - 1},\qquad z = \mathrm{round}(-\min/s),\qquad \hat w = \big(\mathrm{clamp}(\mathrm{round}(w/s) + z,\ 0,\ 2^b-1) - z\big)\,s,$$
# e cada peso vai para o nível mais próximo **sem olhar para os dados**. Grupos de 64 (e não 128, como nos artigos)
# porque a dimensão oculta do SmolLM2-135M, 576, não é divisível por 128.
#
# Em 4 bits há 16 níveis por grupo; em 3 bits, só 8. Vamos medir quanto isso custa.

# %%
def quantized_copy(method, bits, samples=calib):
    """Cópia do modelo quantizada com `method` ("rtn", "gptq" ou "awq"); devolve (modelo, segundos)."""
    m = copy.deepcopy(model)
    start = time.perf_counter()
    if method == "rtn":
        fake_quantize_model_(m, bits=bits, scheme="zeropoint", granularity="group", group_size=GROUP_SIZE)
    elif method == "gptq":
        gptq_quantize(m, samples, bits=bits, group_size=GROUP_SIZE, damp=GPTQ_DAMP, act_order=GPTQ_ACT_ORDER)
    elif method == "awq":
        awq_quantize(m, samples, bits=bits, group_size=GROUP_SIZE, n_grid=AWQ_GRID, clip=AWQ_CLIP,
                     search_tokens=AWQ_SEARCH_TOKENS)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return m, time.perf_counter() - start

ppl, seconds = {"fp32": ppl_fp32}, {}
for bits in (4, 3):
    m, seconds[f"rtn_w{bits}"] = quantized_copy("rtn", bits)
    ppl[f"rtn_w{bits}"] = evaluate(m)
    del m
    print(f"RTN w{bits}g{GROUP_SIZE}: perplexidade {ppl[f'rtn_w{bits}']:.2f} "
          f"({100 * (ppl[f'rtn_w{bits}'] / ppl_fp32 - 1):+.0f}% vs fp32) | {seconds[f'rtn_w{bits}']:.1f} s")
claim("RTN: 3 bits pior que 4, 4 pior que fp32", ppl["rtn_w3"] > ppl["rtn_w4"] > ppl_fp32,
      measured=ppl["rtn_w3"] / ppl["rtn_w4"])


# %% [markdown]
# O RTN de 3 bits custa muito. (Se a seção 1 disse «a cópia offline», lembre do notebook 01: esses pesos já vieram de
# uma grade de 4 bits, o GGUF Q4_1, e o RTN de 4 bits soma um segundo arredondamento ao primeiro. Com os pesos do Hub,
# no Colab, isso não acontece.) GPTQ e AWQ usam **a mesma grade** (mesmos bits,
# mesmo grupo, mesma escala com ponto-zero): eles só escolhem melhor **quais** valores vão para a grade.
#
# ## 3. GPTQ: quantizar uma coluna e corrigir as seguintes
#
# O que importa não é o erro dos pesos $\lVert W - \hat W\rVert$, mas o erro da **saída** da camada nos dados. Uma só
# notação no notebook inteiro: $X$ é a matriz das entradas da camada, **um token por linha** ($N \times d$), $W$ é
# $[\text{saídas}, d]$, a saída é $XW^\top$ e
# $$\lVert XW^\top - X\hat W^\top\rVert^2 = \tfrac{1}{2}\,\mathrm{tr}\big(\Delta W\, H\, \Delta W^\top\big),\qquad H = 2X^\top X\ \ (d \times d),\qquad \Delta W = W - \hat W.$$
# (O artigo escreve $H = 2XX^\top$ porque lá $X$ tem um token por **coluna**; é a mesma matriz.) O traço é uma soma
# sobre as linhas de $W$: cada linha $w$ ($1\times d$) contribui $\tfrac12\,\Delta w\,H\,\Delta w^\top$ sozinha. As linhas
# não conversam entre si; as **colunas** conversam via $H$: se duas entradas são correlacionadas, o erro cometido numa
# coluna pode ser compensado mexendo na outra.
#
# **Um passo do GPTQ** (Frantar et al., ICLR 2023, herdeiro do *Optimal Brain Surgeon*). Seja $F$ o conjunto das colunas
# ainda **não** quantizadas (no começo, todas) e $H_F$ o bloco de $H$ nessas linhas e colunas. Quantizar a coluna
# $j \in F$ fixa $w_j$ em $q_j$; o melhor ajuste das outras colunas de $F$ (o mínimo exato da forma quadrática com
# $w_j$ fixado) é
# $$w_k \leftarrow w_k - \frac{w_j - q_j}{[H_F^{-1}]_{jj}}\,[H_F^{-1}]_{jk},\qquad k \in F,\ k \ne j.$$
# Atenção ao índice: é a inversa **do bloco das colunas que restam**, $(H_F)^{-1}$, e não o bloco da inversa,
# $(H^{-1})_F$. As duas só coincidem no primeiro passo, quando $F$ é tudo. Depois de quantizar $j$, $F$ perde $j$ e a
# inversa precisa ser atualizada. O OBQ, antecessor do GPTQ, faz isso com uma eliminação de Gauss, $O(d^2)$ por coluna,
# numa ordem diferente para cada linha de $W$. O GPTQ usa **a mesma ordem para todas as linhas** (uma só sequência de
# inversas serve para a matriz inteira: $O(d^3)$ por camada) e, como essas atualizações repetidas acumulam erro em
# float32 até a inversa deixar de ser positiva definida, troca-as pela Cholesky.
#
# **Por que a Cholesky dá todos os passos de uma vez.** Quantizando na ordem $1, 2, \dots, d$, os conjuntos são
# $F_j = \{j, \dots, d\}$. Escreva $H^{-1} = U^\top U$ com $U$ triangular **superior** (a Cholesky de $H^{-1}$). Para uma
# matriz em blocos, a inversa do bloco de baixo, $(H_{22})^{-1}$, é o complemento de Schur do bloco de cima dentro de
# $H^{-1}$: $(H_{22})^{-1} = (H^{-1})_{22} - (H^{-1})_{21}(H^{-1})_{11}^{-1}(H^{-1})_{12}$ (bloco 1: as colunas já
# quantizadas; bloco 2: as que restam). E é exatamente isso que a Cholesky faz a cada linha: para
# $A = \begin{bmatrix} a & b^\top \\ b & C\end{bmatrix}$, a Cholesky superior tem primeira linha
# $[\sqrt a,\ b^\top/\sqrt a]$ e continua na Cholesky de $C - bb^\top/a$, o complemento de Schur de $a$. Com $A = H^{-1}$,
# esse complemento é $(H_{F_{j+1}})^{-1}$. Então a
# linha $j$ de $U$ é a linha $j$ de $(H_{F_j})^{-1}$ dividida por $\sqrt{[(H_{F_j})^{-1}]_{jj}}$, ou seja,
# $$\frac{[(H_{F_j})^{-1}]_{jk}}{[(H_{F_j})^{-1}]_{jj}} = \frac{U_{jk}}{U_{jj}},\qquad\text{e o passo vira}\qquad
# e_j = \frac{w_j - q_j}{U_{jj}},\quad w_k \leftarrow w_k - e_j\,U_{jk}\ \ (k > j).$$
# Uma Cholesky só, feita antes do laço, traz os coeficientes de **todos** os passos. A célula abaixo confere isso numa
# matriz pequena.
#
# Os outros truques:
# - **amortecimento**: $H + \lambda I$ com $\lambda = \text{damp} \cdot \mathrm{média}(\mathrm{diag}\,H)$ (o artigo usa
#   damp = 0,01): com $N$ tokens e $d$ entradas, se $N < d$, $H$ nem é invertível; e mesmo com posto cheio ela pode
#   ser tão mal condicionada que o float32 não separa os menores autovalores de zero;
# - **blocos** (*lazy batch*): as correções dentro de um bloco de 128 colunas são feitas na hora; o resto da matriz
#   recebe todas as correções do bloco de uma vez, $W_{:,\,>b} \mathrel{-}= E\,U_{b,\,>b}$, numa multiplicação de
#   matrizes. É só uma reorganização das contas: o resultado é o mesmo com qualquer tamanho de bloco (os testes do
#   curso conferem);
# - **act-order**: quantizar primeiro as colunas com maior $\mathrm{diag}(H)$ (entradas com mais energia), enquanto ainda
#   sobram muitas colunas para absorver o erro. Os grupos passam a ser formados por colunas **consecutivas na ordem
#   permutada**, que no tensor original ficam espalhadas; por isso um checkpoint real guarda, além de escalas e
#   zeros, o vetor `g_idx` (o grupo de cada coluna de entrada, um inteiro de 32 bits por coluna). O formato GPTQ grava
#   o `g_idx` sempre (sem act-order ele é só $i // g$); com act-order ele deixa de ser trivial e o kernel precisa
#   reordenar as entradas. Custa $32/\text{saídas}$ bits por peso, contado na seção 6;
# - **bloco a bloco pelo modelo**: depois de quantizar um bloco do transformer, as entradas do próximo são calculadas pelo
#   bloco **já quantizado**, então cada bloco é ajustado às entradas que vai receber de verdade, já com o erro dos
#   anteriores. O alvo continua sendo a saída $\tilde X W^\top$ com essas entradas $\tilde X$, e não a do modelo original:
#   o erro acumulado entra na hessiana, mas não é desfeito.

# %%
gen = torch.Generator().manual_seed(SEED)
# float64: a identidade é exata; em float32 o arredondamento da inversa já aparece na 4ª casa em outros processadores
X_small = torch.randn(64, 6, generator=gen, dtype=torch.float64) @ torch.randn(6, 6, generator=gen, dtype=torch.float64)
H_small = 2 * X_small.T @ X_small
U_small = torch.linalg.cholesky(torch.linalg.inv(H_small), upper=True)            # H⁻¹ = UᵀU
for j in range(6):
    remaining_inv = torch.linalg.inv(H_small[j:, j:])          # (H_F)⁻¹ com F = {j, ..., d}
    from_cholesky = U_small[j, j:] / U_small[j, j]             # o que o laço do GPTQ usa
    assert torch.allclose(remaining_inv[0] / remaining_inv[0, 0], from_cholesky, atol=1e-4, rtol=1e-3)
naive_gap = (torch.linalg.inv(H_small)[2, 2:] / torch.linalg.inv(H_small)[2, 2]
             - torch.linalg.inv(H_small[2:, 2:])[0] / torch.linalg.inv(H_small[2:, 2:])[0, 0]).abs().max().item()
print("Conferido: a linha j de U, dividida por U_jj, é a linha j da inversa do bloco das colunas que restam.")
print(f"Usar o bloco de H⁻¹ na terceira coluna erraria os coeficientes em até {naive_gap:.2f} (em unidades de w_j − q_j).")

# %% [markdown]
# O código do curso (`course_utils/gptq.py`): depois das validações, o laço tem umas 25 linhas. Leia com a matemática acima ao lado:
# - `U = gptq_inverse_hessian(H, damp)`: amortece e devolve o fator superior $U$ de $(H+\lambda I)^{-1}$;
# - com `act_order`, `perm` ordena as colunas por $\mathrm{diag}(H)$ decrescente, e $W$ e $H$ são permutados **antes**
#   da Cholesky (os grupos se formam nessa ordem; no fim, `argsort(perm)` desfaz a permutação);
# - o laço de fora anda de bloco em bloco (`b0:b1`); ao entrar num grupo novo, `zeropoint_params` decide escala e zero
#   com as colunas do grupo **já corrigidas** pelas anteriores;
# - `err = (w - q) / Ub[j, j]` é o $e_j$; `Wb[j:].addr_(Ub[j, j:], err, alpha=-1)` faz $w_k \mathrel{-}= e_j U_{jk}$ dentro
#   do bloco; `Err[j] = err` guarda o $e_j$ para o resto;
# - `Wt[b1:] -= U[b0:b1, b1:].t() @ Err` aplica, de uma vez, as correções do bloco às colunas que vêm depois dele.
# (Trabalhamos com $W^\top$, em que a coluna $j$ de $W$ é uma linha contígua na memória.)

# %%
show_source(gptq_quantize_weight)

# %% [markdown]
# O resto do GPTQ (a hessiana de cada linear e a passagem bloco a bloco) está em `course_utils/gptq.py` e
# `course_utils/calibration.py` (`linear_input_hessian` passa os tokens pelo modelo até a linear pedida e acumula
# $H = \tfrac{2}{N}X^\top X$ das entradas dela, lote a lote, com `accumulate_hessian`).
# Primeiro, numa camada só: a `down_proj` do primeiro bloco (1.536 entradas no SmolLM2-135M), com $H$ medido na calibração e o erro
# medido **no texto de avaliação** (entradas que o GPTQ nunca viu). Comparamos também dois amortecimentos: o 0,01 do
# artigo, que calibra com 128 × 2.048 tokens, e o 0,1 que usamos aqui, com bem menos tokens: a célula mostra o
# **número de condição** de $H + \lambda I$ (o maior autovalor dividido pelo menor, calculado em float64) para cada
# amortecimento. Quanto maior, mais a inversa amplifica ruído da calibração, e mais o GPTQ pode se ajustar a ela. Com
# menos tokens de calibração que entradas, $H$ sozinho nem é invertível (o número de condição dele é infinito).

# %%
# (W, H) da down_proj do bloco 0: H = 2XᵀX/N das entradas dela na calibração e no texto de avaliação
w0, H_calib = linear_input_hessian(model, calib, layer_index=0, name="mlp.down_proj")
_, H_eval = linear_input_hessian(model, eval_ids[:, :1024], layer_index=0, name="mlp.down_proj")
eigenvalues = torch.linalg.eigvalsh(H_calib.double()).clamp(min=0)   # H é semidefinida: negativos são arredondamento
n_inputs = w0.shape[1]
print(f"down_proj do bloco 0: {n_inputs} entradas, {calib_tokens} tokens de calibração")
if calib_tokens < n_inputs:
    print(f"  menos tokens que entradas: H tem posto no máximo {calib_tokens} e só é invertível com o amortecimento")
for damp in sorted({0.01, 0.1, GPTQ_DAMP}):
    lam = damp * eigenvalues.mean()        # λ = damp x média(diag H); a média da diagonal é a média dos autovalores
    print(f"  λ = {damp} x média(diag H): número de condição de H + λI = "
          f"{(eigenvalues.max() + lam) / (eigenvalues.min() + lam):.1e}")
layer_err = {}
for bits in (4, 3):
    layer_err[f"RTN w{bits}"] = output_error(w0, rtn_quantize(w0, bits, GROUP_SIZE), H_eval)
    for damp in sorted({0.01, 0.1, GPTQ_DAMP}):
        w_hat = gptq_quantize_weight(w0, H_calib, bits, GROUP_SIZE, damp=damp)
        layer_err[f"GPTQ w{bits} λ={damp}"] = output_error(w0, w_hat, H_eval)
    w_hat = gptq_quantize_weight(w0, H_calib, bits, GROUP_SIZE, damp=GPTQ_DAMP, act_order=True)
    layer_err[f"GPTQ w{bits} λ={GPTQ_DAMP} act-order"] = output_error(w0, w_hat, H_eval)
for name, err in layer_err.items():
    print(f"{name:<28} erro relativo da saída (texto de avaliação): {100 * err:.2f}%")
for b in (4, 3):
    if layer_err[f"GPTQ w{b} λ=0.01"] > layer_err[f"RTN w{b}"]:
        print(f"=> com o λ = 0,01 do artigo e poucos tokens, o GPTQ de {b} bits errou MAIS que o RTN no texto não visto: "
              "a inversa amplificou direções que a calibração mal viu, e ele se ajustou a elas.")
gptq_layer_ratio = max(layer_err[f"GPTQ w{b} λ={GPTQ_DAMP}"] / layer_err[f"RTN w{b}"] for b in (4, 3))
claim("GPTQ erra menos que o RTN na down_proj do bloco 0, em texto que a calibração não viu (4 e 3 bits)",
      gptq_layer_ratio < 1, measured=gptq_layer_ratio)

# %%
fig, ax = plt.subplots(figsize=(11, 3.8))
plot_bars(list(layer_err), [100 * v for v in layer_err.values()],
          "down_proj do bloco 0: erro da saída em texto não visto", "erro relativo (%)", ax=ax, fmt="{:.1f}",
          color="tab:purple")
ax.tick_params(axis="x", labelsize=7, rotation=20)
plt.tight_layout()
plt.show()

# %% [markdown]
# Agora o modelo inteiro, em 4 e 3 bits. A barra de progresso anda bloco a bloco (30 blocos no SmolLM2-135M). Na CPU, o laço coluna a
# coluna roda com uma thread só (`one_cpu_thread`, em `course_utils/measure.py`, explica por quê).

# %%
for bits in (4, 3):
    m, seconds[f"gptq_w{bits}"] = quantized_copy("gptq", bits)
    ppl[f"gptq_w{bits}"] = evaluate(m)
    del m
    print(f"GPTQ w{bits}g{GROUP_SIZE}: perplexidade {ppl[f'gptq_w{bits}']:.2f} (RTN: {ppl[f'rtn_w{bits}']:.2f}) | "
          f"quantizar levou {seconds[f'gptq_w{bits}']:.1f} s")

# %% [markdown]
# ## 4. AWQ: proteger os canais salientes com uma escala
#
# O AWQ (Lin et al., MLSys 2024) parte de uma observação: poucos canais de **entrada** têm ativações grandes, e os pesos
# que os multiplicam importam muito mais. Em vez de guardá-los em precisão maior (formato misto, ruim para kernels), o AWQ
# multiplica essas colunas de $W$ por $s > 1$ — elas passam a usar melhor a grade — e divide a entrada pelo mesmo $s$:
# $$y = xW^\top = (x\,\mathrm{diag}(s)^{-1})\,(W\,\mathrm{diag}(s))^\top.$$
# Em ponto flutuante **nada muda**. A divisão é **dobrada** na operação anterior: a RMSNorm antes de q/k/v e de gate/up
# ($y = g \odot x/\mathrm{rms}(x)$, então $g \leftarrow g/s$) e a `up_proj` antes da `down_proj` (linhas divididas por $s$).
# Na inferência não sobra nenhuma conta a mais. (A `o_proj` fica sem escala aqui: com GQA, no SmolLM2-135M a `v_proj`
# tem 192 saídas e a `o_proj` 576 entradas, então não há onde dobrar; o AutoAWQ faz o mesmo.)
#
# A escala é $s = \overline{|x|}^{\,\alpha}$ por canal (média sobre a calibração), e $\alpha \in \{0, 0{,}05, \dots, 0{,}95\}$
# é escolhido para cada grupo de lineares que dividem a entrada, minimizando o erro da saída
# $\lVert (X\,\mathrm{diag}(s)^{-1})\,Q(W\,\mathrm{diag}(s))^\top - XW^\top\rVert^2$ (a mesma notação da seção 3: um token por linha de $X$). Com $\alpha = 0$, $s = 1$: é o RTN. Depois das
# escalas, uma busca de **recorte** (*clipping*) encolhe o limite de cada grupo de pesos se isso diminuir o erro da saída.
# E então vem o RTN comum. O código, em `course_utils/awq.py`, lido com a fórmula ao lado:
# - `awq_scale(x_absmean, alpha)` é $s = \overline{|x|}^{\,\alpha}$, dividido por $\sqrt{\max s \cdot \min s}$ para
#   ficar em torno de 1 (a escala absoluta não muda nada: a grade de cada grupo se ajusta a ela);
# - `reference = [x @ w.T ...]` guarda a saída original $xW^\top$ de cada linear do grupo, calculada uma vez;
# - para cada $\alpha$ da grade, `(x / s) @ rtn_quantize(w * s, ...).T - y` é a saída quantizada menos a original:
#   colunas de $W$ multiplicadas por $s$, quantizadas com o RTN da seção 2, entrada dividida por $s$;
# - a perda soma as lineares do grupo (q, k e v dividem a mesma entrada, e portanto o mesmo $s$), e o menor erro vence.

# %%
show_source(awq_search_scale)

# %% [markdown]
# E a dobra: `fold_scales` divide a operação anterior por $s$ (o peso $g$ da RMSNorm, ou as linhas da `up_proj`) e
# multiplica as colunas das lineares seguintes por $s$. Nenhum parâmetro novo aparece no modelo.

# %%
show_source(fold_scales)

# %% [markdown]
# Por último, o recorte (`awq_clip`, o `auto_clip` do AutoAWQ): para cada grupo $g$ de uma linha de pesos, testa limites
# $r\cdot\max|w_g|$ em passos de $1/n$, com $n$ = `AWQ_GRID` (com 20: $r = 1;\ 0{,}95;\ \dots;\ 0{,}55$, sem chegar à
# metade, como no AutoAWQ), e fica com o que minimiza o erro da saída do
# grupo, $\Delta w_g\, H_g\, \Delta w_g^\top$, onde $\Delta w_g = w_g - Q(\mathrm{clip}(w_g))$ e $H_g$ é o bloco de $H$
# das entradas do grupo (o erro entre grupos diferentes fica de fora, como no AutoAWQ). Recortar os extremos encolhe a
# escala do grupo: os pesos grandes erram mais, os outros arredondam melhor, e $H$ diz qual erro pesa mais na saída.
# (Como no AutoAWQ, a `q_proj` e a `k_proj` não são recortadas.)

# %%
show_source(awq_clip)

# %% [markdown]
# Primeiro conferimos a dobra: escalas aleatórias dobradas em todos os blocos não mudam a saída do modelo.

# %%
folded = copy.deepcopy(model)
probe = eval_ids[:, :64].to(device)
gen = torch.Generator().manual_seed(SEED)
with torch.no_grad():
    reference_logits = model(probe).logits
    for layer in folded.model.layers:
        for prev, linears in llama_scale_groups(layer):
            if prev is not None:
                s = (torch.rand(linears[0].in_features, generator=gen) * 3 + 0.5).to(device)
                fold_scales(prev, linears, s)
    folded_logits = folded(probe).logits
fold_diff = ((folded_logits - reference_logits).abs().max() / reference_logits.abs().max()).item()
print(f"maior diferença nos logits depois de dobrar escalas aleatórias, relativa ao maior logit: {fold_diff:.2e}")
# arredondamento do float32 ao longo dos blocos; uma dobra errada (esquecer um lado) muda os logits na ordem de 1
claim("dobrar as escalas do AWQ não muda o modelo", fold_diff < 1e-4, measured=fold_diff)
del folded

# %% [markdown]
# A busca de $\alpha$ num grupo real (gate/up do primeiro bloco, 3 bits): o erro da saída para cada $\alpha$ da grade.

# %%
layer = model.model.layers[0]
x_gate = linear_inputs(model, calib[:4], layer_index=0, name="mlp.gate_proj")      # [tokens, entradas]
s_best, alpha_best, losses = awq_search_scale([layer.mlp.gate_proj.weight, layer.mlp.up_proj.weight],
                                              x_gate[:AWQ_SEARCH_TOKENS], x_gate.abs().mean(0), bits=3,
                                              group_size=GROUP_SIZE, n_grid=AWQ_GRID)
alphas = [k / AWQ_GRID for k in range(AWQ_GRID)]
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(alphas, [loss / losses[0] for loss in losses], marker="o")
ax.axvline(alpha_best, color="tab:red", ls="--", label=f"melhor α = {alpha_best:.2f}")
ax.set_xlabel("α  (s = média|x|^α)")
ax.set_ylabel("erro da saída / erro do RTN")
ax.set_title("AWQ, bloco 0, gate/up em 3 bits: busca de α")
ax.grid(alpha=0.3)
ax.legend()
plt.tight_layout()
plt.show()
# o α foi escolhido na calibração; o teste de verdade é o texto de avaliação (H das entradas da gate/up nele)
_, H_gate_eval = linear_input_hessian(model, eval_ids[:, :1024], layer_index=0, name="mlp.gate_proj")
held_out = {name: awq_layer_errors(getattr(layer.mlp, name).weight, x_gate.abs().mean(0), H_gate_eval, 3,
                                   GROUP_SIZE, alpha_best) for name in ("gate_proj", "up_proj")}
print(f"canais de entrada: mean|x| vai de {x_gate.abs().mean(0).min():.3f} a {x_gate.abs().mean(0).max():.3f}; "
      f"na calibração, com α = {alpha_best:.2f}, o erro cai para {100 * min(losses) / losses[0]:.0f}% do RTN")
for name, err in held_out.items():
    print(f"  {name}, no texto de avaliação: RTN {100 * err['rtn']:.2f}% | AWQ (α = {alpha_best:.2f}) "
          f"{100 * err['awq']:.2f}% de erro relativo da saída")
awq_held_out_ratio = max(err["awq"] / err["rtn"] for err in held_out.values())
claim("AWQ: o α escolhido na calibração erra menos que o RTN na gate/up do bloco 0 em texto não visto",
      awq_held_out_ratio < 1, measured=awq_held_out_ratio)

# %% [markdown]
# ### Mexa você: bits, tamanho do grupo e $\alpha$
#
# A função abaixo quantiza a `gate_proj` do bloco 0 de dois jeitos, com os bits e o grupo que você escolher: RTN puro
# e RTN depois da escala do AWQ com o $\alpha$ que você escolher ($s = \overline{|x|}^{\alpha}$, tirado da
# calibração, sem busca e sem recorte). O erro relativo da saída é medido com o $H$ das entradas dessa camada no
# **texto de avaliação**. Com os controles (no Jupyter ou no Colab): com $\alpha = 0$ os dois coincidem (é a mesma
# conta); procure o $\alpha$ de menor erro e compare com o que a busca acima escolheu (lá a camada é a `gate_proj`
# junto com a `up_proj`, e o erro é medido na calibração); veja o que muda com mais bits e com grupos menores. Sem os
# controles (por exemplo, executado pelo papermill), a célula roda só com os valores padrão.

# %%
gate_w = layer.mlp.gate_proj.weight.detach()
group_choices = [g for g in (16, 32, 64, 128, 192, 256) if gate_w.shape[1] % g == 0]

def gate_error(bits=3, group_size=GROUP_SIZE, alpha=0.5):
    """gate_proj do bloco 0: erro relativo da saída no texto de avaliação, com RTN e com a escala do AWQ."""
    err = awq_layer_errors(gate_w, x_gate.abs().mean(0), H_gate_eval, bits, group_size, alpha)
    print(f"w{bits}g{group_size}, α = {alpha:.1f}: RTN {100 * err['rtn']:.3f}% | AWQ {100 * err['awq']:.3f}% "
          f"(o AWQ erra {err['awq'] / err['rtn']:.2f}x o que o RTN erra)")

explore(gate_error, bits=(2, 8, 1), group_size=group_choices, alpha=(0.0, 1.0, 0.1))

# %% [markdown]
# E o modelo inteiro, em 4 e 3 bits:

# %%
for bits in (4, 3):
    m, seconds[f"awq_w{bits}"] = quantized_copy("awq", bits)
    ppl[f"awq_w{bits}"] = evaluate(m)
    del m
    print(f"AWQ w{bits}g{GROUP_SIZE}: perplexidade {ppl[f'awq_w{bits}']:.2f} (RTN: {ppl[f'rtn_w{bits}']:.2f}) | "
          f"quantizar levou {seconds[f'awq_w{bits}']:.1f} s")


# %% [markdown]
# ## 5. O resultado dos artigos, em miniatura
#
# As afirmações, conferidas com o que acabamos de medir:
# - GPTQ e AWQ são melhores que o RTN em **w4g64** e em **w3g64**;
# - o ganho de cada um sobre o RTN, $\mathrm{ppl}_{RTN} - \mathrm{ppl}_{método}$, é **maior em 3 bits** do que em 4
#   (nas tabelas dos artigos, é em 3 bits que o RTN desaba e os métodos fazem mais diferença).
#
# E, como observação (sem limiar: depende do modelo e dos dados), a fração do estrago do RTN que cada método remove,
# $\dfrac{\mathrm{ppl}_{RTN} - \mathrm{ppl}_{método}}{\mathrm{ppl}_{RTN} - \mathrm{ppl}_{fp32}}$.
# Com a versão rápida (`SMOKE=True`: grade do AWQ com 10 pontos em vez de 20) as mesmas afirmações são conferidas, com
# margem menor: o AWQ escolhe $\alpha$ numa grade mais grossa.

# %%
def removed(method, bits):
    return (ppl[f"rtn_w{bits}"] - ppl[f"{method}_w{bits}"]) / (ppl[f"rtn_w{bits}"] - ppl_fp32)

def gain(method, bits):
    return ppl[f"rtn_w{bits}"] - ppl[f"{method}_w{bits}"]

print(f"{'':>6} {'fp32':>8} {'RTN':>8} {'GPTQ':>8} {'AWQ':>8}   removido: GPTQ   AWQ")
for bits in (4, 3):
    print(f"w{bits}g{GROUP_SIZE:<3} {ppl_fp32:8.2f} {ppl[f'rtn_w{bits}']:8.2f} {ppl[f'gptq_w{bits}']:8.2f} "
          f"{ppl[f'awq_w{bits}']:8.2f}   {100 * removed('gptq', bits):11.0f}% {100 * removed('awq', bits):5.0f}%")

claim("GPTQ e AWQ melhores que RTN em w4g64", max(ppl["gptq_w4"], ppl["awq_w4"]) < ppl["rtn_w4"],
      measured=max(ppl["gptq_w4"], ppl["awq_w4"]) / ppl["rtn_w4"])
claim("GPTQ e AWQ melhores que RTN em w3g64", max(ppl["gptq_w3"], ppl["awq_w3"]) < ppl["rtn_w3"],
      measured=max(ppl["gptq_w3"], ppl["awq_w3"]) / ppl["rtn_w3"])
claim("GPTQ: o ganho sobre o RTN é maior em 3 bits que em 4", gain("gptq", 3) > gain("gptq", 4),
      measured=gain("gptq", 3) / gain("gptq", 4))
claim("AWQ: o ganho sobre o RTN é maior em 3 bits que em 4", gain("awq", 3) > gain("awq", 4),
      measured=gain("awq", 3) / gain("awq", 4))
print("Conferido: GPTQ e AWQ vencem o RTN em 4 e 3 bits, e ganham mais dele em 3 bits.")

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
for ax, bits in zip(axes, (4, 3), strict=True):
    names = ["fp32", "RTN", "GPTQ", "AWQ"]
    values = [ppl_fp32, ppl[f"rtn_w{bits}"], ppl[f"gptq_w{bits}"], ppl[f"awq_w{bits}"]]
    plot_bars(names, values, f"w{bits}g{GROUP_SIZE}: perplexidade ({eval_ids.shape[1]} tokens)", "perplexidade",
              ax=ax, fmt="{:.1f}", color=["tab:gray", "tab:red", "tab:blue", "tab:green"])
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Os números dos artigos ao lado dos nossos
#
# Tabelas dos artigos ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#gptq); citadas, **não medidas aqui**), perplexidade no WikiText-2:
# - **GPTQ** (Frantar et al., ICLR 2023, Tabela 3, OPT): OPT-125M fp16 27,65 | RTN 4 bits 37,28 | GPTQ 4 bits 31,12 |
#   RTN 3 bits 1,3 mil | GPTQ 3 bits 53,85. OPT-6.7B: 10,86 | 12,10 | 11,39 | 5,8 mil | 14,86.
# - **AWQ** (Lin et al., MLSys 2024, Tabela 4, INT4 com grupos de 128): Llama-2-7B fp16 5,47 | RTN 5,73 | GPTQ 5,69 |
#   GPTQ-R (com reordenação) 5,63 | AWQ 5,60.
#
# Comparamos o **aumento relativo** sobre o modelo original, que é o que faz sentido entre modelos e textos diferentes:

# %%
cited = {  # (fonte, fp16, RTN, GPTQ, AWQ) — docs/referencias.md; None = não está na tabela
    "OPT-125M 4 bits (GPTQ, Tab. 3)": (27.65, 37.28, 31.12, None),
    "OPT-125M 3 bits (GPTQ, Tab. 3)": (27.65, 1.3e3, 53.85, None),
    "Llama-2-7B w4g128 (AWQ, Tab. 4)": (5.47, 5.73, 5.69, 5.60),
}
rows = {f"{MODEL_ID.split('/')[-1]} w{b}g{GROUP_SIZE} (medido)": (ppl_fp32, ppl[f"rtn_w{b}"], ppl[f"gptq_w{b}"],
                                                                   ppl[f"awq_w{b}"]) for b in (4, 3)}
rows.update({f"{k} (citado)": v for k, v in cited.items()})
def pct(base, v):
    return "—" if v is None else f"{100 * (v / base - 1):+.0f}%"

print(f"{'':<42} {'RTN':>8} {'GPTQ':>8} {'AWQ':>8}   (aumento sobre o modelo original)")
for name, (base, rtn, gptq, awq) in rows.items():
    print(f"{name:<42} {pct(base, rtn):>8} {pct(base, gptq):>8} {pct(base, awq):>8}")

# %%
fig, ax = plt.subplots(figsize=(12, 4))
width = 0.27
for k, (method, color) in enumerate([("RTN", "tab:red"), ("GPTQ", "tab:blue"), ("AWQ", "tab:green")]):
    xs, ys = [], []
    for i, (base, *values) in enumerate(rows.values()):
        if values[k] is not None:
            xs.append(i + (k - 1) * width)
            ys.append(values[k] / base)
    ax.bar(xs, ys, width, label=method, color=color)
ax.set_yscale("log")
ax.axhline(1, color="black", lw=0.8)
ax.set_xticks(range(len(rows)))
ax.set_xticklabels([name.replace(" (", "\n(", 1) for name in rows], fontsize=7)
ax.set_ylabel("perplexidade / original (log)")
ax.set_title("Quanto cada método piora a perplexidade: medido aqui x citado dos artigos")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **O que difere, e por que os números não são iguais:**
# - **tamanho do modelo**: o SmolLM2-135M tem 135 M parâmetros. Os artigos mostram que modelos pequenos sofrem muito mais (OPT-125M perde
#   +13% com GPTQ em 4 bits; o OPT-6.7B, +5%; o Llama-2-7B com AWQ, +2%);
# - **grupos**: usamos 64 (576, a dimensão oculta do SmolLM2-135M, não divide por 128); a Tabela 3 do GPTQ quantiza
#   por linha e a Tabela 4 do AWQ usa grupos de 128;
# - **dados**: um texto original curto do curso, com uns mil tokens de calibração, contra o WikiText-2 e
#   conjuntos de calibração bem maiores nos artigos;
# - **a origem dos pesos** (seção 1 e notebook 01): se esta execução usou a cópia offline, ela já passou por uma
#   grade de 4 bits, então o nosso fp32 é um modelo já arredondado, e os 4 bits somam um segundo arredondamento (não
#   medimos quanto isso pesa). No Colab, com os pesos do Hub, os números mudam (rode e compare).
#
# O que **se reproduz** é a forma do resultado: em 3 bits o RTN desmorona e os dois métodos recuperam boa parte; em
# 4 bits a distância é menor. A ordem entre GPTQ e AWQ depende do modelo e dos dados (a própria Tabela 4 do AWQ mostra o
# GPTQ sem reordenação pior que o RTN no LLaMA-7B): não afirmamos aqui qual dos dois vence.

# %% [markdown]
# ## 6. Quantos bits custa cada peso, e o que isso dá num 7B
#
# Cada grupo de 64 pesos guarda uma escala fp16 e um ponto-zero de $b$ bits:
# $\text{bits por peso} = b + (16 + b)/64$. Embeddings, `lm_head` e normas ficam em 16 bits.
#
# O formato GPTQ guarda também o `g_idx` de cada linear (com ou sem act-order): um inteiro de 32 bits por coluna de entrada, dividido por
# todas as linhas, ou seja $32 \cdot d_{in} / (d_{out} \cdot d_{in}) = 32/d_{out}$ bits por peso. As contas, nas lineares
# do modelo deste notebook e nas de um Llama-2-7B (pela configuração):

# %%
bpw = {b: bits_per_weight(b, GROUP_SIZE, 16, b) for b in (4, 3)}
bpw_g128 = bits_per_weight(4, 128, 16, 4)
gib_7b = {"fp16": weight_gib(LLAMA2_7B_CONFIG, "fp16")}
gib_7b.update({f"w{b}g{GROUP_SIZE}": weight_gib(LLAMA2_7B_CONFIG, bpw[b]) for b in (4, 3)})
gib_7b["w4g128"] = weight_gib(LLAMA2_7B_CONFIG, bpw_g128)
for b in (4, 3):
    print(f"w{b}g{GROUP_SIZE}: {bpw[b]:.3f} bits por peso")
print(f"w4g128: {bpw_g128:.3f} bits por peso (o da Tabela 4 do AWQ e da maioria dos checkpoints publicados)")
t4_gib = PRESETS["colab_t4"].gpu_gib      # o que o CUDA informa numa T4 do Colab (docs/referencias.md#colab-t4)
print(f"\nLlama-2-7B (pesos), e o que sobra dos {t4_gib:.2f} GiB de uma T4 do Colab para o cache KV e as ativações:")
for name, gib in gib_7b.items():
    print(f"  {name:>7}: {gib:5.2f} GiB | sobram {t4_gib - gib:5.2f} GiB")
fig, ax = plt.subplots(figsize=(7, 3.5))
plot_bars(list(gib_7b), list(gib_7b.values()), "Llama-2-7B: memória dos pesos", "GiB", ax=ax, fmt="{:.2f}")
ax.axhline(t4_gib, color="tab:red", ls="--", label=f"T4 do Colab ({t4_gib:.2f} GiB)")
ax.legend()
plt.tight_layout()
plt.show()

# %%
def g_idx_bits_per_weight(shapes):
    """Bits por peso do g_idx (int32 por coluna de entrada) numa lista de formatos (saídas, entradas)."""
    return sum(32 * d_in for _, d_in in shapes) / sum(d_out * d_in for d_out, d_in in shapes)

ours_shapes = [tuple(m.weight.shape) for layer in model.model.layers for m in layer.modules()
               if isinstance(m, torch.nn.Linear)]
hid, inter = LLAMA2_7B_CONFIG["hidden_size"], LLAMA2_7B_CONFIG["intermediate_size"]
llama_shapes = [(hid, hid)] * 4 + [(inter, hid)] * 2 + [(hid, inter)]     # q, k, v, o; gate, up; down (por bloco)
g_idx_bpw = {"este modelo": g_idx_bits_per_weight(ours_shapes), "Llama-2-7B": g_idx_bits_per_weight(llama_shapes)}
for name, extra in g_idx_bpw.items():
    print(f"g_idx (formato GPTQ), {name}: +{extra:.4f} bits por peso -> w4g{GROUP_SIZE} com g_idx: "
          f"{bpw[4] + extra:.3f} bits por peso")

# %% [markdown]
# Em fp16 os pesos do 7B quase enchem a T4, e não sobra espaço para o cache KV de uma conversa longa; com 4 bits sobra
# a maior parte da placa (as contas acima); com 3 bits, mais ainda, mas pagando em qualidade, como a seção 5 mostrou
# num modelo pequeno. O `g_idx` custa pouco: quanto mais saídas a linear tem, menos ele pesa por peso.
#
# ## 7. A calibração importa
#
# O GPTQ ajusta cada camada às entradas que viu. Se a calibração não se parece com o uso, o ajuste vale menos. Para medir:
# calibramos o GPTQ de 3 bits com o texto **em português** (mesmo número de janelas e tokens) e avaliamos no mesmo trecho
# em inglês. (Fora do `SMOKE`: mais uma quantização completa.)

# %%
ppl_mismatch = None
if MISMATCH:
    calib_pt = calibration_samples(text_token_ids(tokenizer, "pt")[0], CALIB_SAMPLES, CALIB_LEN, seed=SEED)
    m, seconds["gptq_w3_calib_pt"] = quantized_copy("gptq", 3, samples=calib_pt)
    ppl_mismatch = evaluate(m)
    del m
    print(f"GPTQ w3g{GROUP_SIZE}, avaliado em inglês: calibrado em inglês {ppl['gptq_w3']:.2f} | "
          f"calibrado em português {ppl_mismatch:.2f} | RTN (sem calibração) {ppl['rtn_w3']:.2f}")
    claim("GPTQ w3g64 calibrado em português é pior no inglês que calibrado em inglês", ppl_mismatch > ppl["gptq_w3"],
          measured=ppl_mismatch / ppl["gptq_w3"])
    if ppl_mismatch > ppl["rtn_w3"]:
        print("=> com a calibração trocada, o GPTQ ficou PIOR até que o RTN, que não usa calibração nenhuma: "
              "ele corrigiu cada camada para entradas que o texto avaliado não tem.")
else:
    print("Pulado (MISMATCH=False; a versão rápida, SMOKE=True, pula esta seção).")
    claim_skipped("GPTQ w3g64 calibrado em português é pior no inglês que calibrado em inglês", "MISMATCH=False")

# %% [markdown]
# Por isso as receitas pedem calibração **parecida com o uso**: um modelo que vai conversar em português deve ser
# calibrado com português (e com o formato de chat, se for usado com ele). O Exercício 4 pede o mesmo teste com o AWQ.
#
# ## 8. Uma ferramenta mantida: o AWQ e o AutoRound da biblioteca AutoRound
#
# O material antigo deste curso usava **AutoGPTQ** e **AutoAWQ**. Os dois foram abandonados pelos autores: o AutoGPTQ
# aponta para o **GPTQModel**, o AutoAWQ para o **llm-compressor**
# ([situação das bibliotecas](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)).
# Esta seção usa a ferramenta mantida que **instala e roda onde você roda este notebook**: no ambiente do curso (torch
# 2.13 na CPU) e no Colab (o torch 2.11 com CUDA que ele já tem), sem trocar o torch nem quebrar os pacotes do Colab.
# Conferido em 12/2026 (mesmo link):
# - o **GPTQModel** não instala em nenhum dos dois: a versão 7.7 exige torch >= 2.14.1, e as anteriores (da 5.x à
#   7.6) fixam o numpy 2.2.6 (o curso usa o 2.4.6) e exigem protobuf >= 7.34 (o Colab mantém o 5.29, de que dependem
#   os pacotes do Google);
# - o **llm-compressor** 0.14 exige transformers <= 5.17 (o curso usa o 5.23);
# - o **AutoRound** 0.16 (da Intel; `pip install auto-round`) instala nos dois só com pacotes prontos e quantiza na
#   CPU. Ele tem o **AWQ** e um método próprio, também chamado **AutoRound**. **Não tem GPTQ**: GPTQ por uma
#   biblioteca mantida, hoje, só num ambiente separado com torch >= 2.14.1 (o GPTQModel), fora do caminho deste curso.
#
# **O método AutoRound** (Cheng et al., arXiv 2309.05516; [referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#autoround)) tem o objetivo do GPTQ, usar os dados para
# decidir para que lado arredondar cada peso, por outro caminho. Cada peso ganha um deslocamento $v \in [-\tfrac12,
# \tfrac12]$ somado antes do arredondamento, $\hat w = s\,\big(\mathrm{clamp}(\mathrm{round}(w/s + v) + z, 0, 2^b - 1)
# - z\big)$, e os $v$ de um bloco do transformer são ajustados por alguns passos de **descida de gradiente com sinal** para a saída do bloco quantizado ficar perto da
# original nas entradas de calibração. Com $v = 0$ é o RTN. (Por padrão a biblioteca ajusta também o recorte do mínimo e
# do máximo de cada grupo; aqui ele fica desligado, `enable_minmax_tuning=False`: veja `autoround_configs` abaixo.) Na biblioteca, o método se configura com `SignRoundConfig`
# e o AWQ com `AWQConfig` seguido do RTN (`RTNConfig`):

# %%
show_source(autoround_configs)

# %% [markdown]
# A chamada da biblioteca, sem a cola do curso (diretório de trabalho temporário, avisos silenciados; ver
# `course_utils/library_quant.py`), é esta:
# ```python
# from auto_round import AutoRound, AWQConfig, RTNConfig
#
# grade = {"bits": 4, "group_size": 64, "sym": False}
# rounder = AutoRound(model, tokenizer=tokenizer, alg_configs=[AWQConfig(n_grid=10, **grade), RTNConfig(**grade)],
#                     dataset=[janela[None] for janela in calibracao], nsamples=len(calibracao),
#                     seqlen=calibracao.shape[1])                        # aqui, janelas de 128 tokens
# modelo_quantizado, _ = rounder.quantize()                              # pesos na grade, em ponto flutuante
# rounder.quantize_and_save("saida", format="auto_round:gptqmodel")      # ou: um checkpoint com os inteiros
# ```
#
# A célula abaixo quantiza com a biblioteca nas **mesmas** configurações das nossas implementações (4 bits, grupos de
# 64, assimétrica), com as primeiras `LIBRARY_CALIB_SAMPLES` janelas da **mesma** calibração das seções 3 e 4, e mede
# a perplexidade nas **mesmas** janelas de avaliação. Na CPU, cada passo do AutoRound custa um forward e um backward
# do bloco, então o orçamento aqui é pequeno (`LIBRARY_ITERS` passos por bloco; a biblioteca usa 200 por padrão) e a
# calibração também: o resultado é o que a biblioteca consegue com esse orçamento, não o melhor dela. Depois, o
# checkpoint do AutoRound é salvo com os pesos empacotados em inteiros, recarregado com o transformers e usado para
# gerar texto.

# %%
library_ppl, library_skip = {}, library_missing()
if not RUN_LIBRARY:
    library_skip = "RUN_LIBRARY=False"
if library_skip:
    print(f"Seção não executada: {library_skip}.")
else:
    lib_calib = calib[:LIBRARY_CALIB_SAMPLES]    # as primeiras janelas da calibração das seções 3 e 4
    settings = {"bits": 4, "group_size": GROUP_SIZE, "iters": LIBRARY_ITERS, "n_grid": LIBRARY_AWQ_GRID,
                "lr": LIBRARY_LR}
    start = time.perf_counter()
    quantized = autoround_quantize(copy.deepcopy(model), tokenizer, lib_calib, "awq", **settings)
    seconds["autoround_awq"] = time.perf_counter() - start
    library_ppl["awq"] = evaluate(quantized)
    del quantized
    start = time.perf_counter()
    folder = autoround_checkpoint(copy.deepcopy(model), tokenizer, lib_calib, "autoround", **settings)
    seconds["autoround_signround"] = time.perf_counter() - start
    reloaded = reload_quantized(folder, device=device)
    library_ppl["signround"] = evaluate(reloaded)
    print(f"{lib_calib.numel()} tokens de calibração; perplexidade w4g{GROUP_SIZE} nas mesmas janelas "
          f"(RTN {ppl['rtn_w4']:.2f}; os nossos, com {calib_tokens} tokens: GPTQ {ppl['gptq_w4']:.2f}, "
          f"AWQ {ppl['awq_w4']:.2f}):")
    print(f"  AWQ do AutoRound: {library_ppl['awq']:.2f} (quantizar levou {seconds['autoround_awq']:.0f} s)")
    print(f"  método AutoRound, {LIBRARY_ITERS} passos por bloco, recarregado do checkpoint: "
          f"{library_ppl['signround']:.2f} (quantizar e salvar levou {seconds['autoround_signround']:.0f} s)")
    describe_checkpoint(folder, reloaded, tokenizer, "The town of Harrowmouth")
    del reloaded

# %%
if library_ppl:
    claim("(AutoRound) o AWQ da biblioteca, w4g64, abaixo do RTN w4g64", library_ppl["awq"] < ppl["rtn_w4"],
          measured=library_ppl["awq"] / ppl["rtn_w4"])
    claim("(AutoRound) o método AutoRound, w4g64, recarregado do checkpoint, abaixo do RTN w4g64",
          library_ppl["signround"] < ppl["rtn_w4"], measured=library_ppl["signround"] / ppl["rtn_w4"])
else:
    claim_skipped("(AutoRound) o AWQ da biblioteca, w4g64, abaixo do RTN w4g64", library_skip)
    claim_skipped("(AutoRound) o método AutoRound, w4g64, recarregado do checkpoint, abaixo do RTN w4g64",
                  library_skip)

# %% [markdown]
# **Por que os números da biblioteca não são iguais aos nossos.** Além da calibração menor e do orçamento curto: o
# AWQ do AutoRound (que veio do AutoAWQ, pelo llm-compressor) usa por padrão a escala
# $s = \overline{|x|}^{\alpha} / \overline{|w|}^{1-\alpha}$ (*duo scaling*), mede o erro de cada $\alpha$ na saída do
# módulo inteiro (a atenção ou a MLP), não de cada linear, e não faz a busca de recorte que o nosso faz; como o nosso,
# deixa a `o_proj` sem escala quando há GQA. O método AutoRound não é o GPTQ: ajusta o arredondamento olhando a saída
# do bloco inteiro, por gradiente, em vez de corrigir coluna a coluna com $H^{-1}$. A biblioteca calcula a busca e os
# passos em bf16 (o padrão dela, `amp=True`) em qualquer GPU, inclusive na T4, que não tem bf16 nativo (lá ele é
# emulado e mais lento), e na CPU quando ela tem instruções bf16; as nossas, em fp32. E o checkpoint recarregado guarda os inteiros de
# verdade e calcula em 16 bits, enquanto as nossas cópias têm os pesos na grade, mas em fp32. Os nossos
# são implementações didáticas, fiéis aos artigos; a biblioteca é o que você usa para publicar um checkpoint.
#
# ### Migração: do AutoGPTQ/AutoAWQ para as ferramentas mantidas
#
# Para quem tem código antigo. O GPTQModel é o sucessor direto do AutoGPTQ (e o transformers 5 carrega checkpoints
# GPTQ e AWQ por ele), mas hoje ele não instala no ambiente do curso nem no Colab (acima); as linhas dele não são
# executadas aqui.
#
# | Antes (abandonado) | AutoRound 0.16 (executado acima) | GPTQModel 7.7 (não executado aqui) |
# |---|---|---|
# | `from auto_gptq import AutoGPTQForCausalLM, BaseQuantizeConfig` | `from auto_round import AutoRound, SignRoundConfig` | `from gptqmodel import GPTQModel, GPTQConfig` |
# | `BaseQuantizeConfig(bits=4, group_size=128, desc_act=False, sym=False)` | `SignRoundConfig(bits=4, group_size=128, sym=False)` (AutoRound, não GPTQ) | `GPTQConfig(bits=4, group_size=128, desc_act=False, sym=False)` |
# | `from awq import AutoAWQForCausalLM` | `from auto_round import AutoRound, AWQConfig, RTNConfig` | `from gptqmodel import GPTQModel, AWQConfig` |
# | `quant_config={"w_bit": 4, "q_group_size": 128, "zero_point": True}` | `[AWQConfig(bits=4, group_size=128, sym=False), RTNConfig(bits=4, group_size=128, sym=False)]` | `AWQConfig(bits=4, group_size=128, sym=False)` |
# | `model.quantize(...)` | `AutoRound(model, tokenizer=tok, alg_configs=..., dataset=...).quantize()` | `GPTQModel.load(model_id, config).quantize(calibration)` |
# | `model.save_quantized(out_dir)` | `rounder.quantize_and_save(out_dir, format="auto_round:gptqmodel")` | `model.save(out_dir)` |
# | `...from_quantized(out_dir)` | `AutoModelForCausalLM.from_pretrained(pasta)` (com o `auto-round` instalado) | `GPTQModel.load(out_dir)` |
#
# O caminho do llm-compressor, para servir com vLLM (não executado aqui; o GPTQ dele roda na CPU, o AWQ dele precisa de
# acelerador):
# ```python
# from llmcompressor import oneshot
# from llmcompressor.modifiers.quantization import GPTQModifier
#
# oneshot(model=model_id, dataset=calibration_dataset, recipe=GPTQModifier(targets="Linear", scheme="W4A16",
#         ignore=["lm_head"]), max_seq_length=512, num_calibration_samples=128, output_dir=out_dir)
# # vllm serve out_dir
# ```

# %% [markdown]
# ## Exercícios
#
# Os exercícios 1 a 3 têm uma célula de verificação que diz se você acertou e, se não, dá uma dica (sem entregar a resposta).
#
# **Exercício 1 (padding).** Calibrar com sequências de tamanhos diferentes exige completar as curtas com *padding*; os
# tokens de padding não são texto e não podem entrar na hessiana. Escreva `acumular_com_mascara(H, n, x, mascara)`:
# recebe a média atual $H = \frac{2}{n}\sum x x^\top$ sobre os `n` tokens **reais** vistos até agora (`H=None` e `n=0` no
# começo), um lote `x` `[lote, tokens, entradas]` e a `mascara` `[lote, tokens]` (1 = token real, 0 = padding), e
# devolve `(H, n)` atualizados só com os tokens reais, com `H` de formato `[entradas, entradas]`.

# %% curso={"exercicio": "02.1", "resposta": "acumular_com_mascara"} tags=["exercicio"]
def acumular_com_mascara(H, n, x, mascara):
    # seu código aqui
    ...

check("02.1", acumular_com_mascara)

# %% [markdown]
# **Exercício 2 (a escala do AWQ que olha os pesos).** O AWQ da biblioteca da seção 8 (e o do AutoAWQ, de onde ele
# veio) usa por padrão uma escala que olha também os pesos, o *duo scaling*:
# $s = \overline{|x|}^{\,\alpha} / \overline{|w|}^{\,1-\alpha}$, em que $\overline{|w|}$ é a média de $|W|$ de cada
# canal de entrada (uma coluna de $W$). Escreva a busca de $\alpha$ com essa escala:
# `busca_awq_duo(W, x, bits, group_size, n_grid)` recebe `W` `[saídas, entradas]` e uma amostra de entradas `x`
# `[tokens, entradas]`; calcule $\overline{|x|}$ (média sobre os tokens) e $\overline{|w|}$ (média sobre as linhas de
# `W`), as duas com `clamp(min=1e-8)`; para cada $\alpha \in \{0, 1/n, \dots, (n-1)/n\}$ ($n$ = `n_grid`), forme $s$,
# normalize por $\sqrt{\max s \cdot \min s}$ (como na seção 4) e meça o erro da saída
# $\lVert xW^\top - (x/s)\,Q(W\,\mathrm{diag}(s))^\top\rVert^2$, com $Q$ = `rtn_quantize(·, bits, group_size)` (o RTN
# por grupos da seção 2; pode usar). Devolva `(s, alfa)` do menor erro. (A biblioteca ainda normaliza $|w|$ pelo
# máximo de cada grupo antes da média; aqui, a média simples basta. Repare: com $\alpha = 0$ a escala é
# $1/\overline{|w|}$, não 1, então esta busca não contém o RTN puro como a da seção 4.)

# %% curso={"exercicio": "02.2", "resposta": "busca_awq_duo"} tags=["exercicio"]
def busca_awq_duo(W, x, bits, group_size, n_grid):
    # seu código aqui
    ...

check("02.2", busca_awq_duo)


# %% [markdown]
# **Exercício 3 (o laço do GPTQ, simétrico).** Escreva o laço da seção 3 para **uma linha** de pesos, sem blocos e com o
# quantizador **simétrico** (absmax) no lugar do ponto-zero: `gptq_linha(w, U, bits)` recebe `w` `[d]`, o fator
# triangular superior `U` `[d, d]` (com $U^\top U = H^{-1}$) e `bits`; a escala é $s = \max|w|/(2^{b-1}-1)$, calculada
# **uma vez** com o `w` original; para cada coluna $j$ em ordem, $\hat w_j = \mathrm{clamp}(\mathrm{round}(w_j/s),
# -(2^{b-1}-1), 2^{b-1}-1)\,s$, e o erro se espalha nas colunas seguintes: $w_k \leftarrow w_k - e_j U_{jk}$ para
# $k > j$, com $e_j = (w_j - \hat w_j)/U_{jj}$. Devolva $\hat w$ `[d]`. Arredonde com `torch.round` (nos empates, ele
# vai para o par: 0,5 vira 0 e 1,5 vira 2; os casos públicos dependem disso).

# %% curso={"exercicio": "02.3", "resposta": "gptq_linha"} tags=["exercicio"]
def gptq_linha(w, U, bits):
    # seu código aqui
    ...

check("02.3", gptq_linha)

# %% [markdown]
# **Exercício 4 (medir).** Repita o experimento da seção 7 com o **AWQ** em 3 bits: calibre com o texto em português e
# avalie no inglês. O AWQ sofre mais ou menos que o GPTQ com a calibração trocada? Por quê? (Dica: compare o que cada
# um tira da calibração: o AWQ, um expoente por grupo de lineares e um recorte por grupo de pesos; o GPTQ, um ajuste
# de cada peso a $X^\top X$.) Este exercício não tem
# verificação automática: compare os números que você medir.
#
# ## Resumo
#
# Tudo o que este notebook mediu, reunido num só lugar (quando o curso inteiro é executado, vai para
# `build/resultados.json`):

# %%
record("eval_tokens", int(eval_ids.shape[1]))
record("calib_tokens", int(calib_tokens))
record("ppl_fp32", ppl_fp32)
for bits in (4, 3):
    for method in ("rtn", "gptq", "awq"):
        record(f"ppl_{method}_w{bits}g64", ppl[f"{method}_w{bits}"])
record("seconds_gptq", seconds["gptq_w4"])
record("seconds_awq", seconds["awq_w4"])
record("seconds_gptq_w3g64", seconds["gptq_w3"])
record("seconds_awq_w3g64", seconds["awq_w3"])
record("gptq_w3g64_removed_fraction", removed("gptq", 3))
record("awq_w3g64_removed_fraction", removed("awq", 3))
record("bits_per_weight_w4g64", bpw[4])
record("bits_per_weight_w3g64", bpw[3])
record("gib_llama2_7b_w4g64", gib_7b["w4g64"])
record("gib_llama2_7b_w3g64", gib_7b["w3g64"])
record("awq_fold_max_relative_logit_diff", fold_diff)
if ppl_mismatch is not None:
    record("ppl_gptq_w3g64_calib_pt", ppl_mismatch)
record("autoround_ran", bool(library_ppl))
if library_ppl:
    record("autoround_awq_ppl", library_ppl["awq"])
    record("autoround_signround_ppl", library_ppl["signround"])
    record("autoround_calib_tokens", int(lib_calib.numel()))
    record("autoround_iters", LIBRARY_ITERS)
    record("seconds_autoround_awq", seconds["autoround_awq"])
    record("seconds_autoround_signround", seconds["autoround_signround"])

# %% [markdown]
# **Em resumo.** (1) O RTN arredonda cada peso sozinho; em 3 bits isso desmorona. (2) O GPTQ minimiza o erro da
# **saída** usando $H = 2X^\top X$: quantiza uma coluna e corrige as seguintes. (3) O AWQ protege os canais de entrada
# salientes com uma escala que não custa nada na inferência. (4) O GPTQ depende da calibração (seção 7; o Exercício 4
# mede o AWQ): avalie sempre em texto que ela não viu, e calibre com dados parecidos com o uso. (5) Para publicar um checkpoint, use uma biblioteca mantida:
# aqui, o AutoRound (AWQ e o método AutoRound), que instala no ambiente do curso e no Colab; o GPTQModel (GPTQ) e o
# llm-compressor (para o vLLM) pedem hoje um ambiente separado. AutoGPTQ e AutoAWQ estão abandonados.
# Próximo: **03 · Offloading para CPU e disco**.
