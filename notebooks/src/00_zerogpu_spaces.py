# %% [markdown]
# # 00 · Spaces com ZeroGPU: um Space de verdade, um linter e um teste local
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - explicar como o ZeroGPU executa um Space: processo principal sem GPU (com o CUDA emulado), GPU emprestada a cada
#   chamada de uma função `@spaces.GPU`, `duration=` (fixo ou calculado a partir da entrada), `size=`, fila, cotas e o
#   cabeçalho `X-IP-Token`;
# - escrever um Space completo (`app.py`, `requirements.txt` e `README.md` com o front matter) que põe o modelo em
#   `"cuda"` na inicialização, como a documentação do Hub pede hoje;
# - conferir um Space com um linter estático (AST): `python -m course_utils.zerogpu lint PASTA`, e entender cada regra;
# - subir o Space num servidor local de verdade e chamá-lo com o `gradio_client`, repassando o `X-IP-Token`;
# - explicar por que o `torch.compile` (JIT) não combina com o ZeroGPU e medir a compilação antecipada (AoT:
#   `torch.export` + AOTInductor), que é o que `spaces.aoti_*` usa por baixo.
#
# **Pré-requisitos.** Python e PyTorch básicos; saber carregar um modelo causal com o `transformers`. Não precisa de conta
# no Hugging Face para rodar o notebook; para publicar o Space, sim.
# **Tempo estimado.** 40 minutos de leitura; a execução leva de 1 a 2 minutos numa CPU de 2 núcleos, mais a instalação no Colab (a maior parte é
# compilar com o AOTInductor e subir o servidor local).
# **Hardware.** CPU serve: tudo aqui roda na CPU (o ZeroGPU é o destino do Space, não deste notebook); no Colab, o
# runtime de CPU basta e o notebook não pede GPU. Com GPU, o notebook também compila o AoT para CUDA e roda os embrulhos
# `spaces.aoti_*`.
#
# Todo número impresso aqui é medido agora, nesta execução; os números citados (cotas, hardware do ZeroGPU) trazem a fonte
# e a data nas [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#zerogpu).

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` é uma versão rápida de cada experimento: menos tokens pedidos ao Space local e menos repetições na medida de
# latência. A compilação AoT roda do mesmo jeito, porque o tempo dela é justamente um dos números que interessam.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
SPACE_DIR = ""  # onde escrever o Space (vazio: uma pasta temporária)
PROMPT = "What is the capital of France? Answer in one sentence."
NEW_TOKENS = 32  # tokens novos pedidos ao Space local
AOT_REPEATS = 20  # repetições na medida de latência eager x AoT
SERVER_TIMEOUT_S = 180  # quanto esperar o servidor local subir
AOT_ON_GPU = True  # com GPU, compilar o AoT para CUDA (False: só na CPU)

# %%
if SMOKE:
    NEW_TOKENS, AOT_REPEATS = 12, 8

import ast
import tempfile
from importlib.metadata import version
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from course_utils import zerogpu
from course_utils.display import explore, show_source
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency
from course_utils.models import load_model, load_tokenizer, resolve_model
from course_utils.results import claim, claim_skipped, record
from course_utils.zerogpu import format_report, lint_path, lint_source
from course_utils.zerogpu.aot import AotError, compile_aot, spaces_aoti_in_child
from course_utils.zerogpu.installed import spaces_facts, spaces_requested_seconds
from course_utils.zerogpu.local_space import edit, ensure_space_packages, lint_cli, run_local_space, write_space
from course_utils.zerogpu.quota import request_report, requested_seconds
from course_utils.zerogpu.timeline import plot_zerogpu_timeline

# %%
ensure_space_packages()  # gradio, gradio_client e spaces (no Colab, instala as versões fixas)
quiet_libraries()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
work_dir = Path(tempfile.mkdtemp(prefix="curso_zerogpu_"))
print(environment_info())
print(f"gradio {version('gradio')} | gradio_client {version('gradio_client')} | spaces {version('spaces')}")

# %% [markdown]
# ## 1. Como o ZeroGPU executa um Space
#
# Num Space comum com GPU, o processo do app fica com uma GPU o tempo todo, mesmo parado. No **ZeroGPU** a GPU é
# emprestada por chamada. A figura mostra duas chamadas a uma função `@spaces.GPU` (é um esquema, não uma medida):

# %%
plot_zerogpu_timeline()
plt.tight_layout()
plt.show()

# %% [markdown]
# 1. O **processo principal** (o `app.py` importado, a interface Gradio, a fila) roda **sem GPU**. Depois do
#    `import spaces`, o PyTorch ali fica num **modo que emula o CUDA**: `model.to("cuda")` não falha; o `spaces` anota
#    cada tensor posto em `"cuda"` (os dados ficam na memória da CPU) e, no fim da inicialização, os empacota.
# 2. Quando alguém chama uma função `@spaces.GPU`, o `spaces` pede uma GPU ao agendador (com a duração pedida), cria um
#    **processo filho** (um *fork* do principal) com a GPU anexada, copia para ela os tensores anotados, roda a função lá
#    e devolve o resultado ao principal (argumentos e resultado atravessam processos: são serializados com `pickle`).
# 3. Quando a função termina, a GPU volta para o conjunto compartilhado. O processo filho pode ser reaproveitado na
#    chamada seguinte; senão, um novo *fork* nasce do principal.
#
# Daí a regra de hoje, da documentação do Hub (seção *Model loading*, nota de 09/04/2026): **os modelos são postos em
# `cuda` no escopo do módulo**, e carregar ou mover o modelo para a GPU dentro da função `@spaces.GPU` "is discouraged,
# as it is significantly less efficient": as cópias para a GPU são otimizadas para o que foi posto em `cuda` na
# inicialização. O guia antigo deste curso dizia o contrário:
#
# > A regra de ouro: **NUNCA carregue o modelo ou chame qualquer operação CUDA no escopo global do `app.py`**.
#
# e recomendava `model = None` no módulo e `model.to('cuda')` dentro de uma função decorada. Isso funciona, mas é o
# padrão que a documentação desaconselha, e a metade sobre "qualquer operação CUDA" já não vale para o posicionamento.
# O que continua proibido no escopo do módulo é o que precisa de uma **GPU de verdade**, que ali não existe:
#
# - **ler o estado da GPU** (`torch.cuda.get_device_properties`, `mem_get_info`, `memory_allocated`, ...): a emulação
#   responde valores fixos do pacote, não os da fatia que a chamada vai receber (veja o `configs.json` logo abaixo);
# - **chamar o driver** (`torch.cuda.Stream`, `set_device`, `empty_cache`, kernels próprios; o `synchronize` a
#   emulação transforma numa função que não faz nada);
# - **compilar com `torch.compile`** (JIT; seção 5).
#
# E **`import spaces` vem antes de tudo que possa inicializar CUDA**: se algo chamou o driver antes (até
# `torch.cuda.is_available()`, que no PyTorch 2.x chama `cudaGetDeviceCount`), o `spaces` se recusa a iniciar, porque
# processos filhos criados por *fork* não podem herdar um CUDA já inicializado: *"CUDA has been initialized before
# importing the `spaces` package"*.
#
# Duas coisas que o guia antigo dava como quebradas e que o `spaces` 0.51.3 suporta: **quantização bitsandbytes ao
# carregar** (o pacote traz um módulo para ela, `spaces/zero/torch/bitsandbytes.py`, e com bitsandbytes 0.46+ não
# precisa de remendo) e **funções geradoras** (streaming de chat: `spaces/zero/decorator.py` embrulha uma função com
# `yield` com `generator_function_wrapper`). Funções `async def` o decorador recusa (`NotImplementedError`).

# %% [markdown]
# **`duration=`.** Quantos segundos de GPU cada chamada reserva. Pode ser um número ou uma **função que recebe os mesmos
# argumentos da função decorada** e devolve segundos: assim o pedido acompanha a entrada. Pedidos curtos **sobem na fila**
# ("specifying shorter durations for quicker functions will improve queue priority"), e o pedido precisa caber na **cota
# que resta ao visitante** (senão: "You have exceeded your free ZeroGPU quota (90s requested vs. 45s left)"). Pedir menos
# do que a função gasta também custa: ela passa do tempo e pode ser abortada.
#
# O pedido que chega ao agendador não é exatamente o `duration` que você escreveu. O `spaces` instalado guarda uma
# tabela das GPUs do ZeroGPU (`spaces/zero/configs.json`) e, fora do tamanho `xlarge`, multiplica a duração pelo
# `duration_factor` da GPU em que roda ([referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#zerogpu-spaces)).
# Lemos a tabela e a função que faz a conta do pacote instalado:

# %%
import spaces
from spaces.zero import client as zero_client

facts = spaces_facts()
print(f"spaces {facts['version']}: padrão {facts['DEFAULT_SCHEDULE_DURATION']} s, "
      f"cabeçalho {facts['TOKEN_HEADER']!r}, PRO_QUOTA_MINUTES = {facts['PRO_QUOTA_MINUTES']}")
for gpu in facts["gpus"]:
    xlarge = "-" if gpu["xlarge_threshold"] is None else f"{gpu['xlarge_threshold'] / 2**30:.0f} GiB"
    print(f"  {gpu['model']:<46} memória {gpu['memory'] / 2**30:5.1f} GiB | duration_factor {gpu['duration_factor']} "
          f"| padrão de 60 s pede {round(60 * gpu['duration_factor'])} s | xlarge automático acima de {xlarge}")
show_source(zero_client.get_duration_seconds)
assert facts["DEFAULT_SCHEDULE_DURATION"] == zerogpu.DEFAULT_DURATION_S, \
    "o linter do curso supõe a mesma duração padrão que o pacote instalado"

# %% [markdown]
# Linha a linha: `config.get_config()` escolhe a linha do `configs.json` cujo `model` é a GPU que o driver informa
# (fora do ZeroGPU, a primeira); sem `size=`, vale o tamanho padrão; sem `duration=`, os 60 s do pacote; e, se o
# tamanho não é `xlarge`, a duração é multiplicada pelo `duration_factor`. Na GPU atual do ZeroGPU (a RTX Pro 6000, com
# fator 1,5 na tabela acima), o padrão de 60 s vira um pedido de 90 s. O `xlarge_threshold` diz outra coisa: se os
# tensores postos em `cuda` na inicialização passam desse tamanho, o tamanho padrão do Space vira `xlarge`.
#
# **`size=`.** `"large"` (padrão: meia RTX Pro 6000 Blackwell, 48 GB) ou `"xlarge"` (a GPU inteira, 96 GB), que consome
# cota em dobro: "a 45s **effective** task duration consumes 90s of quota" (documentação do Hub, seção *GPU size
# selection*). A tabela do pacote, acima, está em GiB; a documentação anuncia 48 GB e 96 GB. Na mensagem de cota, o
# `spaces` mostra o pedido de um `xlarge` em dobro (`requested *= 2 if gpu_size == 'xlarge' else 1`); quem aceita ou
# recusa é o servidor, e o curso supõe que ele compara esse mesmo número. A linha da NVIDIA H200 na tabela é a GPU
# que o ZeroGPU usava antes (a página de hardware da documentação é de 13/05/2026). Não escreva o hardware no código: se precisar dele, leia `torch.cuda.get_device_properties(0)`
# dentro da função decorada.
#
# **Cotas.** A cota é **diária e do visitante** (não do Space): quem chama paga com o próprio tempo efetivo de GPU, e a
# cota que resta define a prioridade na fila. Valores da documentação do Hub (tabela *Usage Tiers*, versão de
# 21/07/2026; [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#zerogpu)).
# Valores assim mudam: confira a página atual antes de planejar.
#
# | conta | cota diária incluída |
# |---|---|
# | sem login | 2 min |
# | gratuita | 5 min |
# | PRO | 40 min (extensível com créditos) |
# | membro de organização Team | 40 min |
#
# A constante `PRO_QUOTA_MINUTES` do pacote instalado (lida acima) é só o texto das mensagens de erro dele.
#
# **Mexa na duração e no tamanho.** O controle abaixo junta as três regras: o `duration_factor` da GPU (lido do
# `configs.json` do pacote instalado), o dobro do `xlarge` e a cota de cada conta (a tabela acima). Ele mostra o pedido
# que o agendador recebe e quantas chamadas seguidas cabem na cota do dia **se cada uma usar todo o tempo pedido**: o
# pior caso, porque a cota desconta só o tempo efetivo (chamadas mais curtas deixam sobrar mais; é o exercício 3).
# Repare no visitante sem login com a duração padrão, e no que acontece com o mesmo número no `xlarge`.

# %%
QUOTA_MINUTES = {"sem login": 2, "gratuita": 5, "PRO": 40, "Team": 40}  # a tabela acima (docs/referencias.md#zerogpu)
GPU_FACTORS = {gpu["model"]: gpu["duration_factor"] for gpu in facts["gpus"]}
# a GPU de hoje, segundo a documentação (RTX Pro 6000 Blackwell); se o pacote não a listar, a última da tabela
TODAY_GPU = next((name for name in GPU_FACTORS if "RTX PRO 6000" in name.upper()), list(GPU_FACTORS)[-1])


def show_request(duration=facts["DEFAULT_SCHEDULE_DURATION"], size="large", gpu=TODAY_GPU):
    """O pedido de uma chamada @spaces.GPU e quantas chamadas cabem em cada cota diária."""
    print(request_report(duration, size, GPU_FACTORS[gpu], QUOTA_MINUTES, gpu_name=gpu))


explore(show_request, duration=(5, 300, 5), size=["large", "xlarge"], gpu=list(GPU_FACTORS))

# %% [markdown]
# A conta do controle (`course_utils.zerogpu.quota.requested_seconds`) é do curso. Conferimos que ela dá o mesmo pedido
# que a função do pacote instalado, para cada GPU da tabela, os dois tamanhos e algumas durações:

# %%
request_mismatches = [(gpu["model"], size, seconds) for gpu in facts["gpus"] for size in ("large", "xlarge")
                      for seconds in (1, 5, 45, 60, 61, 119, 300)
                      if requested_seconds(seconds, size, gpu["duration_factor"]) != spaces_requested_seconds(seconds, size, gpu)]
print(f"pedidos diferentes dos do spaces {facts['version']}: {request_mismatches or 'nenhum'}")
claim("o pedido calculado pelo curso é o mesmo que o spaces instalado calcula", not request_mismatches,
      measured=len(request_mismatches))

# %% [markdown]
# **`X-IP-Token`.** O Hub acrescenta a cada requisição feita a um Space o cabeçalho `X-IP-Token`, que identifica o
# visitante; é com ele que o ZeroGPU desconta a cota certa. Se o seu app (Space A) chama outro Space ZeroGPU (Space B) com
# o `gradio_client` a partir do servidor, todas as chamadas chegam a B com a identidade de A e esgotam a cota de A. O
# remédio é repassar o token do visitante de A (exemplo na seção 4).
#
# Por fim, fora do ZeroGPU (sem a variável `SPACES_ZERO_GPU`) o decorador não faz nada, e o mesmo app roda na sua máquina:

# %%
def double(x):
    return 2 * x


same_function = spaces.GPU(double) is double and spaces.GPU(duration=30, size="xlarge")(double) is double
claim("fora do ZeroGPU, @spaces.GPU devolve a própria função", same_function, measured=same_function)

# %% [markdown]
# ## 2. Um Space completo
#
# Um Space Gradio é uma pasta (um repositório git no Hub) com três arquivos:
#
# - **`app.py`**: o app. No escopo do módulo ele baixa os pesos, carrega o modelo e o põe em `"cuda"` quando há CUDA
#   (no ZeroGPU, depois do `import spaces`, `torch.cuda.is_available()` responde `True` e o `.to("cuda")` é emulado;
#   na sua máquina sem GPU, fica na CPU). A função `@spaces.GPU` só gera, e a duração pedida é calculada a partir de
#   `max_new_tokens`. Uma função que roda na CPU (`respond`) anota se o `X-IP-Token` chegou e chama a função de GPU.
#   Modelos sem *chat template* recebem o texto puro.
# - **`requirements.txt`**: o que o Hub instala com `pip`. O `torch` do PyPI (com CUDA); o `gradio` **não** entra aqui, ele
#   vem do `sdk_version` do README. O `spaces` já vem instalado no ZeroGPU; listá-lo deixa o app rodar em outro hardware.
# - **`README.md`**: começa com o *front matter* YAML entre linhas `---`, que diz ao Hub como rodar o Space: `sdk: gradio`
#   (o ZeroGPU só aceita Gradio), `sdk_version` (a versão do Gradio, aqui a mesma instalada neste ambiente), `app_file` e
#   `python_version` **entre aspas** (sem aspas, o YAML lê `3.10` como o número 3.1).
#
# Versões do Space: `torch==2.11.0`, a mais nova da lista de versões suportadas da documentação do Hub (2.8.0, 2.9.1,
# 2.10.0 e 2.11.0, seção *Supported Versions*, 13/05/2026); `transformers==5.23.0`, a mesma do curso; `python_version:
# "3.12"`, uma das duas da mesma seção (3.12.12 e 3.10.13). Localmente, abaixo, o app roda com o torch e o Python deste
# ambiente, não com os do Space.

