"""Configuração única do curso: de onde vêm os badges do Colab e a instalação no Colab.

Mude GITHUB_REPO/GITHUB_BRANCH aqui e rode `make notebooks` para regenerar `colab_badges.md`,
a célula de badge e a célula de instalação de cada notebook.
Um teste confere que tudo concorda com estes dois valores.
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

# Notebooks que pedem ao Colab uma GPU T4 (metadados `accelerator`/`gpuType` gerados por `make notebooks`).
COLAB_T4 = {"01_quantizacao_ptq", "02_awq_gptq"}

# Versões instaladas pela célula de configuração no Colab (o torch do Colab é mantido).
COLAB_PINS = ["transformers==5.23.0", "accelerate==1.15.0", "bitsandbytes==0.50.2", "torchao==0.18.0"]
