# %% [markdown]
# # 00 · Spaces com ZeroGPU: um Space de verdade, um linter e um teste local
#
# **Objetivos.** Ao fim deste notebook você vai saber:
# - explicar como o ZeroGPU executa um Space: processo principal sem GPU, GPU emprestada a cada chamada de uma função
#   `@spaces.GPU`, `duration=` (fixo ou calculado a partir da entrada), `size=`, fila, cotas e o cabeçalho `X-IP-Token`;
# - escrever um Space completo (`app.py`, `requirements.txt` e `README.md` com o front matter) que carrega o modelo sob
#   demanda dentro da função decorada;
# - conferir um Space com um linter estático (AST): `python -m course_utils.zerogpu lint PASTA`, e entender cada regra;
# - subir o Space num servidor local de verdade e chamá-lo com o `gradio_client`, repassando o `X-IP-Token`;
# - explicar por que o `torch.compile` (JIT) não combina com o ZeroGPU e medir a compilação antecipada (AoT:
#   `torch.export` + AOTInductor), que é o que `spaces.aoti_*` usa por baixo.
#
# **Pré-requisitos.** Python e PyTorch básicos; saber carregar um modelo causal com o `transformers`. Não precisa de conta
# no Hugging Face para rodar o notebook; para publicar o Space, sim.
# **Tempo estimado.** 40 minutos de leitura; a execução leva cerca de 1 minuto numa CPU de 2 núcleos (a maior parte é subir
# o servidor local e compilar com o AOTInductor).
# **Hardware.** CPU serve: tudo aqui roda na CPU (o ZeroGPU é o destino do Space, não deste notebook). Com GPU, o notebook
# também tenta os embrulhos `spaces.aoti_*`.
#
# Todo número impresso aqui é medido agora, nesta execução; os números citados (cotas, hardware do ZeroGPU) trazem a fonte
# e a data.

# %% [markdown]
# ## Parâmetros
# `SMOKE=True` (CI) pede menos tokens ao Space local e repete menos a medida de latência; a compilação AoT roda do mesmo
# jeito, porque o tempo dela é justamente um dos números que interessam.

# %% tags=["parameters"]
MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOKE = False
SEED = 0
DEVICE = "auto"
SPACE_DIR = ""             # onde escrever o Space; vazio = uma pasta temporária
PROMPT = "What is the capital of France? Answer in one sentence."
NEW_TOKENS = 32            # tokens novos pedidos ao Space local
AOT_REPEATS = 20           # repetições na medida de latência eager x AoT
SERVER_TIMEOUT_S = 180     # quanto esperar o servidor local subir
AOT_ON_GPU = True          # com GPU, compilar o AoT para CUDA (False: só na CPU)

# %%
import ast
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

if SMOKE:
    NEW_TOKENS, AOT_REPEATS = 12, 8

# gradio, gradio_client e spaces vêm do requirements.txt do curso; no Colab, instalamos (versões fixas) o que faltar.
MISSING = [pin for pin, module in [("gradio==6.31.0", "gradio"), ("gradio_client==2.7.2", "gradio_client"),
                                   ("spaces==0.51.3", "spaces")] if importlib.util.find_spec(module) is None]
if MISSING and "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *MISSING], check=True)
elif MISSING:
    raise ModuleNotFoundError(f"Faltam {MISSING}: rode `make env` (ou pip install -r requirements.txt).")

import torch

from course_utils import zerogpu
from course_utils.environment import environment_info, pick_device, quiet_libraries
from course_utils.exercises import check
from course_utils.measure import measure_latency
from course_utils.models import load_model, load_tokenizer, resolve_model
from course_utils.results import claim, record
from course_utils.zerogpu import format_report, lint_path, lint_source

quiet_libraries()
torch.manual_seed(SEED)
device = pick_device(DEVICE)
print(environment_info())
print(f"gradio {version('gradio')} | gradio_client {version('gradio_client')} | spaces {version('spaces')}")

