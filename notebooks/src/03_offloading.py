# %% [markdown]
# # 03 · Offloading para CPU e disco
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - dizer, antes de carregar, se um modelo cabe (o planejador de memória do curso) e o que fazer quando não cabe;
# - escrever um offload *just in time* com ganchos de forward, sem os dois erros do material antigo
#   (saída no dispositivo errado e `torch.cuda.empty_cache()` a cada chamada);
# - usar a maquinaria do `accelerate`: `infer_auto_device_map` com `max_memory`, `device_map="auto"`, `offload_folder`,
#   `cpu_offload` e `dispatch_model`, lendo o mapa de dispositivos que ele escolhe;
# - medir, cada configuração no seu próprio processo, quanto de RAM o offload para o disco economiza e quanto ele custa
#   em tempo por token — e explicar a lentidão com números;
# - com GPU: deixar parte das camadas na CPU sob um orçamento `max_memory`, medir o tempo por token em função do número
#   de camadas offloaded, e combinar INT8 do bitsandbytes com `llm_int8_enable_fp32_cpu_offload`.
#
# **Pré-requisitos.** Notebook 01 (medidas de memória, bitsandbytes) e 05 (geração com `generate`).
# **Tempo estimado.** 35 minutos de leitura; a execução leva uns 2 minutos numa CPU de 2 núcleos (mais uns 2 minutos
# nas seções de GPU).
# **Hardware.** CPU serve: o offload para o disco e os ganchos rodam na CPU. As seções de offload CPU↔GPU e de INT8 com
# offload só rodam com GPU (T4 no Colab); sem GPU elas avisam e pulam.
#
# Todo número impresso aqui é medido agora, nesta execução. Números de artigos aparecem sempre com a fonte.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` reduz as cargas para a CI (menos tokens por medida, menos pontos na varredura da GPU); as afirmações
# continuam sendo conferidas.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"                      # "auto" usa a GPU se houver
NEW_TOKENS = 24                      # tokens gerados em cada medida de tempo na CPU
DISK_BUDGET_FRACTION = 0.25          # orçamento de RAM do offload para o disco, em fração do modelo (< 0,5)
TORCH_THREADS = None                 # threads do torch neste notebook; None = padrão (todos os núcleos)
ISOLATED_THREADS = 1                 # threads do torch nos processos de medida (ver seção 4)
GPU_OFFLOAD_LAYERS = [0, 6, 12, 18, 24, 30]   # (GPU) quantas camadas tentar deixar na CPU
GPU_NEW_TOKENS = 32                  # (GPU) tokens gerados em cada ponto da varredura

# %%
import gc, inspect, shutil, tempfile, time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from accelerate import cpu_offload, dispatch_model, infer_auto_device_map, init_empty_weights
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig
from transformers.utils import logging as hf_logging

from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency, model_footprint
from course_utils.models import LLAMA2_7B_CONFIG, load_model, load_tokenizer, resolve_model
from course_utils.offload import (count_layers_on, jit_offload, measure_isolated, resident_bytes,
                                  summarize_device_map, to_device)
from course_utils.planner import plan_presets, verdict_table, weight_bytes
from course_utils.plotting import plot_bars, plot_lines
from course_utils.results import claim, claim_skipped, record

if SMOKE:  # CI numa máquina compartilhada de 2 núcleos: 1 thread evita a espera ativa do OpenMP (tests/conftest.py)
    NEW_TOKENS, GPU_NEW_TOKENS, GPU_OFFLOAD_LAYERS = 8, 16, [0, 10, 20, 30]
    TORCH_THREADS = TORCH_THREADS or 1
if TORCH_THREADS:
    torch.set_num_threads(TORCH_THREADS)

quiet_libraries()
hf_logging.disable_progress_bar()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
on_gpu = device.startswith("cuda")
TOL = 2e-2 if on_gpu else 1e-3   # logits fp32: na GPU outros kernels somam em outra ordem
print(environment_info())

