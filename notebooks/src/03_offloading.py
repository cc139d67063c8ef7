# %% [markdown]
# # 03 · Offloading para CPU e disco
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - dizer, antes de carregar, se um modelo cabe (o planejador de memória do curso) e o que fazer quando não cabe;
# - escrever um offload *just in time* com ganchos de forward, e reconhecer os erros do material antigo (blocos que
#   ele não acha, pesos copiados de volta, um arquivo só para todos os blocos, marcadores que quebram a recarga);
# - usar a maquinaria do `accelerate`: `infer_auto_device_map` com `max_memory`, `device_map="auto"`, `offload_folder`,
#   `cpu_offload` e `dispatch_model`, lendo o mapa de dispositivos que ele escolhe;
# - medir, cada configuração no seu próprio processo, quanto de RAM o offload para o disco economiza e quanto ele custa
#   em tempo por token — e explicar a lentidão com números;
# - com GPU: deixar os últimos blocos na CPU (um `device_map` escrito à mão), medir o tempo por token em função do número
#   de camadas na CPU, e combinar INT8 do bitsandbytes com `llm_int8_enable_fp32_cpu_offload`.
#
# **Pré-requisitos.** Notebook 01 (medidas de memória, bitsandbytes). Usamos o `model.generate` do transformers como
# caixa-preta para medir tempo por token; o notebook 05 abre essa caixa (o laço de geração e o cache KV).
# **Tempo estimado.** 35 minutos de leitura; a execução leva menos de um minuto numa CPU de 2 núcleos (mais uns 2 minutos
# nas seções de GPU).
# **Hardware.** CPU serve: o offload para o disco e os ganchos rodam na CPU. As seções de offload CPU↔GPU e de INT8 com
# offload só rodam com GPU (o notebook pede uma T4 ao Colab); num runtime de CPU elas avisam e pulam.
#
# Todo número impresso aqui é medido agora, nesta execução. Números de artigos aparecem sempre com a fonte.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` é uma versão rápida de cada experimento (menos tokens por medida, menos pontos na varredura da GPU);
# as afirmações continuam sendo conferidas.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"                      # "auto" usa a GPU se houver
NEW_TOKENS = 24                      # tokens gerados em cada medida de tempo na CPU
DISK_BUDGET_FRACTION = 0.25          # orçamento de RAM do offload para o disco, em fração do modelo (< 0,5)
TORCH_THREADS = None                 # threads do torch neste notebook (None: o padrão, todos os núcleos)
ISOLATED_THREADS = 1                 # threads do torch nos processos de medida (ver seção 4)
GPU_OFFLOAD_LAYERS = [0, 6, 12, 18, 24, 30]   # (GPU) quantos blocos (os últimos) deixar na CPU
GPU_NEW_TOKENS = 32                  # (GPU) tokens gerados em cada ponto da varredura

# %% [markdown]
# As bibliotecas de uso geral e as ferramentas do curso; o `accelerate`, o planejador e o código do material antigo
# são importados nas seções que os usam.

# %%
import copy
import gc
import logging
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from transformers.utils import logging as hf_logging

from course_utils.display import explore, show_source
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency, model_footprint
from course_utils.models import LLAMA2_7B_CONFIG, load_model, load_tokenizer, resolve_model
from course_utils.offload import fp32_checkpoint, jit_offload, resident_bytes, summarize_device_map
from course_utils.plotting import plot_bars, plot_lines
from course_utils.results import claim, claim_skipped, record

# %% [markdown]
# Na versão rápida, cargas menores e uma thread do torch; depois o dispositivo e a semente.

# %%
if SMOKE:  # numa máquina compartilhada de 2 núcleos, 1 thread evita a espera ativa do OpenMP (tests/conftest.py)
    NEW_TOKENS, GPU_NEW_TOKENS, GPU_OFFLOAD_LAYERS = 8, 16, [0, 10, 20, 30]
    TORCH_THREADS = TORCH_THREADS or 1
if TORCH_THREADS:
    torch.set_num_threads(TORCH_THREADS)

quiet_libraries()
hf_logging.disable_progress_bar()
# o dispatch_model avisa "Some parameters are on the meta device..." a cada modelo: a seção 3 explica isso
logging.getLogger("accelerate.big_modeling").setLevel(logging.ERROR)
torch.manual_seed(SEED)
device = pick_device(DEVICE)
on_gpu = device.startswith("cuda")
TOL = 2e-2 if on_gpu else 1e-3   # logits fp32: na GPU outros kernels somam em outra ordem
print(environment_info())

# %% [markdown]
# O modelo de referência fica na CPU, em fp32: é a cópia "mestra" de onde cada seção parte. Gravamos também um
# checkpoint local em safetensors (fp32), que os processos de medida e o offload para o disco leem, e os logits de um
# prompt curto, a régua de "mesma saída" do resto do notebook.

# %%
workdir = Path(tempfile.mkdtemp(prefix="curso03_"))     # arquivos de offload desta execução (apagados no fim)
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
ckpt_dir = fp32_checkpoint(model, resolve_model(MODEL_ID), workdir / "checkpoint")
ckpt_file = str(ckpt_dir / "model.safetensors")
PROMPT = "The history of clocks begins"
prompt_ids = tokenizer(PROMPT, return_tensors="pt").input_ids
with torch.inference_mode():
    ref_logits = model(prompt_ids).logits
size_mb = model_footprint(model)["total_mb"]
n_layers = model.config.num_hidden_layers
print(f"{MODEL_ID}: {size_mb:.0f} MiB em fp32, {n_layers} blocos; checkpoint em {ckpt_dir}")

# %% [markdown]
# As seções com GPU medem tempo por token com o `generate` guloso do transformers, sempre do mesmo jeito:

# %%
def ms_per_token(m, new_tokens, repeats=2):
    """Milissegundos por token do generate guloso (entradas já no dispositivo de execução; um aquecimento antes)."""
    ids = prompt_ids.to(device)
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
              do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return measure_latency(lambda: m.generate(ids, **kw), warmup=1, repeats=repeats)["median_ms"] / new_tokens


# %% [markdown]
# ## 1. Quando o modelo não cabe
#
# Antes de carregar qualquer coisa, o planejador do curso (`course_utils.planner.plan_memory`, detalhado no notebook 08)
# conta os bytes dos pesos a partir da configuração, soma o cache KV e uma folga para ativações e dá um veredito por
# formato: cabe na GPU, cabe na RAM, precisa de offload para a CPU, precisa de offload para o disco, ou não roda.
# Para um Llama-2-7B (só a configuração, nada é baixado) em alguns ambientes comuns:

