# %% [markdown]
# # 07 · TensorRT: os caminhos que existem e qual usar numa T4
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - quais caminhos levam um modelo do PyTorch ao TensorRT em 2026 (Torch-TensorRT, ONNX -> TensorRT, provedor TensorRT
#   do ONNX Runtime, TensorRT-LLM) e qual serve a quem tem uma T4 no Colab;
# - montar um *engine* em fp16 com **tipagem forte** (a precisão vem do grafo, como o TensorRT 11 exige), com formato fixo
#   e com um **perfil de otimização** para formatos dinâmicos;
# - ver por que "converter tudo para fp16" quebra uma RMSNorm (o x² passa de 65504) e como o grafo certo evita isso;
# - medir latência contra o PyTorch *eager* e contra o `torch.compile`, conferindo que as saídas concordam;
# - saber o que roda e o que não roda onde não há TensorRT, sem inventar número.
#
# **Pré-requisitos.** Notebook 06 (exportação para ONNX).
# **Tempo estimado.** 30 minutos de leitura. A execução leva alguns minutos numa CPU de 2 núcleos (cada célula demorada
# imprime quanto levou: exportação, compilação, montagem dos engines); o tempo numa T4, o curso não mediu.
# **Hardware.** GPU NVIDIA recomendada (o notebook pede uma T4 ao Colab; as seções de TensorRT só rodam com GPU e o
# TensorRT instalado). Num runtime de CPU o notebook roda inteiro: exporta o ONNX, compara com o `torch.compile` e diz,
# célula a célula, o que foi pulado e por quê.
#
# **De onde vem o TensorRT.** As bibliotecas do TensorRT não vêm do PyPI como rodas: `tensorrt-cu12-libs` e
# `tensorrt-cu13-libs` são pacotes de código-fonte que, na instalação, baixam as rodas de verdade do índice da NVIDIA
# (pypi.nvidia.com; [referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-tensorrt)). O Colab alcança esse índice; uma máquina que não alcança não instala o
# TensorRT, e nela as seções 5 a 7 (Torch-TensorRT, TensorRT a partir do ONNX e o provedor TensorRT do ONNX Runtime)
# não montam nem medem engine nenhum: dizem por quê e seguem.
#
# Todo número impresso aqui é medido agora, nesta execução; um número de TensorRT só aparece se foi medido. O que não
# roda aqui (sem GPU, sem TensorRT) é dito célula a célula e listado no fim.

# %%
# Torch-TensorRT (só no Colab). Ele é compilado para UMA versão do torch e UMA da CUDA: escolhemos a build
# que casa com o torch do Colab (tensorrt_install_plan) e instalamos COM as dependências: a biblioteca do TensorRT vem
# por elas (tensorrt-cu12 -> tensorrt-cu12-libs, que baixa as rodas de pypi.nvidia.com). Um arquivo de restrições (-c)
# fixa o torch instalado: o pip não pode trocá-lo. Se não houver build, as células dizem o que pulou.
import subprocess
import sys

if "google.colab" in sys.modules:   # onnx e onnxruntime já vêm da célula de configuração acima
    import torch

    from course_utils.tensorrt import tensorrt_install_plan, write_torch_constraint

    plan = tensorrt_install_plan(torch.__version__, torch.version.cuda)
    pin = write_torch_constraint(torch.__version__)   # um arquivo com "torch==<a versão instalada>"
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) -> {plan.command()} -c {pin}")
    if plan.installs and torch.cuda.is_available():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *plan.pip_args, "-c", str(pin)])
        print("Torch-TensorRT instalado." if done.returncode == 0 else
              "A instalação falhou: as células de TensorRT vão dizer que foram puladas e por quê.")

# %% [markdown]
# ## Parâmetros
# `EXPORT_LAYERS = 2`: exportamos e compilamos só as 2 primeiras camadas do modelo, com os mesmos pesos, a mesma tabela
# de embeddings e a mesma cabeça de saída (o grafo de uma camada se repete; o do notebook 06 é o mesmo arquivo, em cache).
# Exportar as 30 camadas leva minutos numa CPU; `EXPORT_LAYERS = None` exporta o modelo inteiro. Com poucas camadas a
# cabeça de saída pesa mais na passada: os tempos medidos são os deste modelo cortado. `SMOKE=True` é uma versão rápida
# de cada experimento: menos tokens e menos repetições.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
EXPORT_LAYERS = 2         # só as primeiras camadas (exportar e compilar é lento); None: o modelo inteiro
SEQ_LEN = 128             # tokens da entrada medida (formato "ótimo" do perfil)
MAX_SEQ_LEN = 512         # maior comprimento aceito pelo engine dinâmico
MAX_BATCH = 4             # maior lote aceito pelo engine dinâmico
DYN_BATCH = 2             # lote com que o engine dinâmico é conferido: é o "opt" do perfil
LAT_REPEATS = 20          # repetições de cada medida de latência (vale a mediana)
REFRESH_CACHE = False

# %%
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import onnx
import onnxruntime as ort
import torch

from course_utils.data import text_token_ids
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency
from course_utils.models import load_model, load_tokenizer
from course_utils.onnx_export import LogitsOnly, cached_export, op_input_types, truncated_copy
from course_utils.ort import create_session, onnx_file_mb, run_logits
from course_utils.plotting import plot_bars
from course_utils.results import claim, claim_skipped, record
from course_utils.tensorrt import (
    WHY_NO_TENSORRT_WHEELS,
    measure_engine,
    probe_tensorrt,
    tensorrt_install_plan,
    tensorrt_missing_reason,
)

# %% [markdown]
# Na versão rápida, menos tokens e menos repetições; depois o modelo, na CPU em fp32, cortado em `EXPORT_LAYERS` camadas
# (cada seção leva a sua cópia para onde precisa).

# %%
if SMOKE:
    SEQ_LEN, LAT_REPEATS = 64, 5