workdir = Path(tempfile.mkdtemp(prefix="curso03_"))     # arquivos de offload desta execução (apagados no fim)
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)   # a cópia "mestra" fica na CPU, em fp32
# um checkpoint local em safetensors (fp32): os processos de medida e o offload para o disco leem daqui
source = Path(resolve_model(MODEL_ID))
if (source / "model.safetensors").exists() and model.config.dtype == torch.float32:
    ckpt_dir = source                    # a cópia offline do curso já é um safetensors fp32
else:
    ckpt_dir = workdir / "checkpoint"    # do Hub: salvamos em fp32 aqui
    model.save_pretrained(ckpt_dir)
ckpt_file = str(ckpt_dir / "model.safetensors")
PROMPT = "The history of clocks begins"
prompt_ids = tokenizer(PROMPT, return_tensors="pt").input_ids
with torch.inference_mode():
    ref_logits = model(prompt_ids).logits
size_mb = model_footprint(model)["total_mb"]
n_layers = model.config.num_hidden_layers
print(f"{MODEL_ID}: {size_mb:.0f} MiB em fp32, {n_layers} blocos; checkpoint em {ckpt_dir}")


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
plans = plan_presets(LLAMA2_7B_CONFIG, name="Llama-2-7B", context_tokens=2048)
print(verdict_table(plans))
print()
print(plans["colab_t4"]["fp16"].explanation)
print()
print(plans["laptop_cpu"]["fp16"].explanation)

# %% [markdown]
# Offload quer dizer: os pesos que não cabem no dispositivo de computação moram num lugar maior e mais lento
# (a RAM, ou o disco) e são trazidos **camada por camada, a cada passada**. O modelo roda, mas cada token paga a cópia de
# todos os pesos offloaded. O resto do notebook mostra como fazer isso e mede o preço.

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
# O material antigo deste curso fazia isso embrulhando cada bloco numa classe e tinha dois erros:
#
# 1. **Saída no dispositivo errado.** O embrulho devolvia a saída na CPU (junto com os pesos). O próximo bloco recebia
#    um tensor na CPU: ou quebrava ("Expected all tensors to be on the same device"), ou cada fronteira entre blocos
#    ganhava uma ida e volta GPU→CPU→GPU das ativações, com sincronização.
# 2. **`torch.cuda.empty_cache()` a cada chamada.** O alocador do PyTorch guarda blocos de memória liberados para
#    reusá-los; como todos os blocos do transformer têm os mesmos formatos, os pesos do próximo bloco cabem exatamente
#    no espaço que o anterior deixou. Esvaziar o cache a cada chamada devolve essa memória ao driver (`cudaFree`) e obriga
#    a pedir de novo (`cudaMalloc`), o que sincroniza a GPU a cada bloco; e não baixa o pico de memória alocada, porque
#    os pesos do bloco precisam estar lá de qualquer jeito. Com GPU, a seção abaixo mede as duas coisas.
#
# Ganchos (`register_forward_pre_hook` / `register_forward_hook` com `with_kwargs=True`) evitam a cirurgia no modelo: os
# blocos continuam os mesmos objetos, e tirar os ganchos devolve o modelo original. O código inteiro:

# %%
print(inspect.getsource(jit_offload))

# %% [markdown]
# Sem GPU, o "dispositivo de computação" é a própria CPU; para o offload ter efeito, o armazenamento é o **disco**: cada
# bloco vira um arquivo `.safetensors` e a RAM dele é liberada. Com GPU, o armazenamento é a RAM (memória *pinned*, para a
# cópia por DMA) e a computação é na GPU. Conferimos que a saída é a mesma do modelo inteiro e medimos o que fica residente
# entre chamadas.