# %%
from course_utils.planner import plan_presets, verdict_table

plans = plan_presets(LLAMA2_7B_CONFIG, name="Llama-2-7B", context_tokens=2048)
print(verdict_table(plans))
print()
print(plans["colab_t4"]["fp16"].explanation)
print()
print(plans["laptop_cpu"]["fp16"].explanation)

# %% [markdown]
# Offload quer dizer: os pesos que não cabem no dispositivo de computação moram num lugar maior e mais lento
# (a RAM, ou o disco) e são trazidos **camada por camada, a cada passada**. O modelo roda, mas cada token paga a cópia de
# todos os pesos que estão fora do dispositivo. O resto do notebook mostra como fazer isso e mede o preço.

# %% [markdown]
# ## 2. Offload à mão, com ganchos de forward
#
# A ideia cabe em dois ganchos por bloco do transformer (`course_utils.offload.jit_offload`):
#
# - **pre-hook** (antes do forward do bloco): os pesos vão do armazenamento para o dispositivo de computação, e as
#   entradas também (se vierem de outro lugar);
# - **post-hook** (depois): o parâmetro volta a apontar para a cópia do armazenamento — nada é copiado de volta, porque
#   na inferência os pesos não mudam — e a cópia no dispositivo é liberada. **A saída fica no dispositivo de computação**:
#   é lá que o próximo bloco vai rodar.
#
# Ganchos (`register_forward_pre_hook` / `register_forward_hook` com `with_kwargs=True`) evitam a cirurgia no modelo: os
# blocos continuam os mesmos objetos, e tirar os ganchos devolve o modelo original. O código inteiro:

# %%
show_source(jit_offload)

# %% [markdown]
# Linha a linha: `slots` guarda, para cada parâmetro do bloco, o submódulo dono e o nome, para poder trocar o
# `Parameter` (`_put`); com `storage` = pasta, `save_file` grava **um arquivo por bloco** e os parâmetros viram tensores
# vazios (do mesmo dtype: o formato não importa, porque o pre-hook troca o `Parameter` inteiro). O `pre_hook` lê o
# arquivo (ou a cópia na RAM), leva ao dispositivo de computação e alinha as entradas; o `post_hook` só troca as
# referências de volta: nada é copiado nem gravado, e a saída fica onde o próximo bloco roda.
#
# ### O material antigo deste curso, rodado
# Ele embrulhava cada bloco numa classe (`CPUOffloadModule`, `DiskOffloadModule`). O código dele, copiado em
# `course_utils.offload` (`seed_apply_cpu_offloading`, `SeedCPUOffloadModule`, `SeedDiskOffloadModule`), tem cinco erros:
#
# 1. **Não acha os blocos.** `apply_cpu_offloading` procura `model.layers`; num causal LM do Hugging Face os blocos
#    estão em `model.model.layers`. O `hasattr(model, "layers")` dá `False` e o modelo volta **sem nenhuma mudança**,
#    sem aviso (e, sem GPU e sem `layer_indices`, ele nem tenta: "Se não houver GPU, não aplicar offloading").
# 2. **Copia de volta pesos que não mudaram.** Depois do forward, `self.module.to(self.cpu_device)` copia todos os pesos
#    do bloco da GPU para a CPU (uma cópia nova na RAM, a cada chamada), seguido de `torch.cuda.empty_cache()`. Na
#    inferência os pesos não mudam: basta voltar a apontar para a cópia que já estava na RAM.
# 3. **Um arquivo para todos os blocos.** (A classe estava dentro de uma string, `example_code = """ ...`, devolvida por
#    `disk_offloading_example()`; a docstring da classe abre com `"""` e fecha essa string, então o trecho nem compila.
#    Aqui ela roda como código.) `DiskOffloadModule` grava em `os.path.join(temp_dir, "module.pt")`: todo bloco
#    embrulhado escreve **o mesmo arquivo**, e o último apaga os outros; e `_save_to_disk` roda de novo depois de cada
#    forward, regravando no disco pesos que não mudaram.
# 4. **O marcador quebra a recarga.** `param.data = torch.zeros(1)` troca o formato do parâmetro para `[1]`; o
#    `load_state_dict` do forward seguinte compara formatos e falha com *size mismatch*.
# 5. **Só move os tensores soltos.** `CPUOffloadModule.forward` leva para a GPU
#    `{k: v.to(self.gpu_device) if isinstance(v, torch.Tensor) else v ...}`: um tensor dentro de uma tupla passa
#    intacto. No transformers 5 cada bloco recebe `position_embeddings=(cos, sin)`, uma tupla, que fica onde estava.
#    (O exercício 3 pede o alinhamento certo, que entra nas tuplas.)
#
# Rodamos os erros 1, 3 e 4 aqui (na CPU dá; o 2 precisa de GPU e é medido na seção seguinte), em cópias dos blocos:

# %%
from course_utils.offload import SeedCPUOffloadModule, SeedDiskOffloadModule, seed_apply_cpu_offloading
from course_utils.offload.seed import SEED_DISK_OFFLOADING_EXAMPLE

try:
    compile(SEED_DISK_OFFLOADING_EXAMPLE, "material antigo", "exec")
except SyntaxError as exc:
    print(f"a função antiga com o DiskOffloadModule na string: SyntaxError na linha {exc.lineno} ({exc.msg}): "
          f"{exc.text.strip()!r}")

seed_model = seed_apply_cpu_offloading(model, layer_indices=range(n_layers))
wrapped = sum(isinstance(m, SeedCPUOffloadModule) for m in seed_model.modules())
print(f"hasattr(model, 'layers') = {hasattr(model, 'layers')}; hasattr(model.model, 'layers') = "
      f"{hasattr(model.model, 'layers')}; blocos embrulhados pelo código antigo: {wrapped} de {n_layers}")
claim("material antigo: apply_cpu_offloading não embrulha nenhum bloco de um causal LM do HF", wrapped == 0,
      measured=wrapped)