quiet_libraries()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
print(environment_info())
tokenizer = load_tokenizer(MODEL_ID)
full_model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
n_layers = min(EXPORT_LAYERS or full_model.config.num_hidden_layers, full_model.config.num_hidden_layers)
model = full_model if n_layers == full_model.config.num_hidden_layers else truncated_copy(full_model, n_layers)
print(f"usamos {n_layers} de {full_model.config.num_hidden_layers} camadas, com os mesmos pesos")
skipped = []   # (seção, o que não rodou, motivo): o resumo no fim lista tudo o que não rodou


def skip(section, what, why):
    """Anota (e diz) o que não rodou na seção `section` e por quê; as afirmações da seção leem o motivo daqui."""
    skipped.append((section, what, why))
    print(f"Pulado ({what}): {why}.")


def skip_reason(section):
    """Os motivos anotados para a seção, ou um texto que diz que ela não produziu a medida."""
    reasons = [why for sec, _, why in skipped if sec == section]
    return "; ".join(reasons) if reasons else f"a seção {section} não produziu esta medida (veja as saídas dela)"

# %% [markdown]
# ## 1. Os caminhos em 2026
#
# | caminho | o que é | formatos dinâmicos | o que as fontes dizem (data na bibliografia) |
# |---|---|---|---|
# | **Torch-TensorRT** (`torch_tensorrt.compile(model, ir="dynamo", ...)`) | captura com `torch.export`, converte os subgrafos que o TensorRT aceita e deixa o resto no PyTorch; devolve um módulo que você chama como antes | sim, com `torch_tensorrt.Input(min_shape, opt_shape, max_shape)` | a 2.11 tem builds para CUDA 12.6/12.8/12.9 (índice do PyTorch) e 13.0 (PyPI), com TensorRT 10.15 ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-tensorrt)) |
# | **ONNX -> TensorRT** (API do *builder* em Python ou `trtexec`) | lê o arquivo ONNX (o do notebook 06), monta e serializa um *engine* (`.plan`) que roda sem PyTorch | sim, com um **perfil de otimização** por entrada | no TensorRT 11 a rede é sempre fortemente tipada; `BuilderFlag.FP16` e `trtexec --fp16` não existem mais ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#tensorrt-tipagem)) |
# | **Provedor TensorRT do ONNX Runtime** | o ORT entrega ao TensorRT os subgrafos que ele aceita e roda o resto no CUDA/CPU | sim (perfis automáticos ou explícitos) | precisa do `onnxruntime-gpu`, que no PyPI é da CUDA 13 (notebook 06) |
# | **TensorRT-LLM** | biblioteca de LLM em cima do TensorRT (lote em voo, cache KV paginado, kernels de atenção próprios) | sim | não suporta a T4 ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)) |
# | torch2trt | conversor antigo, usado em material mais velho | limitado | sem manutenção desde 2024 ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#bibliotecas)); não use |
#
# Se cada caminho roda na GPU **desta** execução é o que as seções 5 a 7 medem; o resumo da seção 8 diz o que rodou e o
# que foi pulado. A T4 tem *tensor cores* de fp16 e não tem bf16 rápido: nela, a precisão reduzida é o fp16.
#
# **O que este notebook não faz.** O engine aqui calcula **uma passada** do modelo sobre a entrada inteira (os logits de
# todas as posições), sem cache KV: é o custo de um *prefill*, não de uma geração token a token. Gerar com TensorRT
# pede o grafo com cache (entradas e saídas de K e V, como o do model builder do notebook 06) e um laço em volta; é o que
# o TensorRT-LLM entrega pronto (cache KV paginado, lote em voo, atenção fundida), mas ele não roda na T4.
#
# O que dá para ver sem GPU é a parte que vem **antes** do TensorRT: o ONNX que ele consome, a precisão fp16 e onde ela
# quebra, o que formato fixo e perfil dinâmico significam, e o `torch.compile`, o "compilador de casa" do PyTorch.

# %%
has_cuda = torch.cuda.is_available()
probe = probe_tensorrt()   # importa dentro de try: uma instalação pela metade vira uma mensagem, não uma exceção
tensorrt_available = has_cuda and probe["tensorrt"] is not None
torch_tensorrt_available = has_cuda and probe["torch_tensorrt"] is not None
ort_trt_ep = "TensorrtExecutionProvider" in ort.get_available_providers()
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}) | GPU CUDA: {has_cuda} | tensorrt: {probe['tensorrt']} | "
      f"torch_tensorrt: {probe['torch_tensorrt']} | provedor TensorRT no onnxruntime: {ort_trt_ep}")
for name, error in probe["errors"].items():
    print(f"  {name} não importa: {error}")
if probe["tensorrt"] is None:
    print(WHY_NO_TENSORRT_WHEELS)