# %%
lat_ref_ms = measure_latency(lambda: model(prompt_ids), warmup=1, repeats=2)["median_ms"]  # tudo na RAM, na CPU
blocks = model.model.layers
storage = "cpu" if on_gpu else workdir / "jit"
resident_before = resident_bytes(model)
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
if not on_gpu:
    assert resident_jit < 0.3 * resident_before, "com os blocos no disco, a RAM deveria guardar bem menos de 30% dos pesos"
    print("Entre chamadas sobram na RAM só as embeddings (amarradas ao lm_head) e as normas; os blocos são lidos "
          "do disco a cada forward.")

# %% [markdown]
# Com GPU, medimos também os dois erros: `empty_cache()` a cada bloco (tempo por token e pico de memória alocada) e a saída
# devolvida na CPU (que quebra na norma final, que está na GPU).

# %%
jit_empty_cache_ratio = None
if on_gpu:
    def jit_ms_and_peak():
        torch.cuda.reset_peak_memory_stats()
        ms = ms_per_token(model, GPU_NEW_TOKENS)
        return ms, torch.cuda.max_memory_allocated() / 2**20

    jit_ms_plain, peak_plain = jit_ms_and_peak()
    remove_jit("cpu")
    remove_jit = jit_offload(blocks, device, "cpu", empty_cache_each_call=True)  # o erro antigo, de propósito
    jit_ms_empty, peak_empty = jit_ms_and_peak()
    remove_jit("cpu")
    jit_empty_cache_ratio = jit_ms_empty / jit_ms_plain
    print(f"offload à mão: {jit_ms_plain:.1f} ms/token, pico alocado {peak_plain:.0f} MiB")
    print(f"com empty_cache() a cada bloco: {jit_ms_empty:.1f} ms/token ({jit_empty_cache_ratio:.2f}x o tempo), "
          f"pico alocado {peak_empty:.0f} MiB")
    assert peak_empty >= 0.95 * peak_plain, "empty_cache() não deveria baixar o pico de memória alocada"

    # o outro erro: devolver a saída de cada bloco na CPU, como o embrulho antigo
    remove_jit = jit_offload(blocks, device, "cpu")
    wrong = [b.register_forward_hook(lambda mod, args, out: to_device(out, "cpu")) for b in blocks]
    try:
        with torch.inference_mode():
            model(prompt_ids.to(device))
        wrong_device_error = None
    except RuntimeError as exc:
        wrong_device_error = str(exc).splitlines()[0]
    for h in wrong:
        h.remove()
    print(f"saída devolvida na CPU: {wrong_device_error}")
    assert wrong_device_error is not None, "com a saída na CPU, a norma final (na GPU) deveria recusar a entrada"
    remove_jit("cpu")
    model.to("cpu")
else:
    remove_jit("cpu")
    print("Sem GPU: os dois erros do material antigo só aparecem com dois dispositivos (CPU e GPU). "
          "Rode este notebook no Colab com GPU para medi-los.")

# %% [markdown]
# ## 3. A maquinaria do `accelerate`
#
# O `accelerate` faz o mesmo com ganchos (`AlignDevicesHook`) e decide sozinho onde cada módulo mora:
#
# - `infer_auto_device_map(modelo, max_memory=...)` percorre os módulos **em ordem** e enche cada dispositivo até o
#   orçamento; o que não cabe vai para o próximo (GPU → CPU → disco). Blocos listados em `no_split_module_classes`
#   (os `_no_split_modules` do modelo) nunca são partidos. Funciona num modelo no dispositivo `meta`: nenhum peso é lido.
# - `device_map="auto"` no `from_pretrained` faz essa conta e carrega cada peso direto no lugar; `offload_folder` é a pasta
#   do disco.
# - `dispatch_model(modelo, device_map)` aplica um mapa a um modelo já carregado; `cpu_offload(modelo, execution_device)`
#   deixa todos os pesos na RAM e os leva ao dispositivo de execução a cada forward.
#
# O orçamento de RAM aqui é `DISK_BUDGET_FRACTION` do tamanho do modelo, **abaixo da metade**:

# %%
assert 0 < DISK_BUDGET_FRACTION < 0.5, "o orçamento do offload para o disco deve ficar abaixo da metade do modelo"
disk_budget_mb = DISK_BUDGET_FRACTION * size_mb
config = AutoConfig.from_pretrained(ckpt_dir)
with init_empty_weights():
    meta_model = AutoModelForCausalLM.from_config(config)
meta_model.tie_weights()  # embeddings e lm_head são o mesmo tensor: o mapa precisa saber
no_split = list(meta_model._no_split_modules)
if on_gpu:   # GPU com espaço para ~60% do modelo em fp32, o resto na RAM
    max_memory = {0: int(0.6 * size_mb * 2**20), "cpu": int(4 * size_mb * 2**20)}
else:        # só CPU: a RAM com o orçamento, o resto no disco
    max_memory = {"cpu": int(disk_budget_mb * 2**20)}
auto_map = infer_auto_device_map(meta_model, max_memory=max_memory, no_split_module_classes=no_split)
print(f"max_memory = { {k: f'{v / 2**20:.0f} MiB' for k, v in max_memory.items()} }, blocos que não se partem: {no_split}")
for dev, names in summarize_device_map(auto_map).items():
    print(f"  {dev!s:>5}: {names or '(o modelo inteiro)'}")

# %% [markdown]
# Repare na ordem: as embeddings vêm primeiro, então são elas que ocupam o orçamento; os blocos seguintes vão para o
# próximo dispositivo assim que um deles não cabe, e o `accelerate` não volta atrás para encaixar módulos menores depois.
#
# Agora aplicamos esse mapa ao modelo carregado com `dispatch_model`. Para os módulos no disco, em vez de deixar o
# `accelerate` regravar os pesos numa pasta (`offload_dir`, um arquivo `.dat` por tensor), passamos um `offload_index`
# que aponta para os tensores dentro do próprio `.safetensors` do checkpoint — é o que o `from_pretrained` com
# `device_map="auto"` faz quando o checkpoint já está em safetensors no dtype certo. Depois, o `cpu_offload` no modelo
# inteiro.

# %%
with safe_open(ckpt_file, framework="pt") as f:
    ckpt_keys = list(f.keys())
disk_modules = [name for name, dev in auto_map.items() if dev == "disk"]
offload_index = {k: {"safetensors_file": ckpt_file, "weight_name": k} for k in ckpt_keys
                 if any(n == "" or k.startswith(n + ".") for n in disk_modules)}
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
gc.collect()

offloaded = cpu_offload(load_model(MODEL_ID, device="cpu", dtype=torch.float32), execution_device=device)
start = time.perf_counter()
with torch.inference_mode():
    logits_cpu_offload = offloaded(prompt_ids.to(device)).logits
lat_cpu_offload_ms = 1000 * (time.perf_counter() - start)
assert torch.allclose(logits_cpu_offload.float().cpu(), ref_logits, atol=TOL), "cpu_offload deveria dar a mesma saída"
print(f"cpu_offload (execução em {device}): mesma saída; um forward em {lat_cpu_offload_ms:.0f} ms")
if on_gpu:
    lat_accel_ms = measure_latency(lambda: offloaded(prompt_ids.to(device)), warmup=1, repeats=3)["median_ms"]
    print(f"forward de {prompt_ids.shape[1]} tokens: cpu_offload {lat_accel_ms:.1f} ms | offload à mão (seção 2) "
          f"{lat_jit_ms:.1f} ms")
else:
    print("Aqui execução e armazenamento são a mesma RAM: o cpu_offload só mostra a API. Com GPU ele leva cada "
          "módulo à GPU na hora do forward.")
del offloaded
gc.collect()

