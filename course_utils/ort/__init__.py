"""ONNX Runtime para LLMs: sessões, logits, perplexidade, quantização e geração com o onnxruntime-genai.

- `create_session`, `session_at_level`: uma InferenceSession com o nível de otimização de grafo e os provedores
  escolhidos (e os nós do grafo que ela otimizou).
- `OrtCausalLM` / `ort_perplexity`: a sessão vestida de modelo do PyTorch, para usar exatamente a
  mesma `course_utils.measure.perplexity` (os mesmos tokens avaliados, a mesma janela).
- `quantize_dynamic_int8`, `quantize_weight_only`: INT8 dinâmico e INT8/INT4 só nos pesos (MatMulNBits).
- `build_genai_model`, `genai_generate`: o model builder do onnxruntime-genai (grafo com cache KV,
  GroupQueryAttention, pesos fp32 ou int4) e a geração gulosa com medida de prefill e decode.
- `dynamic_quantize_uint8`, `u8s8_matmul`: o INT8 por dentro de um MatMul (escala por tensor, soma saturada).
- `scratch_dir`: a pasta temporária dos arquivos de passagem, apagada quando o processo termina.

Módulos: `sessions`, `files` (operadores, MiB, bytes lidos por passada, arquivos de passagem, versões),
`quantization`, `genai`, `int8_matmul`.
"""

from .files import (
    int4_recipe,
    matmul_weight_bytes,
    matmulnbits_attributes,
    onnx_file_mb,
    onnx_versions,
    op_counts,
    scratch_dir,
    scratch_path,
)
from .genai import build_genai_model, builder_command, genai_generate, load_genai_model, tokenizer_round_trip
from .int8_matmul import (
    compare_with_simulations,
    cpu_int8_instructions,
    dynamic_quantize_uint8,
    matmulnbits_model,
    ort_int4_blocks,
    saturation_verdict,
    single_matmul_model,
    u8s8_matmul,
)
from .quantization import (
    VARIANT_KEYS,
    cached_quantization,
    quantize_dynamic_int8,
    quantize_weight_only,
    variant_results,
    weights_of_dynamic_int8,
)
from .sessions import (
    LEVELS,
    OrtCausalLM,
    attention_head_dim,
    create_session,
    cuda_branch_skip_reason,
    make_feeds,
    ort_perplexity,
    quiet_onnxruntime,
    run_logits,
    session_at_level,
    session_of_optimizer_output,
)

__all__ = [
    "LEVELS", "OrtCausalLM", "VARIANT_KEYS", "attention_head_dim", "build_genai_model", "builder_command",
    "cached_quantization", "compare_with_simulations", "cpu_int8_instructions", "create_session",
    "cuda_branch_skip_reason", "dynamic_quantize_uint8", "genai_generate", "int4_recipe", "load_genai_model", "make_feeds",
    "matmul_weight_bytes", "matmulnbits_attributes", "matmulnbits_model", "onnx_file_mb", "onnx_versions", "op_counts",
    "ort_int4_blocks", "ort_perplexity", "quantize_dynamic_int8", "quantize_weight_only", "quiet_onnxruntime",
    "run_logits", "saturation_verdict", "scratch_dir", "scratch_path", "session_at_level",
    "session_of_optimizer_output", "single_matmul_model", "tokenizer_round_trip", "u8s8_matmul", "variant_results",
    "weights_of_dynamic_int8",
]