# %%
# O escopo do módulo: imports (`spaces` primeiro), o modelo carregado e posto em `DEVICE`.
APP_MODULE = '''"""Space do curso "LLMs rápidos em hardware modesto": um modelo pequeno num Space ZeroGPU.

O modelo vai para "cuda" no escopo do módulo, como a documentação do ZeroGPU pede: ali o `spaces` emula o CUDA
e refaz a cópia na GPU de verdade a cada chamada da função decorada com @spaces.GPU.
"""
import spaces  # primeiro: antes de qualquer coisa que possa inicializar CUDA

import os

import gradio as gr
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL_ID = os.environ.get("MODEL_ID", "HuggingFaceTB/SmolLM2-135M-Instruct")
MAX_NEW_TOKENS = 512
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # no ZeroGPU: "cuda" (emulado fora de @spaces.GPU)
DTYPE = torch.bfloat16 if DEVICE == "cuda" else torch.float32

print(f"carregando o modelo em {DEVICE}", flush=True)
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
model = AutoModelForCausalLM.from_pretrained(MODEL_ID, dtype=DTYPE).to(DEVICE).eval()
'''

# %% [markdown]
# A função que usa a GPU, com a duração calculada da entrada. Ela só gera: o modelo já está onde deve.

# %%
APP_GPU_FUNCTION = '''def estimate_duration(prompt, max_new_tokens):
    """Segundos de GPU pedidos por chamada: uma base mais o tempo por token, com folga."""
    return int(10 + 0.05 * max_new_tokens)


@spaces.GPU(duration=estimate_duration)
def generate(prompt, max_new_tokens):
    """Resposta gulosa do modelo (com GPU no ZeroGPU; na CPU fora dele)."""
    if tokenizer.chat_template:
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
    else:  # modelo sem chat template: o texto puro
        inputs = tokenizer(prompt, return_tensors="pt")
    inputs = inputs.to(model.device)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=int(max_new_tokens), do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
'''