# %% [markdown]
# ## 1. Como o ZeroGPU executa um Space
#
# Num Space comum com GPU, o processo do app fica com uma GPU o tempo todo, mesmo parado. No **ZeroGPU** é diferente:
#
# 1. O **processo principal** (o `app.py` importado, a interface Gradio, a fila) roda **sem GPU**.
# 2. Quando alguém dispara uma função decorada com `@spaces.GPU`, o pacote `spaces` pede uma GPU ao agendador, cria um
#    **processo filho** (um *fork* do principal) com a GPU anexada, roda a função lá e devolve o resultado ao principal
#    (argumentos e resultado atravessam processos: precisam ser serializáveis com `pickle`).
# 3. Quando a função termina, a GPU volta para o conjunto compartilhado. O processo filho pode ser reaproveitado na chamada
#    seguinte, se a mesma GPU ainda estiver ociosa; senão, um novo *fork* nasce do processo principal.
#
# Duas consequências guiam todo o resto:
#
# - **O que precisa da GPU de verdade acontece dentro da função decorada.** O `spaces` até emula, no processo principal,
#   movimentos de tensores do PyTorch para `"cuda"` (a documentação do Hub mostra `pipe.to("cuda")` no escopo do módulo):
#   os pesos ficam na CPU e são copiados para a GPU em cada processo filho. Mas a emulação só cobre o que ela conhece; o que
#   fala direto com o driver (consultar a memória da GPU, quantizar com bitsandbytes ao carregar, kernels próprios) quebra
#   na inicialização, e fora do ZeroGPU (na sua máquina, num Space só com CPU) nada disso é emulado. Neste curso usamos o
#   padrão portátil: **nenhum trabalho CUDA no escopo do módulo**; o modelo é carregado dentro da função decorada e fica em
#   cache no processo. É o que o linter da seção 3 confere.
# - **`import spaces` vem antes de tudo que possa inicializar CUDA.** Se algo chamou o driver antes (até
#   `torch.cuda.is_available()`, que no torch 2.13 chama `cudaGetDeviceCount`), o `spaces` se recusa a iniciar (processos
#   filhos criados por *fork* não podem herdar um CUDA já inicializado) e o Space cai com *"CUDA has been initialized
#   before importing the `spaces` package"*.
#
# **`duration=`.** Quantos segundos de GPU cada chamada reserva (o padrão do pacote é 60 s, lido abaixo do código instalado).
# Pode ser um número ou uma **função que recebe os mesmos argumentos da função decorada** e devolve segundos: assim o
# pedido acompanha a entrada (mais tokens, mais tempo). Pedir pouco tem dois efeitos: pedidos curtos **sobem na fila** (a
# documentação do Hub: "specifying shorter durations for quicker functions will improve queue priority"), e o pedido
# precisa caber na **cota que resta ao visitante** (senão: "You have exceeded your free ZeroGPU quota (60s requested vs.
# 45s left)"). Pedir menos do que a função gasta também custa: ela passa do tempo e pode ser abortada.
#
# **`size=`.** `"large"` (padrão) ou `"xlarge"`, que consome cota em dobro (documentação do Hub, seção *GPU size
# selection*; no código do `spaces` 0.51.3: `requested *= 2 if gpu_size == 'xlarge' else 1`). O hardware por trás dos
# tamanhos muda: até o início de 2026 eram fatias de NVIDIA H200 (70 GB no `large`, 141 GB no `xlarge`); em 2026 o ZeroGPU
# passou a fatias de RTX Pro 6000 Blackwell (48 GB no `large`, 96 GB no `xlarge`). Fontes: documentação do Hub
# "Spaces ZeroGPU" e [referências do curso](https://github.com/llm-rapido/curso-llm-rapido/blob/main/docs/referencias.md#zerogpu) (conferidas em 01/12/2026). Não escreva o hardware no código: se
# precisar dele, leia `torch.cuda.get_device_properties(0)` dentro da função decorada.
#
# **Cotas.** A cota é **diária e do visitante** (não do Space): quem chama paga com o próprio tempo. Valores citados, com
# fonte e data (eles mudaram em 2026 e vão mudar de novo; confira a página atual antes de planejar):
#
# | conta | cota diária | prioridade na fila | fonte |
# |---|---|---|---|
# | sem login | 2 min | baixa | documentação do Hub, tabela *Usage Tiers* (versão com H200, em vigor no início de 2026) |
# | gratuita | 3,5 min | média | idem |
# | PRO | 25 min | a mais alta | idem |
#
# Mudanças de 2026: contas PRO podem passar da cota com créditos pré-pagos, US$ 1 a cada 10 minutos (changelog do Hub,
# 10/04/2026); a documentação passou a dizer que a conta PRO tem 8× a cota diária da gratuita, e que contas gratuitas com
# e-mail verificado e mais de 30 dias podem hospedar até 2 Spaces ZeroGPU (PRO: até 10). O pacote `spaces` instalado traz a
# sua própria constante de minutos para PRO, lida logo abaixo.
#
# **`X-IP-Token`.** O Hub acrescenta a cada requisição feita a um Space o cabeçalho `X-IP-Token`, que identifica o
# visitante; é com ele que o ZeroGPU desconta a cota certa. Se o seu app (Space A) chama outro Space ZeroGPU (Space B) com
# o `gradio_client` a partir do servidor, todas as chamadas chegam a B com a identidade de A e esgotam a cota de A. O
# remédio é repassar o token do visitante de A (exemplo na seção 4).

# %%
import spaces


def double(x):
    return 2 * x


# Fora do ZeroGPU (sem a variável SPACES_ZERO_GPU) o decorador devolve a própria função: nenhum efeito.
assert spaces.GPU(double) is double
assert spaces.GPU(duration=30, size="xlarge")(double) is double
print("Fora do ZeroGPU, @spaces.GPU devolve a mesma função: o app roda igual na CPU.")

# Constantes do cliente ZeroGPU, lidas do código do pacote instalado com ast (sem executá-lo).
client_py = Path(importlib.util.find_spec("spaces").submodule_search_locations[0]) / "zero" / "client.py"
wanted = {"TOKEN_HEADER", "DEFAULT_SCHEDULE_DURATION", "PRO_QUOTA_MINUTES"}
constants = {target.id: ast.literal_eval(node.value)
             for node in ast.parse(client_py.read_text(encoding="utf-8")).body if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name) and target.id in wanted}
print(f"spaces {version('spaces')}, zero/client.py: {constants}")
assert constants["DEFAULT_SCHEDULE_DURATION"] == zerogpu.DEFAULT_DURATION_S, \
    "o linter do curso supõe a mesma duração padrão que o pacote instalado"
assert constants["TOKEN_HEADER"].lower() == "x-ip-token"

