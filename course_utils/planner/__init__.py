"""Planejador de memória: antes de baixar um byte de pesos, diz se um modelo cabe no seu hardware.

    plan = plan_memory("meta-llama/Llama-2-7b-chat-hf", hardware="colab_t4", context_tokens=2048)
    print(plan)            # tabela por formato + veredito + explicação em português
    plan.choice            # o formato recomendado, ex. "nf4-dq"

Os pesos são contados **como as bibliotecas os guardam**, a partir da configuração (um `PretrainedConfig`,
um dict no estilo do config.json ou o ID do Hub): o modelo é montado no dispositivo `meta` (só formatos,
nenhum byte alocado) e cada tensor é contado:

- fp32/fp16/bf16: todos os parâmetros e buffers no dtype (buffers como `inv_freq` ficam em fp32);
- int8 (LLM.int8 do bitsandbytes): cada `nn.Linear` quantizável guarda o peso em int8 [saídas, entradas]
  e uma escala fp32 por linha (`SCB`);
- nf4 (4 bits do bitsandbytes): peso empacotado em uint8 (2 pesos por byte), um absmax fp32 por bloco de 64
  pesos e o mapa de 16 níveis (`quant_map`, 16 floats);
- nf4-dq (dupla quantização, QLoRA): o absmax vira uint8, com um absmax fp32 por bloco de 256 absmax,
  um deslocamento fp32 e o mapa dinâmico de 256 floats do segundo nível.

Como no transformers, não são quantizados: embeddings, normas, o `lm_head` (e o que compartilha pesos com ele),
que ficam no dtype de computação (fp16 na GPU, fp32 na CPU), e os módulos de `_keep_in_fp32_modules`, em fp32.
Com offload, o transformers também deixa sem quantizar os módulos que vão para a CPU ou o disco
(`llm_int8_enable_fp32_cpu_offload`): eles ficam no dtype de carga (medido: fp16), não em int8/nf4.

O resto da conta (cache KV, folga para ativações, reserva do runtime) está em `plan_memory`; as ativações
(`activation_bytes`) são um limite de cima do que está vivo no pico do prefill, conferido contra os picos de um 7B
medidos numa GPU (notebook 08, seção 6).

Módulos: `weights` (bytes dos pesos), `hardware` (presets e esta máquina), `memory_plan` (cache KV, ativações,
vereditos e escolha), `loading` (argumentos do from_pretrained, o BitsAndBytesConfig de cada formato e checkpoint aleatório),
`measure` (memória do processo agora, os pesos previstos contra os carregados e um 7B de pesos aleatórios medido
na GPU, termo a termo contra o plano).
"""

from .hardware import GIB, GPU_RESERVE_GIB, PRESETS, T4_CUDA_TOTAL_GIB, Hardware, detect_hardware
from .loading import bnb_quantization_config, from_pretrained_kwargs, load_for_chat, write_random_checkpoint
from .measure import (
    compare_with_plan,
    measure_from_config,
    memory_report,
    peak_table,
    verify_weight_predictions,
    weight_check_table,
)
from .memory_plan import (
    CUBLAS_WORKSPACE_BYTES,
    PREFER_CPU,
    PREFER_GPU,
    VERDICTS,
    FormatPlan,
    MemoryPlan,
    activation_bytes,
    int8_linear_peak_bytes,
    plan_memory,
    plan_presets,
    verdict_table,
)
from .weights import (
    DQ_BLOCK,
    FORMAT_LABELS,
    FORMATS,
    NF4_BLOCK,
    QUANTIZED,
    REQUIRED_FIELDS,
    describe_config,
    load_config,
    measured_weight_bytes,
    weight_bytes,
    weight_gib,
)

__all__ = [
    "bnb_quantization_config", "compare_with_plan", "measure_from_config", "memory_report", "peak_table",
    "verify_weight_predictions", "weight_check_table",
    "CUBLAS_WORKSPACE_BYTES", "DQ_BLOCK", "FORMATS", "FORMAT_LABELS", "GIB", "GPU_RESERVE_GIB", "NF4_BLOCK",
    "PREFER_CPU", "PREFER_GPU", "PRESETS", "QUANTIZED", "REQUIRED_FIELDS", "T4_CUDA_TOTAL_GIB", "VERDICTS",
    "FormatPlan", "Hardware", "MemoryPlan", "activation_bytes", "describe_config", "detect_hardware",
    "from_pretrained_kwargs", "int8_linear_peak_bytes", "load_config", "load_for_chat", "measured_weight_bytes",
    "plan_memory", "plan_presets", "verdict_table", "weight_bytes", "weight_gib", "write_random_checkpoint",
]
