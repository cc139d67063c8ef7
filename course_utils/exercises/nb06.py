"""Juízes dos exercícios do notebook 06 (ONNX Runtime), registrados com @exercise."""


import torch

from . import _judge_number, delegation_message, exercise, watch_calls


def _int4_shortcuts():
    """O que já reconstrói os pesos do MatMulNBits: o grafo de um MatMulNBits só do pacote (e o quantizador do ORT),
    rodado numa sessão do ONNX Runtime. Usar isso é delegar ao kernel, não escrever o desempacotamento."""
    import onnxruntime as ort

    from ..ort import create_session, int8_matmul

    return (int8_matmul.matmulnbits_model, int8_matmul.ort_int4_blocks, create_session, ort.InferenceSession)


def _int8_shortcuts():
    from ..ort import int8_matmul

    return (int8_matmul.dynamic_quantize_uint8, int8_matmul.u8s8_matmul, int8_matmul.compare_with_simulations)


@exercise("06.1", "teto de tokens/s de um 7B em INT4 a 50 GB/s", "um número (tokens/s, float)")
def _decode_bound_int4(answer):
    bits_per_weight = 4 + 16 / 32           # 4 bits + uma escala fp16 por bloco de 32
    bytes_per_token = 7e9 * bits_per_weight / 8
    expected = 50e9 / bytes_per_token
    return _judge_number(answer, expected, 0.01, [
        (50e9 / (7e9 * 4 / 8), "faltou o custo da escala: cada bloco de 32 pesos guarda também 16 bits de escala."),
        (50e9 / (7e9 * bits_per_weight), "cuidado com a unidade: bits por peso viram bytes dividindo por 8."),
        (50e9 / (7e9 * 2), "isso é o teto em fp16 (2 bytes por peso); o modelo está em INT4."),
        (50e9 / (7e9 * 4), "isso é o teto em fp32 (4 bytes por peso); o modelo está em INT4."),
    ])


def _as_numpy(value):
    import numpy as np

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# entradas e saídas do MatMulNBits (pesos reconstruídos W [K, N]), guardadas como dados
_UNPACK_CASES = {
    "dois blocos de 16 com pontos-zero (número ímpar de blocos)": {
        "B": [[[254, 130, 238, 113, 145, 35, 197, 137], [223, 16, 140, 132, 135, 153, 224, 87], [239, 51, 54, 242,
            204, 48, 123, 94]], [[101, 51, 97, 168, 32, 5, 223, 95], [109, 161, 45, 115, 227, 49, 201, 252], [211,
            245, 193, 47, 169, 80, 252, 161]]],
        "escalas": [[0.5, 0.25, 0.125], [1.0, 0.0625, 0.5]],
        "pontos_zero": [[234, 92], [78, 109]],
        "W": [[2.0, -9.0], [2.5, -8.0], [-4.0, -11.0], [-1.0, -11.0], [2.0, -13.0], [2.0, -8.0], [-4.5, -6.0], [-1.5,
            -4.0], [-4.5, -14.0], [-0.5, -12.0], [-3.5, -9.0], [-4.0, -14.0], [-2.5, 1.0], [1.0, -1.0], [-0.5, 1.0],
            [-1.0, -9.0], [0.25, 0.5625], [-0.25, 0.125], [-3.5, -0.1875], [-3.25, 0.375], [-0.5, 0.5625], [-1.5,
            -0.125], [-2.5, -0.0625], [-1.5, 0.1875], [-1.75, -0.0625], [-1.5, 0.625], [-1.25, -0.1875], [-1.25,
            -0.0625], [-3.5, 0.3125], [0.0, 0.5], [-1.75, 0.5], [-2.25, 0.6875], [0.375, -5.0], [0.25, 0.0],
            [-1.125, -4.0], [-1.125, 1.0], [-0.75, -6.0], [-1.125, -0.5], [-1.25, 1.0], [0.375, -5.5], [0.0, -2.0],
            [0.0, -1.5], [-1.5, -6.5], [-1.125, -4.0], [-0.125, -0.5], [-0.625, 1.0], [0.25, -6.0], [-0.875, -1.5]],
    },
    "blocos de 8 pesos (o MatMulNBits do ORT só aceita 16 ou mais; a regra é a mesma)": {
        "B": [[[98, 248, 53, 178], [98, 144, 58, 198], [178, 242, 183, 115]], [[143, 35, 68, 187], [145, 186, 236, 178],
            [172, 155, 230, 6]]],
        "escalas": [[0.125, 0.5, 0.625], [0.125, 0.5, 0.125]],
        "pontos_zero": [[202, 55], [227, 5]],
        "W": [[-1.0, 1.5], [-0.5, 0.625], [-0.25, 0.0], [0.625, -0.125], [-0.625, 0.125], [-0.875, 0.125], [-1.0, 1.0],
            [0.125, 1.0], [-5.0, -6.5], [-3.0, -2.5], [-6.0, -2.0], [-1.5, -1.5], [-1.0, -1.0], [-4.5, 0.0],
            [-3.0, -6.0], [0.0, -1.5], [-3.125, 0.875], [2.5, 0.625], [-3.125, 0.75], [5.0, 0.5], [0.0, 0.125],
            [2.5, 1.125], [-2.5, 0.125], [0.0, -0.625]],
    },
    "sem pontos-zero guardados": {
        "B": [[[60, 126, 160, 172, 201, 126, 117, 193], [41, 124, 120, 84, 121, 224, 26, 172]]],
        "escalas": [[0.25, 2.0]],
        "pontos_zero": None,
        "W": [[1.0], [-1.25], [1.5], [-0.25], [-2.0], [0.5], [1.0], [0.5], [0.25], [1.0], [1.5], [-0.25], [-0.75],
            [-0.25], [-1.75], [1.0], [2.0], [-12.0], [8.0], [-2.0], [0.0], [-2.0], [-8.0], [-6.0], [2.0], [-2.0],
            [-16.0], [12.0], [4.0], [-14.0], [8.0], [4.0]],
    },
}