seed_dir = workdir / "antigo"
seed_blocks = [SeedDiskOffloadModule(copy.deepcopy(model.model.layers[i]), temp_dir=str(seed_dir)) for i in (0, 1)]
seed_files = sorted(p.name for p in seed_dir.iterdir())
print(f"dois blocos embrulhados -> arquivos na pasta: {seed_files}")
try:
    seed_blocks[0]._load_from_disk()   # o que o forward faz primeiro
    seed_error = None
except RuntimeError as exc:
    seed_error = next(line.strip() for line in str(exc).splitlines() if "size mismatch" in line)
print(f"recarregar o bloco 0: {seed_error}")
claim("material antigo: DiskOffloadModule grava os blocos no mesmo arquivo e não consegue recarregá-los",
      len(seed_files) == 1 and seed_error is not None, measured=len(seed_files))
del seed_blocks, seed_model

# %% [markdown]
# Sem GPU, o "dispositivo de computação" é a própria CPU; para o offload ter efeito, o armazenamento é o **disco**: cada
# bloco vira um arquivo `.safetensors` e a RAM dele é liberada. Com GPU, o armazenamento é a RAM (memória *pinned*, para a
# cópia por DMA) e a computação é na GPU. Conferimos que a saída é a mesma do modelo inteiro e medimos o que fica residente
# entre chamadas.

# %%
lat_ref_ms = measure_latency(lambda: model(prompt_ids), warmup=1, repeats=2)["median_ms"]  # tudo na RAM, na CPU
blocks = model.model.layers
storage = "cpu" if on_gpu else workdir / "jit"
resident_before, blocks_bytes = resident_bytes(model), resident_bytes(blocks)
remove_jit = jit_offload(blocks, device, storage)
if on_gpu:  # o que não é bloco (embeddings, norma final, RoPE, lm_head) é pequeno e usado sempre: vai inteiro
    for part in (model.model.embed_tokens, model.model.norm, model.model.rotary_emb, model.lm_head):
        part.to(device)
resident_jit = resident_bytes(model, device)   # o que mora no dispositivo de computação entre chamadas
with torch.inference_mode():
    jit_logits = model(prompt_ids.to(device)).logits
assert jit_logits.device.type == torch.device(device).type, "a saída do modelo deve ficar no dispositivo de computação"
jit_max_diff = (jit_logits.float().cpu() - ref_logits).abs().max().item()
jit_matches = jit_max_diff < TOL
claim("offload à mão reproduz o modelo", jit_matches, measured=jit_max_diff)
lat_jit_ms = measure_latency(lambda: model(prompt_ids.to(device)), warmup=1 if on_gpu else 0, repeats=2)["median_ms"]
where = "na GPU" if on_gpu else "na RAM"
print(f"parâmetros residentes {where} entre chamadas: {resident_jit / 2**20:.0f} MiB (antes: {resident_before / 2**20:.0f} MiB)")
print(f"saída igual ao modelo inteiro (diferença máxima {jit_max_diff:.1e}), no dispositivo {jit_logits.device}")
print(f"forward de {prompt_ids.shape[1]} tokens: {lat_jit_ms:.0f} ms com offload à mão | {lat_ref_ms:.0f} ms com tudo na RAM (CPU)")
claim("offload à mão: entre chamadas, no dispositivo só fica o que não é bloco",
      resident_jit == resident_before - blocks_bytes, measured=resident_jit / resident_before)
print(f"os blocos são {blocks_bytes / resident_before:.0%} dos pesos deste modelo; o resto (embeddings, lm_head, normas) "
      f"fica {where} o tempo todo, e os blocos chegam {'da RAM' if on_gpu else 'do disco'} a cada forward.")

# %% [markdown]
# Com GPU, medimos o erro 2 (o embrulho antigo num bloco: a cópia dos pesos na RAM é **outra** depois de cada forward)
# e o `empty_cache()` a cada bloco: quanto tempo custa e o que ele muda na memória **reservada** pelo alocador do PyTorch
# (a alocada, os tensores vivos, é a mesma: os pesos do bloco precisam estar lá de qualquer jeito). O alocador guarda os
# blocos de memória liberados para reusá-los; como todos os blocos do transformer têm os mesmos formatos, os pesos do
# próximo bloco cabem no espaço que o anterior deixou. `empty_cache()` devolve essa memória ao driver, e ela precisa ser
# pedida de novo no bloco seguinte.

# %%
if on_gpu:
    block0 = type(blocks[0])(model.config, layer_idx=0).eval()   # um bloco novo (sem os ganchos da seção 2)
    seed_wrapped = SeedCPUOffloadModule(block0)
    original = block0.mlp.up_proj.weight.data        # mantida viva: uma cópia nova não pode cair no mesmo endereço
    hidden = torch.randn(1, prompt_ids.shape[1], model.config.hidden_size, device=device)
    pos = model.model.rotary_emb(hidden, torch.arange(prompt_ids.shape[1], device=device)[None])
    with torch.inference_mode():
        seed_wrapped(hidden, position_embeddings=pos)
    copied_back = (block0.mlp.up_proj.weight.device.type == "cpu"
                   and block0.mlp.up_proj.weight.data_ptr() != original.data_ptr())
    print(f"embrulho antigo: depois do forward o peso está em {block0.mlp.up_proj.weight.device}, numa cópia nova "
          f"na RAM: {copied_back}")
    claim("(GPU) material antigo: o embrulho copia os pesos de volta para a RAM a cada forward", copied_back,
          measured=int(copied_back))
    del block0, seed_wrapped, original
else:
    claim_skipped("(GPU) material antigo: o embrulho copia os pesos de volta para a RAM a cada forward",
                  "sem GPU nesta execução")
    print("Sem GPU: o erro 2 e o custo do empty_cache() só aparecem com dois dispositivos (CPU e GPU). "
          "Rode este notebook no Colab com GPU para medi-los.")

# %% [markdown]
# Agora o `empty_cache()`: o mesmo offload à mão da seção 2, medido sem ele e com ele a cada bloco
# (`empty_cache_each_call=True`). Sem GPU, só devolvemos os blocos do disco para a RAM: as próximas seções usam o
# modelo inteiro.