print("build do Torch-TensorRT para este torch:", tensorrt_install_plan(torch.__version__, torch.version.cuda).command())
if has_cuda:
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {props.name}, capacidade {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB")
if not has_cuda:
    reason = "não há GPU CUDA nesta máquina (o TensorRT só roda em GPU NVIDIA)"
elif not device.startswith("cuda"):
    reason = f"DEVICE={DEVICE!r} pediu CPU"
else:
    reason = None

# %% [markdown]
# ## 2. O ONNX que o TensorRT consome
#
# O mesmo exportador do notebook 06 (`torch.onnx.export(..., dynamo=True)`, lote e sequência dinâmicos). O arquivo fica
# no cache do curso: se você rodou o notebook 06 antes, ele é reaproveitado. Conferimos o arquivo contra o PyTorch
# rodando-o no ONNX Runtime (na CPU, que sempre existe).

# %%
start = time.perf_counter()
onnx_path, from_cache = cached_export(model, f"smollm2-{n_layers}camadas", refresh=REFRESH_CACHE)
export_seconds = time.perf_counter() - start
onnx.checker.check_model(str(onnx_path), full_check=True)
dims = [d.dim_param or d.dim_value for d in onnx.load(str(onnx_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim]
print(f"{'cache' if from_cache else 'exportado'} em {export_seconds:.1f} s | {onnx_file_mb(onnx_path):.0f} MiB | "
      f"input_ids: {dims}")
ids = text_token_ids(tokenizer, "en", SEQ_LEN)
with torch.inference_mode():
    ref_logits = model(ids).logits.numpy()
onnx_diff = float(np.abs(run_logits(create_session(onnx_path), ids.numpy()) - ref_logits).max())
print(f"ONNX (ORT, CPU) x PyTorch fp32: diferença máxima {onnx_diff:.1e}")
claim("o ONNX exportado tem lote e sequência dinâmicos (eixos com nome, não com tamanho)",
      all(isinstance(d, str) for d in dims), measured=str(dims))
claim("ONNX que o TensorRT consome confere com o PyTorch", onnx_diff <= 1e-3, measured=onnx_diff)

# %% [markdown]
# ## 3. Precisão: fp16, e onde ele quebra
#
# O fp16 tem 10 bits de mantissa e **não passa de 65504**: o que passar disso vira infinito. Olhar só as saídas dos
# módulos engana, porque a conta perigosa fica **dentro** de um deles. A RMSNorm calcula
#
# $$\text{RMSNorm}(x) = \frac{x}{\sqrt{\text{média}(x^2) + \varepsilon}} \cdot g$$
#
# e o $x^2$ estoura assim que algum $|x|$ passa de um limiar de algumas centenas (qual, exatamente, é o exercício 1).
# Um LLM pode ter isso no fluxo residual: poucas dimensões com valores enormes. Medimos a maior entrada de cada
# RMSNorm e contamos quantas linhas (tokens) reais têm um $x^2$ acima do teto do fp16; isso depende do modelo e dos
# pesos (a cópia offline do curso é uma GGUF Q4_1 desquantizada; no Colab os pesos de 16 bits vêm do Hub).

# %%
fp16_max = float(torch.finfo(torch.float16).max)
norm_inputs, real_rows = {}, {"acima do teto": 0, "vistas": 0}   # a entrada de maior |x| de cada RMSNorm
def grab(name):
    def hook(module, args):
        x = args[0].detach()[0]                                     # [tokens, hidden]
        real_rows["acima do teto"] += int((x.abs().amax(-1).float() ** 2 > fp16_max).sum())
        real_rows["vistas"] += len(x)
        if name not in norm_inputs or x.abs().max() > norm_inputs[name].abs().max():
            norm_inputs[name] = x.clone()
    return hook
norms = {n: m for n, m in full_model.named_modules() if type(m).__name__.endswith("RMSNorm")}
hooks = [m.register_forward_pre_hook(grab(n)) for n, m in norms.items()]
with torch.inference_mode():
    full_model(ids)   # o modelo inteiro (no SMOKE também): os valores grandes crescem camada a camada
for h in hooks:
    h.remove()
worst_norm = max(norm_inputs, key=lambda n: float(norm_inputs[n].abs().max()))
x_big, norm = norm_inputs[worst_norm], norms[worst_norm]
max_norm_input = float(x_big.abs().max())
print(f"{len(norms)} RMSNorms; maior |x| na entrada: {max_norm_input:.0f} ({worst_norm}) -> x² = {max_norm_input**2:.2e} "
      f"(teto do fp16: {fp16_max:.0f}); linhas reais com x² acima do teto: {real_rows['acima do teto']} de "
      f"{real_rows['vistas']}")

# %% [markdown]
# As duas versões da conta em fp16: tudo em fp16, e com a variância em fp32 (o que a `LlamaRMSNorm` faz).

# %%
def rmsnorm_fp16_naive(x, weight, eps):
    """Tudo em fp16: o x² estoura para infinito, a média vira inf e a linha inteira vira zero."""
    x = x.half()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight.half()

def rmsnorm_fp16_upcast(x, weight, eps):
    """Como a LlamaRMSNorm do transformers: a variância em fp32, o resultado de volta em fp16."""
    x32 = x.half().float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).half() * weight.half()

def row_error(y, reference):
    """Erro de cada linha (token), relativo ao maior valor da linha de referência."""
    return (y.float() - reference).abs().amax(-1) / reference.abs().amax(-1)

# %% [markdown]
# Quantas linhas reais passam do teto varia com o modelo; para a conferência não depender disso, **construímos** a
# entrada: as linhas reais da RMSNorm acima, cada uma reescalada para que o quadrado do seu maior valor seja uma fração
# conhecida do teto do fp16, três abaixo dele e três acima. A teoria prevê quais linhas quebram (as de $x^2$ acima do
# teto, e só elas); a medida confere.

# %%
ratios = torch.tensor([0.05, 0.3, 0.8, 1.25, 4.0, 60.0])   # (maior |x| da linha)² / teto do fp16
n_rows = len(ratios) * (len(x_big) // len(ratios))
target = ratios.repeat(n_rows // len(ratios))
rows = x_big[:n_rows].float()
rows = rows / rows.abs().amax(-1, keepdim=True) * (target * fp16_max).sqrt().unsqueeze(-1)
predicted = rows.half().float().pow(2).amax(-1) > fp16_max      # as linhas cujo x² estoura em fp16, pela teoria
eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
gain = norm.weight.detach()
reference = rows * torch.rsqrt(rows.pow(2).mean(-1, keepdim=True) + eps) * gain   # a conta em fp32
broken = row_error(rmsnorm_fp16_naive(rows, gain, eps), reference) > 0.5
upcast_err = row_error(rmsnorm_fp16_upcast(rows, gain, eps), reference)
broken_rows = int(broken.sum())
print(f"{n_rows} linhas: {int(predicted.sum())} com x² acima do teto (previsto) | só fp16: {broken_rows} com erro > 50% "
      f"| com a variância em fp32: pior erro {float(upcast_err.max()):.1e}")
claim("o x² da RMSNorm estoura em fp16 exatamente nas linhas com x² acima do teto, e a variância em fp32 conserta todas",
      bool((broken == predicted).all()) and 3 <= broken_rows < n_rows and float(upcast_err.max()) < 1e-2,
      measured=broken_rows)

# %% [markdown]
# O PyTorch em fp16 sobrevive porque a `LlamaRMSNorm` do transformers faz exatamente o `upcast`. Conferimos no modelo
# inteiro: pesos e contas em fp16 contra fp32 (na CPU).

# %%
half = copy.deepcopy(model).to(torch.float16)   # uma cópia: ida e volta fp32 -> fp16 -> fp32 estragaria os pesos
with torch.inference_mode():
    half_logits = half(ids).logits.float().numpy()
del half
fp16_diff = float(np.abs(half_logits - ref_logits).max())
fp16_agree = float((half_logits.argmax(-1) == ref_logits.argmax(-1)).mean())
print(f"logits em fp16 x fp32 (PyTorch, CPU): diferença máxima {fp16_diff:.3f} | mesmo argmax em {fp16_agree:.1%}")
claim("o modelo em fp16 (com o upcast da RMSNorm) escolhe o mesmo token que o fp32 em > 90% das posições",
      fp16_agree > 0.9, measured=fp16_agree)

# %% [markdown]
# **E no TensorRT?** Até o TensorRT 10 havia a tipagem **fraca**: `BuilderFlag.FP16` (ou `trtexec --fp16`) deixava o
# TensorRT escolher, camada a camada, kernels fp16 onde quisesse. No TensorRT 11 ela não existe mais: a rede é **fortemente
# tipada**, e cada tensor tem o tipo que o grafo diz ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#tensorrt-tipagem)). A precisão passa a
# ser uma decisão **sua**, gravada no ONNX: pesos e contas em fp16 onde pode, fp32 onde precisa (a RMSNorm). Há dois jeitos
# de ter um ONNX assim:
#
# - **converter tudo** (`onnxruntime.transformers.float16.convert_float_to_float16`, no grafo exportado do modelo fp32):
#   o `Pow` da RMSNorm vira fp16, e o estouro acima vai para dentro do engine;
# - **exportar o modelo já em fp16**: o grafo guarda os `Cast` para fp32 que a `LlamaRMSNorm` faz; ou converter com o
#   ModelOpt AutoCast, da NVIDIA, que mantém em fp32 as operações sensíveis.
#
# Conferimos o tipo da entrada de cada `Pow` nos três grafos, numa cópia de 2 camadas (o padrão se repete por camada):

# %%
from onnxruntime.transformers.float16 import convert_float_to_float16

two = model if n_layers <= 2 else truncated_copy(model, 2)
fp32_onnx, _ = cached_export(two, "smollm2-2camadas", refresh=REFRESH_CACHE)
fp16_onnx, _ = cached_export(copy.deepcopy(two).half(), "smollm2-2camadas-fp16", refresh=REFRESH_CACHE)
blanket = convert_float_to_float16(onnx.load(str(fp32_onnx)), keep_io_types=True)
blanket_path = fp32_onnx.parent / "tudo_fp16.onnx"
onnx.save(blanket, str(blanket_path), save_as_external_data=True, location="tudo_fp16.onnx.data")
pow_types = {"exportado em fp32": op_input_types(fp32_onnx), "fp32 convertido inteiro": op_input_types(blanket_path),
             "exportado em fp16": op_input_types(fp16_onnx)}
for name, types in pow_types.items():
    print(f"{name:<24} x² (Pow) em: {sorted(set(types))} ({len(types)} nós)")
claim("exportado em fp16, o x² da RMSNorm fica em fp32; convertido inteiro, vira fp16",
      set(pow_types["exportado em fp16"]) == {"FLOAT"} and set(pow_types["fp32 convertido inteiro"]) == {"FLOAT16"},
      measured=str(pow_types["fp32 convertido inteiro"][:1]))

# %% [markdown]
# Essa diferença fp16 x fp32 medida acima é também a régua para conferir um engine fp16: esperar igualdade até 1e-5, como
# em fp32, seria errado; o que importa é escolher os mesmos tokens.
#
# **Formato fixo x dinâmico.** Um engine de formato fixo é otimizado para um formato só (por exemplo lote 1 x 128 tokens)
# e recusa qualquer outro. Para aceitar uma faixa, o engine recebe um **perfil de otimização** por entrada: `min`, `opt`
# e `max`. Segundo a documentação do TensorRT 11.4, o *builder* escolhe os kernels mais rápidos para o formato `opt`
# entre os que valem para toda a faixa de `min` a `max`, e um formato fora da faixa é um erro na execução
# ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-tensorrt)). Quanto essa flexibilidade custa em velocidade, o curso não tem número
# citado nem medido: as seções 5 e 6 medem os dois engines, no mesmo formato (lote 1 x `SEQ_LEN`), onde o TensorRT
# roda. O `opt` do nosso perfil é o formato com que o engine dinâmico é
# conferido depois, lote `DYN_BATCH` x `SEQ_LEN` (um lote que o fixo recusaria); o de lote 1 fica fora do `opt`, e a
# comparação com o fixo mostra também esse custo.
#
# O perfil, e a linha equivalente do `trtexec` (a ferramenta de linha de comando do TensorRT). O `trtexec` **não vem no
# pacote do pip** (nem no Colab): ele vem nas instalações .deb/.rpm, tar/zip e nos contêineres da NVIDIA
# ([referências](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#colab-tensorrt)). No Colab, o
# Torch-TensorRT 2.11 traz o TensorRT **10.15**, em que a tipagem forte é uma opção (`--stronglyTyped`,
# `STRONGLY_TYPED`) e a fraca ainda existe, obsoleta; no 11, a forte é a única e a opção é aceita e ignorada.

# %%
profile = {"min": (1, 1), "opt": (DYN_BATCH, SEQ_LEN), "max": (MAX_BATCH, MAX_SEQ_LEN)}
if not all(lo <= mid <= hi for lo, mid, hi in zip(*profile.values(), strict=True)):
    raise ValueError(f"o perfil precisa de min <= opt <= max em cada eixo; com estes parâmetros ficou {profile}: "
                     "confira DYN_BATCH <= MAX_BATCH e SEQ_LEN <= MAX_SEQ_LEN")
print("perfil de input_ids:", profile)
print("TensorRT 10.12+ com o trtexec instalado (no 11 a rede já é fortemente tipada):")
print(f"  trtexec --onnx=modelo_fp16.onnx --stronglyTyped --minShapes=input_ids:1x1 "
      f"--optShapes=input_ids:{DYN_BATCH}x{SEQ_LEN} --maxShapes=input_ids:{MAX_BATCH}x{MAX_SEQ_LEN} --saveEngine=modelo.plan")

# %% [markdown]
# ## 4. A comparação que roda em qualquer lugar: `torch.compile`
#
# O `torch.compile` captura o mesmo grafo com o TorchDynamo e gera kernels com o Inductor (C++/OpenMP na CPU, Triton na
# GPU). Medimos a latência de uma passada inteira (`SEQ_LEN` tokens, lote 1) em *eager* e compilada, no mesmo dispositivo,
# e conferimos que as saídas concordam.

# %%
run_device = device
bench_model = copy.deepcopy(model).to(run_device)
if run_device.startswith("cuda"):
    bench_model = bench_model.half()   # na GPU, fp16 (é a precisão que o TensorRT vai usar)
bench_ids = ids.to(run_device)
wrapper = LogitsOnly(bench_model).eval()
with torch.inference_mode():
    eager_out = wrapper(bench_ids).float()
eager_ms = measure_latency(lambda: wrapper(bench_ids), warmup=2, repeats=LAT_REPEATS)["median_ms"]
compiled = torch.compile(wrapper)
start = time.perf_counter()
with torch.inference_mode():
    compiled(bench_ids)
compile_seconds = time.perf_counter() - start
compiled_ms = measure_latency(lambda: compiled(bench_ids), warmup=2, repeats=LAT_REPEATS)["median_ms"]
with torch.inference_mode():
    compiled_out = compiled(bench_ids).float()
compile_diff = float((compiled_out - eager_out).abs().max())
compile_agree = float((compiled_out.argmax(-1) == eager_out.argmax(-1)).float().mean())
torch_compile_speedup = eager_ms / compiled_ms
latencies = {"PyTorch eager": eager_ms, "torch.compile": compiled_ms}
print(f"{run_device}: eager {eager_ms:.1f} ms | torch.compile {compiled_ms:.1f} ms ({torch_compile_speedup:.2f}x) | "
      f"compilou em {compile_seconds:.0f} s | diferença máxima {compile_diff:.1e}, mesmo argmax em {compile_agree:.1%}")
if run_device.startswith("cuda"):  # fp16: a régua é a diferença fp16 x fp32 medida na seção 3
    claim("torch.compile calcula a mesma função (na régua da precisão usada)",
          compile_agree > 0.9 and compile_diff <= max(0.1, 2 * fp16_diff), measured=compile_diff)
else:
    claim("torch.compile calcula a mesma função (na régua da precisão usada)", compile_diff <= 1e-3, measured=compile_diff)
compiled = wrapper = bench_model = None  # libera a memória

# %% [markdown]
# O ganho do `torch.compile` depende do que domina o tempo. As multiplicações de matrizes grandes o *eager* já entrega às
# bibliotecas otimizadas (MKL/oneDNN na CPU, cuBLAS na GPU); o compilador ganha ao **fundir as operações pequenas** em
# volta delas (normas, RoPE, ativações, somas residuais), que no *eager* são um kernel cada, com uma ida e volta à memória
# cada. Quanto isso pesa depende do dispositivo e do tamanho: o que esta execução mediu:

# %%
if torch_compile_speedup >= 1.2:
    print(f"Aqui o torch.compile foi {torch_compile_speedup:.2f}x mais rápido ({run_device}): as operações pequenas que ele "
          "funde pesavam no tempo da passada.")
elif torch_compile_speedup > 1 / 1.2:
    print(f"Aqui o torch.compile ficou perto do eager ({torch_compile_speedup:.2f}x, {run_device}): fundir as operações "
          "pequenas não rendeu nesta passada, neste dispositivo e neste tamanho.")
else:
    print(f"Aqui o torch.compile foi mais lento que o eager ({torch_compile_speedup:.2f}x, {run_device}): o código que o "
          "Inductor gerou perdeu para as bibliotecas que o eager chama. Numa CPU de poucos núcleos disputada por outros "
          "processos a medida também oscila: rode de novo antes de concluir.")

# %% [markdown]
# No decode, com um token por passo, as operações pequenas pesam ainda mais (o notebook 05 mede o `torch.compile` com
# `StaticCache` na geração). O TensorRT faz o mesmo tipo de fusão, mais a escolha de kernels medida na própria GPU
# (*autotuning*) e o fp16 nos *tensor cores*; quanto isso rende, só as seções 5 a 7 dizem, e só onde o TensorRT roda.
#
# ## 5. Torch-TensorRT (GPU)
#
# `torch_tensorrt.compile(..., ir="dynamo", use_explicit_typing=True)` com o modelo em fp16: tipagem forte, a precisão
# vem dos tipos do próprio grafo do PyTorch (fp16, com a variância da RMSNorm em fp32, como vimos na seção 3). É o caminho
# que vale no TensorRT 11; o `enabled_precisions={torch.float16}` do material antigo é a tipagem fraca. Um engine de
# formato fixo (lote 1 x `SEQ_LEN`) e outro com formato dinâmico (o perfil da seção 3), conferidos contra o PyTorch fp16
# com a régua da seção 3.

# %%
TTRT_FIXED, TTRT_DYNAMIC = "Torch-TensorRT fixo", "Torch-TensorRT dinâmico"   # os nomes valem para as seções 5 e 8
trt_results, dynamic_agree, specs = {}, None, {}
if reason:
    skip(5, "Torch-TensorRT", f"{reason}: os engines fixo e dinâmico do Torch-TensorRT não foram montados nem medidos")
elif not torch_tensorrt_available:
    skip(5, "Torch-TensorRT", tensorrt_missing_reason(
        "torch_tensorrt", probe["errors"].get("torch_tensorrt"), "os engines fixo e dinâmico do Torch-TensorRT não "
        "foram montados nem medidos", torch.__version__, torch.version.cuda))
else:
    import torch_tensorrt

    gpu_wrapper = LogitsOnly(copy.deepcopy(model).to("cuda").half()).eval()
    gpu_ids = ids.to("cuda")
    with torch.inference_mode():
        gpu_eager = gpu_wrapper(gpu_ids).float()
    specs = {
        TTRT_FIXED: [torch_tensorrt.Input(shape=(1, SEQ_LEN), dtype=torch.int64)],
        TTRT_DYNAMIC: [torch_tensorrt.Input(min_shape=profile["min"], opt_shape=profile["opt"],
                                            max_shape=profile["max"], dtype=torch.int64)],
    }

# %% [markdown]
# Cada engine é montado, medido e conferido do mesmo jeito (`measure_engine`, do pacote do curso: a primeira saída, a
# mediana de `LAT_REPEATS` execuções, a maior diferença e a concordância do argmax com o PyTorch fp16). Se a montagem
# falhar, o motivo vai para a lista de células puladas, sem número inventado.

# %%
trt_modules = {}
for name, inputs in specs.items():   # vazio se a seção foi pulada
    try:
        start = time.perf_counter()
        trt_module = torch_tensorrt.compile(gpu_wrapper, ir="dynamo", inputs=inputs, use_explicit_typing=True,
                                            min_block_size=1)
        build_s = time.perf_counter() - start
        result = measure_engine(lambda m=trt_module: m(gpu_ids), gpu_eager, build_s, LAT_REPEATS)
    except Exception as exc:  # versões do TensorRT mudam a API: dizemos o que falhou em vez de inventar número
        skip(5, name, f"a montagem ou a medida falhou: {type(exc).__name__}: {str(exc)[:200]}")
        continue
    trt_results[name], trt_modules[name], latencies[name] = result, trt_module, result["ms"]
    print(f"{name}: {result['ms']:.2f} ms (montado em {build_s:.0f} s) | dif. máx. para o PyTorch fp16 "
          f"{result['diff']:.3f}, mesmo argmax em {result['agree']:.1%}")

# %% [markdown]
# O engine dinâmico recebe formatos que o fixo recusaria: o `opt` do perfil (lote `DYN_BATCH` x `SEQ_LEN`) e outro
# comprimento (lote `DYN_BATCH` x 37 tokens), os dois dentro do perfil.

# %%
if TTRT_DYNAMIC in trt_modules:
    agreements = []
    for n_tokens in (SEQ_LEN, 37):
        other = text_token_ids(tokenizer, "pt", DYN_BATCH * n_tokens).reshape(DYN_BATCH, n_tokens).to("cuda")
        with torch.inference_mode():
            same = trt_modules[TTRT_DYNAMIC](other).argmax(-1) == gpu_wrapper(other).argmax(-1)
        agreements.append(float(same.float().mean()))
        print(f"engine dinâmico com lote {DYN_BATCH} x {n_tokens} tokens: mesmo argmax em {agreements[-1]:.1%}")
    dynamic_agree = min(agreements)
gpu_wrapper = trt_modules = None   # libera a GPU


# %% [markdown]
# ## 6. TensorRT a partir do ONNX (GPU)
#
# A API do *builder*: o parser lê o ONNX **exportado em fp16** (seção 3: pesos e contas em fp16, a variância da RMSNorm em
# fp32), a rede é criada **fortemente tipada** (`STRONGLY_TYPED` no TensorRT 10; no 11 é sempre assim), a configuração
# recebe o perfil de otimização, e o resultado é um engine serializado que roda sem PyTorch. Para executá-lo usamos
# tensores do PyTorch como memória da GPU (`set_tensor_address`). O contexto de execução e o tensor de saída são criados
# **uma vez**, fora do que é cronometrado: a medida conta só a execução do engine.

# %%
def build_trt_engine(onnx_file, profile_shapes):
    """Monta um engine fortemente tipado a partir de um ONNX; devolve (engine, segundos)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)   # no TensorRT 11: o padrão
    network = builder.create_network(0 if strongly is None else 1 << int(strongly))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError("o parser do TensorRT recusou o ONNX: " + "; ".join(errors[:3]))
    config = builder.create_builder_config()
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape("input_ids", *profile_shapes)
    config.add_optimization_profile(trt_profile)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("o TensorRT não conseguiu montar o engine (veja as mensagens acima)")
    return trt.Runtime(logger).deserialize_cuda_engine(serialized), time.perf_counter() - start

# %% [markdown]
# Para executar o engine: um contexto de execução com o formato da entrada, e os endereços da entrada e da saída
# (tensores do PyTorch na GPU). `run()` só manda o engine rodar no *stream* atual.

# %%
def prepare_trt_run(engine, input_ids):
    """Contexto, formato e saída preparados uma vez; devolve (run, logits): run() só executa o engine."""
    context = engine.create_execution_context()
    context.set_input_shape("input_ids", tuple(input_ids.shape))
    dtype = torch.float16 if "HALF" in str(engine.get_tensor_dtype("logits")) else torch.float32
    logits = torch.empty(tuple(context.get_tensor_shape("logits")), dtype=dtype, device="cuda")
    context.set_tensor_address("input_ids", input_ids.data_ptr())
    context.set_tensor_address("logits", logits.data_ptr())
    stream = torch.cuda.current_stream()
    return (lambda: context.execute_async_v3(stream.cuda_stream)), logits


# %%
ONNX_FIXED, ONNX_DYNAMIC = "TensorRT (ONNX) fixo", "TensorRT (ONNX) dinâmico"
onnx_engines = {}
if reason:
    skip(6, "TensorRT a partir do ONNX", f"{reason}: os engines fixo e dinâmico a partir do ONNX não foram montados nem "
         "medidos")
elif not tensorrt_available:
    skip(6, "TensorRT a partir do ONNX", tensorrt_missing_reason(
        "tensorrt", probe["errors"].get("tensorrt"), "os engines fixo e dinâmico a partir do ONNX não foram montados "
        "nem medidos", torch.__version__, torch.version.cuda))
else:
    fp16_model_onnx, _ = cached_export(copy.deepcopy(model).half(), f"smollm2-{n_layers}camadas-fp16", refresh=REFRESH_CACHE)
    gpu_ids = ids.to("cuda").contiguous()
    gpu_fp16 = LogitsOnly(copy.deepcopy(model).to("cuda").half()).eval()
    with torch.inference_mode():
        gpu_eager = gpu_fp16(gpu_ids).float()
    del gpu_fp16
    onnx_engines = {ONNX_FIXED: ((1, SEQ_LEN),) * 3, ONNX_DYNAMIC: (profile["min"], profile["opt"], profile["max"])}

# %% [markdown]
# Os dois engines, montados do ONNX fp16 e medidos com a mesma bancada da seção 5 (a saída é lida do tensor que o
# engine escreve):

# %%
for name, shapes in onnx_engines.items():   # vazio se a seção foi pulada
    try:
        engine, build_s = build_trt_engine(fp16_model_onnx, shapes)
        run, out = prepare_trt_run(engine, gpu_ids)
        result = measure_engine(run, gpu_eager, build_s, LAT_REPEATS, output=lambda out=out: out)
    except Exception as exc:
        skip(6, name, f"a montagem ou a medida falhou: {type(exc).__name__}: {str(exc)[:200]}")
        continue
    trt_results[name], latencies[name] = result, result["ms"]
    print(f"{name}: {result['ms']:.2f} ms (montado em {build_s:.0f} s) | dif. máx. para o PyTorch fp16 "
          f"{result['diff']:.3f}, mesmo argmax em {result['agree']:.1%}")

# %% [markdown]
# ## 7. O provedor TensorRT do ONNX Runtime (GPU)
#
# Com o `onnxruntime-gpu`, basta pôr `TensorrtExecutionProvider` na frente da lista de provedores; passamos o mesmo ONNX
# exportado em fp16 (a precisão vem do grafo) e guardamos os engines num diretório, para a próxima sessão não montar de
# novo. Para comparar igual com igual, a saída fica na GPU (`io_binding`), como nos engines acima.

# %%
ORT_TRT = "ORT + TensorRT EP"
ep_active = []
if reason:
    skip(7, "Provedor TensorRT do ONNX Runtime", f"{reason}: a sessão com o provedor TensorRT não foi criada nem medida")
elif not ort_trt_ep:
    skip(7, "Provedor TensorRT do ONNX Runtime", "o onnxruntime instalado não tem o provedor TensorRT (provedores: "
         f"{ort.get_available_providers()}), então a sessão com ele não foi criada nem medida; ele vem no "
         "onnxruntime-gpu, que no PyPI é da CUDA 13 (notebook 06), e precisa da biblioteca do TensorRT")
else:
    ep_onnx, _ = cached_export(copy.deepcopy(model).half(), f"smollm2-{n_layers}camadas-fp16", refresh=REFRESH_CACHE)
    trt_options = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(ep_onnx.parent / "trt-ep-cache")}
    ep_session = ort.InferenceSession(str(ep_onnx), providers=[("TensorrtExecutionProvider", trt_options),
                                                                "CUDAExecutionProvider", "CPUExecutionProvider"])
    # Se a biblioteca do TensorRT (libnvinfer) não carrega, o ORT só escreve um erro no log e segue com o próximo
    # provedor da lista: quem manda é get_providers() da sessão criada, não a lista de disponíveis.
    ep_active = ep_session.get_providers()
    print(f"provedores ativos na sessão: {ep_active}")

# %% [markdown]
# Se a sessão ficou mesmo com o TensorRT, medimos: a primeira chamada monta o engine (e é cronometrada à parte), e a
# bancada da seção 5 mede as seguintes e confere a saída contra o PyTorch fp32.

# %%
if ep_active and ep_active[0] != "TensorrtExecutionProvider":
    skip(7, ORT_TRT, f"o provedor TensorRT não carregou (falta a libnvinfer?): a sessão caiu para {ep_active[0]}, e um "
         f"número dela seria de {ep_active[0]}, não de TensorRT")
elif ep_active:
    binding = ep_session.io_binding()
    binding.bind_cpu_input("input_ids", ids.numpy())
    binding.bind_output("logits", "cuda")
    start = time.perf_counter()
    ep_session.run_with_iobinding(binding)
    first_s = time.perf_counter() - start
    result = measure_engine(lambda: ep_session.run_with_iobinding(binding), ref_logits, first_s, LAT_REPEATS,
                            output=lambda: binding.copy_outputs_to_cpu()[0])
    trt_results[ORT_TRT], latencies[ORT_TRT] = result, result["ms"]
    print(f"ORT + TensorRT EP: {result['ms']:.2f} ms (primeira chamada, que monta o engine: {first_s:.0f} s) | mesmo "
          f"argmax que o PyTorch fp32 em {result['agree']:.1%}")

# %% [markdown]
# ## 8. O que foi medido e o que foi pulado
#
# Cada afirmação de TensorRT abaixo é conferida contra o que rodou nesta execução; onde não rodou, ela aparece como
# pulada, com o motivo.

# %%
def claim_trt(name, key, section):
    """Afirmação de concordância de um engine, conferida se ele rodou; senão, pulada com os motivos da seção."""
    if key in trt_results:
        claim(name, trt_results[key]["agree"] > 0.9, measured=trt_results[key]["agree"])
    else:
        claim_skipped(name, skip_reason(section))

# %%
claim_trt("(GPU) Torch-TensorRT fixo escolhe o token do PyTorch fp16 em > 90% das posições", TTRT_FIXED, 5)
claim_trt("(GPU) engine fortemente tipado do ONNX fp16 escolhe o token do PyTorch em > 90%", ONNX_FIXED, 6)
claim_trt("(GPU) provedor TensorRT do ORT escolhe o token do PyTorch fp32 em > 90%", ORT_TRT, 7)
if dynamic_agree is not None:
    claim("(GPU) engine dinâmico aceita formatos que o fixo recusa e concorda em > 90%", dynamic_agree > 0.9,
          measured=dynamic_agree)
else:
    claim_skipped("(GPU) engine dinâmico aceita formatos que o fixo recusa e concorda em > 90%", skip_reason(5))
plot_bars(list(latencies), list(latencies.values()), f"Uma passada de {SEQ_LEN} tokens ({run_device})", "ms (mediana)")
plt.xticks(rotation=20, ha="right")
plt.show()
for name, ms in latencies.items():
    print(f"  {name:<28} {ms:8.2f} ms")
if skipped:
    print("\nCélulas puladas nesta execução (nenhum número delas aparece acima):")
    for section, what, why in skipped:
        print(f"  - seção {section}, {what}: {why}")

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Qual o maior |x| para o qual x² ainda é **finito** em fp16? (É o limiar da seção 3.)

# %% curso={"exercicio": "07.1", "resposta": "resposta_1"} tags=["exercicio"]
resposta_1 = None  # substitua por um número
check("07.1", resposta_1)


# %% [markdown]
# **Exercício 2.** Nem todo kernel pode converter para fp32 (numa GPU sem fp32 rápido, ou para economizar registradores).
# Escreva `minha_rmsnorm_fp16(x, peso, eps=1e-5)` que recebe `x` e `peso` em **fp16** e devolve a RMSNorm em fp16 **sem
# criar nenhum tensor fp32** no caminho, e que não estoure para |x| de dezenas de milhares (nem perca os valores muito
# pequenos). Dica: $\sqrt{\text{média}(x^2)} = m\,\sqrt{\text{média}((x/m)^2)}$ para qualquer $m > 0$.

# %% curso={"exercicio": "07.2", "resposta": "minha_rmsnorm_fp16"} tags=["exercicio"]
def minha_rmsnorm_fp16(x, peso, eps=1e-5):
    # seu código aqui
    ...

check("07.2", minha_rmsnorm_fp16)


# %% [markdown]
# **Exercício 3.** Um serviço registrou os formatos `(lote, tokens)` de `input_ids` que chegaram nele. Escreva
# `meu_perfil(formatos)` que devolve o perfil de otimização de um engine que aceite todos eles, como o da seção 3:
# `{"min": (lote, tokens), "opt": (lote, tokens), "max": (lote, tokens)}`, com `min` e `max` o menor e o maior valor **de
# cada eixo**, e `opt` o formato mais frequente (no empate, o que apareceu primeiro), o formato para o qual o TensorRT
# escolhe os kernels.

# %% curso={"exercicio": "07.3", "resposta": "meu_perfil"} tags=["exercicio"]
def meu_perfil(formatos):
    # seu código aqui
    ...

check("07.3", meu_perfil)

# %% [markdown]
# ## Resumo

# %%
record("tensorrt_available", tensorrt_available)
record("torch_tensorrt_available", torch_tensorrt_available)
record("ort_tensorrt_ep_available", ort_trt_ep)
record("export_layers", n_layers)
record("onnx_max_abs_diff_fp32", onnx_diff)
record("fp16_max_abs_logit_diff", fp16_diff)
record("fp16_argmax_agreement", fp16_agree)
record("max_rmsnorm_input_fp32", max_norm_input)
record("rmsnorm_fp16_broken_rows", broken_rows)
record("rmsnorm_real_rows_over_fp16_ceiling", real_rows["acima do teto"])
record("latency_ms_eager", eager_ms)
record("latency_ms_torch_compile", compiled_ms)
record("torch_compile_speedup", torch_compile_speedup)
record("torch_compile_device", run_device)
record("cells_skipped", len(skipped))
for name, r in trt_results.items():
    key = name.lower().replace(" ", "_").replace("(", "").replace(")", "").replace("+", "").replace("__", "_")
    record(f"latency_ms_{key}", r["ms"])
    record(f"argmax_agreement_{key}", r["agree"])

# %% [markdown]
# **Para levar.** (1) A precisão é do grafo: com tipagem forte (a única do TensorRT 11), exporte o modelo em fp16 com as
# partes sensíveis em fp32 (a variância da RMSNorm), em vez de converter tudo e deixar o x² estourar. (2) Instale o
# Torch-TensorRT da mesma build (versão e CUDA) do torch, com as dependências, e decida se ele existe importando-o.
# (3) Um perfil de otimização diz ao engine a faixa de formatos que ele aceita; quanto isso custa em velocidade, meça
# na sua GPU (seções 5 e 6). (4) Confira sempre as saídas com a régua certa: em fp16, diferenças de décimos nos logits
# são normais; o que importa é escolher os mesmos tokens. (5) O engine daqui é uma passada sem cache KV; gerar token a
# token com TensorRT é o trabalho do TensorRT-LLM, que não roda na T4. Próximo: **08 · Um modelo 7B no Colab**.