# x, w, a saída certa (limiar 6) e as de dois erros comuns, guardadas como dados
_LLM_INT8_CASES = {
    "uma coluna de outliers": {
        "x": [[0.331, 0.021, 1.189, 0.44, 0.026, -1.556], [-1.061, -0.107, -0.16, 0.799, 20.0, 1.157], [1.202, 0.118,
            -0.457, 1.364, 0.95, 0.634]],
        "w": [[-0.165, -0.046], [0.0, 0.053], [0.037, -0.136], [0.007, 0.174], [0.188, 0.095], [0.037, 0.241]],
        "y": [[-0.0602, -0.471663], [3.975702, 2.383526], [-0.004766, 0.495688]],
        "sem_separar": [[-0.060087, -0.471808], [3.98193, 2.364128], [-0.003514, 0.495114]],
        "por_tensor": [[-0.05963, -0.471663], [3.977804, 2.381038], [-0.002679, 0.494982]],
    },
    "sem outliers": {
        "x": [[-0.533, -0.331, -1.456, 1.104, 0.225], [0.029, -1.162, 1.297, -0.006, -2.415], [-0.008, -0.018, 1.432,
            -1.016, 1.537], [-0.369, 0.306, 1.499, -0.213, 0.444]],
        "w": [[-0.011, -0.046, 0.109], [-0.076, -0.016, -0.151], [-0.007, -0.221, 0.025], [-0.029, -0.076, -0.034],
            [-0.034, 0.151, 0.237]],
        "y": [[0.001969, 0.301287, -0.024775], [0.160838, -0.634939, -0.361532], [-0.032431, -0.004338, 0.433582],
            [-0.039343, -0.23536, 0.06381]],
        "sem_separar": [[0.001969, 0.301287, -0.024775], [0.160838, -0.634939, -0.361532],
            [-0.032431, -0.004338, 0.433582],
            [-0.039343, -0.23536, 0.06381]],
        "por_tensor": [[0.001029, 0.302803, -0.027253], [0.159794, -0.632078, -0.361532],
            [-0.030837, -0.003797, 0.436372],
            [-0.038893, -0.236941, 0.06203]],
    },
}


def _float_array(got, shape, what):
    import numpy as np

    got = _as_numpy(got)
    if got.shape != shape:
        if got.shape == shape[::-1]:
            return None, f"{what}: o formato veio {got.shape}, transposto; devolva {shape}."
        return None, f"{what}: o formato deveria ser {shape}, veio {got.shape}."
    if not np.issubdtype(got.dtype, np.floating):
        return None, f"{what}: devolva números em ponto flutuante (veio {got.dtype})."
    return got.astype(np.float64), None