# %%
jit_empty_cache_ratio = None
if on_gpu:
    def jit_ms_and_peaks():
        """ms por token e os picos de memória da GPU (MiB): alocada (tensores vivos) e reservada (o alocador)."""
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        ms = ms_per_token(model, GPU_NEW_TOKENS)
        return ms, torch.cuda.max_memory_allocated() / 2**20, torch.cuda.max_memory_reserved() / 2**20

    jit_ms_plain, alloc_plain, reserved_plain = jit_ms_and_peaks()
    remove_jit("cpu")
    remove_jit = jit_offload(blocks, device, "cpu", empty_cache_each_call=True)  # o hábito antigo, de propósito
    jit_ms_empty, alloc_empty, reserved_empty = jit_ms_and_peaks()
    remove_jit("cpu")
    jit_empty_cache_ratio = jit_ms_empty / jit_ms_plain
    print(f"offload à mão: {jit_ms_plain:.1f} ms/token; picos: alocada {alloc_plain:.0f} MiB, "
          f"reservada {reserved_plain:.0f} MiB")
    print(f"com empty_cache() a cada bloco: {jit_ms_empty:.1f} ms/token ({jit_empty_cache_ratio:.2f}x o tempo); "
          f"picos: alocada {alloc_empty:.0f} MiB, reservada {reserved_empty:.0f} MiB")
    claim("(GPU) empty_cache() a cada bloco não baixa o pico de memória alocada (>= 95% do pico sem ele)",
          alloc_empty >= 0.95 * alloc_plain, measured=alloc_empty / alloc_plain)
    model.to("cpu")
else:
    claim_skipped("(GPU) empty_cache() a cada bloco não baixa o pico de memória alocada (>= 95% do pico sem ele)",
                  "sem GPU nesta execução")
    remove_jit("cpu")

# %% [markdown]
# O pico de memória **alocada** é o mesmo com e sem `empty_cache()`: os pesos do bloco, as ativações e o cache precisam
# estar na GPU de qualquer jeito, e é isso que decide se o modelo cabe. O que muda é a memória **reservada** entre os
# blocos, devolvida ao driver e pedida de novo no bloco seguinte. O tempo extra é o custo dessa devolução; numa GPU
# rápida e com blocos pequenos ele pode ficar no ruído (compare os dois ms/token acima), por isso não o afirmamos.

# %% [markdown]
# ## 3. A maquinaria do `accelerate`
#
# O `accelerate` faz o mesmo com ganchos (`AlignDevicesHook`) e decide sozinho onde cada módulo mora:
#
# - `infer_auto_device_map(modelo, max_memory=...)` percorre os módulos **em ordem** e enche cada dispositivo até o
#   orçamento; o que não cabe vai para o próximo (GPU → CPU → disco), e ele não volta atrás. Nos dois dispositivos
#   principais (a **primeira GPU** e a **CPU**; sem GPU, só a CPU) ele não usa o orçamento inteiro: reserva o tamanho da
#   maior camada que ainda falta distribuir (`max_layer_size`), o espaço para trazer uma camada de fora quando ela for
#   usada (da RAM para a GPU, do disco para a RAM). Um módulo fica num dispositivo principal se
#   `usado + tamanho <= orçamento - max_layer_size`; nas outras GPUs, se `usado + tamanho <= orçamento`
#   ([o código do accelerate](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#accelerate-device-map)). Blocos listados em `no_split_module_classes`
#   (os `_no_split_modules` do modelo) nunca são partidos. Funciona num modelo no dispositivo `meta`: nenhum peso é lido.
# - `device_map="auto"` no `from_pretrained` faz essa distribuição e carrega cada peso direto no dispositivo escolhido;
#   `offload_folder` é a pasta do disco.
# - `dispatch_model(modelo, device_map)` aplica um mapa a um modelo já carregado; `cpu_offload(modelo, execution_device)`
#   deixa todos os pesos na RAM e os leva ao dispositivo de execução a cada forward.
#
# O orçamento de RAM aqui é `DISK_BUDGET_FRACTION` do tamanho do modelo, **abaixo da metade**, e não damos orçamento
# de GPU (nem quando há uma): o mapa é o da divisão CPU/disco que a seção 4 mede, igual em qualquer máquina.

# %%
from accelerate import infer_auto_device_map, init_empty_weights
from transformers import AutoConfig, AutoModelForCausalLM

assert 0 < DISK_BUDGET_FRACTION < 0.5, "o orçamento do offload para o disco deve ficar abaixo da metade do modelo"
disk_budget_mb = DISK_BUDGET_FRACTION * size_mb
config = AutoConfig.from_pretrained(ckpt_dir)
with init_empty_weights():
    meta_model = AutoModelForCausalLM.from_config(config)
meta_model.tie_weights()  # embeddings e lm_head são o mesmo tensor: o mapa precisa saber
no_split = list(meta_model._no_split_modules)
max_memory = {"cpu": int(disk_budget_mb * 2**20)}   # a RAM com o orçamento, o resto no disco
auto_map = infer_auto_device_map(meta_model, max_memory=max_memory, no_split_module_classes=no_split)
print(f"max_memory = { {k: f'{v / 2**20:.0f} MiB' for k, v in max_memory.items()} }, blocos que não se partem: {no_split}")
for dev, names in summarize_device_map(auto_map).items():
    print(f"  {dev!s:>5}: {names or '(o modelo inteiro)'}")

# %% [markdown]
# Repare na ordem: as embeddings vêm primeiro, então, se cabem, são elas que ocupam o orçamento; os blocos seguintes vão
# para o próximo dispositivo assim que um deles não cabe (contando a reserva `max_layer_size`), e o `accelerate` não volta atrás
# para encaixar módulos menores depois. Mexa no orçamento para ver o mapa mudar (no Colab/Jupyter o controle
# deslizante recalcula; aqui embaixo sai o valor padrão):

# %%
from course_utils.offload import bytes_by_device, device_map_for_budget


def show_map(fraction=DISK_BUDGET_FRACTION):
    """Mapa do accelerate para um orçamento de RAM = `fraction` do modelo, e quanto fica em cada lugar."""
    dm = device_map_for_budget(meta_model, int(fraction * size_mb * 2**20))
    per_device = bytes_by_device(meta_model, dm)
    print(f"orçamento {fraction * size_mb:.0f} MiB ({fraction:.0%} do modelo):")
    for dev, names in summarize_device_map(dm).items():
        print(f"  {dev!s:>5}: {per_device.get(dev, 0) / 2**20:6.0f} MiB  {names or '(o modelo inteiro)'}")
    print(f"  lidos do disco a cada token: {per_device.get('disk', 0) / 2**20:.0f} MiB")


explore(show_map, fraction=(0.05, 1.2, 0.05))