# %% [markdown]
# A interface, no processo principal (CPU): a função `respond` recebe o pedido do Gradio e chama a função de GPU.

# %%
APP_INTERFACE = '''def respond(prompt, max_new_tokens, request: gr.Request):
    """Roda na CPU, no processo principal: anota se o X-IP-Token chegou e chama a função de GPU."""
    token = request.headers.get("x-ip-token") if request is not None else None
    print(f"X-IP-Token recebido: {'sim' if token else 'não'}", flush=True)
    return generate(prompt, max_new_tokens)


demo = gr.Interface(
    fn=respond,
    inputs=[gr.Textbox(label="Pergunta (em inglês: o modelo foi treinado quase só em inglês)"),
            gr.Slider(8, MAX_NEW_TOKENS, value=64, step=8, label="Tokens novos")],
    outputs=gr.Textbox(label="Resposta"),
    title="Um modelo pequeno no ZeroGPU",
    api_name="generate",
)

if __name__ == "__main__":
    demo.launch()
'''
APP_SOURCE = "\n\n".join([APP_MODULE, APP_GPU_FUNCTION, APP_INTERFACE])

# %%
REQUIREMENTS = "torch==2.11.0\ntransformers==5.23.0\nspaces\n"
README = f"""\
---
title: SmolLM2 no ZeroGPU
emoji: 🐢
colorFrom: indigo
colorTo: green
sdk: gradio
sdk_version: "{version('gradio')}"
app_file: app.py
python_version: "3.12"
pinned: false
license: mit
models:
  - {MODEL_ID}
short_description: Exemplo do curso LLMs rápidos no ZeroGPU
---

Exemplo do curso *LLMs rápidos em hardware modesto*: o modelo vai para "cuda" na inicialização e a GPU só existe
de verdade dentro da função `@spaces.GPU`.
"""
base_files = {"app": APP_SOURCE, "requirements": REQUIREMENTS, "readme": README}
space_dir = write_space(Path(SPACE_DIR) if SPACE_DIR else work_dir / "space", base_files)
for path in sorted(space_dir.iterdir()):
    print(f"{path.name:<18} {path.stat().st_size:6d} bytes")