# %% [markdown]
# ## 2. Um Space completo
#
# Um Space Gradio é uma pasta (um repositório git no Hub) com três arquivos:
#
# - **`app.py`**: o app. Aqui ele baixa os pesos na inicialização (rede e disco, sem GPU), e só **dentro** da função
#   `@spaces.GPU` carrega o modelo no dispositivo que a chamada recebeu, guardando-o num cache do processo para a próxima
#   chamada. A duração pedida é calculada a partir de `max_new_tokens`. Um handler na CPU (`respond`) anota se o
#   `X-IP-Token` chegou e chama a função de GPU.
# - **`requirements.txt`**: o que o Hub instala com `pip`. O `torch` do PyPI (com CUDA); o `gradio` **não** entra aqui, ele
#   vem do `sdk_version` do README. O `spaces` já vem instalado no ZeroGPU; listá-lo deixa o app rodar em outro hardware.
# - **`README.md`**: começa com o *front matter* YAML entre linhas `---`, que diz ao Hub como rodar o Space: `sdk: gradio`
#   (o ZeroGPU só aceita Gradio), `sdk_version` (a versão do Gradio, aqui a mesma instalada neste ambiente), `app_file` e
#   `python_version` **entre aspas** (sem aspas, o YAML lê `3.10` como o número 3.1).
#
# Versões do Space: `torch==2.8.0`, a última da lista de versões suportadas na versão da documentação do Hub que
# consultamos (seção *Supported Versions*) e a primeira que serve ao AoT do ZeroGPU (que exige torch 2.8+);
# `transformers==5.23.0`, a mesma do curso (ela exige torch >= 2.6); `python_version: "3.10"`, a versão de Python da mesma
# seção (3.10.13). Localmente, abaixo, o app roda com o torch e o Python deste ambiente, não com os do Space.

# %%
APP_SOURCE = '''"""Space do curso "LLMs rápidos em hardware modesto": SmolLM2-135M-Instruct num Space ZeroGPU.

O modelo é carregado sob demanda DENTRO da função decorada com @spaces.GPU e fica em cache no
processo. No escopo do módulo não há nenhum trabalho CUDA: só o download dos pesos (rede e disco).
"""
import spaces  # primeiro: antes de qualquer coisa que possa inicializar CUDA

import os
import threading

import gradio as gr
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL_ID = os.environ.get("MODEL_ID", "HuggingFaceTB/SmolLM2-135M-Instruct")
MAX_NEW_TOKENS = 512
_cache = {}
_lock = threading.Lock()


def fetch_weights(model_id):
    """Baixa os pesos na inicialização (sem GPU), para o download não gastar o tempo de GPU da 1a chamada."""
    if os.path.isdir(model_id):
        return model_id
    from huggingface_hub import snapshot_download

    return snapshot_download(model_id)


MODEL_PATH = fetch_weights(MODEL_ID)


def load_model():
    """Carrega tokenizador e modelo uma vez por processo, no dispositivo que a chamada recebeu."""
    with _lock:
        if "model" not in _cache:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = torch.bfloat16 if device == "cuda" else torch.float32
            print(f"carregando o modelo em {device}", flush=True)
            tokenizer = AutoTokenizer.from_pretrained(MODEL_PATH)
            model = AutoModelForCausalLM.from_pretrained(MODEL_PATH, dtype=dtype).to(device)
            _cache.update(model=model.eval(), tokenizer=tokenizer)
    return _cache["model"], _cache["tokenizer"]


def estimate_duration(prompt, max_new_tokens):
    """Segundos de GPU pedidos por chamada: carga do modelo + tempo por token, com folga."""
    return int(20 + 0.05 * max_new_tokens)


@spaces.GPU(duration=estimate_duration)
def generate(prompt, max_new_tokens):
    """Resposta gulosa do modelo (com GPU no ZeroGPU; na CPU fora dele)."""
    model, tokenizer = load_model()
    messages = [{"role": "user", "content": prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=int(max_new_tokens), do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def respond(prompt, max_new_tokens, request: gr.Request):
    """Handler do Gradio (roda na CPU): anota se o X-IP-Token chegou e chama a função de GPU."""
    token = request.headers.get("x-ip-token") if request is not None else None
    print(f"X-IP-Token recebido: {'sim' if token else 'não'}", flush=True)
    return generate(prompt, max_new_tokens)


demo = gr.Interface(
    fn=respond,
    inputs=[gr.Textbox(label="Pergunta (em inglês: o modelo foi treinado quase só em inglês)"),
            gr.Slider(8, MAX_NEW_TOKENS, value=64, step=8, label="Tokens novos")],
    outputs=gr.Textbox(label="Resposta"),
    title="SmolLM2-135M-Instruct no ZeroGPU",
    api_name="generate",
)

if __name__ == "__main__":
    demo.launch()
'''

REQUIREMENTS = """\
torch==2.8.0
transformers==5.23.0
spaces
"""

README = f"""\
---
title: SmolLM2 no ZeroGPU
emoji: 🐢
colorFrom: indigo
colorTo: green
sdk: gradio
sdk_version: "{version('gradio')}"
app_file: app.py
python_version: "3.10"
pinned: false
license: mit
models:
  - {MODEL_ID}
short_description: Exemplo do curso LLMs rápidos no ZeroGPU
---

Exemplo do curso *LLMs rápidos em hardware modesto*: o modelo só vai para a GPU dentro da função `@spaces.GPU`.
"""