# %% [markdown]
#
# Agora aplicamos esse mapa ao modelo carregado com `dispatch_model`. Para os módulos no disco, em vez de deixar o
# `accelerate` regravar os pesos numa pasta (`offload_dir`, um arquivo `.dat` por tensor), passamos um `offload_index`
# que aponta para os tensores dentro do próprio `.safetensors` do checkpoint — é o que o `from_pretrained` com
# `device_map="auto"` faz quando o checkpoint já está em safetensors no dtype certo.

# %%
from accelerate import dispatch_model

from course_utils.offload import checkpoint_offload_index

offload_index = checkpoint_offload_index(ckpt_file, auto_map)   # {tensor: onde ele está no .safetensors}
dispatched = dispatch_model(load_model(MODEL_ID, device="cpu", dtype=torch.float32), device_map=auto_map,
                            offload_index=offload_index or None)
start = time.perf_counter()
with torch.inference_mode():
    logits_dispatch = dispatched(prompt_ids).logits
lat_dispatch_ms = 1000 * (time.perf_counter() - start)
assert torch.allclose(logits_dispatch.float().cpu(), ref_logits, atol=TOL), "dispatch_model deveria dar a mesma saída"
print(f"dispatch_model: mesma saída; um forward em {lat_dispatch_ms:.0f} ms (tudo na RAM: {lat_ref_ms:.0f} ms); "
      f"{len(offload_index)} tensores lidos do checkpoint a cada forward")
del dispatched
_ = gc.collect()   # (devolve quantos objetos coletou; o `_ =` evita imprimir)

# %% [markdown]
# O `cpu_offload` no modelo inteiro: todos os pesos na RAM, levados ao dispositivo de execução a cada forward.

# %%
from accelerate import cpu_offload

on_demand = cpu_offload(load_model(MODEL_ID, device="cpu", dtype=torch.float32), execution_device=device)
start = time.perf_counter()
with torch.inference_mode():
    logits_cpu_offload = on_demand(prompt_ids.to(device)).logits
lat_cpu_offload_ms = 1000 * (time.perf_counter() - start)
assert torch.allclose(logits_cpu_offload.float().cpu(), ref_logits, atol=TOL), "cpu_offload deveria dar a mesma saída"
print(f"cpu_offload (execução em {device}): mesma saída; um forward em {lat_cpu_offload_ms:.0f} ms")
if on_gpu:
    lat_accel_ms = measure_latency(lambda: on_demand(prompt_ids.to(device)), warmup=1, repeats=3)["median_ms"]
    print(f"forward de {prompt_ids.shape[1]} tokens: cpu_offload {lat_accel_ms:.1f} ms | offload à mão (seção 2) "
          f"{lat_jit_ms:.1f} ms")
else:
    print("Aqui execução e armazenamento são a mesma RAM: o cpu_offload só mostra a API. Com GPU ele leva cada "
          "módulo à GPU na hora do forward.")
on_demand = None   # libera o modelo
_ = gc.collect()   # (devolve quantos objetos coletou; o `_ =` evita imprimir)

# %% [markdown]
# E o próprio `accelerate`? Conferimos no código da versão instalada se os ganchos dele esvaziam o cache da GPU a cada
# tensor que trazem (`accelerate_hook_empties_cache` lê a assinatura de `set_module_tensor_to_device` e o código de
# `AlignDevicesHook.pre_forward`):

# %%
from course_utils.offload import accelerate_hook_empties_cache

accel_hook = accelerate_hook_empties_cache()
print(f"accelerate: set_module_tensor_to_device(clear_cache={accel_hook['default']}) por padrão; "
      f"AlignDevicesHook.pre_forward {'usa esse padrão' if accel_hook['hook_uses_default'] else 'passa clear_cache explicitamente'}")
if accel_hook["empties_cache"]:
    print("-> com offload para uma GPU, cada tensor trazido pelo gancho chama torch.cuda.empty_cache(): a mesma "
          "chamada do erro da seção 2, feita dentro da biblioteca.")

# %% [markdown]
# ### INT8 do bitsandbytes com parte do modelo na CPU (GPU)
#
# O `from_pretrained` com `load_in_8bit` recusa um `device_map` que mistura GPU e CPU, a menos que
# `llm_int8_enable_fp32_cpu_offload=True`. Com a opção, os módulos mandados para a CPU **não são quantizados**: o
# transformers os põe na lista `modules_to_not_convert` e eles ficam no dtype de carga (o nome da opção é antigo: no
# transformers 5 eles ficam no `dtype` pedido, não necessariamente em fp32). Conferimos isso no modelo carregado.

# %%
from transformers import BitsAndBytesConfig

from course_utils.offload import last_blocks_on_cpu_map

int8_offload_ok = None
if on_gpu:
    split = (2 * n_layers) // 3
    int8_map = last_blocks_on_cpu_map(meta_model, n_layers - split)   # o terço final dos blocos na CPU
    q8 = AutoModelForCausalLM.from_pretrained(
        ckpt_dir, dtype=torch.float16, device_map=int8_map,
        quantization_config=BitsAndBytesConfig(load_in_8bit=True, llm_int8_enable_fp32_cpu_offload=True)).eval()
    on_gpu_proj = q8.model.layers[0].self_attn.q_proj
    on_cpu_proj = q8.model.layers[n_layers - 1].self_attn.q_proj
    print(f"bloco 0 (GPU):  {type(on_gpu_proj).__name__}, peso {on_gpu_proj.weight.dtype}")
    print(f"bloco {n_layers - 1} (CPU): {type(on_cpu_proj).__name__}, peso {on_cpu_proj.weight.dtype}")
    assert on_gpu_proj.weight.dtype == torch.int8, "os blocos na GPU deveriam estar em int8"
    assert on_cpu_proj.weight.dtype != torch.int8, "os blocos na CPU não são quantizados"
    print(f"INT8 com {n_layers - split} blocos na CPU: {ms_per_token(q8, GPU_NEW_TOKENS):.1f} ms/token")
    int8_offload_ok = True
    del q8
    gc.collect()
    torch.cuda.empty_cache()   # limpeza ENTRE modelos: aqui sim faz sentido devolver a memória
else:
    print("Sem GPU: INT8 com offload CPU↔GPU só existe quando há uma GPU para dividir o modelo. Pulando.")

