"""Configuração única do curso: de onde vêm os badges do Colab e a instalação no Colab.

GITHUB_REPO/GITHUB_BRANCH dizem de onde o Colab abre os notebooks (os badges); a célula de instalação usa
GITHUB_REPO e o commit do pacote que `make notebooks` carimba nela. Mude-os aqui e rode `make notebooks` para
regenerar `colab_badges.md`, a célula de badge e a célula de instalação de cada notebook; um teste confere que tudo
concorda.
"""

GITHUB_REPO = "llm-rapido/curso-llm-rapido"
GITHUB_BRANCH = "main"

REFERENCE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

# Notebooks do curso, na ordem (nome do arquivo sem .ipynb -> título).
NOTEBOOKS = {
    "00_zerogpu_spaces": "Spaces com ZeroGPU",
    "01_quantizacao_ptq": "Quantização pós-treinamento (INT8, bitsandbytes, torchao)",
    "02_awq_gptq": "AWQ e GPTQ",
    "03_offloading": "Offloading para CPU e disco",
    "04_janela_deslizante": "Janela deslizante e attention sinks",
    "05_kv_cache": "Cache KV",
    "06_onnx_runtime": "ONNX Runtime",
    "07_tensorrt": "TensorRT",
    "08_colab_7b": "Um modelo 7B no Colab",
}

# Notebooks que pedem ao Colab uma GPU T4 (metadados `accelerator`/`gpuType` gerados por `make notebooks`): os que têm
# seções que só rodam com GPU (bitsandbytes/torchao na GPU, offload CPU↔GPU, TensorRT, o 7B).
COLAB_T4 = {"01_quantizacao_ptq", "02_awq_gptq", "03_offloading", "07_tensorrt", "08_colab_7b"}

# --- Instalação no Colab (course_utils/course/colab.py; provada por tests/test_colab_setup.py) ---
# Pinos do curso instalados em todo notebook. O transformers 5.23 aceita huggingface_hub>=1.31,<3: com a restrição
# huggingface_hub<2 (do gradio do Colab) o pip fica na 1.x.
COLAB_PINS = ["transformers==5.23.0", "accelerate==1.15.0"]

# O que cada lição usa além disso. `torchao` vai sem versão: a restrição escolhe a do torch instalado.
# onnx 1.22.0 e não 1.23.x: o 1.23 exige protobuf>=6.31.1, e o grpcio-status do Colab exige protobuf<6.
COLAB_ONNX = ["onnx==1.22.0", "onnxscript==0.7.2", "onnxruntime==1.32.0"]
COLAB_NOTEBOOK_PACKAGES = {
    "00_zerogpu_spaces": ["gradio>=6,<7", "gradio_client>=2,<3", "spaces==0.51.3"],
    "01_quantizacao_ptq": ["bitsandbytes==0.50.2", "torchao"],
    # AWQ e AutoRound por uma biblioteca mantida (seção 8; o porquê da escolha em results/gptqmodel/README.md)
    "02_awq_gptq": ["auto-round==0.16.1"],
    "03_offloading": ["bitsandbytes==0.50.2"],
    "06_onnx_runtime": [*COLAB_ONNX, "onnxruntime-genai==0.18.0"],
    "07_tensorrt": COLAB_ONNX,
    "08_colab_7b": ["bitsandbytes==0.50.2"],
}

# Ficam na versão que o Colab tem (o torch e os pacotes compilados contra ele; protobuf e ipywidgets, de que dependem
# o TensorFlow, os clientes do Google e os widgets do próprio Colab).
COLAB_KEEP = ["torch", "torchvision", "torchaudio", "protobuf", "ipywidgets"]

# Ficam dentro das faixas que os pacotes instalados declaram sobre eles (ex.: o gradio e o diffusers exigem
# huggingface_hub<2).
COLAB_GUARDED = ["huggingface_hub"]

# O torchao cujos kernels compilados casam com o torch: (torch mínimo, torchao), do mais novo ao mais antigo.
# Fonte: tabela de compatibilidade do torchao (github.com/pytorch/ao/issues/2919, consultada em 2026-08) e o
# torchao/__init__.py da 0.18.0 (exige torch>=2.11; do 0.17 em diante o ABI é estável e vale para torch mais novos).
COLAB_TORCHAO_BY_TORCH = [
    ("2.11.0", "0.18.0"),
    ("2.10.0", "0.16.0"),
    ("2.9.1", "0.15.0"),
    ("2.9.0", "0.14.1"),
    ("2.8.0", "0.13.0"),
    ("2.5.0", "0.12.0"),
]

# Variável de ambiente que o runner e o corretor põem nos kernels que executam sem interface (papermill): com ela, os
# controles (ipywidgets) não são criados, só o resultado com os valores padrão (um `interact` sem navegador pode
# travar o nbclient: jupyter/nbclient#312, nteract/papermill#723).
HEADLESS_ENV = "COURSE_HEADLESS"