# e o próprio accelerate? Conferimos no código da versão instalada se os ganchos esvaziam o cache da GPU
from accelerate.hooks import AlignDevicesHook
from accelerate.utils import set_module_tensor_to_device
clears = inspect.signature(set_module_tensor_to_device).parameters["clear_cache"].default
hook_keeps_default = "clear_cache" not in inspect.getsource(AlignDevicesHook.pre_forward)
print(f"accelerate: set_module_tensor_to_device(clear_cache={clears}) por padrão; "
      f"AlignDevicesHook.pre_forward {'usa esse padrão' if hook_keeps_default else 'passa clear_cache explicitamente'}")
if clears and hook_keeps_default:
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
int8_offload_ok = None
if on_gpu:
    split = (2 * n_layers) // 3
    int8_map = {"model.embed_tokens": 0, "model.rotary_emb": 0, "lm_head": 0, "model.norm": "cpu"}
    int8_map.update({f"model.layers.{i}": (0 if i < split else "cpu") for i in range(n_layers)})
    q8 = AutoModelForCausalLM.from_pretrained(
        ckpt_dir, dtype=torch.float16, device_map=int8_map,
        quantization_config=BitsAndBytesConfig(load_in_8bit=True, llm_int8_enable_fp32_cpu_offload=True)).eval()
    on_gpu_proj = q8.model.layers[0].self_attn.q_proj
    on_cpu_proj = q8.model.layers[n_layers - 1].self_attn.q_proj
    print(f"bloco 0 (GPU):  {type(on_gpu_proj).__name__}, peso {on_gpu_proj.weight.dtype}")
    print(f"bloco {n_layers - 1} (CPU): {type(on_cpu_proj).__name__}, peso {on_cpu_proj.weight.dtype}")
    assert on_gpu_proj.weight.dtype == torch.int8, "os blocos na GPU deveriam estar em int8"
    assert on_cpu_proj.weight.dtype != torch.int8, "os blocos offloaded não são quantizados"
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
# o pico e o tempo. Os processos usam `ISOLATED_THREADS` thread(s) do torch: numa máquina compartilhada, duas threads
# disputando núcleos deixam o tempo muito mais ruidoso.

# %%
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
rss_ratio = r_disk["rss_peak_mb"] / r_mem["rss_peak_mb"]
disk_slowdown = r_disk["seconds_per_token"] / r_mem["seconds_per_token"]
print(f"\nmesmos {NEW_TOKENS} tokens gerados; pico de RSS com disco = {rss_ratio:.0%} do pico em memória; "
      f"{disk_slowdown:.1f}x mais lento por token")
model_ratio = (r_disk["rss_peak_mb"] - r_disk["rss_baseline_mb"]) / (r_mem["rss_peak_mb"] - r_mem["rss_baseline_mb"])
print(f"descontando as bibliotecas, o modelo ocupou {model_ratio:.0%} do que ocupava em memória")
# as bibliotecas (um torch com CUDA são centenas de MiB) pesam igual nos dois processos: só a parte do modelo compara
claim("offload para o disco: a parte do modelo no pico de RSS < 60% da em memória", model_ratio < 0.60,
      measured=model_ratio)
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
# novo a cada passada. Medimos quantos bytes estão offloaded, quanto tempo leva ler esses tensores do checkpoint uma vez
# (o que os ganchos fazem a cada token) e comparamos a soma "tempo em memória + leitura" com o tempo medido.

# %%
offload_files = list((workdir / "offload").glob("*")) if (workdir / "offload").exists() else []
disk_names = [name for name, dev in r_disk["device_map"].items() if dev == "disk"]
with safe_open(ckpt_file, framework="pt") as f:
    disk_keys = [k for k in f.keys() if any(n == "" or k == n or k.startswith(n + ".") for n in disk_names)]

def reload_offloaded():
    """O que os ganchos fazem a cada passada: abrir o arquivo, pegar cada tensor e ler todos os seus bytes."""
    for k in disk_keys:
        with safe_open(ckpt_file, framework="pt") as f:
            f.get_tensor(k).sum()