print("\n" + (space_dir / "README.md").read_text(encoding="utf-8"))

# %% [markdown]
# ## 3. Um linter para as regras do ZeroGPU
#
# Um erro de ZeroGPU só aparece depois do *push*, do *build* e da inicialização do Space, minutos depois. Um linter pega
# a maioria antes, lendo o código **sem executá-lo**. Ele trabalha sobre a **árvore sintática** (AST) do Python, não
# sobre o texto com expressões regulares: uma regex acharia `"cuda"` em comentários e textos, não entenderia
# `import torch as t`, e não saberia se uma linha está no escopo do módulo (roda na importação) ou dentro de uma função
# (roda só quando chamada). Veja como o Python enxerga uma linha que lê o estado da GPU:

# %%
line = "TOTAL_GB = torch.cuda.get_device_properties(0).total_memory / 2**30"
value = ast.parse(line).body[0].value
print(type(value).__name__, "| à esquerda:", ast.unparse(value.left))
call = value.left.value  # o `.total_memory` é um atributo do resultado da chamada
print(type(call).__name__, "| função:", ast.unparse(call.func), "| argumentos:", [ast.unparse(a) for a in call.args])
findings = lint_source(f"import spaces\nimport torch\n{line}\n\n@spaces.GPU\ndef f():\n    pass\n")
print(format_report(findings))
claim("o linter acusa a leitura do estado da GPU no escopo do módulo", [f.rule for f in findings] == ["module_cuda"],
      measured=", ".join(f.rule for f in findings))

# %% [markdown]
# O `course_utils.zerogpu` percorre essas árvores e aplica oito regras; cada achado sai em pt-BR com `arquivo:linha`:
#
# | regra | o que acusa |
# |---|---|
# | `module_cuda` | no escopo do módulo, o que precisa de uma GPU de verdade: ler o estado da GPU (`torch.cuda.get_device_properties`, `get_device_name`, `mem_get_info`, `memory_allocated`, ...), chamar o driver (`torch.cuda.Stream`, `set_device`, ...), `torch.compile` (chamada, decorador ou `modelo.compile()`), e funções do módulo que fazem isso chamadas na importação. Pôr o modelo em `"cuda"` (`.to`, `.cuda()`, `device=`, `device_map=`) **não** é achado |
# | `no_gpu_function` | nenhuma função decorada com `@spaces.GPU` (nem embrulhada com `spaces.GPU(fn)`) |
# | `spaces_import_order` | `import spaces` depois de uma linha que já inicializou CUDA, ou `@spaces.GPU` sem `import spaces` |
# | `gpu_duration` (aviso) | função `@spaces.GPU` sem `duration=` que gera com `max_new_tokens`/`num_inference_steps` vindos da entrada ou grandes |
# | `gpu_lazy_load` (aviso) | função `@spaces.GPU` que carrega o modelo (`from_pretrained`, `pipeline`, direto ou por outra função) ou move para a GPU um modelo carregado no módulo |
# | `requirements_torch` | `requirements.txt` ausente, sem `torch`, com torch < 2.8 (a lista suportada começa no 2.8.0) ou só-CPU |
# | `gradio_version` | Gradio < 4 no `sdk_version` ou no `requirements.txt` |
# | `readme_front_matter` | README sem front matter, YAML inválido, faltando `sdk`/`sdk_version`/`app_file`, `sdk` que não é `gradio`, `app_file` inexistente, `python_version` sem aspas |
#
# Primeiro, o Space que acabamos de escrever:

# %%
findings = lint_path(space_dir)
print(format_report(findings, space_dir.name))
claim("o Space do notebook passa no linter sem nenhum achado", findings == [], measured=len(findings))

# %% [markdown]
# Agora um catálogo de erros, um por regra: cada Space ruim é o nosso com **uma** alteração. Também analisamos variações
# corretas, que não podem gerar nenhum achado: entre elas o exemplo da documentação (um `pipeline` com `device="cuda"`
# no escopo do módulo), que a versão antiga deste linter acusava como erro. Quando o notebook roda de um clone do
# repositório, as fixtures dos testes (`tests/fixtures/spaces/`) entram na conta também.