def write_space(folder, app=APP_SOURCE, requirements=REQUIREMENTS, readme=README):
    """Escreve os três arquivos de um Space numa pasta (criada se preciso) e devolve o caminho."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("app.py", app), ("requirements.txt", requirements), ("README.md", readme)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


work_dir = Path(tempfile.mkdtemp(prefix="curso_zerogpu_"))
space_dir = write_space(Path(SPACE_DIR) if SPACE_DIR else work_dir / "space")
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
# (roda só quando chamada). Veja como o Python enxerga a linha do erro clássico:

# %%
classic = 'pipe = pipeline("text-generation", model=MODEL_ID, device="cuda")'
call = ast.parse(classic).body[0].value
print(type(call).__name__, "| função:", ast.unparse(call.func))
for keyword in call.keywords:
    print(f"  argumento {keyword.arg!r}: {ast.dump(keyword.value)}")

# %% [markdown]
# `course_utils.zerogpu` percorre essas árvores e aplica sete regras; cada achado sai em pt-BR com `arquivo:linha`:
#
# | regra | o que acusa |
# |---|---|
# | `module_cuda` | trabalho CUDA no escopo do módulo: `.cuda()`, `.to("cuda")` ou `.to(device)` com `device` que pode valer `"cuda"`, `device="cuda"`/`device=0`, `device_map` para a GPU (inclusive `"auto"`), chamadas `torch.cuda.*`, `with torch.device("cuda")`, e funções do módulo que fazem isso chamadas na importação |
# | `no_gpu_function` | nenhuma função decorada com `@spaces.GPU` (nem embrulhada com `spaces.GPU(fn)`) |
# | `spaces_import_order` | `import spaces` depois de uma linha que já inicializou CUDA, ou `@spaces.GPU` sem `import spaces` |
# | `gpu_duration` (aviso) | função `@spaces.GPU` sem `duration=` que gera com `max_new_tokens`/`num_inference_steps` vindos da entrada ou grandes |
# | `requirements_torch` | `requirements.txt` ausente, sem `torch`, com torch < 2.1, só-CPU, ou < 2.8 quando o código usa `spaces.aoti_*` |
# | `gradio_version` | Gradio < 4 no `sdk_version` ou no `requirements.txt` |
# | `readme_front_matter` | README sem front matter, YAML inválido, faltando `sdk`/`sdk_version`/`app_file`, `sdk` que não é `gradio`, `app_file` inexistente, `python_version` sem aspas |
#
# Primeiro, o Space que acabamos de escrever:

# %%
findings = lint_path(space_dir)
print(format_report(findings, space_dir.name))
assert findings == [], "o Space do notebook deveria passar no linter sem nenhum achado"

# %% [markdown]
# Agora um catálogo de erros, um por regra: cada Space ruim é o nosso com **uma** alteração (o primeiro é o erro clássico,
# um `pipeline` criado com `device="cuda"` no escopo do módulo). Também analisamos duas variações corretas, que não podem
# gerar nenhum achado. Quando o notebook roda de um clone do repositório, as fixtures dos testes
# (`tests/fixtures/spaces/`) entram na conta também.

# %%
IMPORTS_END = "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
FIRST_LINE = "import spaces  # primeiro: antes de qualquer coisa que possa inicializar CUDA\n\n"
DECORATOR = "@spaces.GPU(duration=estimate_duration)\n"


def edit_app(old, new):
    """Devolve uma função que troca `old` por `new` no app.py (e confere que `old` existe)."""
    def apply(files):
        assert old in files["app"], f"trecho não encontrado no app: {old!r}"
        return {**files, "app": files["app"].replace(old, new, 1)}
    return apply


def edit(key, old, new):
    def apply(files):
        assert old in files[key], f"trecho não encontrado em {key}: {old!r}"
        return {**files, key: files[key].replace(old, new, 1)}
    return apply


BAD_EDITS = {
    "module_cuda": ("o erro clássico: pipeline com device='cuda' no escopo do módulo", edit_app(
        "MODEL_PATH = fetch_weights(MODEL_ID)\n",
        "MODEL_PATH = fetch_weights(MODEL_ID)\n"
        "from transformers import pipeline\n"
        'pipe = pipeline("text-generation", model=MODEL_PATH, device="cuda")\n')),
    "no_gpu_function": ("o decorador esquecido", edit_app(DECORATOR, "")),
    "spaces_import_order": ("torch.cuda.is_available() antes do import spaces", lambda files: edit_app(
        IMPORTS_END, IMPORTS_END + '\nprint("GPU?", torch.cuda.is_available())\nimport spaces\n')(
        edit_app(FIRST_LINE, "")(files))),
    "gpu_duration": ("@spaces.GPU sem duration, com max_new_tokens vindo da interface",
                     edit_app(DECORATOR, "@spaces.GPU\n")),
    "requirements_torch": ("requirements.txt sem o torch", edit("requirements", "torch==2.8.0\n", "")),
    "gradio_version": ("sdk_version do Gradio 3", edit("readme", f'sdk_version: "{version("gradio")}"',
                                                        'sdk_version: "3.50.2"')),
    "readme_front_matter": ("python_version sem aspas", edit("readme", 'python_version: "3.10"',
                                                             "python_version: 3.10")),
}
GOOD_EDITS = {
    "o Space do notebook": lambda files: files,
    "duração fixa e pesos na CPU no módulo": lambda files: edit_app(DECORATOR, "@spaces.GPU(duration=60)\n")(
        edit_app("MODEL_PATH = fetch_weights(MODEL_ID)\n", "MODEL_PATH = fetch_weights(MODEL_ID)\n"
                 'CPU_COPY = AutoModelForCausalLM.from_pretrained(MODEL_PATH, device_map="cpu")\n')(files)),
}
base_files = {"app": APP_SOURCE, "requirements": REQUIREMENTS, "readme": README}
assert set(BAD_EDITS) == set(zerogpu.RULES), "o catálogo deve ter um exemplo de cada regra do linter"


def lint_variant(name, change):
    files = change(base_files)
    folder = write_space(work_dir / "variantes" / name.replace(" ", "_"), files["app"], files["requirements"],
                         files["readme"])
    return lint_path(folder)


bad_cases, good_cases = [], []  # (origem, nome, regra esperada, regras acusadas) e (origem, nome, achados)
for rule, (description, change) in BAD_EDITS.items():
    findings = lint_variant(rule, change)
    bad_cases.append(("notebook", description, rule, sorted({f.rule for f in findings})))
    print(f"--- {description}\n{format_report(findings)}\n")
for name, change in GOOD_EDITS.items():
    good_cases.append(("notebook", name, lint_variant(name, change)))

fixtures = Path.cwd().parent / "tests" / "fixtures" / "spaces"
if fixtures.is_dir():
    for folder in sorted((fixtures / "bad").iterdir()):
        rules = sorted({f.rule for f in lint_path(folder)})
        bad_cases.append(("fixture", folder.name, folder.name.split("__")[0], rules))
    for folder in sorted((fixtures / "good").iterdir()):
        good_cases.append(("fixture", folder.name, lint_path(folder)))
else:
    print("(sem tests/fixtures/spaces aqui: só o catálogo do notebook entra na conta)")

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
# Python, 6 pasta vazia. Assim ele serve num *hook* de pré-commit ou na CI do seu Space.

# %%
def lint_cli(*args):
    done = subprocess.run([sys.executable, "-m", "course_utils.zerogpu", "lint", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, (done.stdout + done.stderr).strip()


broken_syntax = write_space(work_dir / "sintaxe", app=APP_SOURCE.replace("def load_model():", "def load_model(:"))
empty_dir = work_dir / "vazia"
empty_dir.mkdir(exist_ok=True)
cli_cases = [(space_dir, 0), (work_dir / "variantes" / "module_cuda", 1),
             (work_dir / "variantes" / "gpu_duration", 0), (work_dir / "nao_existe", 3),
             (broken_syntax, 4), (space_dir / "README.md", 5), (empty_dir, 6)]
for target, expected in cli_cases:
    code_, output = lint_cli(target)
    print(f"$ python -m course_utils.zerogpu lint .../{target.name}  -> código {code_}")
    print("  " + output.replace("\n", "\n  ")[:400] + "\n")
    assert code_ == expected, f"esperava o código {expected} para {target.name}, veio {code_}"
    assert "Traceback" not in output, "entrada ruim deve dar uma mensagem, não um traceback"
strict_code, _ = lint_cli("--strict", work_dir / "variantes" / "gpu_duration")
assert strict_code == 1, "com --strict um aviso também falha"
print("Códigos de saída conferidos, inclusive --strict.")

# %% [markdown]
# ## 4. O Space rodando de verdade, na sua máquina
#
# Como o decorador não tem efeito fora do ZeroGPU, o mesmo `app.py` roda na CPU. Subimos o app num processo à parte
# (`python app.py`, um servidor Gradio de verdade em `127.0.0.1`), chamamos a API dele com o `gradio_client`, conferimos a
# resposta e desligamos o servidor. Sem internet, o modelo vem da cópia offline do curso: passamos o caminho dela ao app
# pela variável `MODEL_ID` (no Hub, o app usa o ID do Hub). O servidor roda com `CUDA_VISIBLE_DEVICES=""`, na CPU, como um
# Space sem GPU.
#
# Para conferir a resposta, geramos o mesmo texto aqui no notebook, com `load_model`/`load_tokenizer` do curso, no modo
# guloso: os dois lados têm de dar exatamente os mesmos tokens.

# %%
tokenizer = load_tokenizer(MODEL_ID)
model = load_model(MODEL_ID, device="cpu", dtype=torch.float32)
inputs = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                       return_tensors="pt", return_dict=True)
with torch.inference_mode():
    out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
reference = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
print(f"referência (no notebook): {reference!r}")

# %%
from gradio_client import Client


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url, process, timeout_s, log_path):
    """Espera o servidor responder; se o processo morrer antes, mostra o fim do log."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if process.poll() is not None:
            raise RuntimeError("o app morreu ao iniciar:\n" + log_path.read_text(encoding="utf-8")[-2000:])
        try:
            urllib.request.urlopen(url, timeout=2)
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"o servidor não respondeu em {timeout_s} s:\n" + log_path.read_text(encoding="utf-8")[-2000:])