# %% [markdown]
# ## 4. Offload para o disco: quanta RAM economiza, quanto custa
#
# Agora a medida principal, no modelo de referência e só na CPU: gerar `NEW_TOKENS` tokens (1) com o modelo inteiro na
# RAM e (2) com `device_map="auto"`, `max_memory={"cpu": orçamento}` e `offload_folder`. O pico de memória de um processo
# (`VmHWM` no Linux) só sobe, e este notebook já carregou o modelo várias vezes: por isso **cada configuração roda num
# processo Python novo** (`course_utils.offload.measure_isolated`), que importa as bibliotecas, carrega, gera, e devolve
# o pico e o tempo. Para separar o modelo das bibliotecas, cada processo importa torch, transformers e accelerate e
# roda um `generate` num modelo minúsculo da mesma arquitetura **antes** da linha de base (`rss_baseline_mb`); o que
# o pico ganha depois dela é do modelo (pesos, ativações, cache KV). Os processos usam `ISOLATED_THREADS` thread(s) do torch: numa máquina compartilhada, duas threads
# disputando núcleos deixam o tempo muito mais ruidoso.

# %%
from course_utils.offload import measure_isolated

common = dict(prompt_ids=prompt_ids[0].tolist(), pad_id=tokenizer.eos_token_id, new_tokens=NEW_TOKENS,
              threads=ISOLATED_THREADS)
r_mem = measure_isolated(ckpt_dir, "memory", **common)
r_disk = measure_isolated(ckpt_dir, "disk", budget_mb=disk_budget_mb, offload_folder=workdir / "offload", **common)
for r, title in ((r_mem, "tudo na RAM"), (r_disk, f"offload para o disco (orçamento {disk_budget_mb:.0f} MiB)")):
    print(f"{title}: pico de RSS {r['rss_peak_mb']:.0f} MiB (só as bibliotecas: {r['rss_baseline_mb']:.0f} MiB) | "
          f"{r['seconds_per_token']:.3f} s/token | carga {r['load_seconds']:.1f} s")
print("mapa escolhido pelo device_map='auto':")
for dev, names in summarize_device_map(r_disk["device_map"]).items():
    print(f"  {dev!s:>5}: {names or '(o modelo inteiro)'}")
assert r_disk["output_ids"] == r_mem["output_ids"], "o offload não deveria mudar os tokens gerados"

# %% [markdown]
# Os mesmos tokens saíram nos dois processos. Agora comparamos os picos de memória, a parte deles que é do modelo e o
# tempo por token:

# %%
rss_ratio = r_disk["rss_peak_mb"] / r_mem["rss_peak_mb"]
disk_slowdown = r_disk["seconds_per_token"] / r_mem["seconds_per_token"]
print(f"\nmesmos {NEW_TOKENS} tokens gerados; pico de RSS com disco = {rss_ratio:.0%} do pico em memória; "
      f"{disk_slowdown:.1f}x mais lento por token")
model_mem = r_mem["rss_peak_mb"] - r_mem["rss_baseline_mb"]      # a parte do modelo no pico, tudo na RAM
model_disk = r_disk["rss_peak_mb"] - r_disk["rss_baseline_mb"]    # a parte do modelo no pico, com disco
model_ratio = model_disk / model_mem
print(f"parte do modelo no pico (pico - linha de base): {model_mem:.0f} MiB na RAM | {model_disk:.0f} MiB com disco "
      f"({model_ratio:.0%}); orçamento: {DISK_BUDGET_FRACTION:.0%} do modelo")
# as bibliotecas (um torch com CUDA são centenas de MiB) pesam igual nos dois processos: só a parte do modelo compara.
# Com disco, o modelo ocupa o orçamento mais o bloco que está sendo lido e as ativações: folga de 20% do modelo.
claim("offload para o disco: a parte do modelo no pico de RSS <= orçamento + 20% do modelo",
      model_ratio <= DISK_BUDGET_FRACTION + 0.20, measured=model_ratio)
saved_over_disk = (r_mem["rss_peak_mb"] - r_disk["rss_peak_mb"]) / (r_disk["offloaded_bytes"] / 2**20)
claim("offload para o disco: o pico de RSS cai >= 70% dos bytes que foram para o disco", saved_over_disk >= 0.70,
      measured=saved_over_disk)
claim("disco mais lento por token que a RAM", disk_slowdown > 1, measured=disk_slowdown)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
plot_bars(["na RAM", "disco"], [r_mem["rss_peak_mb"], r_disk["rss_peak_mb"]], "Pico de memória (processo novo)",
          "MiB (VmHWM)", ax=axes[0], fmt="{:.0f}")
plot_bars(["na RAM", "disco"], [r_mem["seconds_per_token"], r_disk["seconds_per_token"]], "Tempo por token",
          "segundos", ax=axes[1], fmt="{:.2f}", color="tab:orange")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Por que fica mais lento, em números.** Cada token é uma passada pelo modelo inteiro, e cada módulo no disco é lido de
# novo a cada passada. Medimos quantos bytes estão no disco, quanto tempo leva ler esses tensores do checkpoint uma vez
# (o que os ganchos fazem a cada token) e comparamos a soma "tempo em memória + leitura" com o tempo medido.

# %%
from safetensors import safe_open

offload_files = list((workdir / "offload").glob("*")) if (workdir / "offload").exists() else []
disk_names = [name for name, dev in r_disk["device_map"].items() if dev == "disk"]
with safe_open(ckpt_file, framework="pt") as f:
    disk_keys = [k for k in f.keys() if any(n == "" or k == n or k.startswith(n + ".") for n in disk_names)]

def reload_from_disk():
    """O que os ganchos precisam a cada passada: os bytes de cada tensor do disco, lidos para a RAM (o arquivo aberto
    uma vez). `get_tensor` devolve um tensor sobre o arquivo mapeado na memória (mmap), cujos bytes só são lidos
    quando alguém os toca; `clone()` os copia para a RAM, como acontece quando o gancho entrega o peso ao bloco."""
    with safe_open(ckpt_file, framework="pt") as f:
        return [f.get_tensor(k).clone() for k in disk_keys]