# %%
LOAD = "model = AutoModelForCausalLM.from_pretrained(MODEL_ID, dtype=DTYPE).to(DEVICE).eval()\n"
FIRST_LINE = "import spaces  # primeiro: antes de qualquer coisa que possa inicializar CUDA\n\n"
IMPORTS_END = "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
DECORATOR = "@spaces.GPU(duration=estimate_duration)\n"
BAD_EDITS = {
    "module_cuda": ("torch.compile no escopo do módulo", edit("app", LOAD, LOAD + "model = torch.compile(model)\n")),
    "no_gpu_function": ("o decorador esquecido", edit("app", DECORATOR, "")),
    "spaces_import_order": ("torch.cuda.is_available() antes do import spaces", lambda files: edit(
        "app", IMPORTS_END, IMPORTS_END + '\nprint("GPU?", torch.cuda.is_available())\nimport spaces\n')(
        edit("app", FIRST_LINE, "")(files))),
    "gpu_duration": ("@spaces.GPU sem duration, com max_new_tokens vindo da interface",
                     edit("app", DECORATOR, "@spaces.GPU\n")),
    "gpu_lazy_load": ("o modelo movido para a GPU dentro da função (o padrão do guia antigo)", edit(
        "app", '    """Resposta gulosa do modelo (com GPU no ZeroGPU; na CPU fora dele)."""\n',
        '    """Resposta gulosa do modelo."""\n    model.to("cuda")\n')),
    "requirements_torch": ("torch 2.6 no requirements.txt", edit("requirements", "torch==2.11.0", "torch==2.6.0")),
    "gradio_version": ("sdk_version do Gradio 3", edit("readme", f'sdk_version: "{version("gradio")}"',
                                                        'sdk_version: "3.50.2"')),
    "readme_front_matter": ("python_version sem aspas", edit("readme", 'python_version: "3.12"',
                                                             "python_version: 3.12")),
}
GOOD_EDITS = {
    "o Space do notebook": lambda files: files,
    "o exemplo da documentação: pipeline com device='cuda' no módulo": edit(
        "app", LOAD, LOAD + 'from transformers import pipeline\npipe = pipeline("text-generation", model=model, '
        'tokenizer=tokenizer, device="cuda")\n'),
    "duração fixa e .cuda() no módulo": lambda files: edit("app", DECORATOR, "@spaces.GPU(duration=60)\n")(
        edit("app", LOAD, LOAD + "if DEVICE == 'cuda':\n    model.cuda()\n")(files)),
}
assert set(BAD_EDITS) == set(zerogpu.RULES), "o catálogo deve ter um exemplo de cada regra do linter"

# %%
def lint_variant(name, change):
    return lint_path(write_space(work_dir / "variantes" / name, change(base_files)))


bad_cases = [("notebook", description, rule, sorted({f.rule for f in lint_variant(rule, change)}))
             for rule, (description, change) in BAD_EDITS.items()]
good_cases = [("notebook", name, lint_variant(f"boa_{i}", change)) for i, (name, change) in enumerate(GOOD_EDITS.items())]
print(format_report(lint_variant("module_cuda", BAD_EDITS["module_cuda"][1])))
print(format_report(lint_variant("gpu_lazy_load", BAD_EDITS["gpu_lazy_load"][1])))

fixtures = Path.cwd().parent / "tests" / "fixtures" / "spaces"
if fixtures.is_dir():
    bad_cases += [("fixture", f.name, f.name.split("__")[0], sorted({x.rule for x in lint_path(f)}))
                  for f in sorted((fixtures / "bad").iterdir())]
    good_cases += [("fixture", f.name, lint_path(f)) for f in sorted((fixtures / "good").iterdir())]
else:
    print("(sem tests/fixtures/spaces aqui: só o catálogo do notebook entra na conta)")

# %%
width = max(len(name) for _, name, _, _ in bad_cases)
print(f"{'origem':<9} {'Space ruim':<{width}} {'regra esperada':<20} acusadas")
for origin, name, expected, rules in bad_cases:
    print(f"{origin:<9} {name:<{width}} {expected:<20} {', '.join(rules)} {'✅' if expected in rules else '❌'}")
lint_bad_total = len(bad_cases)
lint_bad_flagged = sum(expected in rules for _, _, expected, rules in bad_cases)
lint_bad_exact = sum(rules == [expected] for _, _, expected, rules in bad_cases)
lint_good_false_positives = sum(len(findings) for _, _, findings in good_cases)
print(f"\nSpaces ruins acusados pela regra certa: {lint_bad_flagged}/{lint_bad_total} "
      f"({lint_bad_exact} sem nenhuma outra regra); achados nos {len(good_cases)} Spaces corretos: "
      f"{lint_good_false_positives}")
claim("toda fixture ruim acusada pela regra certa", lint_bad_flagged == lint_bad_total >= len(zerogpu.RULES),
      measured=lint_bad_flagged)
claim("nenhum achado nas fixtures boas", lint_good_false_positives == 0, measured=lint_good_false_positives)

# %% [markdown]
# Na linha de comando o linter faz o mesmo e devolve um **código de saída**: 0 sem erros, 1 com erros (avisos só contam
# com `--strict`), e códigos próprios para entrada ruim: 3 caminho inexistente, 4 erro de sintaxe, 5 arquivo que não é
# Python, 6 pasta vazia. Assim ele serve num *hook* de pré-commit ou na integração contínua do seu Space.

# %%
broken_syntax = write_space(work_dir / "sintaxe", {"app": APP_SOURCE.replace("def respond(", "def respond(:")})
(work_dir / "vazia").mkdir(exist_ok=True)
cli_cases = [(space_dir, 0), (work_dir / "variantes" / "module_cuda", 1),
             (work_dir / "variantes" / "gpu_duration", 0), (work_dir / "nao_existe", 3),
             (broken_syntax, 4), (space_dir / "README.md", 5), (work_dir / "vazia", 6)]
cli_codes = []
for target, expected in cli_cases:
    code_, output = lint_cli(target)
    cli_codes.append(code_)
    print(f"$ python -m course_utils.zerogpu lint .../{target.name}  -> código {code_} (esperado {expected})")
    print("  " + output.replace("\n", "\n  ")[:300] + "\n")
    assert "Traceback" not in output, "entrada ruim deve dar uma mensagem, não um traceback"
strict_code, _ = lint_cli("--strict", work_dir / "variantes" / "gpu_duration")
cli_wrong = sum(got != expected for got, (_, expected) in zip(cli_codes, cli_cases, strict=True)) + (strict_code != 1)
claim("cada caso da linha de comando dá o código de saída documentado", cli_wrong == 0, measured=cli_wrong)

# %% [markdown]
# ## 4. O Space rodando de verdade, na sua máquina
#
# Como o decorador não tem efeito fora do ZeroGPU, o mesmo `app.py` roda na CPU. Subimos o app num processo à parte
# (`python app.py`, um servidor Gradio de verdade em `127.0.0.1`, com `CUDA_VISIBLE_DEVICES=""`, como um Space sem GPU),
# chamamos a API dele duas vezes com o `gradio_client`, conferimos a resposta e desligamos o servidor. Sem internet, o
# modelo vem da cópia offline do curso: passamos o caminho dela ao app pela variável `MODEL_ID` (no Hub, o app usa o ID).
#
# Para conferir a resposta, geramos o mesmo texto aqui no notebook, do mesmo jeito que o app (com o *chat template*, se o
# modelo tiver um), no modo guloso: os dois lados têm de dar exatamente os mesmos tokens.