threads_before = torch.get_num_threads()
torch.set_num_threads(ISOLATED_THREADS)   # como nos processos de medida
read_s = measure_latency(reload_offloaded, warmup=1, repeats=3)["median_ms"] / 1000
torch.set_num_threads(threads_before)
offloaded_mb = r_disk["offloaded_bytes"] / 2**20
read_gbps = r_disk["offloaded_bytes"] / read_s / 1e9
extra_s = r_disk["seconds_per_token"] - r_mem["seconds_per_token"]
print(f"pesos no disco: {offloaded_mb:.0f} MiB ({len(disk_keys)} tensores), relidos a cada token")
print(f"pasta offload_folder: {len(offload_files)} arquivo(s) — "
      + ("o transformers lê os módulos offloaded direto do safetensors do checkpoint (mesmo dtype, nada a converter)"
         if not offload_files else "o transformers gravou ali os pesos convertidos"))
print(f"reler esses tensores uma vez: {read_s:.3f} s ({read_gbps:.2f} GB/s; o arquivo acabou de ser lido, então vem do "
      "cache de páginas do sistema, não do SSD)")
print(f"custo extra medido por token: {r_disk['seconds_per_token']:.3f} - {r_mem['seconds_per_token']:.3f} = "
      f"{extra_s:.3f} s; a releitura responde por {read_s:.3f} s ({read_s / extra_s:.0%} dele)")
saved_mb = r_mem["rss_peak_mb"] - r_disk["rss_peak_mb"]
print(f"pico de RAM economizado: {saved_mb:.0f} MiB, para {offloaded_mb:.0f} MiB de pesos no disco")

# %% [markdown]
# O que a releitura não explica é o custo dos ganchos do `accelerate` (um por módulo, a cada passada, com a troca dos
# parâmetros entre `meta` e os tensores lidos) e do mapeamento das páginas do arquivo de novo a cada token. Num disco
# "frio" (arquivo fora do cache de páginas) a releitura seria limitada pela velocidade do SSD e tudo ficaria ainda mais
# lento. Offload para o disco é o último recurso: ele permite **rodar** um modelo que não cabe, não
# rodar rápido. A RAM economizada fica perto do tamanho dos pesos offloaded (compare as duas últimas contas acima): o que resta no
# pico é o Python com as bibliotecas (veja "só as bibliotecas" na seção 4), o que ficou no orçamento e o que está sendo
# lido a cada passo.

# %% [markdown]
# ## 5. Com GPU: tempo por token × camadas offloaded
#
# Na GPU, o offload é para a RAM: cada camada offloaded atravessa o barramento PCIe a cada token. Variamos o orçamento
# `max_memory` da GPU para deixar 0, algumas ou todas as camadas na CPU (o `accelerate` reserva espaço para a maior
# camada que precisa trazer, então o número real pode diferir do pedido: usamos o que o mapa diz) e medimos o tempo por
# token. Carregamos em fp16, como na GPU se faz.