threads_before = torch.get_num_threads()
torch.set_num_threads(ISOLATED_THREADS)   # como nos processos de medida
read_s = measure_latency(reload_from_disk, warmup=1, repeats=3)["median_ms"] / 1000
torch.set_num_threads(threads_before)
offloaded_mb = r_disk["offloaded_bytes"] / 2**20
read_gbps = r_disk["offloaded_bytes"] / read_s / 1e9
extra_s = r_disk["seconds_per_token"] - r_mem["seconds_per_token"]
print(f"pesos no disco: {offloaded_mb:.0f} MiB ({len(disk_keys)} tensores), relidos a cada token")
print(f"pasta offload_folder: {len(offload_files)} arquivo(s) — "
      + ("o transformers lê os módulos do disco direto do safetensors do checkpoint (mesmo dtype, nada a converter)"
         if not offload_files else "o transformers gravou ali os pesos convertidos"))
print(f"reler esses tensores uma vez: {read_s:.3f} s ({read_gbps:.2f} GB/s; o arquivo acabou de ser lido, então vem do "
      "cache de páginas do sistema, não do SSD)")
print(f"custo extra medido por token: {r_disk['seconds_per_token']:.3f} - {r_mem['seconds_per_token']:.3f} = "
      f"{extra_s:.3f} s; a releitura responde por {read_s:.3f} s ({read_s / extra_s:.0%} dele)")
saved_mb = r_mem["rss_peak_mb"] - r_disk["rss_peak_mb"]
print(f"pico de RAM economizado: {saved_mb:.0f} MiB, para {offloaded_mb:.0f} MiB de pesos no disco")

# %% [markdown]
# O que a releitura não explica é o custo dos ganchos do `accelerate` (um por módulo, a cada passada, com a troca dos
# parâmetros entre `meta` e os tensores lidos) e de abrir e mapear o arquivo de novo a cada tensor (o
# `OffloadedWeightsLoader` do accelerate abre o `.safetensors` uma vez por tensor lido; aqui o abrimos uma vez só). Num disco
# "frio" (arquivo fora do cache de páginas) a releitura seria limitada pela velocidade do SSD e tudo ficaria ainda mais
# lento. Offload para o disco é o último recurso: ele permite **rodar** um modelo que não cabe, não
# rodar rápido. A RAM economizada fica perto do tamanho dos pesos no disco (compare as duas últimas contas acima): o que resta no
# pico é o Python com as bibliotecas (veja "só as bibliotecas" na seção 4), o que ficou no orçamento e o que está sendo
# lido a cada passo.

# %% [markdown]
# ## 5. Com GPU: tempo por token × camadas na CPU
#
# Na GPU, o offload é para a RAM: cada camada na CPU atravessa o barramento PCIe a cada token. Deixamos os últimos k
# blocos na CPU e o resto na GPU, com k de `GPU_OFFLOAD_LAYERS`, e medimos o tempo por token; carregamos em fp16, como
# na GPU se faz. O mapa é montado à mão (`last_blocks_on_cpu_map`), não por um orçamento `max_memory`: assim o número
# de camadas na CPU é exatamente k, e mais camadas na CPU quer dizer, por construção, mais bytes copiados por token.
# (Com orçamentos, o número de camadas depende da reserva `max_layer_size` da seção 3 e do tamanho das embeddings de
# cada modelo.) Com k = 0 o modelo vai inteiro para a GPU, sem ganchos.

# %%
from course_utils.planner import weight_bytes

sweep = []
if on_gpu:
    w16 = weight_bytes(model.config, "fp16", "fp16")        # planejador: bytes de um bloco em fp16
    layer_b = w16["layer_stored"]
    for k in sorted({min(k, n_layers) for k in GPU_OFFLOAD_LAYERS}):   # outro MODEL_ID pode ter menos blocos
        dm = last_blocks_on_cpu_map(meta_model, k)
        m = AutoModelForCausalLM.from_pretrained(ckpt_dir, dtype=torch.float16, device_map=dm).eval()
        ms = ms_per_token(m, GPU_NEW_TOKENS, repeats=3)
        sweep.append((k, ms))
        print(f"{k:2d} camadas na CPU ({k * layer_b / 2**20:5.0f} MiB copiados por token): {ms:6.1f} ms/token")
        del m
        gc.collect()
        torch.cuda.empty_cache()   # entre modelos
else:
    print("Sem GPU: a varredura de camadas na CPU precisa de uma GPU (no Colab: Ambiente de execução > "
          "Alterar o tipo > GPU T4). Pulando.")

# %% [markdown]
# O gráfico e duas contas. (1) A inclinação da reta (mínimos quadrados, nos pontos com k > 0): quanto cada camada a
# mais na CPU custa por token. Ela não pode ser menor que o tempo de só copiar os bytes de um bloco para a GPU, que
# medimos à parte (`host_to_device_gbps`, da RAM comum e da memória *pinned*); entre dois pontos vizinhos o relógio e
# o `empty_cache()` que o gancho chama a cada tensor podem trocar a ordem, por isso afirmamos a tendência, não cada
# passo. (2) Os bytes das camadas na CPU divididos pelo tempo extra dão uma banda "ponta a ponta" (ganchos,
# sincronizações e cópia juntos: não é a banda da PCIe).

# %%
from course_utils.offload import host_to_device_gbps

copy_gbps = None
if on_gpu:
    xs, ys = [k for k, _ in sweep], [ms for _, ms in sweep]
    plot_lines(xs, {"fp16, offload para a RAM": ys}, "Tempo por token × camadas na CPU", "camadas na CPU",
               "ms por token")
    plt.show()
    fit = torch.tensor([(k, ms) for k, ms in sweep if k > 0], dtype=torch.float64)
    slope_ms = torch.cov(fit.T)[0, 1].item() / fit[:, 0].var().item()          # ms por camada na CPU
    copy_gbps = host_to_device_gbps(int(layer_b), device)   # só a cópia de um bloco, RAM comum e pinned
    copy_ms = 1000 * layer_b / (copy_gbps["pinned"] * 1e9)
    print(f"cada camada na CPU: +{slope_ms:.2f} ms por token; só copiar {layer_b / 2**20:.1f} MiB: {copy_ms:.2f} ms "
          f"(pinned, {copy_gbps['pinned']:.1f} GB/s) | {copy_gbps['pageable']:.1f} GB/s da RAM comum, de onde o "
          "accelerate copia")
    claim("(GPU) o máximo de camadas na CPU custa >= 1,5x o tempo por token sem offload", ys[-1] >= 1.5 * ys[0],
          measured=ys[-1] / ys[0])
    claim("(GPU) cada camada na CPU custa por token ao menos o tempo de copiar seus bytes", slope_ms >= copy_ms,
          measured=slope_ms / copy_ms)
    extra_s = (ys[-1] - ys[0]) / 1000
    pcie_gbps = xs[-1] * layer_b / extra_s / 1e9 if extra_s > 0 and xs[-1] > 0 else float("nan")
    print(f"{xs[-1]} camadas na CPU = {xs[-1] * layer_b / 2**20:.0f} MiB por token; +{1000 * extra_s:.1f} ms por token "
          f"-> {pcie_gbps:.1f} GB/s 'ponta a ponta'")