# %%
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
if tokenizer.chat_template:
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
else:
    print(f"{MODEL_ID} não tem chat template: o app e a referência usam o texto puro.")
    inputs = tokenizer(PROMPT, return_tensors="pt")
with torch.inference_mode():
    out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
reference = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
print(f"referência (no notebook): {reference!r}")

# %%
local = run_local_space(space_dir, calls=[(PROMPT, NEW_TOKENS)] * 2, env={"MODEL_ID": resolve_model(MODEL_ID)},
                        timeout_s=SERVER_TIMEOUT_S, headers={"X-IP-Token": "token-de-teste"})
loads = local["log"].count("carregando o modelo")
tokens_seen = local["log"].count("X-IP-Token recebido: sim")
startup_s, call_seconds = local["startup_s"], local["call_seconds"]
print(f"servidor no ar em {local['url']} depois de {startup_s:.1f} s (inclui carregar o modelo, no escopo do módulo)")
print(f"respostas do Space: {local['answers']}")
print(f"chamadas: {call_seconds[0]:.2f} s e {call_seconds[1]:.2f} s; o app carregou o modelo {loads} vez(es) e viu o "
      f"X-IP-Token em {tokens_seen} chamada(s); servidor encerrado com código {local['returncode']}")
claim("o Space roda localmente e responde ao gradio_client o que o modelo gera",
      local["answers"] == [reference, reference])
claim("o X-IP-Token enviado pelo gradio_client chega ao app nas duas chamadas", tokens_seen == 2, measured=tokens_seen)
assert loads == 1, "o app carrega o modelo uma vez, na importação"
local_app_ok = True

# %% [markdown]
# O log do app mostra o que aconteceu lá dentro: uma única carga do modelo, na importação (as duas chamadas só geram), e o
# `X-IP-Token` recebido nas duas chamadas, porque o `Client` o mandou em `headers=`.
#
# **Repassando o `X-IP-Token` de um Space para outro.** Dentro de um evento Gradio, o token do visitante está em
# `request.headers`. Repassá-lo faz a chamada ao Space B ser descontada da cota de quem usa o Space A:
#
# ```python
# import gradio as gr
# from gradio_client import Client
#
# def call_space_b(prompt, request: gr.Request):
#     token = request.headers.get("x-ip-token")
#     client = Client("usuario/space-b", headers={"X-IP-Token": token} if token else None)
#     return client.predict(prompt, 64, api_name="/generate")
# ```
#
# No `gradio_client` 2.7.2 instalado aqui, o `Client` já faz isso sozinho quando o destino é um Space do Hub e a chamada
# acontece dentro de um evento Gradio (método `add_zero_gpu_headers`); fora de um evento, ou com versões antigas, passe o
# cabeçalho como acima.

# %% [markdown]
# ## 5. Compilar antes: por que o JIT não serve e o que o AoT faz
#
# O `torch.compile` é **JIT**: compila na primeira chamada, dentro do processo que chama, e guarda os kernels naquele
# processo. No ZeroGPU cada chamada pode cair num processo filho novo: a compilação (dezenas de segundos) seria paga de novo,
# com a GPU reservada e o relógio da cota correndo, e jogada fora quando o processo morre. A documentação do Hub é direta:
# "ZeroGPU does not support `torch.compile`" (o linter acusa `torch.compile` no escopo do módulo).
#
# A saída é compilar **antes** (*ahead of time*, AoT, torch 2.8+) e reaproveitar o artefato:
#
# 1. `spaces.aoti_capture(module)`: um gerenciador de contexto que roda o pipeline uma vez e **captura** os argumentos com
#    que o módulo (por exemplo o *transformer* de um modelo de difusão) é chamado;
# 2. `torch.export.export(module, args=..., kwargs=...)`: transforma o módulo num grafo completo, sem quebras;
# 3. `spaces.aoti_compile(exported)`: compila o grafo com o **AOTInductor** num pacote (código C++/CUDA gerado + uma
#    biblioteca compilada) que qualquer processo filho pode carregar;
# 4. `spaces.aoti_apply(compiled, module)`: troca o `forward` do módulo pelo compilado e libera os pesos originais.
#
# Abaixo fazemos o mesmo caminho, `torch.export` + AOTInductor, com um bloco pequeno (RMSNorm, projeção e GELU escritos
# com operações elementares), e medimos o tempo de compilar e a latência antes e depois. A compilação roda num processo
# filho (`course_utils.zerogpu.aot`): se o compilador ou o driver o derrubarem, o notebook diz em que etapa foi.

# %%
import math
import shutil


class TinyBlock(torch.nn.Module):
    """RMSNorm + projeção linear + GELU (aproximação tanh), com operações elementares."""

    def __init__(self, dim=512):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
        h = self.proj(h)
        return x + 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h.pow(3))))


if not (shutil.which("g++") or shutil.which("c++")):
    raise RuntimeError("O AOTInductor gera C++ e precisa de um compilador (g++). No Debian/Ubuntu: "
                       "apt-get install g++; o Colab já tem.")
aot_device = device if AOT_ON_GPU else "cpu"
block = TinyBlock().to(aot_device).eval()
example = torch.randn(16, 256, 512, device=aot_device)

# %%
aot_failures, compiled, aoti_compile_s = [], None, None
for target in dict.fromkeys([aot_device, "cpu"]):  # na GPU, se falhar, tenta de novo na CPU
    block, example = block.to(target), example.to(target)
    print(f"compilando com AOTInductor para {target} (leva de segundos a dezenas de segundos)...")
    try:
        compiled, aoti_compile_s, package = compile_aot(block, example, work_dir)
        break
    except AotError as exc:
        if torch.version.cuda is None:
            raise  # um torch só-CPU só precisa do g++: uma falha aqui é um problema do ambiente, não algo a esconder
        aot_failures.append(f"AoT em {target}: {exc}")
        print(f"A compilação para {target} falhou ({exc}).")
if compiled is None:
    claim_skipped("o bloco compilado com AOTInductor calcula o mesmo que o eager", "; ".join(aot_failures))
else:
    with torch.no_grad():
        aoti_max_diff = (compiled(example) - block(example)).abs().max().item()
    print(f"export + compilação: {aoti_compile_s:.1f} s; pacote de {package.stat().st_size / 2**20:.1f} MiB; "
          f"maior diferença para o eager: {aoti_max_diff:.2e}")
    claim("o bloco compilado com AOTInductor calcula o mesmo que o eager", aoti_max_diff < 1e-3, measured=aoti_max_diff)