# %%
sweep = []
if on_gpu:
    w16 = weight_bytes(model.config, "fp16", "fp16")        # planejador: bytes por bloco e do resto, em fp16
    layer_b, rest_b = w16["layer_stored"], w16["stored"] - n_layers * w16["layer_stored"]
    for k in GPU_OFFLOAD_LAYERS:
        budget = rest_b + (n_layers - k + 1) * layer_b    # +1 bloco: o espaço para trazer um bloco offloaded
        kw = {} if k == 0 else {"max_memory": {0: int(budget), "cpu": 8 * 2**30}}
        m = AutoModelForCausalLM.from_pretrained(ckpt_dir, dtype=torch.float16, device_map="auto", **kw).eval()
        # com tudo num dispositivo só, o transformers 5 só move o modelo e não cria hf_device_map
        device_map = getattr(m, "hf_device_map", None) or {"": next(m.parameters()).device.type}
        cpu_layers = count_layers_on(device_map, "cpu", n_layers)
        ms = ms_per_token(m, GPU_NEW_TOKENS)
        sweep.append((cpu_layers, ms))
        print(f"pedido {k:2d} camadas na CPU -> mapa com {cpu_layers:2d}: {ms:6.1f} ms/token")
        del m
        gc.collect()
        torch.cuda.empty_cache()   # entre modelos
    sweep.sort()
    xs, ys = [s[0] for s in sweep], [s[1] for s in sweep]
    plot_lines(xs, {"fp16, offload para a RAM": ys}, "Tempo por token × camadas na CPU", "camadas na CPU",
               "ms por token")
    plt.show()
    claim("(GPU) mais camadas na CPU, mais tempo por token", ys[-1] > ys[0], measured=ys[-1] / ys[0])
    extra_s = (ys[-1] - ys[0]) / 1000
    pcie_gbps = xs[-1] * layer_b / extra_s / 1e9 if extra_s > 0 and xs[-1] > 0 else float("nan")
    print(f"{xs[-1]} camadas na CPU = {xs[-1] * layer_b / 2**20:.0f} MiB copiados por token; +{1000 * extra_s:.1f} ms "
          f"-> {pcie_gbps:.1f} GB/s efetivos pela PCIe (sem memória pinned: o accelerate copia da RAM comum)")
else:
    print("Sem GPU: a varredura de camadas offloaded para a CPU precisa de uma GPU (no Colab: Ambiente de execução > "
          "Alterar o tipo > GPU T4). Pulando.")
    claim_skipped("(GPU) mais camadas na CPU, mais tempo por token", "sem GPU nesta execução")


# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** Escreva `montar_mapa(tamanhos_mb, orcamento_mb)`, que recebe um dict ordenado {módulo: MiB} e devolve
# {módulo: "cpu" ou "disk"} como o `accelerate` faria com um dispositivo só: preenche a CPU **na ordem** enquanto o
# acumulado couber no orçamento (`<=`); do primeiro módulo que não cabe em diante, tudo vai para o disco.

# %% curso={"exercicio": "03.1", "resposta": "montar_mapa"} tags=["exercicio"]
def montar_mapa(tamanhos_mb, orcamento_mb):
    # seu código aqui
    ...

check("03.1", montar_mapa)

# %% [markdown]
# **Exercício 2.** Um Llama-2-7B em fp16 ocupa 12,55 GiB (`get_memory_footprint` medido numa H100,
# [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#h100-7b)). Se **todas** as camadas ficassem na RAM, cada token copiaria todos os pesos pela PCIe.
# Suponha 12 GB/s efetivos (1 GB = 10⁹ bytes). Quantos **segundos por token**, no mínimo, só de cópia?
# Depois compare com a banda efetiva que este notebook mediu (seção 4, ou seção 5 com GPU).

# %% curso={"exercicio": "03.2", "resposta": "resposta_2"} tags=["exercicio"]
resposta_2 = None  # substitua por um número (segundos)
check("03.2", resposta_2)

# %%
measured_gbps = pcie_gbps if sweep else read_gbps
source = "PCIe (seção 5)" if sweep else "leitura do checkpoint (seção 4)"
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
    record("gpu_pcie_gbps_effective", pcie_gbps)
shutil.rmtree(workdir, ignore_errors=True)

# %% [markdown]
# **Para levar.** (1) Offload troca memória por tempo: cada token relê tudo o que está fora do dispositivo. (2) À mão são
# dois ganchos; os cuidados são deixar a saída onde o próximo bloco roda e não esvaziar o cache do alocador a cada
# chamada. (3) O `accelerate` decide o mapa em ordem, com `max_memory`, e aplica com ganchos; com INT8, o que vai para a
# CPU fica sem quantizar. (4) Meça picos de memória em processos novos. Próximo: **08 · Um modelo 7B no Colab**, onde o
# planejador escolhe o formato para que o offload nem seja necessário.