else:
    claim_skipped("(GPU) o máximo de camadas na CPU custa >= 1,5x o tempo por token sem offload",
                  "sem GPU nesta execução")
    claim_skipped("(GPU) cada camada na CPU custa por token ao menos o tempo de copiar seus bytes",
                  "sem GPU nesta execução")


# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Escreva `montar_mapa(tamanhos_mb, orcamentos_mb)`: recebe um dict ordenado {módulo: MiB} e os
# orçamentos {dispositivo: MiB} (GPUs numeradas 0, 1, ... antes de `"cpu"`, como o `max_memory` do accelerate) e
# devolve {módulo: dispositivo}, com `"disk"` para o que não coube, como o `infer_auto_device_map` faria: a regra da
# seção 3, em ordem e sem voltar atrás, com a reserva da maior camada que ainda vem depois do módulo nos dispositivos
# principais (a primeira GPU e a CPU). Sem GPU, `orcamentos_mb` é só `{"cpu": ...}`. Para conferir casos seus, compare
# com o `accelerate` de verdade (`infer_auto_device_map` num modelo de módulos `torch.nn.Linear` dos tamanhos que você
# quiser), mas a sua função escreve a regra: chamar o accelerate não vale.

# %% curso={"exercicio": "03.1", "resposta": "montar_mapa"} tags=["exercicio"]
def montar_mapa(tamanhos_mb, orcamentos_mb):
    # seu código aqui
    ...

check("03.1", montar_mapa)

# %% [markdown]
# **Exercício 2.** Um Llama-2-7B em fp16 ocupa 12,55 GiB (`get_memory_footprint` medido numa H100,
# [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b)). Se **todas** as camadas ficassem na RAM, cada token copiaria todos os pesos pela PCIe.
# Suponha 12 GB/s efetivos (1 GB = 10⁹ bytes). Quantos **segundos por token**, no mínimo, só de cópia?
# Depois compare com a banda que este notebook mediu (a cópia RAM → GPU da seção 5, com GPU; a releitura do
# checkpoint da seção 4, sem).

# %% curso={"exercicio": "03.2", "resposta": "resposta_2"} tags=["exercicio"]
resposta_2 = None  # substitua por um número (segundos)
check("03.2", resposta_2)

# %%
measured_gbps = copy_gbps["pageable"] if copy_gbps else read_gbps
source = "cópia RAM -> GPU (seção 5)" if copy_gbps else "leitura do checkpoint (seção 4)"
print(f"banda efetiva medida aqui ({source}): {measured_gbps:.2f} GB/s -> os 12,55 GiB do 7B levariam "
      f"{12.55 * 2**30 / (measured_gbps * 1e9):.2f} s por token só para chegar ao dispositivo")


# %% [markdown]
# **Exercício 3.** O pre-hook de um offload precisa alinhar as entradas com o módulo. Escreva
# `alinhar_entradas(module, args, kwargs)` que devolve `(args, kwargs)` com **todo tensor** (inclusive dentro de tuplas,
# como `position_embeddings`) no dispositivo do peso do módulo, e os tensores **de ponto flutuante** convertidos para o
# dtype do peso; inteiros e booleanos mantêm o dtype, e o que não é tensor passa intacto.

# %% curso={"exercicio": "03.3", "resposta": "alinhar_entradas"} tags=["exercicio"]
def alinhar_entradas(module, args, kwargs):
    # seu código aqui
    ...

check("03.3", alinhar_entradas)

# %% [markdown]
# ## Resumo

# %%
record("model_size_mb", size_mb)
record("disk_budget_mb", disk_budget_mb)
record("rss_peak_mb_in_memory", r_mem["rss_peak_mb"])
record("rss_peak_mb_disk_offload", r_disk["rss_peak_mb"])
record("rss_ratio_disk_over_memory", rss_ratio)
record("rss_model_ratio_disk_over_memory", model_ratio)
record("rss_saved_over_disk_bytes", saved_over_disk)
record("seconds_per_token_in_memory", r_mem["seconds_per_token"])
record("seconds_per_token_disk_offload", r_disk["seconds_per_token"])
record("disk_slowdown", disk_slowdown)
record("disk_offloaded_mb", offloaded_mb)
record("disk_read_gbps", read_gbps)
record("jit_offload_matches", bool(jit_matches))
record("jit_resident_mb", resident_jit / 2**20)
if on_gpu:
    record("jit_empty_cache_time_ratio", jit_empty_cache_ratio)
    record("int8_cpu_offload_ok", bool(int8_offload_ok))
    record("gpu_ms_per_token_no_offload", sweep[0][1])
    record("gpu_ms_per_token_max_offload", sweep[-1][1])
    record("gpu_layers_offloaded_max", sweep[-1][0])
    record("gpu_ms_per_cpu_layer", slope_ms)
    record("gpu_empty_cache_alloc_peak_ratio", alloc_empty / alloc_plain)
    record("gpu_pcie_gbps_effective", pcie_gbps)
    record("gpu_copy_gbps_pageable", copy_gbps["pageable"])
    record("gpu_copy_gbps_pinned", copy_gbps["pinned"])
shutil.rmtree(workdir, ignore_errors=True)

# %% [markdown]
# **Para levar.** (1) Offload troca memória por tempo: cada token relê tudo o que está fora do dispositivo. (2) À mão são
# dois ganchos; os cuidados são deixar a saída onde o próximo bloco roda e não esvaziar o cache do alocador a cada
# chamada. (3) O `accelerate` decide o mapa em ordem, com `max_memory`, e aplica com ganchos; com INT8, o que vai para a
# CPU fica sem quantizar. (4) Meça picos de memória em processos novos, descontando as bibliotecas. Próximo:
# **04 · Janela deslizante e attention sinks**, que limita a memória do contexto; o notebook 08 junta tudo num 7B no
# Colab, com o planejador escolhendo o formato para que o offload nem seja necessário.