# %%
eager_ms = measure_latency(lambda: block(example), warmup=2, repeats=AOT_REPEATS)["median_ms"]
aoti_ms = aoti_speedup = None
if compiled is not None:
    aoti_ms = measure_latency(lambda: compiled(example), warmup=2, repeats=AOT_REPEATS)["median_ms"]
    aoti_speedup = eager_ms / aoti_ms
    print(f"latência em {example.device.type} (mediana de {AOT_REPEATS}): eager {eager_ms:.1f} ms | "
          f"AoT {aoti_ms:.1f} ms | {aoti_speedup:.2f}x")
if compiled is None:
    print(f"Sem número de AoT nesta execução ({'; '.join(aot_failures)}); o eager mediu {eager_ms:.1f} ms.")
elif aoti_speedup > 1:
    print("Aqui o AoT ganhou: o AOTInductor funde as operações elementares num só laço, lendo e escrevendo a memória "
          "menos vezes.")
else:
    print("Aqui o AoT não ganhou: neste processador, com esta carga, as operações do eager já eram tão rápidas quanto "
          "o código gerado. Compilar nem sempre compensa; meça.")

# %% [markdown]
# Agora os embrulhos do próprio `spaces`, no mesmo bloco: `aoti_capture` → `torch.export` → `aoti_compile` →
# `aoti_apply`, num processo filho, comparando a saída com a do eager. O `spaces` 0.51.3 só importa o AoT com um
# torch compilado com CUDA (`spaces/zero/torch/static.py` lê `torch.version.cuda`): com um torch só-CPU a afirmação
# fica pulada, e o notebook diz por quê.

# %%
if torch.version.cuda is None:
    claim_skipped("(GPU) spaces.aoti_capture/compile/apply dão a mesma saída que o eager", f"torch {torch.__version__} sem CUDA: o spaces não importa o AoT")
elif example.device.type != "cuda":
    claim_skipped("(GPU) spaces.aoti_capture/compile/apply dão a mesma saída que o eager", "; ".join(aot_failures) or "AoT em CUDA não pedido (AOT_ON_GPU=False)")
else:
    try:
        spaces_aot = spaces_aoti_in_child(block, example, work_dir)
    except AotError as exc:
        spaces_aot = {"max_diff": float("nan"), "compile_s": float("nan"), "error": str(exc)}
    print(f"spaces.aoti_*: {spaces_aot}")
    claim("(GPU) spaces.aoti_capture/compile/apply dão a mesma saída que o eager", spaces_aot["max_diff"] < 1e-2, measured=spaces_aot["max_diff"])

# %% [markdown]
# ## 6. Quando dá errado: sintomas, causas e correções
#
# | sintoma (mensagem) | causa real | correção |
# |---|---|---|
# | "No @spaces.GPU function detected" (log do Space) | nenhuma função decorada foi definida na inicialização (decorador esquecido, ou a função fica num módulo que o app não importa antes do `launch`) | decore a função que usa a GPU; regra `no_gpu_function` |
# | "CUDA has been initialized before importing the `spaces` package" | algo chamou o driver antes do `import spaces` (até `torch.cuda.is_available()`) | `import spaces` na primeira linha; regra `spaces_import_order` |
# | "Low-level CUDA init (`torch._C._cuda_init`) reached", "Can't initialize NVML" na inicialização | o processo principal pediu algo que a emulação não cobre: driver, kernels próprios, `torch.compile` | mova para dentro da função `@spaces.GPU`; regra `module_cuda` |
# | o app decide pelo tamanho da GPU e erra (ex.: acha 96 GB num `large`) | leu `torch.cuda.get_device_properties`/`mem_get_info` no escopo do módulo, onde a emulação responde valores fixos | leia dentro da função decorada; regra `module_cuda` |
# | "You have exceeded your free ZeroGPU quota (90s requested vs. 45s left)" | a duração **pedida** (já multiplicada pelo `duration_factor`, e em dobro no `xlarge`) não cabe na cota que resta ao visitante | peça menos (`duration` calculada a partir da entrada); o visitante pode fazer login ou esperar a cota voltar |
# | "The requested GPU duration (…s) is larger than the maximum allowed" | `duration` acima do máximo por chamada da conta do visitante | reduza a duração; divida o trabalho em chamadas menores |
# | "GPU task is exceeding its requested duration", depois "GPU task aborted" | a função passou da duração pedida | aumente `duration` ou calcule-a da entrada; regra `gpu_duration` |
# | "No GPU was available after 60s" | fila cheia, prioridade baixa (pedido longo, pouca cota sobrando) | durações menores sobem na fila; tente de novo |
# | "Space app has reached its GPU limit" em chamadas pela API | chamadas sem `X-IP-Token`: tudo sai da cota de uma identidade só | repasse o `X-IP-Token` (seção 4) ou chame com o token do usuário |
# | cada chamada demora a começar | o modelo é carregado ou movido para a GPU dentro da função decorada | carregue e ponha em `"cuda"` no escopo do módulo; regra `gpu_lazy_load` |
# | `PicklingError` ao chamar a função | argumento ou resultado que não atravessa processos (objeto com trava, conexão aberta) | devolva tipos simples (texto, números, imagens); para streaming, use uma função geradora (`yield`), que o `spaces` suporta |
# | "ZeroGPU is only compatible with Gradio 4+" | `sdk_version` antigo | suba o `sdk_version`; regra `gradio_version` |
# | o Space nem sobe, ou sobe com outra versão do Python | front matter ausente ou inválido (`python_version: 3.10` sem aspas vira 3.1) | confira o YAML; regra `readme_front_matter` |
#
# As mensagens entre aspas são do pacote `spaces` (0.51.3) ou do log de inicialização dos Spaces; as causas e correções são
# as que este notebook e o linter explicam.
#
# **Checklist antes de publicar**
# 1. `import spaces` é a primeira linha do `app.py`.
# 2. O modelo é carregado e posto em `"cuda"` no escopo do módulo; nada ali lê o estado da GPU, chama o driver ou usa
#    `torch.compile`.
# 3. Toda função que usa a GPU tem `@spaces.GPU`, com `duration=` do tamanho do trabalho (uma função da entrada quando
#    o trabalho varia; o `spaces` multiplica o pedido pelo `duration_factor` da GPU); `size="xlarge"` só se a memória
#    do `large` não bastar (custa o dobro de cota).
# 4. Argumentos e resultados das funções de GPU são tipos simples (ou uma função geradora, para streaming).
# 5. `requirements.txt` com `torch` do PyPI (com CUDA) numa versão da lista suportada, e sem `gradio`.
# 6. README com `sdk: gradio`, `sdk_version` (Gradio 4+), `app_file` e `python_version` entre aspas.
# 7. `python -m course_utils.zerogpu lint PASTA` sem erros, e o app testado localmente com o `gradio_client`.
# 8. Se o app chama outro Space ZeroGPU, ele repassa o `X-IP-Token`.
# 9. Hardware e cotas vêm da documentação do dia, não de números escritos no código.

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** O app abaixo comete os erros mais comuns. Conserte-o até o linter não acusar mais nada (nem avisos),
# mantendo o `pipeline` na GPU do jeito que a documentação pede hoje. Comece copiando `APP_QUEBRADO` para
# `app_consertado` e rode `print(format_report(lint_source(app_consertado)))` para ver o que ainda falta.