port = free_port()
url = f"http://127.0.0.1:{port}/"
log_path = work_dir / "app.log"
env = {**os.environ, "MODEL_ID": resolve_model(MODEL_ID), "GRADIO_SERVER_NAME": "127.0.0.1",
       "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "CUDA_VISIBLE_DEVICES": ""}
answers, call_seconds = [], []
with open(log_path, "w", encoding="utf-8") as log:
    server = subprocess.Popen([sys.executable, "app.py"], cwd=space_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        startup_s = wait_for_server(url, server, SERVER_TIMEOUT_S, log_path)
        print(f"servidor no ar em {url} depois de {startup_s:.1f} s")
        client = Client(url, headers={"X-IP-Token": "token-de-teste"}, verbose=False, analytics_enabled=False)
        for _ in range(2):
            start = time.perf_counter()
            answers.append(client.predict(PROMPT, NEW_TOKENS, api_name="/generate"))
            call_seconds.append(time.perf_counter() - start)
        client.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
app_log = log_path.read_text(encoding="utf-8")
loads = app_log.count("carregando o modelo")
tokens_seen = app_log.count("X-IP-Token recebido: sim")
print(f"respostas do Space: {answers}")
print(f"1a chamada {call_seconds[0]:.2f} s (inclui carregar o modelo), 2a {call_seconds[1]:.2f} s; "
      f"o app carregou o modelo {loads} vez(es) e viu o X-IP-Token em {tokens_seen} chamada(s); "
      f"servidor encerrado com código {server.returncode}")
claim("o Space roda localmente e responde ao gradio_client o que o modelo gera", answers == [reference, reference])
assert loads == 1, "o modelo deveria ser carregado uma vez só: a 2a chamada usa o cache do processo"
assert tokens_seen == 2, "o X-IP-Token enviado pelo gradio_client deveria chegar ao app nas duas chamadas"
assert server.poll() is not None, "o servidor deveria estar desligado"
local_app_ok = True

# %% [markdown]
# O log do app mostra o que aconteceu lá dentro: uma única carga do modelo (a segunda chamada usou o cache do processo) e o
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
# "ZeroGPU does not support `torch.compile`".
#
# A saída é compilar **antes** (*ahead of time*, AoT) e reaproveitar o artefato:
#
# 1. `spaces.aoti_capture(module)`: um gerenciador de contexto que roda o pipeline uma vez e **captura** os argumentos com
#    que o módulo (por exemplo o *transformer* de um modelo de difusão) é chamado;
# 2. `torch.export.export(module, args=..., kwargs=...)`: transforma o módulo num grafo completo, sem quebras;
# 3. `spaces.aoti_compile(exported)`: compila o grafo com o **AOTInductor** num pacote (código C++/CUDA gerado + uma
#    biblioteca compilada) que vive fora do processo e pode ser carregado por qualquer processo filho;
# 4. `spaces.aoti_apply(compiled, module)`: troca o `forward` do módulo pelo compilado e libera os pesos originais.
#
# A compilação roda uma vez (numa função `@spaces.GPU` longa, na inicialização, ou antes, publicada no Hub); cada chamada
# só carrega o pacote. Exige torch 2.8+ (é por isso que o linter confere o `requirements.txt` quando o código usa
# `spaces.aoti_*`). Abaixo fazemos o mesmo caminho, `torch.export` + AOTInductor, na CPU, com um bloco pequeno (RMSNorm,
# projeção e GELU escritos com operações elementares, como em muitos modelos), e medimos o tempo de compilar e a latência
# antes e depois.

# %%
import math


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


import shutil

if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")):
    raise RuntimeError("O AOTInductor gera C++ e precisa de um compilador (g++). No Debian/Ubuntu: "
                       "apt-get install g++; o Colab já tem.")
aot_device = device if (AOT_ON_GPU or not device.startswith("cuda")) else "cpu"
aoti_skipped_reason = None
if aot_device != device:
    aoti_skipped_reason = "AoT em CUDA não executado (AOT_ON_GPU=False); a demonstração roda na CPU"
    print(aoti_skipped_reason + ".")
block = TinyBlock().to(aot_device).eval()
example = torch.randn(16, 256, 512, device=aot_device)
print("compilando com AOTInductor (na CPU leva de segundos a dezenas de segundos: é o custo que o JIT pagaria em "
      "cada processo novo)...")
# A compilação roda num processo filho: se o compilador ou o driver derrubarem o processo, o notebook continua
# e diz o que aconteceu (num Space, a falha derrubaria só o build, não o app).
AOT_COMPILE = """
import sys, time, torch
start = time.perf_counter()
exported = torch.export.load(sys.argv[1])
torch._inductor.aoti_compile_and_package(exported, package_path=sys.argv[2])
print(f"compilado {time.perf_counter() - start:.3f}", flush=True)
# carregar e chamar uma vez aqui, no processo filho: se o carregamento derrubar o processo, só o filho morre
compiled = torch._inductor.aoti_load_package(sys.argv[2])
with torch.no_grad():
    compiled(torch.load(sys.argv[3]))
print("carregado", flush=True)
"""


def compile_aot(block, example):
    """Exporta aqui; compila, carrega e chama uma vez num processo filho. Devolve (módulo, segundos) ou (None, motivo)."""
    with torch.no_grad():
        exported = torch.export.export(block, (example,))
    torch.export.save(exported, work_dir / "bloco_exportado.pt2")
    torch.save(example, work_dir / "exemplo.pt")
    package = work_dir / f"bloco_{example.device.type}.pt2"
    child = subprocess.run([sys.executable, "-c", AOT_COMPILE, str(work_dir / "bloco_exportado.pt2"), str(package),
                            str(work_dir / "exemplo.pt")], capture_output=True, text=True, timeout=900)
    lines = child.stdout.split()
    if child.returncode != 0:
        stage = "ao carregar o pacote já compilado" if "compilado" in lines else "na compilação"
        died = f"o processo morreu com o sinal {-child.returncode}" if child.returncode < 0 else \
            f"código de saída {child.returncode}"
        errors = [line for line in (child.stderr or "").splitlines() if "Error" in line][-1:]
        return None, f"{died} {stage}" + (f" ({errors[0].strip()[:200]})" if errors else "")
    seconds = float(lines[lines.index("compilado") + 1])
    return torch._inductor.aoti_load_package(str(package)), seconds

compiled, aoti_compile_s = compile_aot(block, example)
if compiled is None and example.device.type != "cpu":
    print(f"A compilação AoT para {example.device} falhou neste ambiente ({aoti_compile_s}). "
          "Repetimos a demonstração na CPU, onde só é preciso o g++.")
    aoti_skipped_reason = f"AoT em {example.device} falhou: {aoti_compile_s}"
    block, example = block.cpu(), example.cpu()
    compiled, aoti_compile_s = compile_aot(block, example)
eager_ms = measure_latency(lambda: block(example), warmup=2, repeats=AOT_REPEATS)["median_ms"]
aoti_ms = aoti_speedup = None
if compiled is None:
    # Nenhum número de AoT aparece sem medida: dizemos o que falhou e seguimos (na CI, a meta aoti_speedup > 0
    # dos testes falha se isso acontecer na CPU de referência).
    aoti_skipped_reason = "; ".join(filter(None, [aoti_skipped_reason, f"AoT em {example.device} falhou: {aoti_compile_s}"]))
    aoti_compile_s = None
    print(f"O AoT não rodou neste ambiente ({aoti_skipped_reason}). Sem número de AoT nesta execução; o eager mediu "
          f"{eager_ms:.1f} ms. Com outro torch/máquina, rode de novo.")
else:
    package = work_dir / f"bloco_{example.device.type}.pt2"
    with torch.no_grad():
        aoti_max_diff = (compiled(example) - block(example)).abs().max().item()
    print(f"export + compilação: {aoti_compile_s:.1f} s; pacote de {Path(package).stat().st_size / 2**20:.1f} MiB; "
          f"maior diferença para o eager: {aoti_max_diff:.2e}")
    assert aoti_max_diff < 1e-3, "o módulo compilado deveria calcular o mesmo que o eager"
    aoti_ms = measure_latency(lambda: compiled(example), warmup=2, repeats=AOT_REPEATS)["median_ms"]
    aoti_speedup = eager_ms / aoti_ms
    print(f"latência (mediana de {AOT_REPEATS}): eager {eager_ms:.1f} ms | AoT {aoti_ms:.1f} ms | {aoti_speedup:.2f}x")
if aoti_speedup is None:
    pass
elif aoti_speedup > 1:
    print("Aqui o AoT ganhou: o AOTInductor funde as operações elementares num só laço, lendo e escrevendo a memória "
          "menos vezes.")
else:
    print("Aqui o AoT não ganhou: neste processador, com esta carga, as operações do eager já eram tão rápidas quanto "
          "o código gerado. Compilar nem sempre compensa; meça.")

# %%
# Os embrulhos do próprio `spaces` (aoti_capture/aoti_compile/aoti_apply) precisam de um torch com CUDA.
import warnings

warnings.filterwarnings("ignore", message="Error while reading infos from Nvidia driver FS")
if aoti_skipped_reason:
    print("Os embrulhos spaces.aoti_* (que compilam para CUDA) ficam de fora nesta execução: " + aoti_skipped_reason + ".")
else:
    try:
        with spaces.aoti_capture(block) as captured:
            block(example)
        exported_call = torch.export.export(block, args=captured.args, kwargs=captured.kwargs)
        zerogpu_compiled = spaces.aoti_compile(exported_call)
        reference_out = block(example).detach()
        spaces.aoti_apply(zerogpu_compiled, block)
        with torch.no_grad():
            spaces_diff = (block(example) - reference_out).abs().max().item()
        print(f"spaces.aoti_capture/compile/apply funcionaram aqui; maior diferença para o eager: {spaces_diff:.2e}")
        assert spaces_diff < 1e-3, "o módulo com o forward compilado pelo spaces deveria calcular o mesmo"
    except Exception as exc:  # o que falhou aqui é informação, não erro do notebook
        print(f"Os embrulhos spaces.aoti_* não rodam neste ambiente (torch {torch.__version__}, CUDA "
              f"{torch.version.cuda}): {type(exc).__name__}: {str(exc)[:200]}")
        if torch.version.cuda is None:
            print("Esperado: o pacote `spaces` só importa o AoT com um torch compilado com CUDA. No Space (ou no Colab "
                  "com GPU) o caminho é o mesmo da célula anterior, com as funções do `spaces` por cima.")

# %% [markdown]
# ## 6. Quando dá errado: sintomas, causas e correções
#
# | sintoma (mensagem) | causa real | correção |
# |---|---|---|
# | "No @spaces.GPU function detected" (log do Space) | nenhuma função decorada foi definida na inicialização (decorador esquecido, ou a função fica num módulo que o app não importa antes do `launch`) | decore a função que usa a GPU; regra `no_gpu_function` |
# | "CUDA has been initialized before importing the `spaces` package" | algo chamou o driver antes do `import spaces` (até `torch.cuda.is_available()`) | `import spaces` na primeira linha; regra `spaces_import_order` |
# | "Can't initialize NVML", "Found no NVIDIA driver" na inicialização | trabalho CUDA de verdade no processo principal, que não tem GPU (consulta de memória, bitsandbytes, kernels próprios) | mova para dentro da função `@spaces.GPU`; regra `module_cuda` |
# | "You have exceeded your free ZeroGPU quota (60s requested vs. 45s left)" | a duração **pedida** não cabe na cota que resta ao visitante | peça menos (`duration` calculada a partir da entrada); o visitante pode fazer login ou esperar a cota voltar |
# | "The requested GPU duration (…s) is larger than the maximum allowed" | `duration` acima do máximo por chamada da conta do visitante | reduza a duração; divida o trabalho em chamadas menores |
# | "GPU task is exceeding its requested duration", depois "GPU task aborted" | a função passou da duração pedida | aumente `duration` ou calcule-a da entrada; regra `gpu_duration` |
# | "No GPU was available after 60s" | fila cheia, prioridade baixa (pedido longo, pouca cota sobrando) | durações menores sobem na fila; tente de novo |
# | "Space app has reached its GPU limit" em chamadas pela API | chamadas sem `X-IP-Token`: tudo sai da cota de uma identidade só | repasse o `X-IP-Token` (seção 4) ou chame com o token do usuário |
# | `PicklingError` ao chamar a função | argumento ou resultado que não atravessa processos (gerador, objeto com trava, conexão aberta) | devolva tipos simples (texto, números, imagens) |
# | "ZeroGPU is only compatible with Gradio 4+" | `sdk_version` antigo | suba o `sdk_version`; regra `gradio_version` |
# | o Space nem sobe, ou sobe com outra versão do Python | front matter ausente ou inválido (`python_version: 3.10` sem aspas vira 3.1) | confira o YAML; regra `readme_front_matter` |
#
# As mensagens entre aspas são do pacote `spaces` (0.51.3) ou do log de inicialização dos Spaces; as causas e correções são
# as que este notebook e o linter explicam.
#
# **Checklist antes de publicar**
# 1. `import spaces` é a primeira linha do `app.py`.
# 2. Nenhum trabalho CUDA no escopo do módulo: pesos baixados (ou carregados na CPU) ali, GPU só dentro de `@spaces.GPU`.
# 3. Toda função que usa a GPU tem `@spaces.GPU`, com `duration=` do tamanho do trabalho (uma função da entrada quando
#    o trabalho varia); `size="xlarge"` só se a memória do `large` não bastar (custa o dobro de cota).
# 4. Argumentos e resultados das funções de GPU são tipos simples.
# 5. `requirements.txt` com `torch` (do PyPI, com CUDA; 2.8+ se usar `spaces.aoti_*`) e sem `gradio`.
# 6. README com `sdk: gradio`, `sdk_version` (Gradio 4+), `app_file` e `python_version` entre aspas.
# 7. `python -m course_utils.zerogpu lint PASTA` sem erros, e o app testado localmente com o `gradio_client`.
# 8. Se o app chama outro Space ZeroGPU, ele repassa o `X-IP-Token`.
# 9. Hardware e cotas vêm da documentação do dia, não de números escritos no código.

# %% [markdown]
# ## Exercícios
#
# **Exercício 1.** O app abaixo comete os erros mais comuns. Conserte-o até o linter não acusar mais nada, mantendo o
# `pipeline` na GPU (a GPU só pode ser usada dentro da função decorada). Comece copiando `APP_QUEBRADO` para
# `app_consertado` e rode `print(format_report(lint_source(app_consertado)))` para ver o que ainda falta.

# %%
APP_QUEBRADO = '''import torch
from transformers import pipeline

print("GPU disponível:", torch.cuda.is_available())

import gradio as gr
import spaces

pipe = pipeline("text-generation", model="HuggingFaceTB/SmolLM2-135M-Instruct", device="cuda")


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
# `gerar(prompt, max_new_tokens)`: 10 s fixos (carga do modelo) + 0,05 s por token novo, **arredondado para cima**, e nunca
# mais que 120 s. Lembre que o `spaces` chama a função de duração com os mesmos argumentos da função decorada.

# %% curso={"exercicio": "00.2", "resposta": "estimar"} tags=["exercicio"]
def estimar(prompt, max_new_tokens):
    # seu código aqui
    ...

check("00.2", estimar)

# %% [markdown]
# **Exercício 3.** Uma função decorada com `@spaces.GPU(duration=45, size="xlarge")` roda de fato 30 s. Quantos segundos
# da cota diária do visitante essa chamada consome?

# %% curso={"exercicio": "00.3", "resposta": "resposta_3"} tags=["exercicio"]
resposta_3 = None  # substitua por um número (segundos)
check("00.3", resposta_3)

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
    "aoti_compile_s": aoti_compile_s,
    "aoti_eager_ms": eager_ms,
    "aoti_compiled_ms": aoti_ms,
    "aoti_speedup": aoti_speedup,
    "aoti_device": example.device.type,
}
if aoti_skipped_reason:
    results["aoti_skipped_reason"] = aoti_skipped_reason
for key, value in results.items():
    if value is not None:  # o que não foi medido (ex.: AoT que falhou) não vira número
        record(key, value)

# %% [markdown]
# **Para levar.** (1) No ZeroGPU a GPU é emprestada por chamada: o processo principal não tem GPU, então o trabalho CUDA vai
# para dentro de `@spaces.GPU`, e `import spaces` vem primeiro. (2) `duration` é um pedido à fila e à cota do visitante:
# calcule-o a partir da entrada. (3) Um linter sobre a AST pega esses erros antes do *push*; um teste local com o
# `gradio_client` pega o resto. (4) No ZeroGPU, compile antes (AoT), não na hora (JIT). Próximo: **01 · Quantização
# pós-treinamento**, para caber mais modelo na mesma GPU.