@exercise("06.2", "desempacotar o int4 em blocos do MatMulNBits",
          "uma função f(B, escalas, pontos_zero) -> W [K, N] float32")
def _unpack_int4(answer):
    import numpy as np

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for name, case in _UNPACK_CASES.items():
        packed = np.array(case["B"], dtype=np.uint8)
        zero = None if case["pontos_zero"] is None else np.array(case["pontos_zero"], dtype=np.uint8)
        expected = np.array(case["W"], dtype=np.float64)
        with watch_calls(*_int4_shortcuts()) as called:
            got = answer(packed.copy(), np.array(case["escalas"], dtype=np.float32),
                         None if zero is None else zero.copy())
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva W."
        got, problem = _float_array(got, expected.shape, f"no caso '{name}'")
        if problem:
            return False, problem
        if np.allclose(got, expected, atol=1e-6):
            continue
        n_blocks = packed.shape[1]
        block = expected.shape[0] // n_blocks
        if np.allclose(got[0::2], expected[1::2], atol=1e-6) and np.allclose(got[1::2], expected[0::2], atol=1e-6):
            return False, ("os dois códigos de cada byte estão trocados: o de índice PAR fica no nibble baixo "
                           "(byte & 15).")
        diff = (got - expected).reshape(n_blocks, block, -1)
        if np.allclose(diff, diff[:, :1], atol=1e-6):
            return False, (f"no caso '{name}' cada bloco está deslocado por uma constante: confira o ponto-zero "
                           "(de 4 bits, dois por byte, por coluna; sem pontos-zero guardados, o ORT usa 8).")
        return False, (f"no caso '{name}' os pesos não conferem: para cada coluna n e bloco b, "
                       "w = (q - z) x escala[n, b], com q do bloco b de B[n] e o k-ésimo peso da coluna em W[k, n].")
    return True, "correto! É isso que o kernel faz, bloco a bloco, antes (ou no meio) de cada multiplicação."


@exercise("06.3", "MatMul do LLM.int8 (outliers em ponto flutuante, resto em int8 vetor a vetor)",
          "uma função f(x, w, limiar=6.0) -> aproximação de x @ w [M, N]")
def _llm_int8(answer):
    import numpy as np

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for name, case in _LLM_INT8_CASES.items():
        x, w = np.array(case["x"], dtype=np.float32), np.array(case["w"], dtype=np.float32)
        expected = np.array(case["y"])
        with watch_calls(*_int8_shortcuts()) as called:
            got = answer(x.copy(), w.copy())
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o produto."
        got, problem = _float_array(got, expected.shape, f"no caso '{name}'")
        if problem:
            return False, problem
        if np.allclose(got, expected, rtol=1e-4, atol=1e-5):
            continue
        if np.allclose(got, x.astype(np.float64) @ w, rtol=1e-6, atol=1e-7):
            return False, "o resultado é o x @ w exato: o resto (sem outliers) precisa ser quantizado em int8."
        if np.allclose(got, np.array(case["sem_separar"]), rtol=1e-4, atol=1e-5):
            return False, "as colunas de outliers também foram quantizadas: separe as que têm algum |x| > limiar."
        if np.allclose(got, np.array(case["por_tensor"]), rtol=1e-4, atol=1e-5):
            return False, ("uma escala só para a matriz inteira: o LLM.int8 usa uma por LINHA de x e uma por "
                           "COLUNA de w.")
        return False, f"no caso '{name}' o produto não confere. Confira a escala (max|v| / 127) e o np.rint."
    rng = np.random.default_rng(63)
    x, w = rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    got, problem = _float_array(answer(x.copy(), w.copy(), limiar=0.0), (4, 3), "com limiar=0")
    if problem:
        return False, problem
    if not np.allclose(got, x.astype(np.float64) @ w, rtol=1e-5, atol=1e-5):
        return False, ("com limiar=0 toda coluna é outlier e o resultado deveria ser x @ w exato: use o "
                       "parâmetro limiar.")
    return True, "correto! As poucas colunas gigantes vão em ponto flutuante; o resto cabe em int8 quase sem perda"