# %%
APP_QUEBRADO = '''import torch
from transformers import pipeline

print("GPU disponível:", torch.cuda.is_available())

import gradio as gr
import spaces

pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")
pipe.model = torch.compile(pipe.model)
print("memória da GPU:", torch.cuda.get_device_properties(0).total_memory)


def answer(question, max_new_tokens):
    return pipe(question, max_new_tokens=max_new_tokens)[0]["generated_text"]


gr.Interface(answer, ["text", gr.Slider(16, 1024, step=16)], "text").launch()
'''
print(format_report(lint_source(APP_QUEBRADO)))

# %% curso={"exercicio": "00.1", "resposta": "app_consertado"} tags=["exercicio"]
app_consertado = None  # o texto do app.py corrigido
check("00.1", app_consertado)


# %% [markdown]
# **Exercício 2.** Escreva a função de duração para `@spaces.GPU(duration=estimar)` de uma função
# `gerar(prompt, max_new_tokens)`: 10 s fixos + 0,05 s por token novo, **arredondado para cima**, e nunca mais que
# 120 s. Lembre que o `spaces` chama a função de duração com os mesmos argumentos da função decorada (e que ele mesmo
# aplica o `duration_factor` depois: não o inclua aqui).

# %% curso={"exercicio": "00.2", "resposta": "estimar"} tags=["exercicio"]
def estimar(prompt, max_new_tokens):
    # seu código aqui
    ...

check("00.2", estimar)

# %% [markdown]
# **Exercício 3.** Simule a cota de um visitante ao longo de um dia. Escreva `cota_do_dia(chamadas, cota_s, fator)`:
# `chamadas` é uma lista de `(duration, efetivo_s, size)` (a duração pedida no decorador, os segundos que a função de
# fato usou, sempre menos que o pedido, e `"large"` ou `"xlarge"`), `cota_s` é a cota do dia em segundos e `fator` é o
# `duration_factor` da GPU (seção 1). Devolva a lista com a cota que resta depois de cada chamada, com as regras do
# `spaces` e da documentação:
# - o **pedido** é a duração vezes o fator, arredondada com `round` (no `xlarge`, sem o fator), e conta em dobro no
#   `xlarge`;
# - se o pedido é maior que a cota que resta, a chamada é **recusada** e a cota não muda;
# - se é aceita, desconta-se o tempo **efetivo**, em dobro no `xlarge`.
#
# Confira com a seção 1: com o fator 1,5 da GPU atual, quantas chamadas de 60 s pedidos e 20 s efetivos cabem na cota
# de uma conta gratuita?

# %% curso={"exercicio": "00.3", "resposta": "cota_do_dia"} tags=["exercicio"]
def cota_do_dia(chamadas, cota_s, fator):
    # seu código aqui
    ...

check("00.3", cota_do_dia)

# %% [markdown]
# **Exercício 4.** Uma regra nova para o linter. O `spaces` embrulha funções comuns e geradoras, mas **recusa**
# `async def`: no ZeroGPU, `@spaces.GPU` numa corrotina levanta `NotImplementedError` na importação (veja
# `spaces/zero/decorator.py`), e o Space nem sobe; na sua máquina o decorador não faz nada e o erro não aparece.
# Escreva `acusar_gpu_async(codigo)`, que recebe o texto de um `app.py` e devolve a lista, em ordem, das linhas de cada
# `async def` decorada com `@spaces.GPU` (com ou sem argumentos, e com qualquer apelido de import:
# `import spaces as sp` dá `@sp.GPU`, `from spaces import GPU` dá `@GPU`). Use o módulo `ast` da seção 3:
# `ast.walk`, `ast.AsyncFunctionDef` e o `decorator_list` de cada função.

# %% curso={"exercicio": "00.4", "resposta": "acusar_gpu_async"} tags=["exercicio"]
def acusar_gpu_async(codigo):
    # seu código aqui
    ...

check("00.4", acusar_gpu_async)

# %% [markdown]
# ## Resumo

# %%
results = {
    "lint_rules": len(zerogpu.RULES),
    "lint_bad_flagged": lint_bad_flagged,
    "lint_bad_total": lint_bad_total,
    "lint_bad_exact": lint_bad_exact,
    "lint_good_false_positives": lint_good_false_positives,
    "local_app_ok": local_app_ok,
    "local_server_start_s": startup_s,
    "local_first_call_s": call_seconds[0],
    "local_second_call_s": call_seconds[1],
    "aoti_eager_ms": eager_ms,
    "aoti_device": example.device.type,
    "spaces_duration_factor_max": max(gpu["duration_factor"] for gpu in facts["gpus"]),
}
if compiled is not None:
    results.update(aoti_compile_s=aoti_compile_s, aoti_compiled_ms=aoti_ms, aoti_speedup=aoti_speedup)
if aot_failures:
    results["aoti_skipped_reason"] = "; ".join(aot_failures)
for key, value in results.items():
    record(key, value)

# %% [markdown]
# **Em resumo.** (1) No ZeroGPU a GPU é emprestada por chamada: o processo principal não tem GPU, mas emula o CUDA, então
# o modelo vai para `"cuda"` no escopo do módulo e só o que precisa de uma GPU de verdade fica dentro de `@spaces.GPU`;
# `import spaces` vem primeiro. (2) `duration` é um pedido à fila e à cota do visitante, multiplicado pelo
# `duration_factor` da GPU: calcule-o a partir da entrada. (3) Um linter sobre a AST pega esses erros antes do *push*;
# um teste local com o `gradio_client` pega o resto. (4) No ZeroGPU, compile antes (AoT), não na hora (JIT). Próximo:
# **01 · Quantização pós-treinamento**, para caber mais modelo na mesma GPU.
